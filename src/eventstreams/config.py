"""Settings: environment variables ``EVENTSTREAMS_*``, over an optional TOML file, over defaults.

Every field of :class:`Settings` carries its environment variable, description and (when the
value alone would mislead) the default as shown, as ``dataclasses.field`` metadata. Reading the
environment, reading the file and the table in README.md (``eventstreams settings --markdown``,
checked by tests/unit/test_settings.py) all come from that one place, so they cannot drift.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any

PREFIX = "EVENTSTREAMS_"
CONFIG_ENV = "EVENTSTREAMS_CONFIG"
DEFAULT_CONFIG_FILE = Path("eventstreams.toml")
_TRUE = {"1", "true", "yes", "on"}
DELIVERY_INDEX_ENV = "EVENTSTREAMS_DELIVERY_INDEX"  # which of serve's delivery processes a child is (not a setting)


class ConfigError(ValueError):
    """A setting that cannot be read: names the variable or file key and what was wrong."""


def setting(default: Any, env: str, doc: str, *, shown: str | None = None, upper: bool = False) -> Any:
    """A settings field: ``env`` its variable, ``doc`` its description, ``shown`` the default as the
    table prints it (when the value alone would mislead), ``upper``: the value is upper-cased."""
    assert env.startswith(PREFIX), env
    return field(default=default, metadata={"env": env, "doc": doc, "shown": shown, "upper": upper})


def file_key(env: str) -> str:
    """The config file's key for a variable: ``EVENTSTREAMS_DATABASE_URL`` → ``database_url``."""
    return env.removeprefix(PREFIX).lower()


