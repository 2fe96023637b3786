"""Test doubles for the Kinesis sink: a real moto server in a subprocess, and a
recording, fault-injecting HTTP proxy in front of it.

moto has no fault injection for Kinesis, so :class:`FaultProxy` provides it as
a faithful local double of the AWS wire behaviour:

* ``RecordFaults`` on a ``PutRecords`` call removes the chosen records from the
  request before moto sees it (so they are really *not* written) and splices
  ``{"ErrorCode", "ErrorMessage"}`` entries back into moto's answer at their
  positions, with ``FailedRecordCount`` set, exactly like a partially failed
  call on AWS.
* ``CallFault`` answers a whole call with an AWS error (JSON protocol for
  Kinesis, XML for STS's query protocol).

Every request is recorded (service, action, the signing access key and region
from the SigV4 ``Authorization`` header, and the decoded parameters).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import boto3

ACCOUNT = "123456789012"  # moto's default account for the test credentials
_CRED = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """``python -m moto.server`` on a free port, in a subprocess."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> MotoServer:
        for _ in range(3):  # the free port can be taken between the probe and the bind
            port = free_port()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    conn.request("GET", "/moto-api/")
                    if conn.getresponse().status < 500:
                        conn.close()
                        return self
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


# -- faults ------------------------------------------------------------------------------------


@dataclass
class CallFault:
    """Answer the whole call with an AWS error."""

    code: str
    status: int = 400
    message: str = "injected fault"


@dataclass
class RecordFaults:
    """Fail the records ``select(index, partition_key)`` picks with ``code``."""

    select: Callable[[int, str], bool]
    code: str = "ProvisionedThroughputExceededException"
    message: str = f"Rate exceeded for shard shardId-000000000000 in stream s under account {ACCOUNT}."


Fault = CallFault | RecordFaults


@dataclass
class Call:
    service: str
    action: str
    access_key: str | None
    region: str | None
    params: dict[str, Any]
    status: int = 0
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self.params.get("Records") or [])

    @property
    def record_bytes(self) -> int:
        return sum(len(base64.b64decode(r["Data"])) + len(r["PartitionKey"].encode()) for r in self.records)


