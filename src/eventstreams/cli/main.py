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

from ..config import Settings

T = TypeVar("T")


def _run(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the services against the configured store, run ``fn``, close."""
    from ..api.app import build_services

    async def go() -> T:
        svc = await build_services(Settings.from_env())
        try:
            return await fn(svc)
        finally:
            await svc.store.close()

    return asyncio.run(go())


def _out(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


@click.group()
@click.version_option(package_name="eventstreams")
def main() -> None:
    """eventstreams: self-hosted, Twilio-compatible Event Streams."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
    """Run delivery only (no HTTP API). Start several against one PostgreSQL to scale out."""
    import signal

    from ..api.app import build_services, start_delivery

    settings = Settings.from_env()
    if settings.database_url.startswith("sqlite"):
        click.echo("note: on SQLite `eventstreams serve` already delivers; run workers with PostgreSQL", err=True)

    async def go() -> None:
        svc = await build_services(settings)
        await start_delivery(svc)
        assert svc.delivery is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger("eventstreams").info("worker %s delivering", svc.delivery.dispatcher.worker_id)
        await stop.wait()
        await svc.delivery.stop()
        await svc.store.close()

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
    from ..store.records import PageQuery

    async def go(svc: Any) -> list[dict[str, Any]]:
        from ..api.delivery import dead_letter_view

        out: list[dict[str, Any]] = []
        q = PageQuery(size=1000)
        while True:
            page = await svc.store.dead_letters.list(account_sid, sink_sid, q)
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
    from .. import clock
    from ..api.delivery import _time_ms
    from ..errors import TwilioError

    async def go(svc: Any) -> dict[str, Any]:
        try:
            lo, hi = _time_ms("--since", since), _time_ms("--until", until)
        except TwilioError as exc:
            raise click.ClickException(exc.message) from None
        if await svc.store.sinks.get(account_sid, sink_sid) is None:
            raise click.ClickException(f"no sink {sink_sid} in account {account_sid}")
        now_ms = int(clock.now() * 1000)
        ids = list(event_ids) or None
        if dead:
            n, _ = await svc.store.deliveries.replay_dead_letters(account_sid, sink_sid, ids, now_ms)
        elif ids or lo is not None or hi is not None:
            n = await svc.store.deliveries.replay_events(account_sid, sink_sid, ids, lo, hi, now_ms)
        else:
            raise click.ClickException("say what to replay: --dead-letters, --event-id or --since/--until")
        return {"sink_sid": sink_sid, "replayed": n}

    _out(_run(go))


@main.command()
def migrate() -> None:
    """Apply pending schema migrations and load the built-in catalogue."""
    from ..catalog import builtin_schema_versions, builtin_types
    from ..store import open_store

    async def go() -> list[str]:
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


@main.group()
def accounts() -> None:
    """Manage accounts and API keys."""


@accounts.command("create")
@click.option("--friendly-name", default="Account", show_default=True)
@click.option("--parent", default=None, help="Parent account SID (creates a subaccount).")
def accounts_create(friendly_name: str, parent: str | None) -> None:
    """Create an account; prints its SID and auth token (shown once)."""

    async def go(svc: Any) -> dict[str, str]:
        if parent and await svc.store.accounts.get(parent) is None:
            raise click.ClickException(f"no account {parent}")
        row, token = await svc.accounts.create(friendly_name, parent_sid=parent)
        return {"sid": row.sid, "auth_token": token, "parent_sid": row.parent_sid or ""}

    _out(_run(go))


@accounts.command("list")
@click.argument("account_sid")
def accounts_list(account_sid: str) -> None:
    """List ACCOUNT_SID and its subaccounts (never tokens)."""
    from ..store.records import PageQuery

    async def go(svc: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        q = PageQuery(size=1000)
        while True:
            page = await svc.store.accounts.list(account_sid, None, None, q)
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

    async def go(svc: Any) -> dict[str, str]:
        account = await svc.store.accounts.get(account_sid)
        if account is None:
            raise click.ClickException(f"no account {account_sid}")
        row, secret = await svc.accounts.create_key(account, friendly_name)
        return {"sid": row.sid, "secret": secret, "account_sid": account.sid}

    _out(_run(go))


@main.group()
def catalog() -> None:
    """Register your own event types and schema versions."""


def _principal(svc: Any, account_sid: str) -> Any:
    from ..domain.accounts import Principal

    async def get() -> Any:
        row = await svc.store.accounts.get(account_sid)
        if row is None:
            raise click.ClickException(f"no account {account_sid}")
        return Principal(row, row)

    return get()


@catalog.command("register-schema")
@click.option("--account", "account_sid", required=True, help="Owning account SID.")
@click.argument("schema_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def catalog_register_schema(account_sid: str, schema_id: str, path: Path) -> None:
    """Add the next version of SCHEMA_ID from the JSON Schema file PATH."""
    from ..errors import TwilioError

    async def go(svc: Any) -> dict[str, Any]:
        p = await _principal(svc, account_sid)
        try:
            doc = json.loads(path.read_text())
            row = await svc.control.register_schema_version(p, schema_id, doc)
        except (TwilioError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
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
    from ..errors import TwilioError

    async def go(svc: Any) -> dict[str, Any]:
        p = await _principal(svc, account_sid)
        try:
            row = await svc.control.register_type(p, type_name, schema_id, description, status)
        except TwilioError as exc:
            raise click.ClickException(exc.message) from None
        return {"type": row.type, "schema_id": row.schema_id, "status": row.status}

    _out(_run(go))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