@dataclass(frozen=True)
class Settings:
    database_url: str = setting(
        "sqlite:///./data/eventstreams.db", "EVENTSTREAMS_DATABASE_URL",
        "Store. `postgresql://user@host:5432/db` selects PostgreSQL (many processes, many machines).",
    )  # fmt: skip
    account_sid: str | None = setting(
        None, "EVENTSTREAMS_ACCOUNT_SID", "First account's SID (`AC` + 32 hex), created on start when absent."
    )
    auth_token: str | None = setting(
        None, "EVENTSTREAMS_AUTH_TOKEN",
        "First account's auth token (required with the SID; the environment wins over a stored token). Without"
        " both, a first account is generated once and its credentials printed once.",
    )  # fmt: skip
    base_url: str | None = setting(
        None, "EVENTSTREAMS_BASE_URL", "Public URL used in `url`, `links`, `raw` and paging URLs.",
        shown="`http://<host>:<port>`",
    )  # fmt: skip
    host: str = setting("127.0.0.1", "EVENTSTREAMS_HOST", "Listen address (`serve --host` overrides).")
    port: int = setting(8080, "EVENTSTREAMS_PORT", "Listen port (`serve --port` overrides).")
    data_dir: Path = setting(  # noqa: RUF009  (a Path is immutable: one shared default is safe)
        Path("./data"), "EVENTSTREAMS_DATA_DIR", "Where the generated secret key lives (`secret.key`)."
    )
    secret_key: str | None = setting(
        None, "EVENTSTREAMS_SECRET_KEY",
        "Fernet key encrypting secrets at rest (sink configurations, auth tokens used for signing). **Set the same"
        " value on every node** when several processes share PostgreSQL.",
        shown="generated into `DATA_DIR/secret.key`",
    )  # fmt: skip
    max_body_bytes: int = setting(
        1_048_576, "EVENTSTREAMS_MAX_BODY_BYTES", "Largest control-plane request body (413 above)."
    )
    one_subscription_per_sink: bool = setting(
        True,
        "EVENTSTREAMS_ONE_SUBSCRIPTION_PER_SINK",
        "Twilio's current rule: a sink carries at most one subscription.",
    )
    allow_private_destinations: bool = setting(
        False, "EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS",
        "Allow sinks aimed at loopback, private, link-local and cloud-metadata addresses (the one SSRF switch;"
        " docs/delivery.md).",
        shown="`false` (`make run` sets `true`)",
    )  # fmt: skip
    # A Kinesis sink's own endpoint_url receives STS calls signed with the operator's credentials.
    allow_sink_endpoint_url: bool = setting(
        False, "EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL",
        "Accept a Kinesis sink's own `endpoint_url`. It receives STS calls signed with this server's AWS"
        " credentials, so leave it off unless every tenant is trusted (test setups); prefer"
        " `EVENTSTREAMS_AWS_ENDPOINT_URL`.",
    )  # fmt: skip
    sqlite_synchronous: str = setting(
        "NORMAL", "EVENTSTREAMS_SQLITE_SYNCHRONOUS",
        "`NORMAL` survives process crashes (kill -9) under WAL; `FULL` also survives power loss.", upper=True,
    )  # fmt: skip
    pg_pool_size: int = setting(8, "EVENTSTREAMS_PG_POOL_SIZE", "PostgreSQL connections per process.")
    delivery: bool = setting(
        True, "EVENTSTREAMS_DELIVERY",
        "Run the delivery dispatcher inside `serve` (set `false` for API-only nodes; `eventstreams worker` delivers"
        " without an API).",
    )  # fmt: skip
    delivery_process: bool = setting(
        sys.platform.startswith("linux"), "EVENTSTREAMS_DELIVERY_PROCESS",
        "Run `serve`'s dispatcher in a process of its own (restarted if it dies), so publishing and delivering"
        " each have a core; false: inside the serve process (docs/operations.md). On by default on Linux only"
        " (elsewhere SQLite's wake-ups would be polls). PostgreSQL also scales with `eventstreams worker`.",
    )  # fmt: skip
    delivery_processes: int = setting(
        1, "EVENTSTREAMS_DELIVERY_PROCESSES",
        "With `EVENTSTREAMS_DELIVERY_PROCESS`, how many delivery processes `serve` runs. On SQLite each delivers"
        " its own share of the sinks (by a hash of the sink SID); on PostgreSQL they share all sinks like"
        " workers. More than one pays off with many sinks and cores to spare (docs/operations.md).",
    )  # fmt: skip
    dedupe_window_s: float = setting(
        86400.0, "EVENTSTREAMS_DEDUPE_WINDOW_SECONDS",
        "An event id published again by the same account within this window is stored once.",
    )  # fmt: skip
    pack_events: bool = setting(
        True, "EVENTSTREAMS_PACK_EVENTS",
        "Store each event's JSON as a zstd frame with a dictionary trained on the catalogue (about 4 times smaller;"
        " docs/operations.md). false: plain JSON. Either way both kinds of rows stay readable.",
    )  # fmt: skip
    publish_max_events: int = setting(1000, "EVENTSTREAMS_PUBLISH_MAX_EVENTS", "Most events in one publish request.")
    publish_max_bytes: int = setting(5 * 1024 * 1024, "EVENTSTREAMS_PUBLISH_MAX_BYTES", "Largest publish request body.")
    retry_first_delay: float = setting(
        1.0, "EVENTSTREAMS_RETRY_FIRST_DELAY", "Backoff: the first retry, seconds (doubling, ±20 % jitter)."
    )
    retry_max_delay: float = setting(
        300.0, "EVENTSTREAMS_RETRY_MAX_DELAY", "Backoff: the longest wait between retries, seconds."
    )
    retry_max_age: float = setting(
        4 * 3600.0, "EVENTSTREAMS_RETRY_MAX_AGE", "Retry window: after 4 h of failing the delivery is dead-lettered."
    )
    delivery_timeout: float = setting(5.0, "EVENTSTREAMS_DELIVERY_TIMEOUT", "Seconds a sink has to answer.")
    sink_max_in_flight: int = setting(32, "EVENTSTREAMS_SINK_MAX_IN_FLIGHT", "Concurrent requests per sink.")
    log_retention_s: float = setting(7 * 86400.0, "EVENTSTREAMS_LOG_RETENTION_SECONDS", "Delivery log kept 7 days.")
    error_retention_s: float = setting(
        23 * 86400.0, "EVENTSTREAMS_ERROR_RETENTION_SECONDS", "Alerts and dead letters kept 23 days."
    )
    event_retention_s: float = setting(
        7 * 86400.0, "EVENTSTREAMS_EVENT_RETENTION_SECONDS", "Stored events (for replay) kept 7 days once delivered."
    )
    alert_webhook_url: str | None = setting(
        None, "EVENTSTREAMS_ALERT_WEBHOOK_URL", "POST each alert (JSON, Monitor Alert shape) here."
    )
    poll_interval: float = setting(
        1.0, "EVENTSTREAMS_POLL_INTERVAL", "Fallback polling when no wake-up arrives, seconds."
    )
    lease_s: float = setting(
        60.0, "EVENTSTREAMS_LEASE_SECONDS", "How long a worker owns leased deliveries before another may take them."
    )
    aws_endpoint_url: str | None = setting(
        None, "EVENTSTREAMS_AWS_ENDPOINT_URL",
        "Kinesis/STS endpoint for every Kinesis sink (a Kinesis-compatible server); a sink's `endpoint_url` (only"
        " with `EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL`) wins. AWS credentials come from the usual AWS"
        " environment/instance profile.",
    )  # fmt: skip
    segment_endpoint: str = setting(
        "https://api.segment.io", "EVENTSTREAMS_SEGMENT_ENDPOINT",
        "Default tracking API for Segment sinks (EU: `https://events.eu1.segmentapis.com`); a sink's `endpoint`"
        " wins.",
    )  # fmt: skip
    metrics_token: str | None = setting(
        None, "EVENTSTREAMS_METRICS_TOKEN",
        "Serve Prometheus metrics at `GET /metrics` to `Authorization: Bearer <token>` (404 while unset;"
        " docs/operations.md).",
    )  # fmt: skip
    log_format: str = setting(
        "auto", "EVENTSTREAMS_LOG_FORMAT",
        "`json` (one JSON object a line), `text`, or `auto`: JSON unless stderr is a terminal (docs/operations.md).",
    )  # fmt: skip
    log_level: str = setting("INFO", "EVENTSTREAMS_LOG_LEVEL", "`DEBUG`, `INFO`, `WARNING` or `ERROR`.", upper=True)
    # The Twilio sandbox (docs/sandbox.md): mounted in `serve` when true; `eventstreams sandbox` forces it.
    sandbox: bool = setting(
        False, "EVENTSTREAMS_SANDBOX",
        "Mount the Twilio sandbox (docs/sandbox.md) inside `serve`; `eventstreams sandbox` always does.",
    )  # fmt: skip
    sandbox_database_url: str = setting(
        "sqlite:///./data/sandbox.db", "EVENTSTREAMS_SANDBOX_DATABASE_URL",
        "The database `eventstreams sandbox` (and its `seed`) uses.",
    )  # fmt: skip
    sandbox_port: int = setting(
        8090, "EVENTSTREAMS_SANDBOX_PORT",
        "Port of `eventstreams sandbox` (`--port` overrides). Listening on loopback, it allows status callbacks"
        " and sinks to reach private addresses (your app on this machine) unless"
        " `EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS` is set; on any other address the SSRF policy stays on.",
    )  # fmt: skip
    sandbox_step_seconds: float = setting(
        1.0, "EVENTSTREAMS_SANDBOX_STEP_SECONDS",
        "Time between a sandbox message's or call's status changes (per account: `Sandbox.json`).",
    )  # fmt: skip
    sandbox_failure_ratio: float = setting(
        0.0, "EVENTSTREAMS_SANDBOX_FAILURE_RATIO",
        "Share of other sandbox messages that end undelivered (calls: no-answer).",
    )  # fmt: skip
    sandbox_outcomes: str = setting(
        "", "EVENTSTREAMS_SANDBOX_OUTCOMES",
        "How sandbox messages and calls end, by `To` prefix: `+4477=undelivered:30003,+1212=busy`.",
    )  # fmt: skip
    sandbox_publish_events: bool = setting(
        True, "EVENTSTREAMS_SANDBOX_PUBLISH_EVENTS",
        "Publish sandbox status changes as Event Streams events into the same account.",
    )  # fmt: skip
    tracking_dedupe_s: float = setting(
        86400.0, "EVENTSTREAMS_TRACKING_DEDUPE_SECONDS",
        "A tracking message whose `messageId` the account sent within this window is dropped (docs/segment.md).",
    )  # fmt: skip
    # Profiles (docs/segment.md): national phone numbers are read in this region; per-type identifier limits.
    profiles_default_region: str = setting(
        "US", "EVENTSTREAMS_PROFILES_DEFAULT_REGION",
        "Region (ISO 3166 code) national-format phone numbers are read in when profiles normalise them to E.164"
        " (docs/segment.md, Profiles).",
        upper=True,
    )  # fmt: skip
    profiles_limits: str = setting(
        "user_id=1,email=5,phone=5,anonymous_id=1000", "EVENTSTREAMS_PROFILES_LIMITS",
        "Most values of each identifier type one profile may hold (`type=N`, comma-separated; `*=N` for every"
        " other type, default 5); a merge past a limit is refused and recorded.",
    )  # fmt: skip
    # Twilio object sources (docs/warehouse.md): scheduled syncs run in serve/worker when true, this many at once.
    source_syncs: bool = setting(
        True, "EVENTSTREAMS_SOURCE_SYNCS",
        "Run scheduled Twilio object-source syncs and events-warehouse loads in this `serve`/`worker` (leased:"
        " several processes share them; docs/warehouse.md).",
    )  # fmt: skip
    source_sync_concurrency: int = setting(
        2, "EVENTSTREAMS_SOURCE_SYNC_CONCURRENCY", "Syncs (and loads) one process runs at a time."
    )
    # The warehouse (docs/warehouse.md): duckdb:///path, postgresql://…, or dlt+<destination>://…
    warehouse_url: str = setting(
        "duckdb:///./data/warehouse.duckdb", "EVENTSTREAMS_WAREHOUSE_URL",
        "The warehouse the events warehouse and the Twilio object sources load into: a DuckDB file"
        " (`duckdb:///relative` or `duckdb:////absolute`), PostgreSQL (`postgresql://…`), or any dlt destination"
        " (`dlt+snowflake://`, credentials from dlt's config; docs/warehouse.md).",
    )  # fmt: skip

    def serve_deliverers(self) -> int:
        """How many processes deliver for ``serve``: its delivery processes, or 1 when it delivers itself."""
        if not (self.delivery and self.delivery_process):
            return 1
        if self.delivery_processes < 1:
            raise ConfigError(f"EVENTSTREAMS_DELIVERY_PROCESSES: {self.delivery_processes} is below 1")
        return self.delivery_processes

    def to_env(self) -> dict[str, str]:
        """These settings as the environment that reads back as them (a child process of ``serve``);
        unset (None) ones are left out."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.metadata["env"]] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The environment (``os.environ`` unless given) over the config file over the defaults. The file
        is ``EVENTSTREAMS_CONFIG`` (which must exist; empty: no file) or ``./eventstreams.toml`` when present.
        An empty variable counts as unset, as it always has."""
        e = os.environ if env is None else env
        # ./eventstreams.toml is looked for only in the real environment: a caller's own mapping is all there is
        from_file = read_config_file(config_path(e, look_in_cwd=env is None))
        values: dict[str, Any] = {}
        for f in fields(cls):
            meta = f.metadata
            raw = e.get(meta["env"])
            if raw is not None and raw != "":
                values[f.name] = _from_text(f, raw, meta["env"])
            elif file_key(meta["env"]) in from_file:
                values[f.name] = from_file[file_key(meta["env"])]
        return cls(**values)

    def public_base_url(self) -> str:
        """URL used in ``url``/``links``; defaults to the listening address."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        return f"http://{host}:{self.port}"


def config_path(env: Mapping[str, str], look_in_cwd: bool = True) -> Path | None:
    named = env.get(CONFIG_ENV)
    if named is not None:
        return Path(named) if named else None
    return DEFAULT_CONFIG_FILE if look_in_cwd and DEFAULT_CONFIG_FILE.is_file() else None


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The file's settings by key, parsed to their fields' types; {} without a file. Unknown keys are
    errors: a misspelt key silently ignored would leave a default in force."""
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{CONFIG_ENV}: {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    by_key = {file_key(f.metadata["env"]): f for f in fields(Settings)}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        f = by_key.get(key)
        if value == "" and f is not None:  # as in the environment: empty is unset
            continue
        if f is None:
            raise ConfigError(f"{path}: unknown setting {key!r} (keys are the variables' names without"
                              f" {PREFIX}, in lower case; `eventstreams settings` lists them)")  # fmt: skip
        out[key] = _from_file(f, value, f"{path}: {key}")
    return out


def _from_text(f: Field[Any], raw: str, where: str) -> Any:
    """A variable's text, by the field's type (the rules the environment has always had)."""
    kind = f.type
    if kind in ("str", "str | None"):
        return raw.upper() if f.metadata["upper"] else raw
    if kind == "Path":
        return Path(raw)
    if kind == "bool":
        return raw.strip().lower() in _TRUE
    if raw.strip() == "":  # a blank number is unset
        default = f.default
        assert default is not MISSING
        return default
    try:
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        raise ConfigError(f"{where}: {raw!r} is not {'an integer' if kind == 'int' else 'a number'}") from None


def _from_file(f: Field[Any], value: Any, where: str) -> Any:
    """A TOML value: its own type when it fits the field, text by the environment's rules otherwise."""
    kind = f.type
    if isinstance(value, str):
        return _from_text(f, value, where)
    ok = (
        (kind == "bool" and isinstance(value, bool))
        or (kind == "int" and isinstance(value, int) and not isinstance(value, bool))
        or (kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool))
    )
    if not ok:
        raise ConfigError(f"{where}: expected {kind}, got {type(value).__name__} {value!r}")
    return float(value) if kind == "float" else value


