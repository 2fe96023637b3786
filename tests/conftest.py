"""Shared fixtures: a real server (uvicorn on a free port) per storage
backend, on SQLite and on a real PostgreSQL.

PostgreSQL comes from EVENTSTREAMS_TEST_PG_URL (default: the local
cluster, postgres@127.0.0.1:5432). A test that cannot reach it fails; it
never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import uvicorn
from twilio.rest import Client

from eventstreams.api.app import create_app
from eventstreams.config import Settings

T = TypeVar("T")
PG_ADMIN = os.environ.get("EVENTSTREAMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgres"]


def pg_database(name: str) -> str:
    """Create an empty database ``name`` and return its URL."""
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(backend: str, tmp: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{tmp}/eventstreams.db", None
    name = f"es_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    return pg_database(name), name


@dataclass
class Server:
    url: str
    app: Any
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def services(self) -> Any:
        return self.app.state.services

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's event loop (the store lives there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.app.state.loop).result(30)

    def new_account(self, name: str = "Test", parent: str | None = None) -> tuple[str, str]:
        row, token = self.call(self.services.accounts.create(name, parent_sid=parent))
        return row.sid, token

    def client(self, sid: str, token: str, account_sid: str | None = None) -> Client:
        c = Client(sid, token, account_sid)
        c.events.base_url = self.url
        c.api.base_url = self.url
        return c

    def settled(self, sink_sid: str, timeout: float = 15.0) -> None:
        """Wait until the sink has no delivery left to make (none due, retrying or leased): from then
        on nothing more can reach its receiver, so "nothing else arrived" can be asserted at once."""
        deadline = time.monotonic() + timeout
        while self.call(self.services.store.deliveries.next_due(sink_sid)) is not None:
            if time.monotonic() > deadline:
                raise AssertionError(f"sink {sink_sid} still has deliveries pending")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_server(settings: Settings) -> Server:
    app = create_app(settings, announce=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    return Server(url, app, settings, server, thread)


def make_settings(url: str, tmp: Path, **overrides: Any) -> Settings:
    base = Settings(
        database_url=url,
        data_dir=tmp,
        allow_private_destinations=True,
        secret_key=None,
        # Short delays so retries run in milliseconds here. The retry window is wide enough that a
        # retry which must succeed does so on a loaded CI machine; tests of the window itself use
        # ``short_window_server`` (3 s standing in for Twilio's 4 h).
        retry_first_delay=0.05,
        retry_max_delay=0.4,
        retry_max_age=60.0,
        delivery_timeout=1.0,
        poll_interval=0.5,  # the fallback only: wake-ups and due times drive delivery
        warehouse_url=f"duckdb:///{tmp}/warehouse.duckdb",
        # no scheduled syncs in shared test servers: a source some test (or a fuzz) leaves enabled must not
        # go on syncing in the background of later tests; the scheduler's own tests turn it on
        source_syncs=False,
        # in-process servers deliver in their own process; the delivery process is tested through real
        # `serve` processes (tests/e2e)
        delivery_process=False,
    )
    return Settings(**{**base.__dict__, **overrides})


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def own_server(backend: str, tmp: Path, **overrides: Any) -> Iterator[Server]:
    """A server of its own on ``backend`` (a fresh SQLite file or PostgreSQL database), for tests
    that need settings of their own or must not share state."""
    url, pg_name = database_url(backend, tmp)
    srv = start_server(make_settings(url, tmp, **overrides))
    # base_url must be the real port, known only after start
    object.__setattr__(srv.services, "settings", Settings(**{**srv.settings.__dict__, "base_url": srv.url}))
    srv.services.control.settings = srv.services.settings
    try:
        yield srv
    finally:
        srv.stop()
        if pg_name:
            drop_pg_database(pg_name)


def _session_server(backend: str, tmp_path_factory: pytest.TempPathFactory, **overrides: Any) -> Iterator[Server]:
    with own_server(backend, tmp_path_factory.mktemp(backend), **overrides) as srv:
        yield srv


@pytest.fixture(scope="session")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _session_server(backend, tmp_path_factory)


@pytest.fixture(scope="session")
def short_window_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose retry window is 3 s, for tests of what the window's end does."""
    yield from _session_server(backend, tmp_path_factory, retry_max_age=3.0)


