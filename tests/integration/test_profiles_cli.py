"""`eventstreams profiles show`: the Profile API, read over HTTP with the CLI's credentials."""

from __future__ import annotations

import json

from tests.clihelp import cli_env, run_cli
from tests.conftest import Server


def test_profiles_show_text_and_json(server: Server) -> None:
    sid, token = server.new_account("profiles cli")
    batch = [
        (1, {"type": "track", "anonymousId": "a1", "event": "Viewed", "messageId": "m1",
             "timestamp": "2026-03-01T10:00:01.000Z"}),
        (2, {"type": "identify", "userId": "42", "anonymousId": "a2", "messageId": "m2",
             "timestamp": "2026-03-01T10:00:02.000Z", "traits": {"first_name": "Ada", "phone": "12"}}),
        (3, {"type": "alias", "userId": "42", "previousId": "a1", "messageId": "m3",
             "timestamp": "2026-03-01T10:00:03.000Z"}),
    ]  # fmt: skip
    rt = server.services
    server.call(rt.store.db.run(lambda tx: rt.profiles.resolve_tx(tx, sid, batch), write=True))
    env = cli_env(server.url, sid, token)
    text = run_cli(["profiles", "show", "user_id:42"], env)
    assert text.returncode == 0, text.stderr
    assert 'first_name = "Ada"' in text.stdout and "anonymous_id:a1" in text.stdout
    assert "merged" in text.stdout and "Viewed" in text.stdout
    js = run_cli(["profiles", "show", "anonymous_id:a1", "--account", sid, "-o", "json"], env)
    assert js.returncode == 0, js.stderr
    out = json.loads(js.stdout)
    assert out["traits"] == {"first_name": "Ada", "phone": "12"}
    assert [e["type"] for e in out["events"]] == ["alias", "identify", "track"]
    assert [(m["status"], m["id_type"], m["id_value"]) for m in out["merges"]] == [("merged", "anonymous_id", "a1")]
    missing = run_cli(["profiles", "show", "user_id:nobody"], env)
    assert missing.returncode == 1 and "Profile was not found" in missing.stderr
    bad = run_cli(["profiles", "show", "nocolon"], env)
    assert bad.returncode == 1 and "nocolon" in bad.stderr
