"""``eventstreams sources`` commands for Twilio object sources (docs/warehouse.md): add-twilio, configure,
sync (with a progress bar per collection), runs. They call objectsource/service.py and sync.py, as the
HTTP API does. Credentials come from options or the Twilio CLI's own environment variables."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from ..config import Settings

_OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
_ACCOUNT = click.option("--account", "account_sid", envvar="EVENTSTREAMS_ACCOUNT_SID", required=True,
                        help="eventstreams account SID (or EVENTSTREAMS_ACCOUNT_SID).")  # fmt: skip


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


def _kwargs(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "twilio_account_sid": o["twilio_account_sid"], "auth_token": o["auth_token"], "api_key_sid": o["api_key"],
        "api_key_secret": o["api_secret"], "schema_name": o["schema_name"], "start_date": o["start_date"],
        "collections": o["collections"], "schedule": o["schedule"], "lookback": o["lookback"],
        "include_subaccounts": o["include_subaccounts"], "enabled": o["enabled"], "base_url": o["base_url"],
    }  # fmt: skip


def _print(data: Any, output: str, columns: list[str] | None = None) -> None:
    if output == "json" or columns is None:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    rows = data if isinstance(data, list) else [data]
    table = Table(*columns)
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    Console().print(table)


def register(sources: click.Group, run: Any) -> None:
    @sources.command("add-twilio")
    @_ACCOUNT
    @click.argument("name")
    @_settings_options
    @_OUTPUT
    def add_twilio(account_sid: str, name: str, output: str, **o: Any) -> None:
        """Add a Twilio object source NAME: it syncs Twilio's objects into the warehouse (docs/warehouse.md)."""
        from ..objectsource.api import source_view

        async def go(rt: Any) -> dict[str, Any]:
            account = (await rt.accounts.principal_of(account_sid)).account
            return source_view(rt.base, await rt.object_sources.create(account, friendly_name=name, **_kwargs(o)))

        _print(run(go), output, ["sid", "friendly_name", "schema_name", "twilio_account_sid", "schedule"])

    @sources.command("configure")
    @_ACCOUNT
    @click.argument("name")
    @click.option("--name", "new_name", default=None, help="A new name.")
    @_settings_options
    @_OUTPUT
    def configure(account_sid: str, name: str, new_name: str | None, output: str, **o: Any) -> None:
        """Change what is given of Twilio source NAME (a new start date applies with `sync --full`)."""
        from ..objectsource.api import source_view

        async def go(rt: Any) -> dict[str, Any]:
            account = (await rt.accounts.principal_of(account_sid)).account
            row = await rt.object_sources.get(account, name)
            return source_view(rt.base, await rt.object_sources.update(row, friendly_name=new_name, **_kwargs(o)))

        _print(run(go), output, ["sid", "friendly_name", "schema_name", "collections", "schedule", "enabled"])

    @sources.command("sync")
    @_ACCOUNT
    @click.argument("name")
    @click.option("--full", is_flag=True, help="Re-read everything from the start date.")
    @_OUTPUT
    def sync(account_sid: str, name: str, full: bool, output: str) -> None:
        """Sync Twilio source NAME now, here, with a progress bar per collection. Exits 1 when a collection
        failed (the others are loaded), 2 when another process is syncing it."""
        from ..errors import TwilioError
        from ..objectsource.sync import CollectionProgress, LeaseHeld
        from ..runtime import build_runtime

        async def go() -> dict[str, Any]:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            rt = await build_runtime(Settings.from_env())
            try:
                account = (await rt.accounts.principal_of(account_sid)).account
                row = await rt.object_sources.get(account, name)
                console = Console(stderr=True)
                tasks: dict[tuple[str, str], Any] = {}
                with Progress(SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description:<34}"),
                              TextColumn("{task.completed:>10,.0f} rows"), TextColumn("{task.fields[rate]}"),
                              TimeElapsedColumn(), console=console, disable=output == "json") as bar:  # fmt: skip

                    def progress(p: CollectionProgress) -> None:
                        key = (p.account_sid, p.collection)
                        if key not in tasks:
                            label = p.collection + ("" if p.account_sid == row.twilio_account_sid
                                                    else f" ({p.account_sid[:8]}…)")  # fmt: skip
                            tasks[key] = bar.add_task(label, total=None, rate="")
                        rate = f"{p.rows_read / p.duration:>9,.0f}/s" if p.duration > 0 else ""
                        done = p.status != "running"
                        bar.update(tasks[key], completed=p.rows_read, rate=rate if not p.error else "[red]failed",
                                   total=p.rows_read if done else None)  # fmt: skip

                    report = await rt.syncer().sync_now(row, full=full, trigger="manual", progress=progress)
                view = await rt.object_sources.run(row, report.run.sid)
                from ..objectsource.api import run_view

                return run_view(rt.base, view.run, view.collections)
            except TwilioError as exc:
                raise click.ClickException(exc.message) from None
            except LeaseHeld as exc:
                click.echo(f"Error: {exc}", err=True)
                sys.exit(2)
            finally:
                await rt.close()

        result = asyncio.run(go())
        if output == "json":
            _print(result, "json")
        else:
            _print(result["collections"], "table",
                   ["twilio_account_sid", "collection", "status", "rows_read", "rows_upserted", "duration", "error"])
            click.echo(f"{result['status']}: {result['rows_upserted']:,} rows upserted ({result['kind']} sync)")
        if result["status"] != "succeeded":
            sys.exit(1)

    @sources.command("runs")
    @_ACCOUNT
    @click.argument("name")
    @click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
    @_OUTPUT
    def runs(account_sid: str, name: str, limit: int, output: str) -> None:
        """Twilio source NAME's latest runs: rows read and upserted per collection (the Overview tab)."""
        from ..objectsource.api import run_view
        from ..store.records import PageQuery

        async def go(rt: Any) -> list[dict[str, Any]]:
            account = (await rt.accounts.principal_of(account_sid)).account
            row = await rt.object_sources.get(account, name)
            page, parts = await rt.object_sources.runs(row, PageQuery(size=limit))
            return [run_view(rt.base, r, parts.get(r.sid, [])) for r in page.items]

        data = run(go)
        if output == "json":
            _print(data, "json")
            return
        flat = [{"run": r["sid"], "started": r["date_started"], "kind": r["kind"], "status": r["status"], **c}
                for r in data for c in r["collections"]]  # fmt: skip
        _print(flat, "table", ["run", "started", "kind", "status", "collection", "rows_read", "rows_upserted",
                               "duration", "error"])  # fmt: skip
