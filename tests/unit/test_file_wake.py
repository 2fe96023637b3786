"""SQLite's wake-ups across processes (store/sqlite.FileWake): a commit in one process wakes the delivering
process of the same database file, and nobody else's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from eventstreams.store.sqlite import FileWake


async def test_a_commit_elsewhere_wakes_the_listener_of_the_same_file_only(tmp_path: Path) -> None:
    listener, publisher = FileWake(str(tmp_path / "a.db")), FileWake(str(tmp_path / "a.db"))
    stranger = FileWake(str(tmp_path / "b.db"))
    heard: asyncio.Queue[list[str]] = asyncio.Queue()
    await listener.listen(heard.put_nowait)
    try:
        stranger.fire(["DGother"])  # another database: another address
        publisher.fire(["DG1", "DG2"])  # the publisher listens to nobody, so it sends
        assert await asyncio.wait_for(heard.get(), 5) == ["DG1", "DG2"]
        assert heard.empty()
        listener.fire(["DG3"])  # the listener's own commits: told in-process, once
        assert await asyncio.wait_for(heard.get(), 5) == ["DG3"]
        await asyncio.sleep(0.05)
        assert heard.empty()
    finally:
        for w in (listener, publisher, stranger):
            await w.close()


async def test_a_second_listener_polls_until_the_first_is_gone_then_takes_over(tmp_path: Path) -> None:
    import eventstreams.store.sqlite as sqlite_store

    first, second = FileWake(str(tmp_path / "a.db")), FileWake(str(tmp_path / "a.db"))
    publisher = FileWake(str(tmp_path / "a.db"))
    heard: asyncio.Queue[list[str]] = asyncio.Queue()
    old, sqlite_store.BIND_RETRY_S = sqlite_store.BIND_RETRY_S, 0.01
    try:
        await first.listen(lambda sinks: None)
        await second.listen(heard.put_nowait)  # the address is taken: no error, a warning, a retry later
        assert first._in is not None and second._in is None
        await first.close()  # e.g. the previous delivery process has finished shutting down
        while second._in is None:
            await asyncio.sleep(0.01)
        publisher.fire(["DG9"])
        assert await asyncio.wait_for(heard.get(), 5) == ["DG9"]
    finally:
        sqlite_store.BIND_RETRY_S = old
        for w in (first, second, publisher):
            await w.close()


async def test_several_delivery_processes_each_hear_of_their_own_share_of_the_sinks(tmp_path: Path) -> None:
    import pytest

    from eventstreams.store.sqlite import sink_shard

    path = str(tmp_path / "a.db")
    listeners = [FileWake(path, 3, k) for k in range(3)]
    publisher = FileWake(path, 3)
    heard: list[asyncio.Queue[list[str]]] = [asyncio.Queue() for _ in listeners]
    for w, q in zip(listeners, heard, strict=True):
        await w.listen(q.put_nowait)
    sinks = [f"DG{i:032x}" for i in range(30)]
    try:
        publisher.fire(sinks)
        for k, q in enumerate(heard):
            share = [s for s in sinks if sink_shard(s, 3) == k]
            assert share, "30 sinks over 3 processes: each has some"
            assert await asyncio.wait_for(q.get(), 5) == share
        await asyncio.sleep(0.05)
        assert all(q.empty() for q in heard)
        with pytest.raises(ValueError, match="delivery process 3 of 3"):
            FileWake(path, 3, 3)
    finally:
        for w in (*listeners, publisher):
            await w.close()


async def test_a_writer_that_counts_the_delivery_processes_otherwise_still_reaches_each_sinks_process(
    tmp_path: Path,
) -> None:
    """A CLI or an embedded caller may run with other settings than serve: its wake-ups find their way."""
    from eventstreams.store.sqlite import sink_shard

    path = str(tmp_path / "a.db")
    sinks = [f"DG{i:032x}" for i in range(12)]
    children = [FileWake(path, 2, k) for k in range(2)]
    lone_worker = FileWake(str(tmp_path / "b.db"))  # one deliverer on another file
    counts_one, counts_three = FileWake(path), FileWake(str(tmp_path / "b.db"), 3)
    heard: list[asyncio.Queue[list[str]]] = [asyncio.Queue() for _ in range(3)]
    for w, q in zip((*children, lone_worker), heard, strict=True):
        await w.listen(q.put_nowait)
    try:
        counts_one.fire(sinks)  # all to the first child, which passes on the second's share
        for k in range(2):
            assert await asyncio.wait_for(heard[k].get(), 5) == [s for s in sinks if sink_shard(s, 2) == k]
        counts_three.fire(sinks)  # names nobody bound: to the first name, where the lone worker listens
        got: list[str] = []
        while len(got) < len(sinks):
            got += await asyncio.wait_for(heard[2].get(), 5)
        assert sorted(got) == sinks
        await asyncio.sleep(0.05)
        assert all(q.empty() for q in heard)
    finally:
        for w in (*children, lone_worker, counts_one, counts_three):
            await w.close()
