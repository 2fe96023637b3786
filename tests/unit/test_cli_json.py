"""`-o json` on every command (docs/cli.md, "JSON output"): the command tree walked, the exempt commands the
ones docs/cli.md lists, and the server-side commands' JSON (migrate, accounts create, settings) parsed.
The HTTP commands' new JSON (removes, login, config use) is run against a server in
tests/integration/test_cli.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from eventstreams.cli.main import main
from eventstreams.config import documented

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

# The commands without `-o json`, each for a reason docs/cli.md gives: nothing here is a result to parse.
EXEMPT = {"serve", "worker", "sandbox", "demo", "completion"}


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    """Every command a user can run, by its full name: leaves, and groups that run on their own (`sandbox`)."""
    for name, cmd in sorted(group.commands.items()):
        here = (*path, name)
        if isinstance(cmd, click.Group):
            if cmd.invoke_without_command:
                yield " ".join(here), cmd
            yield from _commands(cmd, here)
        else:
            yield " ".join(here), cmd


def _accepts_json(cmd: click.Command, name: str) -> bool:
    opt = next((p for p in cmd.params if isinstance(p, click.Option) and "-o" in p.opts), None)
    if opt is None or "--output" not in opt.opts or not isinstance(opt.type, click.Choice):
        return False
    if "json" not in opt.type.choices or "table" not in opt.type.choices:
        return False
    # and the parser takes it: `-o json` parses to output="json" (arguments left out: resilient parsing)
    with cmd.make_context(name, ["-o", "json"], resilient_parsing=True) as ctx:
        return bool(ctx.params.get("output") == "json")


def test_every_command_but_the_exempt_accepts_o_json() -> None:
    tree = dict(_commands(main))
    assert len(tree) > 40 and EXEMPT <= set(tree)  # the walk saw the whole tree, exempt names included
    missing = sorted(n for n, cmd in tree.items() if n not in EXEMPT and not _accepts_json(cmd, n))
    assert missing == [], f"commands without -o json (add output_option, or exempt them in docs/cli.md): {missing}"
    needless = sorted(n for n in EXEMPT if _accepts_json(tree[n], n))
    assert needless == [], f"exempt yet taking -o json: {needless}"


def test_docs_list_exactly_the_exempt_commands() -> None:
    text = CLI_MD.read_text()
    section = text.split("### Commands without `-o json`", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"^\| `eventstreams ([a-z -]+?)`", section, re.M))
    assert listed == EXEMPT


@pytest.fixture()
def server_env(tmp_path: Path) -> dict[str, str | None]:
    """What the server-side commands read: a store of their own, no first account from the environment."""
    return {"EVENTSTREAMS_DATABASE_URL": f"sqlite:///{tmp_path}/es.db", "EVENTSTREAMS_DATA_DIR": str(tmp_path),
            "EVENTSTREAMS_SECRET_KEY": Fernet.generate_key().decode(), "EVENTSTREAMS_CONFIG": "",
            "EVENTSTREAMS_ACCOUNT_SID": None, "EVENTSTREAMS_AUTH_TOKEN": None}  # fmt: skip


def _json(args: list[str], env: dict[str, str | None]) -> object:
    r = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_migrate_json_lists_what_it_applied(server_env: dict[str, str | None]) -> None:
    first = _json(["migrate", "-o", "json"], server_env)
    assert isinstance(first, dict) and list(first) == ["applied"] and first["applied"]
    assert _json(["migrate", "-o", "json"], server_env) == {"applied": []}
    plain = CliRunner().invoke(main, ["migrate"], env=server_env)
    assert plain.exit_code == 0 and plain.stdout == "applied: nothing (up to date)\n"


def test_accounts_create_json_and_table(server_env: dict[str, str | None]) -> None:
    made = _json(["accounts", "create", "--friendly-name", "first", "-o", "json"], server_env)
    assert isinstance(made, dict) and set(made) == {"sid", "auth_token", "parent_sid"}
    assert made["sid"].startswith("AC") and len(made["auth_token"]) == 32 and made["parent_sid"] == ""
    sub = CliRunner().invoke(main, ["accounts", "create", "--parent", made["sid"]], env=server_env)
    assert sub.exit_code == 0, sub.output
    assert "parent_sid" in sub.stdout and made["sid"] in sub.stdout and not sub.stdout.lstrip().startswith("{")


def test_settings_json_is_the_table() -> None:
    doc = _json(["settings", "-o", "json"], {})
    assert isinstance(doc, list) and [d["env"] for d in doc] == [d.env for d in documented()]
    assert all(set(d) == {"env", "key", "default", "doc"} for d in doc)
