"""How fast the sandbox serves its lists, the way the object source will read them.

    python -m bench.sandbox_list [--messages 100000] [--calls 20000] [--seed 1]

Seeds a fresh SQLite sandbox (``sandbox.seed.generate`` + ``store.sandbox.insert_many``), starts
``eventstreams sandbox`` on it (its own process, so the client here does not share its GIL), then
pages through every message and call of the main account with ``PageSize=1000`` over HTTP (one
keep-alive connection, following ``next_page_uri`` as clients do) and prints records/s. The limit it
compares to: sqlite3 alone reading the same rows in the same order (``SELECT *`` newest first),
measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from eventstreams.config import Settings
from eventstreams.runtime import build_runtime
from eventstreams.sandbox import seed as seeding
from eventstreams.store.repos import sandbox as kinds

NOW = 1_796_083_200  # 2026-12-01: fixed, so every run measures the same rows


def page_through(base: str, auth: tuple[str, str], path: str, key: str) -> tuple[int, float]:
    session = requests.Session()
    session.auth = auth
    url: str | None = f"{base}{path}?PageSize=1000"
    n = 0
    t = time.perf_counter()
    while url:
        body = session.get(url, timeout=60).json()
        n += len(body[key])
        url = f"{base}{body['next_page_uri']}" if body["next_page_uri"] else None
    return n, time.perf_counter() - t


def raw_read(db: Path, table: str, account: str) -> tuple[int, float]:
    conn = sqlite3.connect(db)
    t = time.perf_counter()
    rows = conn.execute(
        f"SELECT * FROM {table} WHERE account_sid = ? ORDER BY date_created DESC, sid DESC", (account,)
    ).fetchall()
    dt = time.perf_counter() - t
    conn.close()
    return len(rows), dt


async def prepare(db: Path, tmp: Path, messages: int, calls: int, seed: int) -> tuple[str, str]:
    rt = await build_runtime(Settings(database_url=f"sqlite:///{db}", data_dir=tmp, delivery=False))
    try:
        account, token = await rt.accounts.create("bench")
        data = seeding.generate([account.sid], messages, calls, seed, NOW)
        await rt.store.sandbox.insert_many(kinds.MESSAGE, data.messages)
        await rt.store.sandbox.insert_many(kinds.CALL, data.calls)
        return account.sid, token
    finally:
        await rt.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sandbox.db"
        sid, token = asyncio.run(prepare(db, Path(tmp), args.messages, args.calls, args.seed))
        port = free_port()
        env = {"EVENTSTREAMS_SANDBOX_DATABASE_URL": f"sqlite:///{db}", "EVENTSTREAMS_DATA_DIR": tmp,
               "EVENTSTREAMS_DELIVERY": "false"}  # fmt: skip
        cmd = [sys.executable, "-m", "eventstreams.cli.main", "sandbox", "--port", str(port)]
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base)
            print(f"sandbox list benchmark: {args.messages} messages, {args.calls} calls, one account, SQLite")
            for table, path, key in (("sandbox_messages", "Messages.json", "messages"),
                                     ("sandbox_calls", "Calls.json", "calls")):  # fmt: skip
                n_raw, t_raw = raw_read(db, table, sid)
                n, t = page_through(base, (sid, token), f"/2010-04-01/Accounts/{sid}/{path}", key)
                assert n == n_raw, (n, n_raw)
                print(f"  {key:9s} HTTP {n / t:9,.0f} records/s ({n} in {t:.2f} s, {n // 1000 + 1} pages)   "
                      f"raw sqlite3 read {n_raw / t_raw:11,.0f} rows/s   ratio {(n / t) / (n_raw / t_raw):.3f}")
        finally:
            proc.terminate()
            proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError("sandbox did not start")


if __name__ == "__main__":
    main()
