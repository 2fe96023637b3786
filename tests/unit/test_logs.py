"""Structured logs: JSON lines or text, extras as keys, secrets redacted on the handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from eventstreams import logs


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_json_lines_carry_extras_and_never_secrets(restore_root: None) -> None:
    buf = io.StringIO()
    logs.configure("json", "INFO", stream=buf)
    log = logging.getLogger("eventstreams.test")
    log.info(
        "POST to https://user:pa55word@hooks.example/x with Authorization: Bearer abc.def and auth_token=tok123",
        extra={"event_id": "EV1", "sink_sid": "DG1", "account_sid": "AC1", "auth_token": "tok456",
               "headers": {"Authorization": "Basic Zm9vOmJhcg==", "Accept": "json"}, "write_key": "wk789"},
    )  # fmt: skip
    try:
        raise ValueError("connect to postgresql://es:dbpass99@db/es failed")
    except ValueError:
        log.exception("store down", extra={"account_sid": "AC1"})
    log.debug("not at INFO")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert (first["event_id"], first["sink_sid"], first["account_sid"]) == ("EV1", "DG1", "AC1")
    assert first["level"] == "INFO" and first["logger"] == "eventstreams.test" and first["time"].endswith("+00:00")
    assert first["auth_token"] == first["write_key"] == logs.REDACTED
    assert first["headers"] == {"Authorization": logs.REDACTED, "Accept": "json"}
    assert "https://user:[redacted]@hooks.example/x" in first["message"]
    # an Authorization value runs to the end of its line (Digest, AWS4 … have spaces): the rest goes with it
    assert first["message"].endswith("with Authorization: [redacted]")
    assert "ValueError" in lines[1]["exception"] and "postgresql://es:[redacted]@db/es" in lines[1]["exception"]
    text = buf.getvalue()
    for secret in ("pa55word", "abc.def", "tok123", "tok456", "Zm9vOmJhcg", "wk789", "dbpass99"):
        assert secret not in text


def test_text_on_a_terminal_json_elsewhere_and_the_setting_wins(restore_root: None) -> None:
    tty = Tty()
    logs.configure("auto", "INFO", stream=tty)
    logging.getLogger("eventstreams.test").warning("hello %s", "there", extra={"sink_sid": "DG1"})
    line = tty.getvalue().strip()
    assert line.endswith("WARNING eventstreams.test: hello there sink_sid=DG1"), line
    piped = io.StringIO()
    logs.configure("auto", "INFO", stream=piped)
    assert sum(isinstance(h, logs._Handler) for h in logging.getLogger().handlers) == 1, "replaced, not added"
    logging.getLogger("eventstreams.test").warning("x")
    assert json.loads(piped.getvalue())["message"] == "x"
    assert tty.getvalue().count("\n") == 1, "the first handler was replaced"
    forced = Tty()
    logs.configure("json", "WARNING", stream=forced)
    logging.getLogger("eventstreams.test").info("quiet")
    logging.getLogger("eventstreams.test").error("loud")
    assert json.loads(forced.getvalue())["message"] == "loud"


def test_the_settings_choose_format_and_level(restore_root: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSTREAMS_LOG_FORMAT", "text")
    monkeypatch.setenv("EVENTSTREAMS_LOG_LEVEL", "debug")
    monkeypatch.setenv("EVENTSTREAMS_CONFIG", "")
    buf = io.StringIO()
    logs.configure(stream=buf)
    logging.getLogger("eventstreams.test").debug("seen")
    assert logging.getLogger().level == logging.DEBUG and " DEBUG eventstreams.test: seen" in buf.getvalue()


def test_a_root_logger_configured_elsewhere_is_left_alone(restore_root: None) -> None:
    root = logging.getLogger()
    foreign = logging.StreamHandler(io.StringIO())
    root.addHandler(foreign)
    try:
        assert logs.configure() is None  # a host application (or pytest) configured logging: as basicConfig
        assert not any(isinstance(h, logs._Handler) for h in root.handlers)
    finally:
        root.removeHandler(foreign)


def test_review_gaps_are_redacted_and_a_bad_call_never_raises(restore_root: None) -> None:
    from eventstreams.logs import RedactSecrets, redact_text

    url = "https://hooks.example.com/x?token=T1&access_token=T2&sig=S&key=K&sink=kept"
    assert redact_text(url) == ("https://hooks.example.com/x?token=[redacted]&access_token=[redacted]"
                                "&sig=[redacted]&key=[redacted]&sink=kept")  # fmt: skip
    for header in ("Authorization: Digest username=a, response=b", "authorization: SSWS 00abc"):
        assert redact_text(header).endswith("[redacted]") and "abc" not in redact_text(header)
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "bad %s %s", (1,), None)  # too few arguments
    assert RedactSecrets().filter(record) and "bad" in str(record.msg)


def test_an_unknown_level_falls_back_to_info(restore_root: None) -> None:
    import io

    from eventstreams.logs import configure

    configure(stream=io.StringIO(), fmt="json", level="verbose")
    assert logging.getLogger().level == logging.INFO


def test_uvicorns_colour_copy_of_a_message_stays_out_of_json(restore_root: None) -> None:
    buf = io.StringIO()
    logs.configure("json", "INFO", stream=buf)
    # uvicorn's own loggers may carry handlers from a server an earlier test started, so the record is
    # sent through a logger of ours with the extra uvicorn adds.
    logging.getLogger("eventstreams.test.uvicorn").info(
        "Uvicorn running", extra={"color_message": "\x1b[1mUvicorn\x1b[0m"}
    )
    line = json.loads(buf.getvalue())
    assert line["message"] == "Uvicorn running" and "color_message" not in line
