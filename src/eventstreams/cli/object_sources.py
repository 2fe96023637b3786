"""``eventstreams sources`` commands for Twilio object sources (docs/warehouse.md) over /v1/ObjectSources:
add-twilio, configure, sync (asks the server for a sync, then follows its run with a progress bar per
collection), runs. The Twilio credentials come from options or the Twilio CLI's own environment variables
and are sent once; the server never returns them."""

from __future__ import annotations

import sys
import time
from typing import Any
from urllib.parse import quote

import click

from .client import BUSY, Client, CliError, client
from .output import account_option as _ACCOUNT
from .output import output_option, render

_PATH = "/v1/ObjectSources"
_POLL_SECONDS = 0.5


def _settings_options(fn: Any) -> Any:
    for opt in reversed([
        click.option("--twilio-account-sid", envvar="TWILIO_ACCOUNT_SID", default=None,
                     help="The Twilio account to read (or TWILIO_ACCOUNT_SID)."),
        click.option("--auth-token", envvar="TWILIO_AUTH_TOKEN", default=None,
                     help="Its auth token (or TWILIO_AUTH_TOKEN; never shown again)."),
        click.option("--api-key", envvar="TWILIO_API_KEY", default=None,
                     help="An API key SID instead (TWILIO_API_KEY)."),
        click.option("--api-secret", envvar="TWILIO_API_SECRET", default=None, help="Its secret (TWILIO_API_SECRET)."),
        click.option("--schema", "schema_name", default=None, help="Warehouse schema (default: the name, snake_case)."),
        click.option("--start-date", default=None, help="ISO date to sync from (blank: everything)."),
        click.option("--collections", default=None, help="Comma-separated (default: all six)."),
        click.option("--schedule", default=None, help="'3h' (default), '90m', a cron expression, or 'manual'."),
        click.option("--lookback", default=None, help="Re-read window of incremental syncs (default 3d)."),
        click.option("--subaccounts/--no-subaccounts", "include_subaccounts", default=None,
                     help="Also sync the account's subaccounts."),
        click.option("--base-url", default=None, help="Twilio's API URL (the sandbox's in development)."),
        click.option("--enable/--disable", "enabled", default=None),
    ]):  # fmt: skip
        fn = opt(fn)
    return fn


_FORM = {
    "twilio_account_sid": "TwilioAccountSid", "auth_token": "AuthToken", "api_key": "ApiKeySid",
    "api_secret": "ApiKeySecret", "schema_name": "SchemaName", "start_date": "StartDate",
    "collections": "Collections", "schedule": "Schedule", "lookback": "LookbackWindow",
    "include_subaccounts": "IncludeSubaccounts", "enabled": "Enabled", "base_url": "BaseUrl",
}  # fmt: skip


def _form(o: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, name in _FORM.items():
        v = o.get(k)
        if v is not None:
            out[name] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _item(ref: str) -> str:
    return f"{_PATH}/{quote(ref, safe='')}"  # by SID or by name (the API accepts both)


class SyncProgress:
    """Follows one run over HTTP: a bar per (Twilio account, collection), updated from the run's rows (the
    server records them after every page)."""

    def __init__(self, c: Client, source: dict[str, Any], full: bool, quiet: bool) -> None:
        self.c, self.source, self.full, self.quiet = c, source, full, quiet

    def run(self) -> dict[str, Any]:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        item = _item(self.source["sid"])
        if self.source.get("syncing"):
            raise CliError(f"another process is syncing {self.source['friendly_name']} now", BUSY,
                           "wait for it (`eventstreams sources runs NAME`), then sync again")  # fmt: skip
        before = [r["sid"] for r in self.c.paginate(f"{item}/Runs", "runs", limit=1)]
        self.c.request("POST", f"{item}/Syncs", data={"Full": "true" if self.full else "false"})
        console = Console(stderr=True)
        tasks: dict[tuple[str, str], Any] = {}
        waited = time.monotonic()
        hinted = False
        with Progress(SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description:<34}"),
                      TextColumn("{task.completed:>10,.0f} rows"), TextColumn("{task.fields[rate]}"),
                      TimeElapsedColumn(), console=console, disable=self.quiet) as bar:  # fmt: skip
            while True:
                latest = next(iter(self.c.paginate(f"{item}/Runs", "runs", limit=1)), None)
                if latest is None or [latest["sid"]] == before:
                    if not hinted and time.monotonic() - waited > 30:
                        console.print("[yellow]no run has started yet: is a `serve` or `worker` with source "
                                      "syncs on (EVENTSTREAMS_SOURCE_SYNCS) running against this store?")  # fmt: skip
                        hinted = True
                    time.sleep(_POLL_SECONDS)
                    continue
                for p in latest["collections"]:
                    key = (p["twilio_account_sid"], p["collection"])
                    if key not in tasks:
                        label = p["collection"] + ("" if p["twilio_account_sid"] == self.source["twilio_account_sid"]
                                                   else f" ({p['twilio_account_sid'][:8]}…)")  # fmt: skip
                        tasks[key] = bar.add_task(label, total=None, rate="")
                    done = p["status"] != "running"
                    rate = f"{p['rows_read'] / p['duration']:>9,.0f}/s" if p.get("duration") else ""
                    bar.update(tasks[key], completed=p["rows_read"], rate="[red]failed" if p.get("error") else rate,
                               total=p["rows_read"] if done else None)  # fmt: skip
                if latest["status"] != "running":
                    return dict(latest)
                time.sleep(_POLL_SECONDS)


