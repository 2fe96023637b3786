"""Rendering for every HTTP command: a rich table by default, ``-o json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

output_option = click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
    help="table for people, json for scripts.",
)  # fmt: skip


account_option = click.option(
    "--account", "account_sid", default=None,
    help="Act on this (sub)account with the profile's credentials (default: the profile's account).",
)  # fmt: skip


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def render(data: Any, output: str, columns: Sequence[str] | None = None) -> None:
    """JSON as the API answered it, or a table of ``columns`` (a record is shown as field/value rows)."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    if isinstance(data, dict):
        table = Table("field", "value", show_header=False)
        for k in columns or list(data):
            if k in data:
                table.add_row(k, _cell(data[k]))
        console.print(table)
        return
    rows = list(data)
    cols = list(columns or (list(rows[0]) if rows else []))
    table = Table(*cols)
    for r in rows:
        table.add_row(*(_cell(r.get(c)) for c in cols))
    console.print(table)
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", style="dim")


def removed(sid: str, output: str) -> None:
    """What every ``remove`` prints. The API answers 204 with no body; like the ``twilio`` CLI, people get a
    line on stderr ("removed SID"); ``-o json`` prints ``{"sid": SID, "deleted": true}`` on stdout instead, so
    a script can check what went (docs/cli.md)."""
    if output == "json":
        render({"sid": sid, "deleted": True}, "json")
    else:
        click.echo(f"removed {sid}", err=True)
