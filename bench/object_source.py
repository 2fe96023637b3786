"""The Twilio object source against airbyte-source-twilio, side by side on one seeded sandbox (issue 11).

    python -m bench.object_source [--messages 100000] [--calls 20000] [--seed 1] [--json out.json]
                                  [--profile] [--keep DIR]

1. Seeds a fresh SQLite sandbox (``sandbox.seed.generate``: messages, calls with their feedback,
   conferences, transcriptions, addresses; no subaccounts) and starts ``eventstreams sandbox`` on it
   in its own process (the readers here must not share its GIL).
2. Ours: an eventstreams runtime in this process on its own SQLite store, warehouse = a fresh DuckDB
   file; one source for the sandbox's account (all six collections, no start date); times
   ``Syncer.sync_now`` (read + type + upsert, committed page by page): records/s = rows loaded (call
   feedback included) / wall time. DuckDB is counted afterwards against the sandbox's tables.
3. airbyte-source-twilio from PyPI (tests/airbyte/run_source_twilio.py in .venv-airbyte: its manifest
   with only the host replaced) reads messages, calls, conferences, transcriptions and addresses, full
   refresh; the subprocess's wall time and its RECORD messages give records/s, with and without its
   start-up (``spec`` alone, timed separately). It only reads (stdout to a file); we read and load.
4. 1% of the messages change in the sandbox's SQLite file (the 1,000 most recent delivered/sent
   outbound ones become undelivered with error 30003 and a new ``date_updated``, as a late delivery
   receipt lands), then a second ``sync_now`` (incremental, 3-day lookback) is timed; all 1,000 must
   carry the new status in DuckDB.
5. Targets (issue 11): full-sync records/s ≥ 2x airbyte's; incremental ≥ 20x faster than the full
   sync. Prints a table and one verdict line per target; a miss does not fail the run. CPU seconds of
   this process, the sandbox and the connector per phase say what bounds each figure; ``--profile``
   adds one more full sync (into a fresh schema, not timed) under py-spy on this process and the
   sandbox, and samples the connector's read for 30 s (py-spy --nonblocking, another process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventstreams.config import Settings
from eventstreams.runtime import Runtime, build_runtime
from eventstreams.sandbox import seed as seeding
from eventstreams.warehouse.targets import open_target

from .harness import ROOT, Profiler, _short, cpu_seconds, free_port, summarise_collapsed
from .run import machine, machine_busy
from .sandbox_list import wait_up

NOW = 1_796_083_200  # 2026-12-01: fixed, so every run reads the same rows
AIRBYTE_PYTHON = ROOT / ".venv-airbyte" / "bin" / "python"
RUNNER = ROOT / "tests" / "airbyte" / "run_source_twilio.py"
AIRBYTE_STREAMS = ("messages", "calls", "conferences", "transcriptions", "addresses")
TABLES = {"messages": "sandbox_messages", "calls": "sandbox_calls", "call_feedback": "sandbox_call_feedback",
          "conferences": "sandbox_conferences", "transcriptions": "sandbox_transcriptions",
          "addresses": "sandbox_addresses"}  # fmt: skip
CHANGED_STATUS, CHANGED_CODE = "undelivered", 30003
TARGET_RATIO, TARGET_SPEEDUP = 2.0, 20.0
PY_SPY = Path(sys.executable).parent / "py-spy"
SPY_AFTER, SPY_SECONDS = 10, 30  # seconds into the connector's read, seconds sampled


@dataclass
class Phase:
    """One timed step: wall seconds and the CPU seconds each process spent in it."""

    wall: float = 0.0
    cpu_bench: float = 0.0  # this process, all threads (ours: event loop + DuckDB thread)
    cpu_sandbox: float = 0.0
    cpu_airbyte: float = 0.0
    cpu_machine: float = 0.0  # every process on the machine (2 cores: 2 x wall at most)

    def line(self) -> str:
        return (f"wall {self.wall:6.2f} s; CPU s: bench {self.cpu_bench:6.2f}, sandbox {self.cpu_sandbox:6.2f}, "
                f"connector {self.cpu_airbyte:6.2f}, whole machine {self.cpu_machine:6.2f}")  # fmt: skip


class Meter:
    """``with Meter(sandbox_pid) as m:`` … ``m.phase``."""

    def __init__(self, sandbox_pid: int) -> None:
        self.pid = sandbox_pid
        self.phase = Phase()

    def __enter__(self) -> Meter:
        self.t = time.perf_counter()
        self.own = time.process_time()
        self.sb = cpu_seconds(self.pid)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.kids = ru.ru_utime + ru.ru_stime
        self.busy = machine_busy()
        return self

    def __exit__(self, *exc: object) -> None:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.phase = Phase(time.perf_counter() - self.t, time.process_time() - self.own,
                           cpu_seconds(self.pid) - self.sb, ru.ru_utime + ru.ru_stime - self.kids,
                           machine_busy() - self.busy)  # fmt: skip


@dataclass
class Result:
    machine: dict[str, str]
    messages: int
    calls: int
    sandbox_rows: dict[str, int]
    ours_full: dict[str, Any] = field(default_factory=dict)
    airbyte: dict[str, Any] = field(default_factory=dict)
    incremental: dict[str, Any] = field(default_factory=dict)
    verdicts: list[str] = field(default_factory=list)
    profile: dict[str, list[str]] = field(default_factory=dict)


# -- the sandbox


async def prepare(db: Path, tmp: Path, messages: int, calls: int, seed: int) -> tuple[str, str]:
    """A fresh sandbox database: one account and every collection the seeder makes for it."""
    rt = await build_runtime(Settings(database_url=f"sqlite:///{db}", data_dir=tmp, delivery=False))
    try:
        account, token = await rt.accounts.create("bench")
        data = seeding.generate([account.sid], messages, calls, seed, NOW)
        for kind, rows in data.collections():
            await rt.store.sandbox.insert_many(kind, rows)
        return account.sid, token
    finally:
        await rt.close()


def sandbox_counts(db: Path, account: str) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        out = {name: conn.execute(f"SELECT count(*) FROM {t} WHERE account_sid = ?", (account,)).fetchone()[0]
               for name, t in TABLES.items()}  # fmt: skip
        # what airbyte can see: it reads messages with DateSent>/DateSent<, so never-sent ones are not listed
        out["messages_sent"] = conn.execute(
            "SELECT count(*) FROM sandbox_messages WHERE account_sid = ? AND date_sent IS NOT NULL", (account,)
        ).fetchone()[0]
        return out
    finally:
        conn.close()


def change_messages(db: Path, account: str, n: int) -> list[str]:
    """A late delivery receipt, ``n`` times: the most recent sent/delivered outbound messages become
    undelivered, with the error code, its message and a new ``date_updated``, in one transaction."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        query = ("SELECT sid FROM sandbox_messages WHERE account_sid = ? AND direction LIKE 'outbound%' "
                 "AND status IN ('sent', 'delivered') ORDER BY date_created DESC, sid DESC LIMIT ?")  # fmt: skip
        sids = [r[0] for r in conn.execute(query, (account, n))]
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "UPDATE sandbox_messages SET status = ?, error_code = ?, error_message = ?, date_updated = ? WHERE sid = ?",
            [(CHANGED_STATUS, CHANGED_CODE, "Unreachable destination handset", stamp, s) for s in sids],
        )
        conn.execute("COMMIT")
        return sids
    finally:
        conn.close()


