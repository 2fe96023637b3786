"""The ``eventstreams`` command. Server-side administration (serve, worker, migrate, the first account,
the sandbox, the warehouse) lives here and opens the store directly; everything else talks to a running
eventstreams over HTTP (cli/commands.py, cli/sources.py, cli/object_sources.py; docs/cli.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from ..config import ConfigError, Settings
from . import commands, sources
from .output import output_option as _output_option

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


class _Main(click.Group):
    """Exit codes scripts can trust (docs/cli.md): click's usage errors exit 1, not 2, because 2 means busy."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.UsageError as exc:
            exc.show()
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except ConfigError as exc:  # a setting that cannot be read: its name and the problem, no traceback
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Main)
@click.version_option(package_name="eventstreams")
@click.option("--profile", default=None, envvar="EVENTSTREAMS_PROFILE",
              help="Stored credentials to use (`eventstreams login --profile NAME`; or EVENTSTREAMS_PROFILE).")
def main(profile: str | None) -> None:
    """eventstreams: self-hosted, Twilio-compatible Event Streams.

    Commands talk to a running eventstreams with the credentials stored by `eventstreams login` (or
    EVENTSTREAMS_URL, EVENTSTREAMS_ACCOUNT_SID, EVENTSTREAMS_AUTH_TOKEN); serve, worker, migrate, accounts
    create, sandbox and warehouse run on the server and open its store."""
    from ..logs import configure as configure_logging  # JSON lines off a terminal, secrets redacted

    configure_logging()
    for noisy in ("httpx", "aiohttp.access"):  # a line per request: the CLI's and the demo receiver's
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option("--host", default=None, help="Listen address (default 127.0.0.1 or EVENTSTREAMS_HOST).")
@click.option("--port", default=None, type=int, help="Listen port (default 8080 or EVENTSTREAMS_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the HTTP API and the delivery (in processes of its own on Linux; EVENTSTREAMS_DELIVERY_PROCESS)."""
    import dataclasses

    import uvicorn

    from ..api.app import create_app

    settings = Settings.from_env()
    settings = dataclasses.replace(settings, host=host or settings.host, port=port or settings.port)
    settings.serve_deliverers()  # checked here, not in the server's start-up, so a bad count is a plain error
    if settings.delivery and settings.delivery_process:
        _shared_metrics_dir()  # the delivery process's numbers reach this process's /metrics
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=False, log_config=None)


@main.command()
def worker() -> None:
    """Run delivery and scheduled source syncs (no HTTP API). Start several against one PostgreSQL to scale out."""
    import signal

    from ..delivery.process import PARENT_ENV, follow_parent, watch_parent
    from ..runtime import build_runtime

    follow_parent()  # serve's delivery process ends with serve
    settings = Settings.from_env()
    if settings.database_url.startswith("sqlite") and not os.environ.get(PARENT_ENV):
        click.echo("note: on SQLite `eventstreams serve` already delivers; run workers with PostgreSQL", err=True)

    async def go() -> None:
        rt = await build_runtime(settings)
        await rt.start_delivery(here=True)
        if settings.source_syncs:
            await rt.start_syncs()
        assert rt.delivery is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        parent = asyncio.create_task(watch_parent(stop))
        logging.getLogger("eventstreams").info("worker %s delivering", rt.delivery.dispatcher.worker_id)
        await stop.wait()
        parent.cancel()
        await rt.close()

    _run_fast(go())


