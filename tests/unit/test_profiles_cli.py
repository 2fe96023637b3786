"""`eventstreams profiles show`: the same domain service the Profiles API reads through."""

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
            batch = [
                (1, {"type": "track", "anonymousId": "a1", "event": "Viewed", "messageId": "m1",
                     "timestamp": "2026-03-01T10:00:01.000Z"}),
                (2, {"type": "identify", "userId": "42", "anonymousId": "a2", "messageId": "m2",
                     "timestamp": "2026-03-01T10:00:02.000Z", "traits": {"first_name": "Ada", "phone": "12"}}),
                (3, {"type": "alias", "userId": "42", "previousId": "a1", "messageId": "m3",
                     "timestamp": "2026-03-01T10:00:03.000Z"}),
            ]  # fmt: skip
            await rt.store.db.run(lambda tx: rt.profiles.resolve_tx(tx, row.sid, batch), write=True)
            return row.sid
        finally:
            await rt.close()

    return asyncio.run(go())


def test_profiles_show_text_and_json(tmp_path: Path) -> None:
    env = {"EVENTSTREAMS_DATABASE_URL": f"sqlite:///{tmp_path}/main.db", "EVENTSTREAMS_DATA_DIR": str(tmp_path),
           "EVENTSTREAMS_SECRET_KEY": Fernet.generate_key().decode()}  # fmt: skip
    sid = _seed(env)
    text = CliRunner().invoke(main, ["profiles", "show", "user_id:42", "--account", sid], env=env)
    assert text.exit_code == 0, text.output
    assert 'first_name = "Ada"' in text.output and "anonymous_id:a1" in text.output
    assert "phone 12 (not valid E.164)" in text.output and "merged" in text.output and "Viewed" in text.output
    js = CliRunner().invoke(main, ["profiles", "show", "anonymous_id:a1", "--account", sid, "-o", "json"], env=env)
    assert js.exit_code == 0, js.output
    out = json.loads(js.output)
    assert out["traits"] == {"first_name": "Ada", "phone": "12"} and out["phone_valid"] is False
    assert [e["type"] for e in out["events"]] == ["alias", "identify", "track"]
    assert [(m["status"], m["id_type"], m["id_value"]) for m in out["merges"]] == [("merged", "anonymous_id", "a1")]
    missing = CliRunner().invoke(main, ["profiles", "show", "user_id:nobody", "--account", sid], env=env)
    assert missing.exit_code != 0 and "No profile holds user_id:nobody" in missing.output
    bad = CliRunner().invoke(main, ["profiles", "show", "nocolon", "--account", sid], env=env)
    assert bad.exit_code != 0 and "is not an identifier" in bad.output