def start_sandbox(db: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EVENTSTREAMS_")},
           "EVENTSTREAMS_SANDBOX_DATABASE_URL": f"sqlite:///{db}", "EVENTSTREAMS_DATA_DIR": str(tmp),
           "EVENTSTREAMS_DELIVERY": "false"}  # fmt: skip
    cmd = [sys.executable, "-m", "eventstreams.cli.main", "sandbox", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base)
    except RuntimeError:
        proc.terminate()
        raise
    return proc, base


# -- ours


async def ours(args: argparse.Namespace, tmp: Path, base: str, sid: str, token: str, sandbox_pid: int,
               db: Path, expected: dict[str, int], result: Result) -> None:  # fmt: skip
    warehouse = f"duckdb:///{tmp}/warehouse.duckdb"
    settings = Settings(database_url=f"sqlite:///{tmp}/store.db", data_dir=tmp, delivery=False,
                        allow_private_destinations=True, warehouse_url=warehouse, source_syncs=False)  # fmt: skip
    rt = await build_runtime(settings)
    try:
        account, _ = await rt.accounts.create("bench")
        row = await create_source(rt, account, "Bench Twilio", base, sid, token)
        schema = row.schema_name
        syncer = rt.syncer()

        seconds: dict[str, float] = {}
        with Meter(sandbox_pid) as m:
            report = await syncer.sync_now(row, progress=lambda p: seconds.__setitem__(p.collection, p.duration))
        full = m.phase
        assert report.run.status == "succeeded", report.run.error
        per = per_collection(report, seconds)
        counts = warehouse_counts(warehouse, schema)
        result.ours_full = {"kind": report.run.kind, "rows": report.rows_read,
                            "records_per_s": report.rows_read / full.wall, "phase": asdict(full), "collections": per,
                            "duckdb": counts,
                            "duckdb_matches_sandbox": all(counts[c] == expected[c] for c in TABLES)}  # fmt: skip
        print(f"ours, full sync: {report.rows_read:,} rows in {full.wall:.2f} s = {report.rows_read / full.wall:,.0f} "
              f"records/s ({report.run.kind})")  # fmt: skip
        print(f"  {full.line()}")
        for name, p in per.items():
            print(f"  {name:15s} {p['rows']:>8,} rows {p['seconds']:7.2f} s   DuckDB {counts[name]:>8,} "
                  f"(sandbox {expected[name]:,})" + (f", call_feedback {counts['call_feedback']:,} "
                  f"(sandbox {expected['call_feedback']:,})" if name == "calls" else ""))  # fmt: skip
        for name in TABLES:
            if counts[name] != expected[name]:
                print(f"  !! {name}: DuckDB has {counts[name]:,} rows, the sandbox {expected[name]:,}")

        # in Twilio, a late delivery receipt changes the message in place
        changed = change_messages(db, sid, args.messages // 100)
        seconds.clear()
        with Meter(sandbox_pid) as m:
            report2 = await syncer.sync_now(await rt.object_sources.get(account, row.sid),
                                            progress=lambda p: seconds.__setitem__(p.collection, p.duration))
        inc = m.phase
        assert report2.run.status == "succeeded", report2.run.error
        updated = changed_in_warehouse(warehouse, schema, changed)
        counts2 = warehouse_counts(warehouse, schema)
        per2 = per_collection(report2, seconds)
        result.incremental = {"kind": report2.run.kind, "changed": len(changed), "updated_in_duckdb": updated,
                              "rows": report2.rows_read, "phase": asdict(inc), "collections": per2,
                              "speedup": full.wall / inc.wall, "duckdb_after": counts2,
                              "no_new_rows": counts2 == counts}  # fmt: skip
        print(f"ours, incremental after {len(changed):,} messages changed: {report2.rows_read:,} rows re-read in "
              f"{inc.wall:.2f} s ({report2.run.kind}); {updated:,}/{len(changed):,} show '{CHANGED_STATUS}' "
              f"in DuckDB; row counts unchanged: {counts2 == counts}")  # fmt: skip
        print(f"  {inc.line()}")
        for name, p in per2.items():
            print(f"  {name:15s} {p['rows']:>8,} rows {p['seconds']:7.2f} s")

        if args.profile:
            # not timed: py-spy on both processes through one more full sync into a fresh schema
            prow = await create_source(rt, account, "Bench Twilio profiled", base, sid, token)
            outs = (tmp / "bench.spy", tmp / "sandbox.spy")
            spies = (Profiler(os.getpid(), outs[0]), Profiler(sandbox_pid, outs[1]))
            await asyncio.sleep(1)  # py-spy attaches
            with Meter(sandbox_pid) as m:
                await syncer.sync_now(prow)
            result.profile = {"bench process": spies[0].finish(), "sandbox process": spies[1].finish(),
                              "phase": [m.phase.line()]}  # fmt: skip
    finally:
        await rt.close()


def per_collection(report: Any, seconds: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Rows and seconds per collection (the last progress call of each is its end); ``calls`` includes
    the feedback fetched with them."""
    return {c.collection: {"rows": c.rows_read, "seconds": round(seconds.get(c.collection, 0.0), 2)}
            for c in report.collections}  # fmt: skip


async def create_source(rt: Runtime, account: Any, name: str, base: str, sid: str, token: str) -> Any:
    return await rt.object_sources.create(account, friendly_name=name, twilio_account_sid=sid, auth_token=token,
                                          base_url=base, schedule="manual", include_subaccounts=False)  # fmt: skip


def warehouse_counts(url: str, schema: str) -> dict[str, int]:
    t = open_target(url)
    try:
        out = {}
        for name in TABLES:
            _, rows = t.query(f'SELECT count(*), count(DISTINCT id) FROM "{schema}"."{name}"')
            n, distinct = rows[0]
            assert n == distinct, f"{name}: {n} rows, {distinct} distinct ids"
            out[name] = int(n)
        return out
    finally:
        t.close()


def changed_in_warehouse(url: str, schema: str, sids: list[str]) -> int:
    t = open_target(url)
    try:
        _, rows = t.query(f'SELECT id FROM "{schema}".messages WHERE status = ? AND error_code = ?',
                          (CHANGED_STATUS, CHANGED_CODE))  # fmt: skip
        return len(set(sids) & {r[0] for r in rows})
    finally:
        t.close()


# -- airbyte-source-twilio


def connector(base: str, tmp: Path, command: str, config: Path | None, catalog: Path | None, out: Path,
              spy: Path | None = None) -> None:  # fmt: skip
    """Run the connector once, its stdout to ``out``. ``spy``: py-spy samples it for SPY_SECONDS
    (after its start-up), into that file: a separate process, it does not stop the connector."""
    args = [str(AIRBYTE_PYTHON), str(RUNNER), "--base-url", base, command]
    if config is not None:
        args += ["--config", str(config)]
    if catalog is not None:
        args += ["--catalog", str(catalog)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTSTREAMS_", "VIRTUAL_ENV"))}
    with out.open("wb") as f, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=f, stderr=err, cwd=tmp, env=env)
        spier = None
        if spy is not None and PY_SPY.exists():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(SPY_AFTER)  # past the imports and the manifest: the steady state is what matters
            if proc.poll() is None:
                spier = subprocess.Popen([str(PY_SPY), "record", "--pid", str(proc.pid), "--format", "raw", "--rate",
                                          "50", "--nonblocking", "--duration", str(SPY_SECONDS), "--output", str(spy)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        code = proc.wait(900)
        if spier is not None:
            spier.wait(SPY_SECONDS + 30)
        if code != 0:
            err.seek(0)
            raise RuntimeError(f"airbyte {command} exited {code}: {err.read().decode()[-2000:]}")


def own_time(path: Path, top: int = 12) -> list[str]:
    """Top lines by own samples, and every function by inclusive samples (thread plumbing left out),
    from a py-spy raw file: summarise_collapsed counts only eventstreams functions as inclusive."""
    if not path.exists():
        return ["(no profile)"]
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        frames = [f for f in stack.split(";")[1:] if f and not any(
            x in f for x in ("threading.py", "concurrent/futures", "run_source_twilio.py", "<module>"))]  # fmt: skip
        for name in {_short(f) for f in frames}:
            incl[name] += int(n)
    out = summarise_collapsed(path, top)
    out = out[: next((i for i, x in enumerate(out) if x.startswith("inclusive")), len(out))]
    out.append("inclusive (all functions):")
    out += [f"  {100 * c / max(total, 1):5.1f}%  {name}" for name, c in incl.most_common(top * 2)]
    return out


def airbyte(tmp: Path, base: str, sid: str, token: str, sandbox_pid: int, expected: dict[str, int],
            result: Result, profile: bool) -> None:  # fmt: skip
    if not AIRBYTE_PYTHON.exists():
        print(f"airbyte: {AIRBYTE_PYTHON} is missing: run `make .venv-airbyte/.done`")
        return
    work = tmp / "airbyte"
    work.mkdir()
    config = work / "config.json"
    config.write_text(json.dumps({"account_sid": sid, "auth_token": token, "start_date": "2020-01-01T00:00:00Z"}))
    with Meter(sandbox_pid) as m:
        connector(base, work, "spec", None, None, work / "spec.out")
    spec = m.phase
    with Meter(sandbox_pid) as m:
        connector(base, work, "check", config, None, work / "check.out")
    check = m.phase
    connector(base, work, "discover", config, None, work / "discover.out")
    found = next(d for d in map(json.loads, lines(work / "discover.out")) if d["type"] == "CATALOG")
    streams = [s for s in found["catalog"]["streams"] if s["name"] in AIRBYTE_STREAMS]
    catalog = work / "catalog.json"
    chosen = [{"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"} for s in streams]
    catalog.write_text(json.dumps({"streams": chosen}))
    with Meter(sandbox_pid) as m:
        connector(base, work, "read", config, catalog, work / "read.out", work / "read.spy" if profile else None)
    read = m.phase
    if profile:
        result.profile["connector process (py-spy, 50 Hz, one window of the read)"] = own_time(work / "read.spy")
    records: Counter[str] = Counter()
    errors = []
    for line in lines(work / "read.out"):
        if line.startswith(('{"type": "RECORD"', '{"type":"RECORD"')):
            records[json.loads(line)["record"]["stream"]] += 1
        elif '"ERROR"' in line:
            msg = json.loads(line)
            if msg.get("type") == "TRACE" and msg["trace"].get("type") == "ERROR":
                errors.append(msg["trace"]["error"]["message"])
    total = sum(records.values())
    want = {s: expected["messages_sent" if s == "messages" else s] for s in AIRBYTE_STREAMS}
    result.airbyte = {"records": total, "per_stream": dict(records), "expected": want, "errors": errors,
                      "read": asdict(read), "spec": asdict(spec), "check": asdict(check),
                      "records_per_s": total / read.wall,
                      "records_per_s_without_startup": total / max(read.wall - spec.wall, 1e-9)}  # fmt: skip
    print(f"airbyte-source-twilio read: {total:,} records in {read.wall:.2f} s = {total / read.wall:,.0f} records/s; "
          f"without its start-up ({spec.wall:.2f} s, `spec` alone) "
          f"{result.airbyte['records_per_s_without_startup']:,.0f} records/s; `check` {check.wall:.2f} s")  # fmt: skip
    print(f"  {read.line()}")
    for s in AIRBYTE_STREAMS:
        print(f"  {s:15s} {records[s]:>8,} records (sandbox {want[s]:,})")
    for e in errors[:5]:
        print(f"  !! error: {e[:200]}")


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]


# -- the verdicts


def summarise(r: Result) -> None:
    f, a, i = r.ours_full, r.airbyte, r.incremental
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| ours, full sync (read + load into DuckDB), records/s | {f['records_per_s']:,.0f} "
          f"({f['rows']:,} rows, {f['phase']['wall']:.1f} s) |")  # fmt: skip
    if a:
        print(f"| airbyte-source-twilio read, records/s | {a['records_per_s']:,.0f} "
              f"({a['records']:,} records, {a['read']['wall']:.1f} s) |")  # fmt: skip
        print(f"| airbyte, without its start-up ({a['spec']['wall']:.1f} s), records/s | "
              f"{a['records_per_s_without_startup']:,.0f} |")  # fmt: skip
    print(f"| ours, incremental after 1% changed | {i['phase']['wall']:.2f} s ({i['rows']:,} rows re-read) |")
    print(f"| full / incremental | {i['speedup']:.1f}x |")
    print()
    if a:
        ratio = f["records_per_s"] / a["records_per_s"]
        ratio2 = f["records_per_s"] / a["records_per_s_without_startup"]
        ok = "MET" if ratio >= TARGET_RATIO else "MISSED"
        r.verdicts.append(f"full sync ≥ {TARGET_RATIO:g}x airbyte's records/s: {ok} ({ratio:.2f}x; "
                          f"{ratio2:.2f}x against airbyte without its start-up)")  # fmt: skip
    ok = "MET" if i["speedup"] >= TARGET_SPEEDUP else "MISSED"
    r.verdicts.append(f"incremental ≥ {TARGET_SPEEDUP:g}x faster than full: {ok} ({i['speedup']:.1f}x)")
    correct = f["duckdb_matches_sandbox"] and i["updated_in_duckdb"] == i["changed"] and i["no_new_rows"]
    r.verdicts.append(f"correctness: DuckDB equals the sandbox's counts, all {i['changed']:,} changes landed, "
                      f"no duplicates: {'YES' if correct else 'NO'}")  # fmt: skip
    for v in r.verdicts:
        print(f"verdict: {v}")
    for who, text in r.profile.items():
        print(f"\nprofile, {who}:")
        for line in text:
            print(f"  {line}")


async def run(args: argparse.Namespace, tmp: Path) -> Result:
    db = tmp / "sandbox.db"
    t = time.perf_counter()
    sid, token = await prepare(db, tmp, args.messages, args.calls, args.seed)
    expected = sandbox_counts(db, sid)
    print(f"seeded {sum(v for k, v in expected.items() if k in TABLES):,} rows in {time.perf_counter() - t:.1f} s: "
          + ", ".join(f"{k} {v:,}" for k, v in expected.items()))  # fmt: skip
    result = Result(machine(), args.messages, args.calls, expected)
    proc, base = start_sandbox(db, tmp)
    try:
        await ours(args, tmp, base, sid, token, proc.pid, db, expected, result)
        # the connector reads the sandbox after our incremental sync: the 1,000 changed rows make no
        # difference to a full-refresh read
        airbyte(tmp, base, sid, token, proc.pid, expected, result, args.profile)
    finally:
        proc.terminate()
        proc.wait(10)
    summarise(result)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--profile", action="store_true", help="one more full sync under py-spy (not timed)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    args = ap.parse_args()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()))
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run(args, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-objsrc-") as tmp:
            result = asyncio.run(run(args, Path(tmp)))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2, default=str))


if __name__ == "__main__":
    main()
