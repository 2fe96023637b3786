"""``eventstreams settings``: every setting, its variable, default and meaning (generated from config.py)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from ..config import documented, markdown_table, replace_table, text_table
from .output import output_option, render


@click.command("settings")
@click.option("--markdown", is_flag=True, help="Print the Markdown table README.md holds.")
@click.option(
    "--update",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Rewrite the table between the settings markers of this file (README.md) instead of printing.",
)
@output_option
def settings(markdown: bool, update: Path | None, output: str) -> None:
    """List every setting: environment variable, default, meaning (also keys of eventstreams.toml); -o json
    gives each as {"env", "key", "default", "doc"} (Markdown as in the table)."""
    if update is not None:
        try:
            update.write_text(replace_table(update.read_text()))
        except ValueError:
            raise click.ClickException(f"{update} has no settings table markers") from None
        return
    if output == "json":
        render([asdict(d) for d in documented()], "json")
        return
    click.echo(markdown_table() if markdown else text_table(), nl=False)
