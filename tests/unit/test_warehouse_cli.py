"""`eventstreams warehouse query` (server-side, the warehouse file directly)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner
from cryptography.fernet import Fernet

from eventstreams.cli.main import main
from eventstreams.config import Settings
from eventstreams.runtime import build_runtime


def _loaded(env: dict[str, str]) -> None:
    async def go() -> None:
        rt = await build_runtime(Settings.from_env(env))
        try:
            row, _ = await rt.accounts.create("cli")
            await rt.ingest.record(row.sid, [
                {"type": "track", "userId": "42", "event": "SMS Delivered", "messageId": "m1",
                 "properties": {"to": "+14155550100", "segments": 2}},
                {"type": "identify", "userId": "42", "messageId": "m2", "traits": {"firstName": "Ada"}},
            ])  # fmt: skip
            await rt.events_warehouse.configure(row.sid, "app")
            await rt.events_warehouse.run_once(row.sid)
        finally:
            await rt.close()

    asyncio.run(go())


def test_query(tmp_path: Path) -> None:
    env = {"EVENTSTREAMS_DATABASE_URL": f"sqlite:///{tmp_path}/main.db", "EVENTSTREAMS_DATA_DIR": str(tmp_path),
           "EVENTSTREAMS_SECRET_KEY": Fernet.generate_key().decode(), "EVENTSTREAMS_CONFIG": "",
           "EVENTSTREAMS_WAREHOUSE_URL": f"duckdb:///{tmp_path}/wh.duckdb"}  # fmt: skip
    _loaded(env)
    run = CliRunner().invoke
    js = run(main, ["warehouse", "query", "-o", "json", "SELECT id, segments, received_at FROM app.sms_delivered"],
             env=env)  # fmt: skip
    assert js.exit_code == 0, js.output
    (row,) = json.loads(js.output)
    assert row["id"] == "m1" and row["segments"] == 2 and row["received_at"].endswith("+00:00")
    table = run(main, ["warehouse", "query", "SELECT id, first_name FROM app.users"], env=env)
    assert table.exit_code == 0 and "Ada" in table.output and "1 row" in table.output
    wrong = run(main, ["warehouse", "query", "SELECT * FROM app.nothing"], env=env)
    assert wrong.exit_code != 0 and "nothing" in wrong.output