@dataclass(frozen=True)
class SettingDoc:
    env: str
    key: str
    default: str  # Markdown: a value in backticks, or words
    doc: str  # Markdown


def documented() -> list[SettingDoc]:
    """Every setting, in declaration order, for the table."""
    return [
        SettingDoc(f.metadata["env"], file_key(f.metadata["env"]), _shown(f), f.metadata["doc"])
        for f in fields(Settings)
    ]


def _shown(f: Field[Any]) -> str:
    if f.metadata["shown"] is not None:
        return str(f.metadata["shown"])
    value = f.default
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


TABLE_START = "<!-- settings table: generated: edit config.py, then `eventstreams settings --update README.md` -->"
TABLE_END = "<!-- end of settings table -->"


def markdown_table() -> str:
    """The settings table as README.md holds it, between ``TABLE_START`` and ``TABLE_END``."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for d in documented():
        doc = d.doc.replace("|", "\\|")
        lines.append(f"| `{d.env}` | {d.default} | {doc} |")
    return "\n".join(lines) + "\n"


def text_table() -> str:
    """The same for a terminal: each variable, its default and its meaning, without Markdown's marks."""
    out = []
    for d in documented():
        default, doc = d.default.replace("`", ""), d.doc.replace("`", "").replace("**", "")
        out.append(f"{d.env}  (default: {default})\n    {doc}")
    return "\n".join(out) + "\n"


def replace_table(document: str) -> str:
    """``document`` (README.md's text) with the table between its markers regenerated."""
    start, end = document.index(TABLE_START) + len(TABLE_START), document.index(TABLE_END)
    return document[:start] + "\n" + markdown_table() + document[end:]
