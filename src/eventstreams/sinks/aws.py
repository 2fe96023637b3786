"""The one boto3 client policy of the AWS sinks (Kinesis today).

* One process-wide boto3 session: it caches the loaded service models, so a
  sink's first client costs milliseconds instead of ~0.2 s. Sessions are not
  thread-safe while creating clients, hence :data:`SESSION_LOCK`; clients are.
  boto3/botocore are imported on first use, in a worker thread (importing
  botocore takes about a second).
* botocore's own retries are off (one attempt per call: the dispatcher's
  backoff and throttle decide); connect timeout = the sink timeout, read
  timeout at least :data:`MIN_READ_TIMEOUT` (a 5 MiB upload can take a while).
* A **tenant-chosen endpoint** (a sink's own ``endpoint_url``, accepted only
  when the operator sets ``EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL``) is
  *pinned*: :class:`Pin` resolves its host and checks every address with the
  SSRF policy right before each call, and the client's connections go to those
  addresses only (the host name stays in ``Host`` and TLS SNI/verification),
  never through proxy environment variables. The operator's own
  ``EVENTSTREAMS_AWS_ENDPOINT_URL`` and AWS's endpoints are trusted as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from ..netpolicy import Resolver, resolve_checked_sync

__all__ = ["MIN_READ_TIMEOUT", "SESSION_LOCK", "Pin", "available_regions", "make_client"]

#: floor of the read timeout (seconds)
MIN_READ_TIMEOUT = 10.0

_SESSION: Any = None
SESSION_LOCK = threading.Lock()
_REGIONS: dict[tuple[str, str], frozenset[str]] = {}


def _session() -> Any:
    """The shared boto3 session; call with :data:`SESSION_LOCK` held."""
    global _SESSION
    import boto3  # here, in a worker thread: importing botocore takes about a second

    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def available_regions(service: str, partition: str) -> frozenset[str]:
    """Regions botocore lists for ``service`` in ``partition`` (blocking; cached)."""
    with SESSION_LOCK:
        known = _REGIONS.get((service, partition))
        if known is None:
            known = frozenset(_session().get_available_regions(service, partition_name=partition))
            _REGIONS[(service, partition)] = known
    return known


class Pin:
    """The checked addresses of a tenant-chosen endpoint's host (see the module doc)."""

    def __init__(self, endpoint_url: str, allow_private: bool, resolver: Resolver | None = None) -> None:
        parts = urlsplit(endpoint_url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        self._allow_private = allow_private
        self._resolver = resolver
        self.addresses: list[str] = []

    def refresh(self) -> list[str]:
        """Resolve and check now (blocking); raises ``DestinationRefused`` or ``OSError``."""
        self.addresses = resolve_checked_sync(self.host, self.port, self._allow_private, resolver=self._resolver)
        return self.addresses


def _pinned_pools(pin: Pin) -> dict[str, Any]:
    from botocore.awsrequest import (
        AWSHTTPConnection,
        AWSHTTPConnectionPool,
        AWSHTTPSConnection,
        AWSHTTPSConnectionPool,
    )

    def new_conn(self: Any, base: Callable[[Any], Any]) -> Any:
        addresses = pin.addresses or pin.refresh()
        name, last = self._dns_host, None
        for ip in addresses:
            self._dns_host = ip  # connect here; self.host (Host header, SNI) keeps the name
            try:
                return base(self)
            except OSError as exc:
                last = exc
            finally:
                self._dns_host = name
        raise last or OSError(f"no address for {pin.host!r}")

    class PinnedHTTP(AWSHTTPConnection):  # type: ignore[misc]
        def _new_conn(self) -> Any:
            return new_conn(self, AWSHTTPConnection._new_conn)

    class PinnedHTTPS(AWSHTTPSConnection):  # type: ignore[misc]
        def _new_conn(self) -> Any:
            return new_conn(self, AWSHTTPSConnection._new_conn)

    class PinnedHTTPPool(AWSHTTPConnectionPool):  # type: ignore[misc]
        ConnectionCls = PinnedHTTP

    class PinnedHTTPSPool(AWSHTTPSConnectionPool):  # type: ignore[misc]
        ConnectionCls = PinnedHTTPS

    return {"http": PinnedHTTPPool, "https": PinnedHTTPSPool}


def make_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None,
    timeout: float,
    pool: int,
    pin: Pin | None = None,
    **credentials: Any,
) -> Any:
    """A boto3 client under the policy above (blocking: call it in a worker thread)."""
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout,
        read_timeout=max(timeout, MIN_READ_TIMEOUT),
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=pool,
        user_agent_extra=f"eventstreams/{__version__}",
        # a tenant-chosen endpoint must not go through an environment proxy (it would skip the pin)
        proxies={} if pin is not None else None,
    )
    with SESSION_LOCK:
        client = _session().client(service, region_name=region, endpoint_url=endpoint_url, config=config, **credentials)
    if pin is not None:
        # botocore has no resolver hook: swap the connection classes of this client's pool manager
        http = client._endpoint.http_session
        pools = _pinned_pools(pin)
        http._pool_classes_by_scheme = pools
        http._manager.pool_classes_by_scheme = pools
    return client
