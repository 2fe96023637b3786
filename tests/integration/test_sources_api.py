"""The tracking sources API (/v1/Sources, Twilio-style JSON) and its CLI, on both backends: the
write key shown once, rotation and disabling seen by /v1/track at once, accounts isolated, Twilio's
paging and errors, and the debugger listing what a rejected message carried and why."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from segment.analytics import Client as SegmentClient

from tests.clihelp import cli_env, run_cli
from tests.conftest import Server
from tests.integration.test_fuzz_openapi import twilio_error_problem

Auth = tuple[str, str]


class _Api(requests.Session):
    """A session against the server: paths relative to it (a full URL, as in meta, passes through)."""

    def __init__(self, base: str, auth: Auth, headers: dict[str, str]) -> None:
        super().__init__()
        self.base, self.auth = base, auth
        self.headers.update(headers)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        url = url.decode() if isinstance(url, bytes) else url
        kwargs.setdefault("timeout", 10)
        return super().request(method, url if url.startswith("http") else self.base + url, *args, **kwargs)


def _api(srv: Server, auth: Auth, **headers: str) -> _Api:
    return _Api(srv.url, auth, headers)


def _track(srv: Server, key: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.post(f"{srv.url}/v1/track", json=body or {"userId": "42", "event": "Signed Up"},
                         auth=(key, ""), timeout=10)  # fmt: skip


def _error(r: requests.Response, status: int, code: int) -> str:
    """The message of a Twilio error answer with ``status`` and ``code``."""
    assert (r.status_code, r.json().get("code")) == (status, code), r.text
    assert twilio_error_problem(r) is None, r.text
    message: str = r.json()["message"]
    return message


def _stored_row(srv: Server, sid: str) -> dict[str, Any]:
    row = srv.call(srv.services.store.db.run(lambda tx: tx.one("SELECT * FROM tracking_sources WHERE sid = :s", s=sid)))
    assert row is not None
    return dict(row)


def test_source_lifecycle_and_the_write_key_shown_once(server: Server) -> None:
    auth = server.new_account("Sources")
    with _api(server, auth) as api:
        r = api.post("/v1/Sources", data={"Name": "web", "RateLimit": "50"})
        assert r.status_code == 201, r.text
        created = r.json()
        sid, key = created["sid"], created["write_key"]
        assert sid.startswith("TS") and created["account_sid"] == auth[0]
        assert (created["name"], created["enabled"], created["rate_limit"]) == ("web", True, 50)
        assert created["url"] == f"{server.url}/v1/Sources/{sid}"
        assert _track(server, key).status_code == 200

        # never shown again: fetch, list, update
        fetched = api.get(f"/v1/Sources/{sid}").json()
        listed = api.get("/v1/Sources").json()
        updated = api.post(f"/v1/Sources/{sid}", data={"Name": "web-prod", "RateLimit": "75"}).json()
        for body in (fetched, listed, updated):
            assert key not in json.dumps(body)
        assert "write_key" not in fetched and "write_key" not in updated and "write_key" not in listed["sources"][0]
        assert [s["sid"] for s in listed["sources"]] == [sid] and listed["meta"]["key"] == "sources"
        assert (updated["name"], updated["rate_limit"], updated["enabled"]) == ("web-prod", 75, True)

        # at rest: the key's SHA-256 and the key sealed, nothing in clear
        stored = _stored_row(server, sid)
        assert stored["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
        assert stored["key_sealed"] != key and server.services.box.open(stored["key_sealed"]) == key
        assert not any(key in str(v) for v in stored.values())

        # disabled: /v1/track answers 403 source_disabled at once; enabled again, it accepts again
        assert api.post(f"/v1/Sources/{sid}", data={"Enabled": "false"}).json()["enabled"] is False
        r = _track(server, key)
        assert (r.status_code, r.json()["code"]) == (403, "source_disabled")
        assert api.post(f"/v1/Sources/{sid}", data={"Enabled": "true"}).json()["enabled"] is True
        assert _track(server, key).status_code == 200

        # rotation: a new key once; the old one stops at once, the new one works with the official client
        r = api.post(f"/v1/Sources/{sid}/WriteKey")
        assert r.status_code == 201, r.text
        new_key = r.json()["write_key"]
        assert new_key != key and r.json()["sid"] == sid and r.json()["name"] == "web-prod"
        r = _track(server, key)
        assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
        errors: list[Any] = []
        client = SegmentClient(new_key, host=server.url, sync_mode=True, on_error=lambda e, b: errors.append(e))
        client.track("42", "Rotated")
        assert errors == []
        assert new_key not in api.get(f"/v1/Sources/{sid}").text
        assert _stored_row(server, sid)["key_hash"] == hashlib.sha256(new_key.encode()).hexdigest()

        # deleted: gone from the API, and its key authenticates nothing
        r = api.delete(f"/v1/Sources/{sid}")
        assert r.status_code == 204 and r.content == b""
        _error(api.get(f"/v1/Sources/{sid}"), 404, 20404)
        _error(api.delete(f"/v1/Sources/{sid}"), 404, 20404)
        assert api.get("/v1/Sources").json()["sources"] == []
        assert _track(server, new_key).status_code == 401


def test_an_account_never_sees_another_accounts_sources(server: Server) -> None:
    a, b = server.new_account("A"), server.new_account("B")
    with _api(server, a) as api_a, _api(server, b) as api_b:
        src = api_a.post("/v1/Sources", data={"Name": "mine"}).json()
        sid = src["sid"]
        item = f"/v1/Sources/{sid}"
        _error(api_b.get(item), 404, 20404)
        _error(api_b.post(item, data={"Enabled": "false"}), 404, 20404)
        _error(api_b.post(f"{item}/WriteKey"), 404, 20404)
        _error(api_b.get(f"{item}/Messages"), 404, 20404)
        _error(api_b.delete(item), 404, 20404)
        assert api_b.get("/v1/Sources").json()["sources"] == []
        # same name in another account is fine: names are unique per account
        assert api_b.post("/v1/Sources", data={"Name": "mine"}).status_code == 201
        # untouched by B's attempts
        assert api_a.get(item).json()["enabled"] is True
        assert _track(server, src["write_key"]).status_code == 200
    # no credentials, or wrong ones: 401 in Twilio's shape
    _error(requests.get(f"{server.url}/v1/Sources", timeout=10), 401, 20003)
    _error(requests.get(f"{server.url}{item}", auth=(a[0], "wrong"), timeout=10), 401, 20003)


def test_api_keys_and_subaccounts(server: Server) -> None:
    parent = server.new_account("Parent")
    sub_sid, sub_token = server.new_account("Sub", parent=parent[0])
    account = server.call(server.services.store.accounts.get(parent[0]))
    key_row, secret = server.call(server.services.accounts.create_key(account, "k"))
    with _api(server, (key_row.sid, secret)) as by_key:
        assert by_key.post("/v1/Sources", data={"Name": "by-key"}).status_code == 201
        assert [s["name"] for s in by_key.get("/v1/Sources").json()["sources"]] == ["by-key"]
    # the parent acts on its subaccount (as on /v1/Sinks); the source is the subaccount's
    with _api(server, parent, **{"X-Eventstreams-Account": sub_sid}) as as_sub:
        r = as_sub.post("/v1/Sources", data={"Name": "sub-web"})
        assert r.status_code == 201 and r.json()["account_sid"] == sub_sid, r.text
        sid = r.json()["sid"]
    with _api(server, (sub_sid, sub_token)) as sub, _api(server, parent) as own:
        assert [s["sid"] for s in sub.get("/v1/Sources").json()["sources"]] == [sid]
        _error(own.get(f"/v1/Sources/{sid}"), 404, 20404)
        assert [s["name"] for s in own.get("/v1/Sources").json()["sources"]] == ["by-key"]


def _forged(key: list[Any]) -> str:
    """A PageToken as the server mints them (unsigned), holding ``key``."""
    return "PA" + base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _token(url: str | None) -> str:
    assert url is not None
    return parse_qs(urlsplit(url).query)["PageToken"][0]


def test_paging_with_page_size_and_page_token(server: Server) -> None:
    auth = server.new_account("Paging")
    with _api(server, auth) as api:
        sids = [api.post("/v1/Sources", data={"Name": f"s{i}"}).json()["sid"] for i in range(5)]
        seen: list[str] = []
        url: str | None = "/v1/Sources?PageSize=2"
        pages = []
        while url:
            body = api.get(url).json()
            pages.append(body)
            seen += [s["sid"] for s in body["sources"]]
            url = body["meta"]["next_page_url"]
        assert sorted(seen) == sorted(sids) and len(seen) == 5 and len(pages) == 3
        meta = pages[1]["meta"]
        assert (meta["page"], meta["page_size"], meta["key"]) == (1, 2, "sources")
        assert meta["first_page_url"] == f"{server.url}/v1/Sources?PageSize=2&Page=0"
        assert pages[0]["meta"]["previous_page_url"] is None
        back = api.get(pages[1]["meta"]["previous_page_url"]).json()
        assert [s["sid"] for s in back["sources"]] == [s["sid"] for s in pages[0]["sources"]]
        assert _token(pages[0]["meta"]["next_page_url"])
        # a token of another list's shape (the debugger's), or garbage, is Twilio's pagination 400
        _error(api.get("/v1/Sources", params={"PageToken": _forged(["a", 7])}), 400, 91002)
        _error(api.get("/v1/Sources", params={"PageToken": "nonsense"}), 400, 91002)
        _error(api.get("/v1/Sources", params={"PageSize": "0"}), 400, 91002)


@pytest.mark.parametrize(
    ("path", "data", "needle"),
    [
        ("/v1/Sources", {}, "Missing required parameter Name"),
        ("/v1/Sources", {"Name": ""}, "Name must be"),
        ("/v1/Sources", {"Name": "-dash"}, "Name must be"),
        ("/v1/Sources", {"Name": "x" * 65}, "Name must be"),
        ("/v1/Sources", {"Name": "web\n"}, "Name must be"),
        ("/v1/Sources", {"Name": "EventStreams"}, "reserved for eventstreams' own messages"),
        ("/v1/Sources", {"Name": "ok", "RateLimit": "0"}, "RateLimit must be between 1 and 100000"),
        ("/v1/Sources", {"Name": "ok", "RateLimit": "100001"}, "RateLimit must be between 1 and 100000"),
        ("/v1/Sources", {"Name": "ok", "RateLimit": "9" * 40}, "RateLimit must be between 1 and 100000"),
        ("/v1/Sources", {"Name": "ok", "RateLimit": "fast"}, "RateLimit must be an integer"),
        ("/v1/Sources", {"Name": "ok", "Enabled": "true"}, "Unknown parameter 'Enabled'"),
        ("{item}", {"RateLimit": "-1"}, "RateLimit must be between 1 and 100000"),
        ("{item}", {"Enabled": "maybe"}, "Enabled must be true or false"),
        ("{item}", {"Name": "a/b"}, "Name must be"),
        ("{item}", {"WriteKey": "mine"}, "Unknown parameter 'WriteKey'"),
        ("{item}/WriteKey", {"Name": "x"}, "Unknown parameter 'Name'"),
    ],
)
def test_bad_input_is_a_twilio_400(server: Server, path: str, data: dict[str, str], needle: str) -> None:
    auth = server.new_account("Bad input")
    with _api(server, auth) as api:
        sid = api.post("/v1/Sources", data={"Name": "existing"}).json()["sid"]
        message = _error(api.post(path.format(item=f"/v1/Sources/{sid}"), data=data), 400, 20001)
        assert needle in message, message
        assert api.get(f"/v1/Sources/{sid}").json()["name"] == "existing"  # nothing changed


def test_conflicts_bodies_and_unknown_sids(server: Server) -> None:
    auth = server.new_account("Conflicts")
    with _api(server, auth) as api:
        api.post("/v1/Sources", data={"Name": "a"})
        sid = api.post("/v1/Sources", data={"Name": "b"}).json()["sid"]
        assert "already exists" in _error(api.post("/v1/Sources", data={"Name": "a"}), 409, 20409)
        assert "already exists" in _error(api.post(f"/v1/Sources/{sid}", data={"Name": "a"}), 409, 20409)
        r = api.post("/v1/Sources", data=b'{"Name": "j"}', headers={"Content-Type": "application/json"})
        assert "x-www-form-urlencoded" in _error(r, 400, 20001)
        _error(api.post("/v1/Sources?Name=q"), 400, 20001)  # parameters belong in the body
        _error(api.get("/v1/Sources", params={"Name": "a"}), 400, 20001)
        for bad in ("TS" + "0" * 32, "DG" + sid[2:], "nope", sid + "0"):
            _error(api.get(f"/v1/Sources/{bad}"), 404, 20404)
        assert api.get(f"/v1/Sources/TS{sid[2:].upper()}").json()["sid"] == sid  # hex in any case, as Twilio
        _error(api.request("PUT", f"/v1/Sources/{sid}"), 405, 20004)


def test_debugger_shows_rejected_messages_and_why(server: Server) -> None:
    auth = server.new_account("Debugger")
    with _api(server, auth) as api:
        src = api.post("/v1/Sources", data={"Name": "app"}).json()
        sid, key = src["sid"], src["write_key"]
        client = SegmentClient(key, host=server.url, sync_mode=True)
        client.identify("42", {"first_name": "Ada"})
        # neither userId nor anonymousId: rejected, and the answer says so
        r = _track(server, key, {"event": "Cart Abandoned", "properties": {"total": 12.5}, "messageId": "m-bad"})
        assert r.status_code == 200 and (r.json()["rejected"], r.json()["reasons"]) == (1, ["no_user_anon_id"])
        client.track("42", "Checked Out", {"total": 3})

        rejected = api.get(f"/v1/Sources/{sid}/Messages", params={"Status": "rejected"}).json()
        (m,) = rejected["messages"]
        assert (m["message_id"], m["type"], m["status"], m["reason"]) == ("m-bad", "track", "rejected",
                                                                          "no_user_anon_id")  # fmt: skip
        assert m["payload"]["event"] == "Cart Abandoned" and m["payload"]["properties"] == {"total": 12.5}
        assert m["received_at"].endswith("Z") and m["source_sid"] == sid and m["account_sid"] == auth[0]
        assert rejected["meta"]["key"] == "messages" and "Status=rejected" in rejected["meta"]["url"]

        accepted = api.get(f"/v1/Sources/{sid}/Messages", params={"Status": "accepted"}).json()["messages"]
        assert [(x["type"], x["reason"]) for x in accepted] == [("track", None), ("identify", None)]  # newest first
        assert accepted[0]["payload"]["event"] == "Checked Out"

        # every message, newest first, one per page
        got, url = [], f"/v1/Sources/{sid}/Messages?PageSize=1"
        while url:
            body = api.get(url).json()
            got += [x["status"] for x in body["messages"]]
            url = body["meta"]["next_page_url"]
        assert got == ["accepted", "rejected", "accepted"]

        assert "Status must be one of accepted, rejected" in _error(
            api.get(f"/v1/Sources/{sid}/Messages", params={"Status": "dropped"}), 400, 20001
        )
        # a token minted by the sources list (date, sid) is not one of this list's (seq)
        _error(api.get(f"/v1/Sources/{sid}/Messages", params={"PageToken": _forged(["a", "x", sid])}), 400, 91002)


def test_cli_manages_sources_through_the_api(server: Server) -> None:
    sid, token = server.new_account("CLI")
    env = cli_env(server.url, sid, token)

    def cli(*args: str, ok: bool = True) -> Any:
        r = run_cli(["sources", *args, "--account", sid, "-o", "json"], env)
        assert (r.returncode == 0) is ok, r.stderr
        return json.loads(r.stdout) if ok else r.stderr

    created = cli("create", "--name", "cli-web", "--rate-limit", "20")
    source, key = created["sid"], created["write_key"]
    assert "RateLimit must be between 1 and 100000" in cli("update", source, "--rate-limit", "0", ok=False)
    assert cli("update", source, "--disable", "--name", "cli-web-2") == {
        "sid": source, "name": "cli-web-2", "enabled": False, "rate_limit": 20}  # fmt: skip
    assert _track(server, key).status_code == 403
    cli("update", source, "--enable")
    assert _track(server, key, {"event": "No Id"}).json()["rejected"] == 1
    (m,) = cli("messages", source, "--status", "rejected")
    assert (m["reason"], m["payload"]["event"]) == ("no_user_anon_id", "No Id")
    assert cli("messages", source, "--status", "accepted") == []
    assert [s["name"] for s in cli("list")] == ["cli-web-2"]
    new_key = cli("rotate", source)["write_key"]
    assert _track(server, key).status_code == 401 and _track(server, new_key).status_code == 200
    assert cli("delete", source) == {"sid": source, "deleted": True}
    assert cli("list") == [] and "was not found" in cli("delete", source, ok=False)
    assert _track(server, new_key).status_code == 401