def _run_fast(main_coro: Awaitable[None]) -> None:
    """Run on uvloop when it is installed (it comes with uvicorn[standard], and serve runs on it): the
    delivery path's sockets and timers cost about half as much there."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency of uvicorn[standard]
        asyncio.run(main_coro)  # type: ignore[arg-type]
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main_coro)  # type: ignore[arg-type]


def _shared_metrics_dir() -> None:
    """A fresh PROMETHEUS_MULTIPROC_DIR for this serve and its delivery process, removed at exit, unless the
    operator set one (docs/operations.md)."""
    import atexit
    import shutil
    import tempfile

    from ..metrics import MULTIPROC_ENV

    if not os.environ.get(MULTIPROC_ENV):
        path = tempfile.mkdtemp(prefix="eventstreams-metrics-")
        os.environ[MULTIPROC_ENV] = path
        atexit.register(shutil.rmtree, path, True)


@main.command()
@_output_option
def migrate(output: str) -> None:
    """Apply pending schema migrations and load the built-in catalogue; -o json prints {"applied": [...]}."""
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
    if output == "json":
        _out({"applied": applied})
        return
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
    # log_config=None: uvicorn's lines go through logs.configure (JSON off a terminal), not its own format
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", access_log=False,
                log_config=None)


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
@_output_option
@click.option("--json", "as_json", is_flag=True, hidden=True, help="The same as -o json (the earlier spelling).")
def sandbox_seed(
    messages: int, calls: int, subaccounts: int, seed_value: int | None, now: str | None,
    account_sid: str | None, output: str, as_json: bool,
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
    if as_json or output == "json":
        _out(seeding.report_view(report))
    else:
        click.echo(seeding.report_text(report))


@main.group()
def accounts() -> None:
    """Accounts: `create` runs on the server (the first account); `list` and `create-key` use the API."""


@accounts.command("create")
@click.option("--friendly-name", default="Account", show_default=True)
@click.option("--parent", default=None, help="Parent account SID (creates a subaccount).")
@_output_option
def accounts_create(friendly_name: str, parent: str | None, output: str) -> None:
    """On the server: create an account in the store (the first one, or a subaccount of --parent); prints
    its SID and auth token (shown once). Then `eventstreams login` with them."""
    from .output import render


    async def go(rt: Any) -> dict[str, str]:
        if parent:  # the API's rules: a top-level parent, within its subaccount limit
            row, token = await rt.accounts.create_sub(await rt.accounts.principal_of(parent), friendly_name)
        else:
            row, token = await rt.accounts.create(friendly_name)
        return {"sid": row.sid, "auth_token": token, "parent_sid": row.parent_sid or ""}

    render(_run(go), output, ["sid", "auth_token", "parent_sid"])


@accounts.command("list")
@click.argument("account_sid", required=False)
@click.option("--limit", type=click.IntRange(1), default=None)
@_output_option
def accounts_list(account_sid: str | None, limit: int | None, output: str) -> None:
    """List the profile's account (or ACCOUNT_SID, a subaccount of it) and its subaccounts."""
    from .client import client
    from .output import render

    with client(account_sid) as c:
        rows = list(c.paginate("/2010-04-01/Accounts.json", "accounts", limit=limit))
    render(rows, output, ["sid", "owner_account_sid", "friendly_name", "status", "date_created"])


@accounts.command("create-key")
@click.argument("account_sid", required=False)
@click.option("--friendly-name", default="")
@_output_option
def accounts_create_key(account_sid: str | None, friendly_name: str, output: str) -> None:
    """Create an API key (SK...) for the profile's account (or ACCOUNT_SID, a subaccount of it); prints the
    secret once (also: `keys create`)."""
    from .client import client
    from .output import render

    with client() as c:
        path = f"/2010-04-01/Accounts/{account_sid or c.creds.account_sid}/Keys.json"
        render(c.request("POST", path, data={"FriendlyName": friendly_name}), output)


@main.group()
def warehouse() -> None:
    """The warehouse (docs/warehouse.md): `query` reads it directly (server-side); `events` and `load-events`
    configure and load the account's events warehouse over the HTTP API."""


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


from . import warehouse as _warehouse_http  # noqa: E402  (events / load-events: over the HTTP API)

_warehouse_http.register(warehouse)


commands.register(main)
sources.register(main)


@main.command()
@click.option("--port", type=int, default=None, help="The service's port (default: a free one).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Keep the data here (default: a temp dir, removed at the end).")
@click.option("--events", "n_events", type=click.IntRange(0), default=None, help="Stop after sending this many rounds.")
def demo(port: int | None, data_dir: str | None, n_events: int | None) -> None:
    """Start eventstreams with the sandbox, a sample webhook receiver, a tracking source, an SMS destination and
    a webhook sink; send track calls and sandbox messages and show events flowing live. Ctrl-C stops it all."""
    from .demo import run_demo

    sys.exit(run_demo(port, data_dir, n_events))


from .settings import settings as _settings  # noqa: E402  (a command of its own module)

main.add_command(_settings)


if __name__ == "__main__":  # pragma: no cover
    # named as the installed script is, so usage lines and _EVENTSTREAMS_COMPLETE match under `python -m` too
    main(prog_name="eventstreams")
