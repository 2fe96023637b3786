"""Alert cadence (Twilio's): the first error alerts; later ones are grouped
into the next alert, raised after 20 minutes or at 10, 100, 1,000... errors.
Driven through the store with an injected clock, on both backends."""

from __future__ import annotations

from eventstreams.store.records import ErrorReport, PageQuery
from tests.conftest import Server

MINUTE = 60_000
EVERY = 20 * MINUTE


def test_alert_cadence(server: Server, account: tuple[str, str]) -> None:
    store = server.services.store
    sink = "DG" + "ab" * 16
    t0 = 1_900_000_000_000

    def errors(n: int, at: int) -> list[str]:
        report = ErrorReport(account[0], sink, n, 91306, 503, "HTTP 503: down", "https://x.example/h")
        alerts = server.call(store.deliveries.complete([], [], [report], at, EVERY))
        return [a.alert_text for a in alerts]

    first = errors(1, t0)
    assert len(first) == 1 and "1 error(s) since the last alert, 1 in total" in first[0]
    assert errors(3, t0 + MINUTE) == []  # grouped
    assert errors(5, t0 + 2 * MINUTE) == []  # 9 in total: still under 10
    tenth = errors(1, t0 + 3 * MINUTE)  # the 10th error
    assert len(tenth) == 1 and "9 error(s) since the last alert, 10 in total" in tenth[0]
    assert errors(50, t0 + 4 * MINUTE) == []  # 60 in total, under 100 and within 20 minutes
    later = errors(1, t0 + 3 * MINUTE + EVERY)  # 20 minutes after the last alert
    assert len(later) == 1 and "51 error(s) since the last alert, 61 in total" in later[0]
    hundredth = errors(40, t0 + 3 * MINUTE + EVERY + MINUTE)  # crosses 100
    assert len(hundredth) == 1 and "101 in total" in hundredth[0]
    assert errors(800, t0 + 3 * MINUTE + EVERY + 2 * MINUTE) == []  # 901 < 1,000
    assert len(errors(100, t0 + 3 * MINUTE + EVERY + 3 * MINUTE)) == 1  # 1,001 crosses 1,000
    listed = server.call(store.alerts.list(account[0], PageQuery(size=50)))
    assert [a.error_count for a in listed.items] == [1, 9, 51, 40, 900]


def test_concurrent_first_errors_of_one_sink(server: Server, account: tuple[str, str]) -> None:
    """Two pipelines recording a sink's first errors at once: one alert, no failed transaction
    (on PostgreSQL both used to insert the grouping row, and one completion was lost to a lease timeout)."""
    import asyncio

    store = server.services.store
    sink = "DG" + "cd" * 16
    report = ErrorReport(account[0], sink, 1, 91308, None, "timeout", None)  # 8 in all: under 10

    async def both() -> list[object]:
        return await asyncio.gather(
            *(store.deliveries.complete([], [], [report], 1_900_000_000_000, EVERY) for _ in range(8)),
            return_exceptions=True,
        )

    results = server.call(both())
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(len(r) for r in results if isinstance(r, list)) == 1  # one alert: the first error
    listed = server.call(store.alerts.list(account[0], PageQuery(size=50)))
    assert [a.sink_sid for a in listed.items].count(sink) == 1
