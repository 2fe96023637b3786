"""``eventstreams warehouse events | load-events``: the account's events warehouse over the HTTP API
(/v1/EventsWarehouse). ``warehouse query`` stays in main.py: it reads the operator's warehouse directly."""

from __future__ import annotations

import time

import click

from .client import CliError, client
from .output import account_option as ACT_AS
from .output import output_option, render

COLUMNS = ["schema_name", "enabled", "interval", "rows_loaded", "last_load_at", "last_error"]
POLL_SECONDS = 0.5
_PATH = "/v1/EventsWarehouse"


def register(warehouse: click.Group) -> None:
    @warehouse.command("events")
    @click.option("--schema", "schema_name", default=None, help="The schema to load into (required the first time).")
    @click.option("--enable/--disable", "enabled", default=None)
    @click.option("--interval", type=click.IntRange(60), default=None, help="Seconds between loads (default 3600).")
    @ACT_AS
    @output_option
    def events(schema_name: str | None, enabled: bool | None, interval: int | None, account_sid: str | None,
               output: str) -> None:  # fmt: skip
        """Show, create or change the account's events warehouse: its tracking messages and Event Streams
        events, loaded into Segment's tables in SCHEMA on a schedule."""
        data: dict[str, str] = {}
        if schema_name is not None:
            data["SchemaName"] = schema_name
        if enabled is not None:
            data["Enabled"] = "true" if enabled else "false"
        if interval is not None:
            data["Interval"] = str(interval)
        with client(account_sid) as c:
            render(c.request("POST", _PATH, data=data) if data else c.request("GET", _PATH), output, COLUMNS)

    @warehouse.command("load-events")
    @click.option("--timeout", type=click.FloatRange(1), default=600.0, show_default=True,
                  help="Seconds to wait for the load to finish.")  # fmt: skip
    @ACT_AS
    @output_option
    def load_events(timeout: float, account_sid: str | None, output: str) -> None:
        """Load what is new into the events warehouse now (a serve or worker runs the load) and wait for it."""
        with client(account_sid) as c:
            before = c.request("GET", _PATH)
            c.request("POST", f"{_PATH}/Loads")
            deadline = time.monotonic() + timeout
            while True:
                now = c.request("GET", _PATH)
                if now.get("last_load_at") != before.get("last_load_at") and not now.get("loading"):
                    break
                if time.monotonic() > deadline:
                    raise CliError("the load has not finished yet", 1,
                                   "is a `serve` or `worker` with EVENTSTREAMS_SOURCE_SYNCS on running? "
                                   "`eventstreams warehouse events` shows where it stands")  # fmt: skip
                time.sleep(POLL_SECONDS)
        if now.get("last_error"):
            raise CliError(f"the load failed: {now['last_error']}", 1, "fix the warehouse, then load again")
        render({**now, "rows_loaded_now": now["rows_loaded"] - before["rows_loaded"]}, output,
               ["schema_name", "rows_loaded_now", "rows_loaded", "last_load_at"])
