"""``eventstreams demo``: the whole path on one machine, in one command.

Starts ``eventstreams serve`` (a child process, the sandbox mounted, on a temp data dir) and a sample webhook
receiver (aiohttp, in this process), then wires them through the HTTP API as a user would: a tracking source,
a ``twilio-sms`` sink texting through the mounted sandbox, and a webhook sink subscribed to tracking and
messaging events. It sends track calls and sandbox messages and shows what the receiver gets, live. Ctrl-C
(or SIGTERM) stops the sender, the receiver and the server, and removes the temp dir."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .client import Client, Credentials

TRACKING = "com.segment.tracking.track"
MESSAGING = [f"com.twilio.messaging.message.{s}" for s in ("queued", "sent", "delivered", "undelivered", "failed")]
DEMO_PHONE, SANDBOX_FROM = "+14155550100", "+15005550006"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """The sample webhook receiver: keeps the latest events and signals each arrival."""

    def __init__(self) -> None:
        self.latest: deque[dict[str, Any]] = deque(maxlen=15)
        self.count = 0
        self.arrived = asyncio.Event()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        for e in body if isinstance(body, list) else [body]:
            data = e.get("data") or {}
            what = data.get("event") or data.get("status") or data.get("messageStatus") or ""
            self.latest.appendleft({"time": time.strftime("%H:%M:%S"), "type": e.get("type", ""), "what": what,
                                    "id": e.get("id", "")})  # fmt: skip
            self.count += 1
        self.arrived.set()
        return web.Response(status=200)

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/events", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _serve(port: int, data: Path, sid: str, token: str) -> subprocess.Popen[bytes]:
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "EVENTSTREAMS_DATABASE_URL": f"sqlite:///{data}/eventstreams.db",
           "EVENTSTREAMS_DATA_DIR": str(data), "EVENTSTREAMS_SANDBOX": "true", "EVENTSTREAMS_ACCOUNT_SID": sid,
           "EVENTSTREAMS_AUTH_TOKEN": token, "EVENTSTREAMS_BASE_URL": url,
           "EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS": "true",
           # this demo's own settings, whatever the shell or a ./eventstreams.toml says: loopback only, delivering
           "EVENTSTREAMS_CONFIG": "", "EVENTSTREAMS_HOST": "127.0.0.1", "EVENTSTREAMS_DELIVERY": "true"}  # fmt: skip
    log = (data / "serve.log").open("ab")
    # its own process group: the terminal's Ctrl-C reaches the demo, which then stops the server in order
    return subprocess.Popen([sys.executable, "-m", "eventstreams.cli.main", "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


async def _healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"eventstreams serve exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy in {timeout:.0f} s")


def _wire(c: Client, receiver_url: str, url: str) -> dict[str, Any]:
    """What a user would do with the CLI or any Twilio client: a source, two sinks, their subscriptions."""
    sid, token = c.creds.account_sid, c.creds.auth_token
    source = c.request("POST", "/v1/Sources", data={"Name": "demo-web"})
    hook = c.request("POST", "/v1/Sinks", data={"SinkType": "webhook", "Description": "demo receiver",
                     "SinkConfiguration": json.dumps({"destination": receiver_url, "method": "POST"})})  # fmt: skip
    sms = c.request("POST", "/v1/Sinks", data={"SinkType": "twilio-sms", "Description": "demo texts",
                    "SinkConfiguration": json.dumps({
                        "account_sid": sid, "auth_token": token, "from": SANDBOX_FROM, "base_url": url,
                        "per_profile_per_hour": 0,
                        "mappings": [{"event": "Demo Signup",
                                      "body": "Welcome, {{ traits.first_name | default: 'there' }}!"}]})})  # fmt: skip
    types = [json.dumps({"type": t}) for t in [TRACKING, *MESSAGING]]
    c.request("POST", "/v1/Subscriptions", data={"SinkSid": hook["sid"], "Description": "demo: all", "Types": types})
    c.request("POST", "/v1/Subscriptions", data={"SinkSid": sms["sid"], "Description": "demo: texts",
                                                 "Types": [json.dumps({"type": TRACKING})]})  # fmt: skip
    return {"write_key": source["write_key"], "webhook": hook["sid"], "sms": sms["sid"]}


async def _send(url: str, sid: str, token: str, write_key: str, rounds: int | None) -> None:
    """A track call a second; every third round a message straight through the sandbox too."""
    names = ["Ada", "Grace", "Linus", "Barbara", "Ken"]
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        n = 0
        while rounds is None or n < rounds:
            user = names[n % len(names)]
            await http.post("/v1/track", auth=(write_key, ""), json={
                "userId": f"demo-{user.lower()}", "event": "Demo Signup", "properties": {"phone": DEMO_PHONE},
                "context": {"traits": {"first_name": user}}})  # fmt: skip
            if n % 3 == 2:
                await http.post(f"/2010-04-01/Accounts/{sid}/Messages.json", auth=(sid, token),
                                data={"To": DEMO_PHONE, "From": SANDBOX_FROM, "Body": f"Hello {user} (sandbox)"})
            n += 1
            await asyncio.sleep(1)


def _table(r: Receiver) -> Table:
    t = Table("time", "type", "what", "id", title=f"events at the sample receiver: {r.count}")
    for e in r.latest:
        t.add_row(e["time"], e["type"], str(e["what"]), e["id"])
    return t


async def _main(port: int, data: Path, rounds: int | None, console: Console) -> None:
    sid, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    receiver, rport = Receiver(), _free_port()
    await receiver.start(rport)
    proc = _serve(port, data, sid, token)
    sender: asyncio.Task[None] | None = None
    try:
        console.print(f"starting eventstreams on {url} (data in {data}) …")
        await _healthy(url, proc)
        with Client(Credentials(url, sid, token)) as c:
            wired = await asyncio.to_thread(_wire, c, f"http://127.0.0.1:{rport}/events", url)
        console.print(f"console:   {url}/console/   (sign in with {sid} / {token})")
        console.print(f"CLI:       EVENTSTREAMS_URL={url} EVENTSTREAMS_ACCOUNT_SID={sid} "
                      f"EVENTSTREAMS_AUTH_TOKEN={token} eventstreams sinks list")  # fmt: skip
        console.print(f"wired:     tracking source (write key {wired['write_key']}), webhook sink {wired['webhook']}, "
                      f"SMS sink {wired['sms']}; Ctrl-C stops it all")  # fmt: skip
        sender = asyncio.create_task(_send(url, sid, token, wired["write_key"], rounds))
        await receiver.arrived.wait()
        console.print("events flowing", style="bold green")
        if console.is_terminal:
            with Live(_table(receiver), console=console, refresh_per_second=4) as live:
                while True:
                    receiver.arrived.clear()
                    await receiver.arrived.wait()
                    live.update(_table(receiver))
        while True:  # not a terminal: a line per arrival
            receiver.arrived.clear()
            await receiver.arrived.wait()
            if receiver.latest:
                e = receiver.latest[0]
                console.print(f"{e['time']}  {e['type']}  {e['what']}  {e['id']}")
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await sender
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        await receiver.stop()


def run_demo(port: int | None, data_dir: str | None, rounds: int | None) -> int:
    console = Console(soft_wrap=True)
    data = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="eventstreams-demo-"))
    data.mkdir(parents=True, exist_ok=True)

    async def go() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await _main(port or _free_port(), data, rounds, console)

    try:
        asyncio.run(go())
    except RuntimeError as exc:
        console.print(f"[red]demo failed: {exc}[/red] (server log: {data / 'serve.log'})")
        return 1
    finally:
        if not data_dir:
            shutil.rmtree(data, ignore_errors=True)
    console.print("demo stopped")
    return 0
