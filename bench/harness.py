"""Process management and clients for the benchmarks: the ``eventstreams serve``
process under test, the receiver process, PostgreSQL databases, ``wrk``,
RSS sampling and py-spy profiles."""

from __future__ import annotations

import base64
import functools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psycopg

from eventstreams.catalog import builtin_examples

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN = os.environ.get("EVENTSTREAMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DELIVERED = "com.twilio.messaging.message.delivered"
EVENT_BYTES = 700


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (VmRSS), 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid`` in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# -- events ---------------------------------------------------------------------------------


@functools.cache
def prose() -> str:
    """~400 kB of printable ASCII English (no quotes or backslashes: every character is one JSON byte)."""
    from pydoc_data.topics import topics

    text = re.sub(r'[^ -~]|["\\\\]', " ", " ".join(topics[k] for k in sorted(topics)))
    return re.sub(r"\s+", " ", text)


class EventFactory:
    """Builds ~700-byte CloudEvents (Messaging.MessageStatus, latest version) as bytes, with unique ids and
    the ``benchts`` extension (publish time, ns since the epoch).

    Each event carries one of ``VARIANTS`` data objects, each with its own SIDs and recipient and an SMS body
    cut from English prose (the stdlib's pydoc topics), at least as long as the example's own and longer
    when needed to make every event ``size`` bytes: what is stored then compresses like real traffic
    (store/packing.py). Before issue 13's fourth session every event carried the same data, which compresses
    far better than traffic does."""

    VARIANTS = 512

    def __init__(self, run_id: str, size: int = EVENT_BYTES) -> None:
        examples = builtin_examples()["Messaging.MessageStatus"]
        base = dict(examples[max(examples)])
        self.run_id = run_id
        self._n = 0
        self._head = b'{"specversion":"1.0","type":"' + DELIVERED.encode() + b'","source":"/bench","id":"'
        rng = random.Random(run_id)
        text = prose()
        self._variants: list[bytes] = []
        for _ in range(self.VARIANTS):
            data = dict(base)
            data["messageSid"] = f"SM{rng.getrandbits(128):032x}"
            data["messagingServiceSid"] = f"MG{rng.getrandbits(128):032x}"
            data["to"] = f"+1415{rng.randrange(10**7):07d}"
            data["body"] = ""
            # as long as the example's own body ("Your code is 123456") when the event is already `size`
            room = max(20, size - len(self._event(orjson.dumps(data))))
            at = rng.randrange(len(text) - room - 1)
            data["body"] = text[at : at + room]
            self._variants.append(orjson.dumps(data))
        self.size = len(self._event(self._variants[0]))

    def _event(self, data: bytes) -> bytes:
        eid = b"EZ%s%024x" % (self.run_id.encode(), self._n)
        return self._head + eid + b'","benchts":%d,"data":' % time.time_ns() + data + b"}"

    def one(self) -> bytes:
        self._n += 1
        return self._event(self._variants[self._n % self.VARIANTS])

    def batch(self, n: int) -> bytes:
        return b"[" + b",".join([self.one() for _ in range(n)]) + b"]"


# -- processes ------------------------------------------------------------------------------


class Receiver:
    """``python -m bench.receiver`` in its own process."""

    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open((log_dir or Path(tempfile.gettempdir())) / f"receiver-{self.port}.log", "wb")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Receiver:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bench.receiver", str(self.port)], cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_http(f"{self.url}/_stats", 10, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._log.close()


class Server:
    """One ``eventstreams serve`` process on a fresh database."""

    def __init__(self, backend: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"es-{backend}-", dir=workdir))
        self.sid = "AC" + secrets.token_hex(16)
        self.token = secrets.token_hex(16)
        self.auth_header = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        self.pg_name: str | None = None
        if backend == "sqlite":
            db = f"sqlite:///{self.dir}/eventstreams.db"
        else:
            self.pg_name = f"es_bench_{os.getpid()}_{secrets.token_hex(3)}"
            db = pg_create(self.pg_name)
        self.env = {
            **os.environ,
            "EVENTSTREAMS_DATABASE_URL": db,
            "EVENTSTREAMS_ACCOUNT_SID": self.sid,
            "EVENTSTREAMS_AUTH_TOKEN": self.token,
            "EVENTSTREAMS_DATA_DIR": str(self.dir),
            "EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS": "true",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = open(self.dir / "serve.log", "wb")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "eventstreams.cli.main", "serve", "--port", str(self.port)],
            cwd=self.dir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.url}/healthz", 60, self.proc)
        return self

    def children(self) -> list[int]:
        """serve's child processes (its delivery process on SQLite)."""
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._log.close()
        if self.pg_name:
            pg_drop(self.pg_name)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join((self.dir / "serve.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout}s")
        time.sleep(0.1)


def pg_create(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def pg_drop(name: str) -> None:
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as exc:
        print(f"  (could not drop database {name}: {exc})", file=sys.stderr)


def postgres_pids() -> list[int]:
    """PIDs of the local PostgreSQL backends (to count their CPU time)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            comm = (d / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("postgres"):
            pids.append(int(d.name))
    return pids


# -- the API client -------------------------------------------------------------------------


@dataclass
class Api:
    server: Server
    session: aiohttp.ClientSession
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.server.auth_header}

    async def form(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        async with self.session.post(self.server.url + path, data=data, headers=self.headers) as r:
            body = await r.json(content_type=None)
            if r.status >= 300:
                raise RuntimeError(f"POST {path} -> {r.status}: {body}")
            return dict(body)

    async def webhook(self, destination: str, batch: bool, description: str = "bench") -> str:
        cfg = {"destination": destination, "method": "POST", "batch_events": batch}
        sink = await self.form(
            "/v1/Sinks",
            {"Description": description, "SinkType": "webhook", "SinkConfiguration": json.dumps(cfg)},
        )
        await self.form(
            "/v1/Subscriptions",
            {"Description": description, "SinkSid": sink["sid"], "Types": json.dumps({"type": DELIVERED})},
        )
        return str(sink["sid"])

    async def publish(self, body: bytes) -> int:
        """POST one batch; returns the number of events accepted."""
        async with self.session.post(
            self.server.url + "/v1/Events",
            data=body,
            headers={**self.headers, "Content-Type": "application/cloudevents-batch+json"},
        ) as r:
            raw = await r.read()
            if r.status not in (201, 207):
                self.errors[f"HTTP {r.status}"] += 1
                if self.errors[f"HTTP {r.status}"] <= 3:
                    print(f"  publish -> {r.status}: {raw[:300]!r}", file=sys.stderr)
                return 0
            return len(orjson.loads(raw)["accepted"])


async def receiver_get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as r:
        return orjson.loads(await r.read())


async def receiver_post(session: aiohttp.ClientSession, url: str) -> None:
    async with session.post(url) as r:
        await r.read()


# -- wrk ------------------------------------------------------------------------------------


def wrk(url: str, body: bytes, connections: int, seconds: int, workdir: Path) -> float | None:
    """Requests/s ``wrk`` reaches POSTing ``body`` to ``url``; None if wrk is missing."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(
        [exe, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    ).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


# -- py-spy ---------------------------------------------------------------------------------


class Profiler:
    """``py-spy record --format raw`` on a pid until :meth:`finish`; summarises own/inclusive time."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.out = out
        exe = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        self.proc: subprocess.Popen[bytes] | None = None
        if Path(exe).exists():
            self.proc = subprocess.Popen(
                [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate), "--threads",
                 "--nonblocking", "--output", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def finish(self) -> list[str]:
        if self.proc is None:
            return ["(py-spy not installed: .venv/bin/pip install py-spy)"]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if not self.out.exists():
            return ["(py-spy produced no profile: it needs ptrace permission)"]
        return summarise_collapsed(self.out)


def summarise_collapsed(path: Path, top: int = 12) -> list[str]:
    """Top lines by own samples and eventstreams functions by inclusive samples from a
    py-spy raw (collapsed) file. Time in C (sqlite3, uvloop, orjson) is charged to the
    Python line that called it. Threads parked in a queue/lock wait are excluded."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = [f for f in stack.split(";") if f]
        if len(frames) < 2 or _idle(frames[-1]):
            continue
        total += count
        threads[_thread(frames[0])] += count
        own[_short(frames[-1], keep_line=True)] += count
        for name in {_short(f) for f in frames[1:]}:
            if "eventstreams/" in name and "cli/main.py" not in name:
                incl[name] += count
    if total == 0:
        return ["(no busy samples)"]
    lines = [
        f"busy samples: {total} (" + ", ".join(f"{t}: {100 * c / total:.0f}%" for t, c in threads.most_common(4)) + ")"
    ]
    lines.append("own time (line, incl. C code it calls):")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in own.most_common(top)]
    lines.append("inclusive (eventstreams functions):")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in incl.most_common(top)]
    return lines


def _thread(frame: str) -> str:
    # py-spy --threads: first frame is "thread (0x...)" or "process ... thread"; keep the name if any
    if "sqlite" in frame:
        return "sqlite thread"
    if "pg" in frame:
        return "pg threads"
    return frame.split(" ")[0][:20] if frame.startswith("thread") else frame[:24]


def _short(frame: str, keep_line: bool = False) -> str:
    # py-spy raw frames: "function (path/to/file.py:line)"
    name, _, loc = frame.partition(" (")
    loc = loc.rstrip(")")
    file, _, lineno = loc.rpartition(":")
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file}:{lineno})" if keep_line else f"{name} ({file})"


def _idle(leaf: str) -> bool:
    """Threads parked in a queue/lock/selector wait (py-spy mostly drops idle threads already)."""
    loc = leaf.partition(" (")[2]
    return any(x in loc for x in ("threading.py", "queue.py", "selectors.py", "concurrent/futures/thread.py"))