def register(sources: click.Group) -> None:
    @sources.command("add-twilio")
    @_ACCOUNT
    @click.argument("name")
    @_settings_options
    @output_option
    def add_twilio(account_sid: str | None, name: str, output: str, **o: Any) -> None:
        """Add a Twilio object source NAME: it syncs Twilio's objects into the warehouse (docs/warehouse.md)."""
        with client(account_sid) as c:
            row = c.request("POST", _PATH, data={"FriendlyName": name, **_form(o)})
        render(row, output, ["sid", "friendly_name", "schema_name", "twilio_account_sid", "schedule"])

    @sources.command("configure")
    @_ACCOUNT
    @click.argument("name")
    @click.option("--name", "new_name", default=None, help="A new name.")
    @_settings_options
    @output_option
    def configure(account_sid: str | None, name: str, new_name: str | None, output: str, **o: Any) -> None:
        """Change what is given of Twilio source NAME (a new start date applies with `sync --full`)."""
        data = _form(o) | ({"FriendlyName": new_name} if new_name else {})
        with client(account_sid) as c:
            row = c.request("POST", _item(name), data=data)
        render(row, output, ["sid", "friendly_name", "schema_name", "collections", "schedule", "enabled"])

    @sources.command("sync")
    @_ACCOUNT
    @click.argument("name")
    @click.option("--full", is_flag=True, help="Re-read everything from the start date.")
    @output_option
    def sync(account_sid: str | None, name: str, full: bool, output: str) -> None:
        """Sync Twilio source NAME now on the server, following it with a progress bar per collection. Exits 1
        when a collection failed (the others are loaded), 2 when a sync of it is already running."""
        with client(account_sid) as c:
            source = c.request("GET", _item(name))
            result = SyncProgress(c, source, full, quiet=output == "json").run()
        if output == "json":
            render(result, "json")
        else:
            render(result["collections"], "table",
                   ["twilio_account_sid", "collection", "status", "rows_read", "rows_upserted", "duration", "error"])
            click.echo(f"{result['status']}: {result['rows_upserted']:,} rows upserted ({result['kind']} sync)")
        if result["status"] != "succeeded":
            sys.exit(1)

    @sources.command("runs")
    @_ACCOUNT
    @click.argument("name")
    @click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
    @output_option
    def runs(account_sid: str | None, name: str, limit: int, output: str) -> None:
        """Twilio source NAME's latest runs: rows read and upserted per collection (the Overview tab)."""
        with client(account_sid) as c:
            data = list(c.paginate(f"{_item(name)}/Runs", "runs", limit=limit))
        if output == "json":
            render(data, "json")
            return
        flat = [{"run": r["sid"], "started": r["date_started"], "kind": r["kind"], "status": r["status"], **p}
                for r in data for p in r["collections"]]  # fmt: skip
        render(flat, "table", ["run", "started", "kind", "status", "collection", "rows_read", "rows_upserted",
                               "duration", "error"])  # fmt: skip
