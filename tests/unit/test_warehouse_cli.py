"""`eventstreams warehouse events | load-events | query`: thin commands over the events warehouse."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner
from cryptography.fernet import Fernet

from eventstreams.cli.main import main
from eventstreams.config import Settings
from eventstreams.runtime import build_runtime


def _seed(env: dict[str, str]) -> str:
    async def go() -> str:
        rt = await build_runtime(Settings.from_env(env))
        try:
            row, _ = await rt.accounts.create("cli")
            await rt.ingest.record(row.sid, [
                {"type": "track", "userId": "42", "event": "SMS Delivered", "messageId": "m1",
                 "properties": {"to": "+14155550100", "segments": 2}},
                {"type": "identify", "userId": "42", "messageId": "m2", "traits": {"firstName": "Ada"}},
            ])  # fmt: skip
            return row.sid
        finally:
            await rt.close()

    return asyncio.run(go())


def test_configure_load_and_query(tmp_path: Path) -> None:
    env = {"EVENTSTREAMS_DATABASE_URL": f"sqlite:///{tmp_path}/main.db", "EVENTSTREAMS_DATA_DIR": str(tmp_path),
           "EVENTSTREAMS_SECRET_KEY": Fernet.generate_key().decode(),
           "EVENTSTREAMS_WAREHOUSE_URL": f"duckdb:///{tmp_path}/wh.duckdb"}  # fmt: skip
    sid = _seed(env)
    run = CliRunner().invoke
    missing = run(main, ["warehouse", "events", "--account", sid], env=env)
    assert missing.exit_code != 0 and "needs a schema name" in missing.output
    bad = run(main, ["warehouse", "events", "--account", sid, "--schema", "No-Way"], env=env)
    assert bad.exit_code != 0 and "invalid warehouse schema name" in bad.output
    made = run(main, ["warehouse", "events", "--account", sid, "--schema", "app", "--interval", "600"], env=env)
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["schema_name"] == "app" and json.loads(made.output)["interval_seconds"] == 600
    off = run(main, ["warehouse", "events", "--account", sid, "--disable"], env=env)
    assert json.loads(off.output)["enabled"] is False and json.loads(off.output)["interval_seconds"] == 600

    loaded = run(main, ["warehouse", "load-events", "--account", sid], env=env)
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.output)["tables"] == {"tracks": 1, "sms_delivered": 1, "identifies": 1, "users": 1}

    js = run(main, ["warehouse", "query", "-o", "json", "SELECT id, segments, received_at FROM app.sms_delivered"],
             env=env)  # fmt: skip
    assert js.exit_code == 0, js.output
    (row,) = json.loads(js.output)
    assert row["id"] == "m1" and row["segments"] == 2 and row["received_at"].endswith("+00:00")
    table = run(main, ["warehouse", "query", "SELECT id, first_name FROM app.users"], env=env)
    assert table.exit_code == 0 and "Ada" in table.output and "1 row" in table.output
    wrong = run(main, ["warehouse", "query", "SELECT * FROM app.nothing"], env=env)
    assert wrong.exit_code != 0 and "nothing" in wrong.output
