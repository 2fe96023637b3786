"""Settings, read once from ``EVENTSTREAMS_*`` environment variables.

The table in README.md lists every variable; keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _float(value: str | None, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    return float(value)


def _int(value: str | None, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    return int(value)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./data/eventstreams.db"
    account_sid: str | None = None
    auth_token: str | None = None
    base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("./data"))
    secret_key: str | None = None
    max_body_bytes: int = 1_048_576
    one_subscription_per_sink: bool = True
    allow_private_destinations: bool = False
    # A Kinesis sink's own endpoint_url receives STS calls signed with the operator's credentials.
    allow_sink_endpoint_url: bool = False
    sqlite_synchronous: str = "NORMAL"
    pg_pool_size: int = 8
    delivery: bool = True
    dedupe_window_s: float = 86400.0
    publish_max_events: int = 1000
    publish_max_bytes: int = 5 * 1024 * 1024
    retry_first_delay: float = 1.0
    retry_max_delay: float = 300.0
    retry_max_age: float = 4 * 3600.0
    delivery_timeout: float = 5.0
    sink_max_in_flight: int = 32
    log_retention_s: float = 7 * 86400.0
    error_retention_s: float = 23 * 86400.0
    event_retention_s: float = 7 * 86400.0
    alert_webhook_url: str | None = None
    poll_interval: float = 1.0
    lease_s: float = 60.0
    aws_endpoint_url: str | None = None
    segment_endpoint: str = "https://api.segment.io"
    metrics_token: str | None = None
    # The Twilio sandbox (docs/sandbox.md): mounted in `serve` when true; `eventstreams sandbox` forces it.
    sandbox: bool = False
    sandbox_database_url: str = "sqlite:///./data/sandbox.db"
    sandbox_port: int = 8090
    sandbox_step_seconds: float = 1.0
    sandbox_failure_ratio: float = 0.0
    sandbox_outcomes: str = ""
    sandbox_publish_events: bool = True
    tracking_dedupe_s: float = 86400.0
    # Profiles (docs/segment.md): national phone numbers are read in this region; per-type identifier limits.
    profiles_default_region: str = "US"
    profiles_limits: str = "user_id=1,email=5,phone=5,anonymous_id=1000"
    # Twilio object sources (docs/warehouse.md): scheduled syncs run in serve/worker when true, this many at once.
    source_syncs: bool = True
    source_sync_concurrency: int = 2
    # The warehouse (docs/warehouse.md): duckdb:///path, postgresql://…, or dlt+<destination>://…
    warehouse_url: str = "duckdb:///./data/warehouse.duckdb"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        g = e.get
        return cls(
            database_url=g("EVENTSTREAMS_DATABASE_URL") or cls.database_url,
            account_sid=g("EVENTSTREAMS_ACCOUNT_SID") or None,
            auth_token=g("EVENTSTREAMS_AUTH_TOKEN") or None,
            base_url=(g("EVENTSTREAMS_BASE_URL") or None),
            host=g("EVENTSTREAMS_HOST") or cls.host,
            port=_int(g("EVENTSTREAMS_PORT"), cls.port),
            data_dir=Path(g("EVENTSTREAMS_DATA_DIR") or "./data"),
            secret_key=g("EVENTSTREAMS_SECRET_KEY") or None,
            max_body_bytes=_int(g("EVENTSTREAMS_MAX_BODY_BYTES"), cls.max_body_bytes),
            one_subscription_per_sink=_bool(g("EVENTSTREAMS_ONE_SUBSCRIPTION_PER_SINK"), True),
            allow_private_destinations=_bool(g("EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS"), False),
            allow_sink_endpoint_url=_bool(g("EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL"), False),
            sqlite_synchronous=(g("EVENTSTREAMS_SQLITE_SYNCHRONOUS") or "NORMAL").upper(),
            pg_pool_size=_int(g("EVENTSTREAMS_PG_POOL_SIZE"), cls.pg_pool_size),
            delivery=_bool(g("EVENTSTREAMS_DELIVERY"), True),
            dedupe_window_s=_float(g("EVENTSTREAMS_DEDUPE_WINDOW_SECONDS"), cls.dedupe_window_s),
            publish_max_events=_int(g("EVENTSTREAMS_PUBLISH_MAX_EVENTS"), cls.publish_max_events),
            publish_max_bytes=_int(g("EVENTSTREAMS_PUBLISH_MAX_BYTES"), cls.publish_max_bytes),
            retry_first_delay=_float(g("EVENTSTREAMS_RETRY_FIRST_DELAY"), cls.retry_first_delay),
            retry_max_delay=_float(g("EVENTSTREAMS_RETRY_MAX_DELAY"), cls.retry_max_delay),
            retry_max_age=_float(g("EVENTSTREAMS_RETRY_MAX_AGE"), cls.retry_max_age),
            delivery_timeout=_float(g("EVENTSTREAMS_DELIVERY_TIMEOUT"), cls.delivery_timeout),
            sink_max_in_flight=_int(g("EVENTSTREAMS_SINK_MAX_IN_FLIGHT"), cls.sink_max_in_flight),
            log_retention_s=_float(g("EVENTSTREAMS_LOG_RETENTION_SECONDS"), cls.log_retention_s),
            error_retention_s=_float(g("EVENTSTREAMS_ERROR_RETENTION_SECONDS"), cls.error_retention_s),
            event_retention_s=_float(g("EVENTSTREAMS_EVENT_RETENTION_SECONDS"), cls.event_retention_s),
            alert_webhook_url=g("EVENTSTREAMS_ALERT_WEBHOOK_URL") or None,
            poll_interval=_float(g("EVENTSTREAMS_POLL_INTERVAL"), cls.poll_interval),
            lease_s=_float(g("EVENTSTREAMS_LEASE_SECONDS"), cls.lease_s),
            aws_endpoint_url=g("EVENTSTREAMS_AWS_ENDPOINT_URL") or None,
            segment_endpoint=g("EVENTSTREAMS_SEGMENT_ENDPOINT") or cls.segment_endpoint,
            metrics_token=g("EVENTSTREAMS_METRICS_TOKEN") or None,
            sandbox=_bool(g("EVENTSTREAMS_SANDBOX"), False),
            sandbox_database_url=g("EVENTSTREAMS_SANDBOX_DATABASE_URL") or cls.sandbox_database_url,
            sandbox_port=_int(g("EVENTSTREAMS_SANDBOX_PORT"), cls.sandbox_port),
            sandbox_step_seconds=_float(g("EVENTSTREAMS_SANDBOX_STEP_SECONDS"), cls.sandbox_step_seconds),
            sandbox_failure_ratio=_float(g("EVENTSTREAMS_SANDBOX_FAILURE_RATIO"), cls.sandbox_failure_ratio),
            sandbox_outcomes=g("EVENTSTREAMS_SANDBOX_OUTCOMES") or "",
            sandbox_publish_events=_bool(g("EVENTSTREAMS_SANDBOX_PUBLISH_EVENTS"), True),
            tracking_dedupe_s=_float(g("EVENTSTREAMS_TRACKING_DEDUPE_SECONDS"), cls.tracking_dedupe_s),
            profiles_default_region=(g("EVENTSTREAMS_PROFILES_DEFAULT_REGION") or cls.profiles_default_region).upper(),
            profiles_limits=g("EVENTSTREAMS_PROFILES_LIMITS") or cls.profiles_limits,
            source_syncs=_bool(g("EVENTSTREAMS_SOURCE_SYNCS"), True),
            source_sync_concurrency=_int(g("EVENTSTREAMS_SOURCE_SYNC_CONCURRENCY"), cls.source_sync_concurrency),
            warehouse_url=g("EVENTSTREAMS_WAREHOUSE_URL") or cls.warehouse_url,
        )

    def public_base_url(self) -> str:
        """URL used in ``url``/``links``; defaults to the listening address."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        return f"http://{host}:{self.port}"
