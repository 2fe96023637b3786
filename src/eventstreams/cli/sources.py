"""``eventstreams sources`` (tracking sources over /v1/Sources, Twilio object sources over /v1/ObjectSources)
and ``eventstreams profiles show`` (the Profile API), over HTTP."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from . import object_sources
from .client import client
from .output import account_option as _ACCOUNT
from .output import output_option, removed, render

_COLUMNS = ["sid", "type", "name", "enabled", "rate_limit", "schema_name", "schedule"]


def _is_twilio(sid: str) -> bool:
    return sid[:2].upper() == "OS"


def register(main: click.Group) -> None:
    @main.group()
    def sources() -> None:
        """Sources: tracking sources (write keys for the Segment-compatible tracking API, docs/segment.md) and
        Twilio object sources (Twilio's objects synced into the warehouse, docs/warehouse.md)."""

    @sources.command("create")
    @_ACCOUNT
    @click.option("--name", required=True, help="The source's name (unique in the account).")
    @click.option("--rate-limit", type=int, default=None, help="Requests/s before 429 (default 1000).")
    @output_option
    def sources_create(account_sid: str | None, name: str, rate_limit: int | None, output: str) -> None:
        """Create a tracking source; prints its write key (shown this once)."""
        data = {"Name": name} | ({"RateLimit": str(rate_limit)} if rate_limit is not None else {})
        with client(account_sid) as c:
            render(c.request("POST", "/v1/Sources", data=data), output, ["sid", "name", "write_key", "rate_limit"])

    @sources.command("list")
    @_ACCOUNT
    @output_option
    def sources_list(account_sid: str | None, output: str) -> None:
        """List the account's sources of both kinds (write keys are not shown; `sources rotate` issues one)."""
        with client(account_sid) as c:
            rows = [{"sid": r["sid"], "type": "tracking", "name": r["name"], "enabled": r["enabled"],
                     "rate_limit": r["rate_limit"]} for r in c.paginate("/v1/Sources", "sources")]  # fmt: skip
            rows += [{"sid": r["sid"], "type": "twilio", "name": r["friendly_name"], "enabled": r["enabled"],
                      "schema_name": r["schema_name"], "schedule": r["schedule"]}
                     for r in c.paginate("/v1/ObjectSources", "object_sources")]  # fmt: skip
        render(rows, output, _COLUMNS)

    @sources.command("fetch")
    @_ACCOUNT
    @click.argument("source_sid")
    @output_option
    def sources_fetch(account_sid: str | None, source_sid: str, output: str) -> None:
        """Fetch a source (a Twilio source OS… with each collection's cursor)."""
        path = "/v1/ObjectSources" if _is_twilio(source_sid) else "/v1/Sources"
        with client(account_sid) as c:
            render(c.request("GET", f"{path}/{quote(source_sid, safe='')}"), output)

    @sources.command("update")
    @_ACCOUNT
    @click.option("--name", default=None, help="A new name.")
    @click.option("--enable/--disable", "enabled", default=None, help="A disabled source's write key answers 403.")
    @click.option("--rate-limit", type=int, default=None, help="Requests/s before 429.")
    @click.argument("source_sid")
    @output_option
    def sources_update(account_sid: str | None, name: str | None, enabled: bool | None, rate_limit: int | None,
                       source_sid: str, output: str) -> None:  # fmt: skip
        """Rename, enable or disable tracking source SOURCE_SID, or change its rate limit."""
        data: dict[str, str] = {}
        if name is not None:
            data["Name"] = name
        if enabled is not None:
            data["Enabled"] = "true" if enabled else "false"
        if rate_limit is not None:
            data["RateLimit"] = str(rate_limit)
        with client(account_sid) as c:
            row = c.request("POST", f"/v1/Sources/{quote(source_sid, safe='')}", data=data)
        render({k: row[k] for k in ("sid", "name", "enabled", "rate_limit")}, output)

    @sources.command("rotate")
    @_ACCOUNT
    @click.argument("source_sid")
    @output_option
    def sources_rotate(account_sid: str | None, source_sid: str, output: str) -> None:
        """Give SOURCE_SID a new write key (the old one stops working at once); prints it."""
        with client(account_sid) as c:
            row = c.request("POST", f"/v1/Sources/{quote(source_sid, safe='')}/WriteKey")
        render({k: row[k] for k in ("sid", "name", "write_key")}, output)

    @sources.command("remove")
    @_ACCOUNT
    @click.argument("source_sid")
    @output_option
    def sources_remove(account_sid: str | None, source_sid: str, output: str) -> None:
        """Delete SOURCE_SID and the messages it received; its write key stops working. A Twilio source (OS…)
        goes with its runs and state; its tables stay in the warehouse."""
        path = "/v1/ObjectSources" if _is_twilio(source_sid) else "/v1/Sources"
        with client(account_sid) as c:
            c.request("DELETE", f"{path}/{quote(source_sid, safe='')}")
        removed(source_sid, output)

    sources.add_command(sources_remove, "delete")  # the earlier name keeps working

    @sources.command("messages")
    @_ACCOUNT
    @click.option("--status", type=click.Choice(["accepted", "rejected"]), default=None)
    @click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
    @click.argument("source_sid")
    @output_option
    def sources_messages(account_sid: str | None, status: str | None, limit: int, source_sid: str,
                         output: str) -> None:  # fmt: skip
        """The source's debugger: its latest messages, newest first (rejected ones with their reason)."""
        params = {"Status": status} if status else None
        with client(account_sid) as c:
            rows = list(c.paginate(f"/v1/Sources/{quote(source_sid, safe='')}/Messages", "messages", params, limit))
        if output == "json":
            render(rows, "json")
            return
        flat = [{**m, "event": m["payload"].get("event") or m["payload"].get("name") or ""} for m in rows]
        render(flat, "table", ["received_at", "type", "event", "status", "reason", "message_id"])

    object_sources.register(sources)

    @main.group()
    def profiles() -> None:
        """Profiles built from tracking messages by identity resolution (docs/segment.md, Profiles)."""

    @profiles.command("show")
    @_ACCOUNT
    @click.option("--events", "n_events", default=10, show_default=True, type=click.IntRange(0, 100),
                  help="How many recent events to show.")  # fmt: skip
    @click.option("-o", "--output", type=click.Choice(["table", "text", "json"]), default="table", show_default=True)
    @click.argument("identifier")
    def profiles_show(account_sid: str | None, n_events: int, output: str, identifier: str) -> None:
        """Show the profile holding IDENTIFIER (id_type:value, e.g. user_id:42 or email:jane@example.com):
        traits, external ids, recent events, merges."""
        with client(account_sid) as c:
            space = account_sid or c.creds.account_sid
            base = f"/v1/spaces/{space}/collections/users/profiles/{quote(identifier, safe=':')}"
            traits = c.request("GET", f"{base}/traits", params={"limit": 200})["traits"]
            ids = c.request("GET", f"{base}/external_ids", params={"limit": 100})["data"]
            events = c.request("GET", f"{base}/events", params={"limit": n_events})["data"] if n_events else []
            links = c.request("GET", f"{base}/links", params={"limit": 100})["data"]
        out: dict[str, Any] = {
            "identifier": identifier, "traits": traits,
            "external_ids": [{"type": i["type"], "id": i["id"], "created_at": i["created_at"]} for i in ids],
            "events": [{"type": e["type"], "name": e.get("event") or e.get("name") or e.get("group_id"),
                        "timestamp": e["timestamp"], "message_id": e["message_id"]} for e in events],
            "merges": [{**lk["merge"], "id_type": lk["external_ids"][0]["type"],
                        "id_value": lk["external_ids"][0]["id"]} for lk in links if "merge" in lk],
        }  # fmt: skip
        if output == "json":
            render(out, "json")
            return
        click.echo(f"profile of {identifier}")
        click.echo("traits:")
        for k, v in sorted(out["traits"].items()):
            click.echo(f"  {k} = {json.dumps(v)}")
        click.echo("external ids:")
        for i in out["external_ids"]:
            click.echo(f"  {i['type']}:{i['id']}  (since {i['created_at']})")
        click.echo("recent events:")
        for e in out["events"]:
            click.echo(f"  {e['timestamp']}  {e['type']}{'  ' + e['name'] if e['name'] else ''}")
        click.echo("merges:")
        for m in out["merges"]:
            other = m["loser"] or "(new identifier)"
            click.echo(f"  {m['created_at']}  {m['status']}  {other} -> {m['winner']}  by {m['id_type']}:"
                       f"{m['id_value']}{'  (' + m['reason'] + ')' if m['reason'] else ''}")  # fmt: skip