@pytest.fixture(scope="session")
def sandbox_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the Twilio sandbox mounted (its status clock running, 50 ms per step)."""
    yield from _session_server(backend, tmp_path_factory, sandbox=True, sandbox_step_seconds=0.05)


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL on ``backend``, for tests that run eventstreams processes."""
    url, pg_name = database_url(backend, tmp_path)
    yield url
    if pg_name:
        drop_pg_database(pg_name)


@pytest.fixture
def account(server: Server) -> tuple[str, str]:
    return server.new_account()


@pytest.fixture
def client(server: Server, account: tuple[str, str]) -> Client:
    return server.client(*account)


def twilio_error(fn: Any) -> tuple[int, int | None]:
    """Call ``fn`` expecting the twilio library to raise; return (status, code).

    Fetch/create raise TwilioRestException; list pages raise a plain
    TwilioException carrying the response.
    """
    import json as _json

    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        fn()
    except TwilioRestException as exc:
        return exc.status, exc.code
    except TwilioException as exc:
        response = exc.args[1]
        body = _json.loads(response.text)
        return int(response.status_code), body.get("code")
    raise AssertionError("expected the twilio client to raise")


class Receiver:
    """A real HTTP server recording what sinks send. ``plan[path]`` is a list of
    (status, delay_seconds) or (status, delay_seconds, headers) consumed per request; when
    empty, 200 at once. Each request records its arrival time (``at``, monotonic)."""

    def __init__(self) -> None:
        import http.server
        import threading as _t

        self.requests: list[dict[str, Any]] = []
        self.connections: set[Any] = set()  # open keep-alive connections: closed with the receiver
        self.plan: dict[str, list[tuple[int, float] | tuple[int, float, dict[str, str]]]] = {}
        self.lock = _t.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with outer.lock:
                    outer.connections.add(self.connection)

            def finish(self) -> None:
                with outer.lock:
                    outer.connections.discard(self.connection)
                super().finish()

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                path = self.path.split("?")[0]
                parsed: list[Any] = []
                if self.command == "POST" and body:
                    try:
                        doc = json.loads(body)
                        parsed = doc if isinstance(doc, list) else [doc]
                    except ValueError:
                        parsed = []
                with outer.lock:
                    steps = outer.plan.get(path) or []
                    step = steps.pop(0) if steps else (200, 0.0)
                    status, delay = step[0], step[1]
                    extra: dict[str, str] = step[2] if len(step) > 2 else {}  # type: ignore[misc]
                    outer.requests.append(
                        {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body,
                         "status": status, "events": parsed, "at": time.monotonic()}
                    )  # fmt: skip
                if delay:
                    time.sleep(delay)
                payload = b"ok" if status < 400 else b"nope"
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            do_POST = _handle
            do_GET = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = _t.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def events(self, path: str | None = None, status: int | None = 200) -> list[dict[str, Any]]:
        """Every CloudEvent received (arrays flattened), optionally by path and response status."""
        out: list[dict[str, Any]] = []
        with self.lock:
            reqs = list(self.requests)
        for r in reqs:
            if path is not None and r["path"].split("?")[0] != path:
                continue
            if status is not None and r["status"] != status:
                continue
            out.extend(r["events"])
        return out

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError("condition not met in time")

    def close(self) -> None:
        """Gone as a stopped process is: the port refuses connections and the open ones are closed (a
        stopped listener alone would go on answering on keep-alive connections)."""
        import socket as _socket

        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            open_ones = list(self.connections)
        for conn in open_ones:
            try:
                conn.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