class FaultProxy:
    """Recording, fault-injecting HTTP proxy in front of ``upstream`` (moto)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.split("//", 1)[1]
        self.calls: list[Call] = []
        #: per action ("PutRecords", "AssumeRole"), faults consumed one per call
        self.faults: dict[str, list[Fault]] = {}
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0  # seconds each PutRecords is held (concurrency tests)
        self.sockets: set[socket.socket] = set()
        # moto's shards are not thread-safe: concurrent PutRecords can draw the same
        # sequence number and overwrite each other's records. AWS has no such race, so
        # the double forwards one call at a time (the sender's concurrency is still
        # measured at the proxy, before this lock).
        self.upstream_lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with outer.lock:
                    outer.sockets.add(self.connection)

            def finish(self) -> None:
                with outer.lock:
                    outer.sockets.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                outer._handle(self)

            do_GET = do_POST

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop listening and drop kept-alive connections: clients now get "connection refused"."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            open_sockets = list(self.sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def inject(self, action: str, *faults: Fault) -> None:
        with self.lock:
            self.faults.setdefault(action, []).extend(faults)

    def of(self, action: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.action == action]

    # -- plumbing ------------------------------------------------------------------------------

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        auth = h.headers.get("Authorization") or ""
        m = _CRED.search(auth)
        access_key, region, service = (m.group(1), m.group(2), m.group(3)) if m else (None, None, "")
        target = h.headers.get("X-Amz-Target") or ""
        params: dict[str, Any]
        if target:
            action = target.rsplit(".", 1)[-1]
            params = json.loads(body or b"{}")
        else:
            form = parse_qs(body.decode("utf-8", "replace"))
            params = {k: v[0] for k, v in form.items()}
            action = str(params.get("Action", ""))
        call = Call(service, action, access_key, region, params)
        with self.lock:
            self.calls.append(call)
            queue = self.faults.get(action) or []
            fault = queue.pop(0) if queue else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if action == "PutRecords" and self.delay:
                time.sleep(self.delay)
            if isinstance(fault, CallFault):
                self._error(h, call, fault, json_protocol=bool(target))
            elif isinstance(fault, RecordFaults) and action == "PutRecords":
                self._partial(h, call, body, fault)
            else:
                status, headers, payload = self._forward(h, body)
                self._reply(h, call, status, headers, payload)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _forward(self, h: http.server.BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        with self.upstream_lock:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(h.command, h.path, body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP], resp.read()
            conn.close()
            return answer

    def _reply(
        self,
        h: http.server.BaseHTTPRequestHandler,
        call: Call,
        status: int,
        headers: list[tuple[str, str]],
        payload: bytes,
    ) -> None:
        call.status = status
        with contextlib.suppress(ValueError):
            doc = json.loads(payload) if payload[:1] == b"{" else None
            if isinstance(doc, dict):
                call.response = doc
        try:
            h.send_response(status)
            for k, v in headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except OSError:
            pass

    def _error(self, h: http.server.BaseHTTPRequestHandler, call: Call, fault: CallFault, json_protocol: bool) -> None:
        if json_protocol:
            payload = json.dumps({"__type": fault.code, "message": fault.message}).encode()
            ctype = "application/x-amz-json-1.1"
        else:
            payload = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                f"<Code>{fault.code}</Code><Message>{fault.message}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            ).encode()
            ctype = "text/xml"
        self._reply(h, call, fault.status, [("Content-Type", ctype), ("x-amzn-RequestId", str(uuid.uuid4()))], payload)

    def _partial(self, h: http.server.BaseHTTPRequestHandler, call: Call, body: bytes, fault: RecordFaults) -> None:
        request = json.loads(body)
        records = request["Records"]
        failed = {i for i, r in enumerate(records) if fault.select(i, r["PartitionKey"])}
        kept = [r for i, r in enumerate(records) if i not in failed]
        results: list[dict[str, Any]] = []
        headers: list[tuple[str, str]] = [("Content-Type", "application/x-amz-json-1.1")]
        if kept:
            status, headers, payload = self._forward_json(h, {**request, "Records": kept})
            if status != 200:
                self._reply(h, call, status, headers, payload)
                return
            results = json.loads(payload)["Records"]
        merged: list[dict[str, Any]] = []
        ok = iter(results)
        for i in range(len(records)):
            merged.append({"ErrorCode": fault.code, "ErrorMessage": fault.message} if i in failed else next(ok))
        answer = {"FailedRecordCount": len(failed), "Records": merged}
        self._reply(h, call, 200, headers, json.dumps(answer).encode())

    def _forward_json(
        self, h: http.server.BaseHTTPRequestHandler, doc: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        # moto does not check SigV4 signatures, so the rewritten body is accepted as signed
        return self._forward(h, json.dumps(doc).encode())


# -- reading a stream back ---------------------------------------------------------------------


def aws_client(service: str, endpoint: str, region: str = "us-east-1", **creds: Any) -> Any:
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint, **creds)


def read_stream(kinesis: Any, arn: str) -> list[dict[str, Any]]:
    """Every record of every shard (TRIM_HORIZON), shard by shard, in sequence order."""
    out: list[dict[str, Any]] = []
    shards = kinesis.list_shards(StreamARN=arn)["Shards"]
    for shard in shards:
        it = kinesis.get_shard_iterator(StreamARN=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        iterator = it["ShardIterator"]
        while iterator:
            page = kinesis.get_records(StreamARN=arn, ShardIterator=iterator, Limit=10000)
            out.extend({"shard": shard["ShardId"], **r} for r in page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return out


def create_stream(kinesis: Any, name: str | None = None, shards: int = 2) -> str:
    name = name or f"es-{uuid.uuid4().hex[:12]}"
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return str(kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"])


@contextlib.contextmanager
def aws_test_environment() -> Iterator[None]:
    """Fake default credentials and no local AWS configuration, for the test process."""
    with _patched_env(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        },
        remove=(
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_STS",
            "AWS_ENDPOINT_URL_KINESIS",
        ),
    ):
        yield


@contextlib.contextmanager
def _patched_env(values: dict[str, str], remove: tuple[str, ...]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (*values, *remove)}
    os.environ.update(values)
    for k in remove:
        os.environ.pop(k, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
