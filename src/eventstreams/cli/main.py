"""The ``eventstreams`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from ..config import Settings

T = TypeVar("T")


def _run(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the runtime against the configured store, run ``fn``, close. A TwilioError from the
    domain (the same rules the API applies) becomes a CLI error with its message."""
    from ..errors import TwilioError
    from ..runtime import build_runtime

    async def go() -> T:
        rt = await build_runtime(Settings.from_env())
        try:
            return await fn(rt)
        except TwilioError as exc:
            raise click.ClickException(exc.message) from None
        finally:
            await rt.close()

    return asyncio.run(go())


def _out(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


@click.group()
@click.version_option(package_name="eventstreams")
def main() -> None:
    """eventstreams: self-hosted, Twilio-compatible Event Streams."""
    from ..logs import configure as configure_logging  # JSON lines off a terminal, secrets redacted

    configure_logging()


@main.command()
@click.option("--host", default=None, help="Listen address (default 127.0.0.1 or EVENTSTREAMS_HOST).")
@click.option("--port", default=None, type=int, help="Listen port (default 8080 or EVENTSTREAMS_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the HTTP API (and, on SQLite, the delivery workers)."""
    import dataclasses

    import uvicorn

    from ..api.app import create_app

    settings = Settings.from_env()
    settings = dataclasses.replace(settings, host=host or settings.host, port=port or settings.port)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=False)


@main.command()
def worker() -> None:
    """Run delivery and scheduled source syncs (no HTTP API). Start several against one PostgreSQL to scale out."""
    import signal

    from ..runtime import build_runtime

    settings = Settings.from_env()
    if settings.database_url.startswith("sqlite"):
        click.echo("note: on SQLite `eventstreams serve` already delivers; run workers with PostgreSQL", err=True)

    async def go() -> None:
        rt = await build_runtime(settings)
        await rt.start_delivery()
        if settings.source_syncs:
            await rt.start_syncs()
        assert rt.delivery is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger("eventstreams").info("worker %s delivering", rt.delivery.dispatcher.worker_id)
        await stop.wait()
        await rt.close()

    asyncio.run(go())


@main.command()
@click.option("--account", "account_sid", required=True, help="Account SID the events belong to.")
@click.argument("source", type=click.File("rb"), default="-")
def publish(account_sid: str, source: Any) -> None:
    """Publish CloudEvents from a JSON file (an event or an array; default stdin)."""
    from ..embedded import EventStreams

    try:
        doc = json.loads(source.read())
    except ValueError as exc:
        raise click.ClickException(f"not valid JSON: {exc}") from None
    events = doc if isinstance(doc, list) else [doc]

    async def go() -> dict[str, Any]:
        es = await EventStreams.open(Settings.from_env())
        try:
            return (await es.publish(account_sid, events)).view()
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await es.close()

    result = asyncio.run(go())
    _out(result)
    if result["rejected"]:
        sys.exit(1)


@main.command("dead-letters")
@click.option("--account", "account_sid", required=True)
@click.option("--sink", "sink_sid", default=None, help="Only this sink.")
def dead_letters(account_sid: str, sink_sid: str | None) -> None:
    """List dead-lettered deliveries with their last error."""
    from ..domain.operations import dead_letter_view
    from ..store.records import PageQuery

    async def go(rt: Any) -> list[dict[str, Any]]:
        p = await rt.accounts.principal_of(account_sid)
        out: list[dict[str, Any]] = []
        q = PageQuery(size=1000)
        while True:
            _, page = await rt.operations.dead_letters(p, sink_sid, q)
            out += [dead_letter_view(d) for d in page.items]
            if not page.has_more:
                return out
            q = PageQuery(size=1000, after=(page.items[-1].id,))

    _out(_run(go))


@main.command()
@click.option("--account", "account_sid", required=True)
@click.option("--sink", "sink_sid", required=True)
@click.option("--dead-letters", "dead", is_flag=True, help="Replay the sink's dead letters.")
@click.option("--event-id", "event_ids", multiple=True, help="Replay these events (repeatable).")
@click.option("--since", default=None, help="Replay events received at or after this ISO time.")
@click.option("--until", default=None, help="... and before this ISO time.")
def replay(
    account_sid: str, sink_sid: str, dead: bool, event_ids: tuple[str, ...], since: str | None, until: str | None
) -> None:
    """Deliver again to one sink: dead letters, chosen events or a time range."""
    from ..domain.operations import ReplayRequest, parse_instant

    async def go(rt: Any) -> dict[str, Any]:
        what = ReplayRequest(dead, event_ids, parse_instant("--since", since), parse_instant("--until", until))
        p = await rt.accounts.principal_of(account_sid)
        sink, n = await rt.operations.replay(p, sink_sid, what)
        return {"sink_sid": sink.row.sid, "replayed": n}

    _out(_run(go))


@main.command()
def migrate() -> None:
    """Apply pending schema migrations and load the built-in catalogue."""
    from ..catalog import builtin_schema_versions, builtin_types
    from ..store import open_store

    async def go() -> list[str]:
        # Not build_runtime: that migrates too, and this command reports what it applied.
        store = open_store(Settings.from_env())
        await store.open()
        try:
            applied = await store.migrate()
            await store.catalogue.sync_builtins(builtin_types(), builtin_schema_versions())
            return applied
        finally:
            await store.close()

    applied = asyncio.run(go())
    click.echo("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


def sandbox_settings(host: str | None = None, port: int | None = None) -> Settings:
    """The settings ``eventstreams sandbox`` runs on: its own database and port, the sandbox mounted.
    Listening on loopback only, status callbacks (and sinks) may reach this machine's private addresses
    (where a developer's app listens) unless ``EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS`` says otherwise;
    listening on another address, the SSRF policy stays as configured (off by default)."""
    import dataclasses
    import os

    s = Settings.from_env()
    bind = host or s.host
    loopback = bind in ("127.0.0.1", "::1", "localhost") or bind.startswith("127.")
    explicit = os.environ.get("EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS")
    return dataclasses.replace(
        s,
        sandbox=True,
        database_url=s.sandbox_database_url,
        host=bind,
        port=port or s.sandbox_port,
        allow_private_destinations=s.allow_private_destinations if explicit else loopback,
    )


@main.group(invoke_without_command=True)
@click.option("--host", default=None, help="Listen address (default 127.0.0.1 or EVENTSTREAMS_HOST).")
@click.option("--port", default=None, type=int, help="Listen port (default 8090 or EVENTSTREAMS_SANDBOX_PORT).")
@click.pass_context
def sandbox(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run a local Twilio (REST 2010-04-01 Messages, Calls, Conferences, ... and Event Streams) on its
    own database (EVENTSTREAMS_SANDBOX_DATABASE_URL, default ./data/sandbox.db). docs/sandbox.md."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from ..api.app import create_app

    settings = sandbox_settings(host, port)
    click.echo(f"eventstreams sandbox: a local Twilio at {settings.public_base_url()}", err=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", access_log=False)


@sandbox.command("seed")
# the rows are held in memory until inserted (~0.7 KB each): the caps keep that under ~4 GB
@click.option("--messages", default=100_000, show_default=True, type=click.IntRange(0, 5_000_000))
@click.option(
    "--calls",
    default=20_000,
    show_default=True,
    type=click.IntRange(0, 1_000_000),
    help="Calls; conferences (calls/20), transcriptions (calls/10) and feedback follow from them.",
)
@click.option(
    "--subaccounts",
    default=3,
    show_default=True,
    type=click.IntRange(0, 100),
    help="New subaccounts of the main account to spread the data over.",
)
@click.option(
    "--seed",
    "seed_value",
    type=click.IntRange(0),
    default=None,
    help="Random seed (default: a random one, printed). Same seed and --now: the same rows.",
)
@click.option(
    "--now",
    default=None,
    help="The end of the year the data covers: ISO 8601, YYYY-MM-DD, RFC 2822 or epoch seconds (default: now).",
)
@click.option(
    "--account",
    "account_sid",
    default=None,
    help="Main account (default: the first account, created as `serve` does if there is none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sandbox_seed(
    messages: int, calls: int, subaccounts: int, seed_value: int | None, now: str | None,
    account_sid: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Fill the sandbox's database with a year of realistic, reproducible Twilio data; prints the
    seeded accounts' credentials and what was inserted."""
    import secrets

    from ..errors import TwilioError
    from ..runtime import build_runtime
    from ..sandbox import seed as seeding

    try:
        end = seeding.parse_now(now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None
    seed_value = secrets.randbelow(2**31) if seed_value is None else seed_value

    async def go() -> seeding.SeedReport:
        rt = await build_runtime(sandbox_settings())
        try:
            return await seeding.seed(rt, messages, calls, subaccounts, seed_value, end, account_sid)
        except (TwilioError, seeding.SeedError) as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await rt.close()

    report = asyncio.run(go())
    if as_json:
        _out(seeding.report_view(report))
    else:
        click.echo(seeding.report_text(report))


@main.group()
def accounts() -> None:
    """Manage accounts and API keys."""


@accounts.command("create")
@click.option("--friendly-name", default="Account", show_default=True)
@click.option("--parent", default=None, help="Parent account SID (creates a subaccount).")
def accounts_create(friendly_name: str, parent: str | None) -> None:
    """Create an account; prints its SID and auth token (shown once)."""

    async def go(rt: Any) -> dict[str, str]:
        if parent:  # the API's rules: a top-level parent, within its subaccount limit
            row, token = await rt.accounts.create_sub(await rt.accounts.principal_of(parent), friendly_name)
        else:
            row, token = await rt.accounts.create(friendly_name)
        return {"sid": row.sid, "auth_token": token, "parent_sid": row.parent_sid or ""}

    _out(_run(go))


@accounts.command("list")
@click.argument("account_sid")
def accounts_list(account_sid: str) -> None:
    """List ACCOUNT_SID and its subaccounts (never tokens)."""
    from ..store.records import PageQuery

    async def go(rt: Any) -> list[dict[str, Any]]:
        p = await rt.accounts.principal_of(account_sid)
        out: list[dict[str, Any]] = []
        q = PageQuery(size=1000)
        while True:
            page = await rt.accounts.list(p, None, None, q)
            out += [
                {"sid": a.sid, "parent_sid": a.parent_sid, "friendly_name": a.friendly_name, "status": a.status}
                for a in page.items
            ]
            if not page.has_more:
                return out
            q = PageQuery(size=1000, after=(page.items[-1].date_created, page.items[-1].sid))

    _out(_run(go))


@accounts.command("create-key")
@click.argument("account_sid")
@click.option("--friendly-name", default="")
def accounts_create_key(account_sid: str, friendly_name: str) -> None:
    """Create an API key (SK...) for ACCOUNT_SID; prints the secret once."""

    async def go(rt: Any) -> dict[str, str]:
        account = (await rt.accounts.principal_of(account_sid)).account
        row, secret = await rt.accounts.create_key(account, friendly_name)
        return {"sid": row.sid, "secret": secret, "account_sid": account.sid}

    _out(_run(go))


@main.group()
def sources() -> None:
    """Sources: tracking sources (write keys for the Segment-compatible tracking API, docs/segment.md) and
    Twilio object sources (Twilio's objects synced into the warehouse, docs/warehouse.md)."""


@sources.command("create")
@click.option("--account", "account_sid", required=True, help="Account SID the source belongs to.")
@click.option("--name", required=True, help="The source's name (unique in the account).")
@click.option("--rate-limit", type=int, default=None, help="Requests/s before 429 (default 1000).")
def sources_create(account_sid: str, name: str, rate_limit: int | None) -> None:
    """Create a source; prints its write key."""

    async def go(rt: Any) -> dict[str, Any]:
        account = (await rt.accounts.principal_of(account_sid)).account
        row, key = await rt.sources.create(account, name, rate_limit)
        return {"sid": row.sid, "name": row.name, "write_key": key, "rate_limit": row.rate_limit}

    _out(_run(go))


@sources.command("list")
@click.option("--account", "account_sid", required=True)
def sources_list(account_sid: str) -> None:
    """List the account's sources (write keys are not shown; `sources rotate` issues a new one)."""
    from ..store.records import PageQuery

    async def go(rt: Any) -> list[dict[str, Any]]:
        account = (await rt.accounts.principal_of(account_sid)).account
        page = await rt.sources.list(account, PageQuery(size=1000))
        out = [{"sid": r.sid, "type": "tracking", "name": r.name, "enabled": r.enabled, "rate_limit": r.rate_limit}
               for r in page.items]  # fmt: skip
        twilio = await rt.object_sources.list_sources(account, PageQuery(size=1000))
        out += [{"sid": r.sid, "type": "twilio", "name": r.friendly_name, "enabled": r.enabled,
                 "schema_name": r.schema_name, "schedule": r.schedule} for r in twilio.items]  # fmt: skip
        return out

    _out(_run(go))


@sources.command("rotate")
@click.option("--account", "account_sid", required=True)
@click.argument("source_sid")
def sources_rotate(account_sid: str, source_sid: str) -> None:
    """Give SOURCE_SID a new write key (the old one stops working at once); prints it."""

    async def go(rt: Any) -> dict[str, Any]:
        account = (await rt.accounts.principal_of(account_sid)).account
        row, key = await rt.sources.rotate(await rt.sources.get(account, source_sid))
        return {"sid": row.sid, "name": row.name, "write_key": key}

    _out(_run(go))


@sources.command("update")
@click.option("--account", "account_sid", required=True)
@click.option("--name", default=None, help="A new name.")
@click.option("--enable/--disable", "enabled", default=None, help="A disabled source's write key answers 403.")
@click.option("--rate-limit", type=int, default=None, help="Requests/s before 429.")
@click.argument("source_sid")
def sources_update(
    account_sid: str, name: str | None, enabled: bool | None, rate_limit: int | None, source_sid: str
) -> None:
    """Rename, enable or disable SOURCE_SID, or change its rate limit."""

    async def go(rt: Any) -> dict[str, Any]:
        account = (await rt.accounts.principal_of(account_sid)).account
        row = await rt.sources.update(await rt.sources.get(account, source_sid), name, enabled, rate_limit)
        return {"sid": row.sid, "name": row.name, "enabled": row.enabled, "rate_limit": row.rate_limit}

    _out(_run(go))


@sources.command("delete")
@click.option("--account", "account_sid", required=True)
@click.argument("source_sid")
def sources_delete(account_sid: str, source_sid: str) -> None:
    """Delete SOURCE_SID and the messages it received; its write key stops working. A Twilio source (OS…)
    goes with its runs and state; its tables stay in the warehouse."""

    async def go(rt: Any) -> dict[str, Any]:
        account = (await rt.accounts.principal_of(account_sid)).account
        if source_sid[:2].upper() == "OS":
            twilio = await rt.object_sources.get(account, source_sid)
            await rt.object_sources.delete(twilio)
            return {"sid": twilio.sid, "deleted": True}
        row = await rt.sources.get(account, source_sid)
        await rt.sources.delete(row)
        return {"sid": row.sid, "deleted": True}

    _out(_run(go))


@sources.command("messages")
@click.option("--account", "account_sid", required=True)
@click.option("--status", type=click.Choice(["accepted", "rejected"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.argument("source_sid")
def sources_messages(account_sid: str, status: str | None, limit: int, source_sid: str) -> None:
    """The source's debugger: its latest messages, newest first (rejected ones with their reason)."""
    from ..store.records import PageQuery
    from ..tracking.sources_api import message_view

    async def go(rt: Any) -> list[dict[str, Any]]:
        account = (await rt.accounts.principal_of(account_sid)).account
        page = await rt.sources.messages(await rt.sources.get(account, source_sid), status, PageQuery(size=limit))
        return [message_view(m) for m in page.items]

    _out(_run(go))


from . import object_sources as _object_sources  # noqa: E402  (registers its commands on the group above)

_object_sources.register(sources, _run)


@main.group()
def profiles() -> None:
    """Profiles built from tracking messages by identity resolution (docs/segment.md, Profiles)."""


@profiles.command("show")
@click.option("--account", "account_sid", required=True, help="Account SID the profile belongs to.")
@click.option(
    "--events",
    "n_events",
    default=10,
    show_default=True,
    type=click.IntRange(0, 100),
    help="How many recent events to show.",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("identifier")
def profiles_show(account_sid: str, n_events: int, output: str, identifier: str) -> None:
    """Show the profile holding IDENTIFIER (id_type:value, e.g. user_id:42 or email:jane@example.com):
    traits, external ids, recent events, merges."""
    from ..profiles.service import BadIdentifier

    async def go(rt: Any) -> dict[str, Any]:
        account = (await rt.accounts.principal_of(account_sid)).account
        try:
            p = await rt.profiles.find(account.sid, identifier)
        except BadIdentifier as exc:
            raise click.ClickException(str(exc)) from None
        if p is None:
            raise click.ClickException(f"No profile holds {identifier} in {account.sid}")
        ids, _ = await rt.profiles.external_ids(account.sid, p.id, None, 100, None)
        events, _ = await rt.profiles.events(account.sid, p.id, n_events, None) if n_events else ([], None)
        merges, _ = await rt.profiles.merges(account.sid, p.id, 100, None)
        view = rt.profiles.view(p)
        return {
            "id": p.id, "traits": view.traits, "phone": view.phone, "phone_valid": view.phone_valid,
            "opted_out": view.opted_out, "date_created": p.date_created, "date_updated": p.date_updated,
            "external_ids": [{"type": r["id_type"], "id": r["value"], "created_at": r["date_first_seen"]} for r in ids],
            "events": [{"type": e["type"], "name": e["name"], "timestamp": e["timestamp"],
                        "message_id": e["message_id"]} for e in events],
            "merges": [{k: m[k] for k in ("status", "winner", "loser", "id_type", "id_value", "reason",
                                          "date_created")} for m in merges],
        }  # fmt: skip

    out = _run(go)
    if output == "json":
        _out(out)
        return
    click.echo(f"profile {out['id']}  (created {out['date_created']}, updated {out['date_updated']})")
    phone = out["phone"] or "-"
    click.echo(f"phone {phone}{'' if out['phone_valid'] or not out['phone'] else ' (not valid E.164)'}"
               f"{'  opted out' if out['opted_out'] else ''}")  # fmt: skip
    click.echo("traits:")
    for k, v in sorted(out["traits"].items()):
        click.echo(f"  {k} = {json.dumps(v)}")
    click.echo("external ids:")
    for i in out["external_ids"]:
        click.echo(f"  {i['type']}:{i['id']}  (since {i['created_at']})")
    click.echo("recent events:")
    for e in out["events"]:
        click.echo(f"  {e['timestamp']}  {e['type']}{'  ' + e['name'] if e['name'] else ''}")
    click.echo("merges:")
    for m in out["merges"]:
        other = m["loser"] or "(new identifier)"
        click.echo(f"  {m['date_created']}  {m['status']}  {other} -> {m['winner']}  by {m['id_type']}:{m['id_value']}"
                   f"{'  (' + m['reason'] + ')' if m['reason'] else ''}")  # fmt: skip


@main.group()
def catalog() -> None:
    """Register your own event types and schema versions."""


@catalog.command("register-schema")
@click.option("--account", "account_sid", required=True, help="Owning account SID.")
@click.argument("schema_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def catalog_register_schema(account_sid: str, schema_id: str, path: Path) -> None:
    """Add the next version of SCHEMA_ID from the JSON Schema file PATH."""

    async def go(rt: Any) -> dict[str, Any]:
        p = await rt.accounts.principal_of(account_sid)
        try:
            doc = orjson.loads(path.read_bytes())  # refuses nesting past 1,024 instead of recursing
        except orjson.JSONDecodeError as exc:
            raise click.ClickException(f"{path} is not valid JSON: {exc}") from None
        row = await rt.control.register_schema_version(p, schema_id, doc)
        return {"id": row.schema_id, "schema_version": row.version}

    _out(_run(go))


@catalog.command("register-type")
@click.option("--account", "account_sid", required=True, help="Owning account SID.")
@click.option("--schema-id", required=True)
@click.option("--description", required=True)
@click.option("--status", default="available", show_default=True)
@click.argument("type_name")
def catalog_register_type(account_sid: str, schema_id: str, description: str, status: str, type_name: str) -> None:
    """Register (or update) event type TYPE_NAME using SCHEMA_ID."""

    async def go(rt: Any) -> dict[str, Any]:
        p = await rt.accounts.principal_of(account_sid)
        row = await rt.control.register_type(p, type_name, schema_id, description, status)
        return {"type": row.type, "schema_id": row.schema_id, "status": row.status}

    _out(_run(go))


@main.group()
def warehouse() -> None:
    """The warehouse (docs/warehouse.md): query it, and load accounts' events into it."""


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@warehouse.command("query")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--url", default=None, help="Warehouse URL (default: EVENTSTREAMS_WAREHOUSE_URL).")
@click.argument("sql")
def warehouse_query(output: str, url: str | None, sql: str) -> None:
    """Run SQL against the warehouse, read-only (a DuckDB file being loaded by another process is busy
    until that load ends)."""
    from ..warehouse.targets import WarehouseError, open_target

    try:
        target = open_target(url or Settings.from_env().warehouse_url, read_only=True)
        try:
            names, rows = target.query(sql)
        finally:
            target.close()
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the database's own message (a syntax error, a missing table)
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    if output == "json":
        click.echo(json.dumps([dict(zip(names, map(_cell, r), strict=True)) for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*names, show_lines=False)
    for r in rows:
        table.add_row(*("" if v is None else str(_cell(v)) for v in r))
    Console().print(table)
    click.echo(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")


def _events_warehouse(rt: Any) -> Any:
    return rt.events_warehouse


@warehouse.command("events")
@click.option("--account", "account_sid", required=True, help="Account SID whose events are loaded.")
@click.option("--schema", "schema_name", default=None, help="Warehouse schema of its tables (needed the first time).")
@click.option("--enable/--disable", "enabled", default=None, help="Load on schedule or not (new: enabled).")
@click.option(
    "--interval",
    type=click.IntRange(1),
    default=None,
    help="Seconds between scheduled loads (default 3600).",
)
def warehouse_events(account_sid: str, schema_name: str | None, enabled: bool | None, interval: int | None) -> None:
    """Create or change the account's events warehouse: its tracking messages and events, loaded into
    Segment's tables in SCHEMA."""
    from ..store.errors import Conflict

    async def go(rt: Any) -> dict[str, Any]:
        account = (await rt.accounts.principal_of(account_sid)).account
        try:
            row = await _events_warehouse(rt).configure(account.sid, schema_name, enabled, interval)
        except (Conflict, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        return {k: getattr(row, k) for k in ("sid", "account_sid", "schema_name", "enabled", "interval_seconds",
                                             "tracking_seq", "events_seq", "rows_loaded", "last_run_at",
                                             "last_error")}  # fmt: skip

    _out(_run(go))


@warehouse.command("load-events")
@click.option("--account", "account_sid", required=True)
def warehouse_load_events(account_sid: str) -> None:
    """Load the account's new tracking messages and events into its events warehouse now."""
    from dataclasses import asdict

    from ..warehouse.targets import WarehouseError

    async def go(rt: Any) -> dict[str, Any]:
        account = (await rt.accounts.principal_of(account_sid)).account
        try:
            return asdict(await _events_warehouse(rt).run_once(account.sid))
        except WarehouseError as exc:
            raise click.ClickException(str(exc)) from None

    _out(_run(go))


from .settings import settings as _settings  # noqa: E402  (a command of its own module)

main.add_command(_settings)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
