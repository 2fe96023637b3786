"""The commands that talk to a running eventstreams over HTTP (shaped like ``twilio api:events:v1:*``):
login, sinks, subscriptions, types, schemas, publish, deliveries, dead letters, replay, tracking sources,
profiles, keys, catalogue registration, completion. Each parses its options, makes the API calls through
cli/client.py and renders (cli/output.py); no rule lives here."""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

import click

from .client import AUTH, Client, CliError, Credentials, client, config_path, load_config, save_profile
from .output import account_option as ACT_AS
from .output import output_option, removed, render

SINK_COLUMNS = ["sid", "sink_type", "status", "description", "date_created"]
SUB_COLUMNS = ["sid", "sink_sid", "description", "date_created"]


def _json_option(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=name) from None
    return value


PROFILE_COLUMNS = ["active", "profile", "url", "account_sid", "credential"]


def _profile_view(name: str, p: dict[str, Any], active: bool) -> dict[str, Any]:
    """A stored profile as `config list`, `config use` and `login` show it: never a secret."""
    return {"active": "*" if active else "", "profile": name, "url": p.get("url"), "account_sid": p.get("account_sid"),
            "credential": "api_key" if p.get("api_key") else "auth_token"}  # fmt: skip


def register(main: click.Group) -> None:
    # -- login and profiles of credentials

    @main.command()
    @click.option("--url", default=None, help="Where eventstreams answers (default http://127.0.0.1:8080).")
    @click.option("--account-sid", default=None, help="Account SID (AC…).")
    @click.option("--auth-token", default=None, help="Its auth token (prompted when no key is given).")
    @click.option("--api-key", default=None, help="An API key SID (SK…) instead of the auth token.")
    @click.option("--api-secret", default=None, help="The key's secret.")
    @output_option
    @click.pass_context
    def login(ctx: click.Context, url: str | None, account_sid: str | None, auth_token: str | None,
              api_key: str | None, api_secret: str | None, output: str) -> None:  # fmt: skip
        """Check credentials against the server and store them as a profile (--profile NAME, default
        "default") in $XDG_CONFIG_HOME/eventstreams/config.json, readable by you only. Prints the profile
        (never the secret) with -o json."""
        name = ctx.find_root().params.get("profile") or "default"
        # prompts go to stderr: stdout holds only the result (JSON with -o json)
        url = url or click.prompt("eventstreams URL", default="http://127.0.0.1:8080", err=True)
        account_sid = account_sid or click.prompt("Account SID", err=True)
        if api_key:
            api_secret = api_secret or click.prompt("API key secret", hide_input=True, err=True)
        elif not auth_token:
            auth_token = click.prompt("Auth token", hide_input=True, err=True)
        creds = Credentials(url.rstrip("/"), account_sid, auth_token, api_key, api_secret)
        with Client(creds) as c:  # a read every credential may make: proves URL, account and secret
            c.request("GET", "/v1/Sinks", params={"PageSize": 1})
        path = save_profile(name, creds)
        if output == "json":
            render(_profile_view(name, load_config()["profiles"][name], True), "json")
        else:
            click.echo(f"Logged in to {creds.url} as {account_sid}; profile {name!r} saved in {path}", err=True)

    @main.group("config")
    def config() -> None:
        """The stored profiles (see `eventstreams login`)."""

    @config.command("list")
    @output_option
    def config_list(output: str) -> None:
        """The profiles (never their secrets); * marks the active one."""
        doc = load_config()
        rows = [_profile_view(n, p, n == doc.get("active")) for n, p in sorted(doc["profiles"].items())]
        render(rows, output, PROFILE_COLUMNS)

    @config.command("use")
    @click.argument("name")
    @output_option
    def config_use(name: str, output: str) -> None:
        """Make profile NAME the active one (-o json: print it, never its secret)."""
        doc = load_config()
        if name not in doc["profiles"]:
            raise CliError(f"no profile named {name!r} in {config_path()}", AUTH,
                           f"run `eventstreams login --profile {name}`")  # fmt: skip
        p = doc["profiles"][name]
        save_profile(name, Credentials(**p))
        if output == "json":
            render(_profile_view(name, p, True), "json")
        else:
            click.echo(f"active profile: {name}", err=True)

    # -- completion

    @main.command()
    @click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
    def completion(shell: str) -> None:
        """Print the shell completion script, e.g. `eval "$(eventstreams completion bash)"` in ~/.bashrc."""
        from click.shell_completion import get_completion_class

        cls = get_completion_class(shell)
        assert cls is not None
        click.echo(cls(main, {}, "eventstreams", "_EVENTSTREAMS_COMPLETE").source())

    # -- sinks

    @main.group()
    def sinks() -> None:
        """Sinks: where events are delivered (/v1/Sinks)."""

    @sinks.command("create")
    @click.option("--sink-type", required=True, help="webhook, kinesis, segment, twilio-sms, …")
    @click.option("--sink-configuration", required=True, help="The type's configuration as JSON.")
    @click.option("--description", required=True)
    @ACT_AS
    @output_option
    def sinks_create(sink_type: str, sink_configuration: str, description: str, account_sid: str | None,
                     output: str) -> None:  # fmt: skip
        """Create a sink."""
        data = {"SinkType": sink_type, "SinkConfiguration": _json_option("--sink-configuration", sink_configuration),
                "Description": description}  # fmt: skip
        with client(account_sid) as c:
            render(c.request("POST", "/v1/Sinks", data=data), output, [*SINK_COLUMNS, "sink_configuration"])

    @sinks.command("list")
    @click.option("--limit", type=click.IntRange(1), default=None, help="At most this many.")
    @ACT_AS
    @output_option
    def sinks_list(limit: int | None, account_sid: str | None, output: str) -> None:
        """List sinks."""
        with client(account_sid) as c:
            render(list(c.paginate("/v1/Sinks", "sinks", limit=limit)), output, SINK_COLUMNS)

    @sinks.command("fetch")
    @click.argument("sid")
    @ACT_AS
    @output_option
    def sinks_fetch(sid: str, account_sid: str | None, output: str) -> None:
        """Fetch sink SID."""
        with client(account_sid) as c:
            render(c.request("GET", f"/v1/Sinks/{quote(sid)}"), output)

    @sinks.command("update")
    @click.argument("sid")
    @click.option("--description", required=True)
    @ACT_AS
    @output_option
    def sinks_update(sid: str, description: str, account_sid: str | None, output: str) -> None:
        """Change sink SID's description."""
        with client(account_sid) as c:
            render(c.request("POST", f"/v1/Sinks/{quote(sid)}", data={"Description": description}), output)

    @sinks.command("remove")
    @click.argument("sid")
    @ACT_AS
    @output_option
    def sinks_remove(sid: str, account_sid: str | None, output: str) -> None:
        """Delete sink SID (its subscriptions go with it)."""
        with client(account_sid) as c:
            c.request("DELETE", f"/v1/Sinks/{quote(sid)}")
        removed(sid, output)

    @sinks.command("test")
    @click.argument("sid")
    @ACT_AS
    @output_option
    def sinks_test(sid: str, account_sid: str | None, output: str) -> None:
        """Send sink SID a test event."""
        with client(account_sid) as c:
            render(c.request("POST", f"/v1/Sinks/{quote(sid)}/Test"), output)

    # -- subscriptions

    @main.group()
    def subscriptions() -> None:
        """Subscriptions: which event types go to which sink (/v1/Subscriptions)."""

    def _types(values: tuple[str, ...]) -> list[str]:
        # Twilio's CLI passes each as JSON ({"type": …, "schema_version": …}); a bare type name is accepted too
        return [v if v.lstrip().startswith("{") else json.dumps({"type": v}) for v in values]

    @subscriptions.command("create")
    @click.option("--sink-sid", required=True)
    @click.option("--description", required=True)
    @click.option("--types", "types", multiple=True, required=True,
                  help='An event type or {"type": …, "schema_version": N} (repeatable).')  # fmt: skip
    @ACT_AS
    @output_option
    def subscriptions_create(sink_sid: str, description: str, types: tuple[str, ...], account_sid: str | None,
                             output: str) -> None:  # fmt: skip
        """Subscribe a sink to event types."""
        data = {"SinkSid": sink_sid, "Description": description, "Types": _types(types)}
        with client(account_sid) as c:
            render(c.request("POST", "/v1/Subscriptions", data=data), output, SUB_COLUMNS)

    @subscriptions.command("list")
    @click.option("--sink-sid", default=None)
    @click.option("--limit", type=click.IntRange(1), default=None)
    @ACT_AS
    @output_option
    def subscriptions_list(sink_sid: str | None, limit: int | None, account_sid: str | None, output: str) -> None:
        """List subscriptions (of one sink with --sink-sid)."""
        params = {"SinkSid": sink_sid} if sink_sid else None
        with client(account_sid) as c:
            render(list(c.paginate("/v1/Subscriptions", "subscriptions", params, limit)), output, SUB_COLUMNS)

    @subscriptions.command("fetch")
    @click.argument("sid")
    @ACT_AS
    @output_option
    def subscriptions_fetch(sid: str, account_sid: str | None, output: str) -> None:
        """Fetch subscription SID with its event types."""
        with client(account_sid) as c:
            sub = c.request("GET", f"/v1/Subscriptions/{quote(sid)}")
            sub["types"] = list(c.paginate(f"/v1/Subscriptions/{quote(sid)}/SubscribedEvents", "types"))
        render(sub, output)

    @subscriptions.command("update")
    @click.argument("sid")
    @click.option("--description", required=True)
    @ACT_AS
    @output_option
    def subscriptions_update(sid: str, description: str, account_sid: str | None, output: str) -> None:
        """Change subscription SID's description."""
        with client(account_sid) as c:
            render(c.request("POST", f"/v1/Subscriptions/{quote(sid)}", data={"Description": description}), output)

    @subscriptions.command("remove")
    @click.argument("sid")
    @ACT_AS
    @output_option
    def subscriptions_remove(sid: str, account_sid: str | None, output: str) -> None:
        """Delete subscription SID."""
        with client(account_sid) as c:
            c.request("DELETE", f"/v1/Subscriptions/{quote(sid)}")
        removed(sid, output)

    # -- the catalogue

    @main.group()
    def types() -> None:
        """Event types (/v1/Types)."""

    @types.command("list")
    @click.option("--schema-id", default=None)
    @click.option("--limit", type=click.IntRange(1), default=None)
    @output_option
    def types_list(schema_id: str | None, limit: int | None, output: str) -> None:
        """List event types."""
        params = {"SchemaId": schema_id} if schema_id else None
        with client() as c:
            render(list(c.paginate("/v1/Types", "types", params, limit)), output,
                   ["type", "schema_id", "status", "description"])  # fmt: skip

    @types.command("fetch")
    @click.argument("type_name")
    @output_option
    def types_fetch(type_name: str, output: str) -> None:
        """Fetch event type TYPE_NAME."""
        with client() as c:
            render(c.request("GET", f"/v1/Types/{quote(type_name)}"), output)

    @main.group()
    def schemas() -> None:
        """Event schemas (/v1/Schemas)."""

    @schemas.command("fetch")
    @click.argument("schema_id")
    @output_option
    def schemas_fetch(schema_id: str, output: str) -> None:
        """Fetch schema SCHEMA_ID."""
        with client() as c:
            render(c.request("GET", f"/v1/Schemas/{quote(schema_id)}"), output)

    @schemas.command("versions")
    @click.argument("schema_id")
    @click.option("--version", "version", type=int, default=None, help="One version, with its raw schema.")
    @output_option
    def schemas_versions(schema_id: str, version: int | None, output: str) -> None:
        """List SCHEMA_ID's versions, or fetch one."""
        with client() as c:
            if version is not None:
                render(c.request("GET", f"/v1/Schemas/{quote(schema_id)}/Versions/{version}"), output)
                return
            render(list(c.paginate(f"/v1/Schemas/{quote(schema_id)}/Versions", "schema_versions")), output,
                   ["id", "schema_version", "date_created"])  # fmt: skip

    @main.group()
    def catalog() -> None:
        """Register your own event types and schema versions (/v1/Catalog)."""

    @catalog.command("register-schema")
    @ACT_AS
    @click.argument("schema_id")
    @click.argument("path", type=click.File("rb"))
    @output_option
    def catalog_register_schema(account_sid: str | None, schema_id: str, path: Any, output: str) -> None:
        """Add the next version of SCHEMA_ID from the JSON Schema file PATH (- for stdin)."""
        text = path.read().decode("utf-8", "replace")
        _json_option("PATH", text)
        with client(account_sid) as c:
            render(c.request("POST", f"/v1/Catalog/Schemas/{quote(schema_id)}/Versions", data={"Schema": text}),
                   output, ["id", "schema_version", "date_created"])  # fmt: skip

    @catalog.command("register-type")
    @ACT_AS
    @click.option("--schema-id", required=True)
    @click.option("--description", required=True)
    @click.option("--status", default="available", show_default=True)
    @click.argument("type_name")
    @output_option
    def catalog_register_type(account_sid: str | None, schema_id: str, description: str, status: str,
                              type_name: str, output: str) -> None:  # fmt: skip
        """Register (or update) event type TYPE_NAME using SCHEMA_ID."""
        data = {"Type": type_name, "SchemaId": schema_id, "Description": description, "Status": status}
        with client(account_sid) as c:
            render(c.request("POST", "/v1/Catalog/Types", data=data), output,
                   ["type", "schema_id", "status", "description"])  # fmt: skip

    # -- publish and operations

    @main.command()
    @ACT_AS
    @click.argument("source", type=click.File("rb"), default="-")
    @output_option
    def publish(account_sid: str | None, source: Any, output: str) -> None:
        """Publish CloudEvents from a JSON file (an event or an array; default stdin) to the profile's account.
        Exits 1 when any event was rejected."""
        raw = source.read()
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise CliError(f"not valid JSON: {exc}", hint="give a CloudEvent or a JSON array of them") from None
        ctype = "application/cloudevents-batch+json" if isinstance(doc, list) else "application/cloudevents+json"
        with client(account_sid) as c:
            result = c.request("POST", "/v1/Events", content=raw, content_type=ctype, ok=(207, 400))
        view = {k: result.get(k) for k in ("accepted", "duplicates", "rejected") if k in result}
        if output == "json":
            render(view, "json")
        else:
            rows = [{"event": e, "result": "accepted"} for e in view.get("accepted", [])]
            rows += [{"event": e, "result": "duplicate"} for e in view.get("duplicates", [])]
            rows += [{"event": r.get("id") or f"#{r.get('index')}", "result": "rejected", "why": r.get("message")}
                     for r in view.get("rejected", [])]  # fmt: skip
            render(rows, "table", ["event", "result", "why"])
        if view.get("rejected"):
            sys.exit(1)

    @main.command()
    @click.option("--sink", "sink_sid", required=True)
    @click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
    @ACT_AS
    @output_option
    def deliveries(sink_sid: str, limit: int, account_sid: str | None, output: str) -> None:
        """The sink's delivery log: each attempt with its outcome, newest first."""
        with client(account_sid) as c:
            rows = list(c.paginate(f"/v1/Sinks/{quote(sink_sid)}/Deliveries", "deliveries", limit=limit))
        render(rows, output, ["date_created", "outcome", "event_count", "event_ids", "error_code", "http_status",
                             "detail"])  # fmt: skip

    @main.command("dead-letters")
    @click.option("--sink", "sink_sid", default=None, help="Only this sink (default: every sink).")
    @ACT_AS
    @output_option
    def dead_letters(sink_sid: str | None, account_sid: str | None, output: str) -> None:
        """List dead-lettered deliveries with their last error."""
        with client(account_sid) as c:
            sids = [sink_sid] if sink_sid else [s["sid"] for s in c.paginate("/v1/Sinks", "sinks")]
            rows = [d for s in sids for d in c.paginate(f"/v1/Sinks/{quote(s)}/DeadLetters", "dead_letters")]
        render(rows, output, ["sink_sid", "event_id", "type", "error_code", "attempts", "error", "date_created"])

    @main.command()
    @click.option("--sink", "sink_sid", required=True)
    @click.option("--dead-letters", "dead", is_flag=True, help="Replay the sink's dead letters.")
    @click.option("--event-id", "event_ids", multiple=True, help="Replay these events (repeatable).")
    @click.option("--since", default=None, help="Replay events received at or after this ISO time.")
    @click.option("--until", default=None, help="... and before this ISO time.")
    @ACT_AS
    @output_option
    def replay(sink_sid: str, dead: bool, event_ids: tuple[str, ...], since: str | None, until: str | None,
               account_sid: str | None, output: str) -> None:  # fmt: skip
        """Deliver again to one sink: dead letters, chosen events or a time range."""
        data: dict[str, Any] = {"EventId": list(event_ids)}
        if dead:
            data["DeadLetters"] = "true"
        data.update({k: v for k, v in (("Since", since), ("Until", until)) if v})
        with client(account_sid) as c:
            render(c.request("POST", f"/v1/Sinks/{quote(sink_sid)}/Replay", data=data), output)

    # -- accounts and keys (the first account is created server-side: `eventstreams accounts create`)

    @main.group()
    def keys() -> None:
        """API keys of the account (/2010-04-01/Accounts/{Sid}/Keys)."""

    def _keys_path(c: Client, account_sid: str | None) -> str:
        return f"/2010-04-01/Accounts/{account_sid or c.creds.account_sid}/Keys"

    @keys.command("list")
    @ACT_AS
    @output_option
    def keys_list(account_sid: str | None, output: str) -> None:
        """List API keys (never their secrets)."""
        with client() as c:
            render(list(c.paginate(_keys_path(c, account_sid) + ".json", "keys")), output,
                   ["sid", "friendly_name", "date_created"])  # fmt: skip

    @keys.command("create")
    @click.option("--friendly-name", default="")
    @ACT_AS
    @output_option
    def keys_create(friendly_name: str, account_sid: str | None, output: str) -> None:
        """Create an API key; its secret is shown this once."""
        with client() as c:
            render(c.request("POST", _keys_path(c, account_sid) + ".json", data={"FriendlyName": friendly_name}),
                   output)  # fmt: skip

    @keys.command("remove")
    @click.argument("key_sid")
    @ACT_AS
    @output_option
    def keys_remove(key_sid: str, account_sid: str | None, output: str) -> None:
        """Delete API key KEY_SID: it stops working at once."""
        with client() as c:
            c.request("DELETE", f"{_keys_path(c, account_sid)}/{quote(key_sid)}.json")
        removed(key_sid, output)
