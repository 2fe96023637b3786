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
    sqlite_synchronous: str = "NORMAL"
    pg_pool_size: int = 8

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
            sqlite_synchronous=(g("EVENTSTREAMS_SQLITE_SYNCHRONOUS") or "NORMAL").upper(),
            pg_pool_size=_int(g("EVENTSTREAMS_PG_POOL_SIZE"), cls.pg_pool_size),
        )

    def public_base_url(self) -> str:
        """URL used in ``url``/``links``; defaults to the listening address."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        return f"http://{host}:{self.port}"
