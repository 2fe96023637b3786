"""OpenAPI fragment of the object sources surface (objectsource/api.py)."""

from __future__ import annotations

from typing import Any

from .shapes import ERROR, PAGING, STAMP, TEXT, form, json_body, list_of, sid_param

_SID = {
    "name": "Sid",
    "in": "path",
    "required": True,
    "description": "The source's SID (OS…) or its FriendlyName.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}
_RUN = sid_param("RunSid", "OR", "The run's SID")
_COLLECTIONS = ["addresses", "calls", "conferences", "transcriptions", "messages", "call_feedback"]
_SETTINGS: dict[str, Any] = {
    "FriendlyName": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$",
                     "description": "Unique in the account."},
    "TwilioAccountSid": {"type": "string", "pattern": "^AC[0-9a-fA-F]{32}$",
                         "description": "The Twilio account to read (a subaccount's SID reads that subaccount)."},
    "AuthToken": {"type": "string", "maxLength": 256, "description": "The account's auth token (write only)."},
    "ApiKeySid": {"type": "string", "pattern": "^SK[0-9a-fA-F]{32}$",
                  "description": "An API key instead of the token."},
    "ApiKeySecret": {"type": "string", "maxLength": 256, "description": "The API key's secret (write only)."},
    "SchemaName": {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}$",
                   "description": "The warehouse schema (default: the FriendlyName in snake_case)."},
    "StartDate": {"type": "string", "description": "ISO date or date-time; blank syncs everything. A change takes "
                                                  "effect with the next full sync."},
    "Collections": {"type": "string", "description": f"Comma-separated subset of {', '.join(_COLLECTIONS)} "
                                                    "(default all; call_feedback needs calls)."},
    "Schedule": {"type": "string", "description": "'manual', an interval ('3h', '90m'; at least a minute) or a "
                                                 "five-field cron expression (UTC). Default 3h."},
    "LookbackWindow": {"type": "string", "description": "How far before the last cursor an incremental sync "
                                                       "re-reads, e.g. '3d' (default) or '12h'."},
    "IncludeSubaccounts": {"type": "boolean", "description": "Also sync every active subaccount of the account."},
    "Enabled": {"type": "boolean"},
    "BaseUrl": {"type": "string", "format": "uri", "description": "Twilio's API (default https://api.twilio.com); "
                                                                 "the sandbox's URL in development."},
}  # fmt: skip
_SOURCE: dict[str, Any] = {
    "type": "object",
    "required": ["sid", "account_sid", "friendly_name", "schema_name", "twilio_account_sid", "collections",
                 "schedule", "enabled", "date_created", "date_updated", "url"],
    "properties": {
        "sid": {"type": "string"},
        "account_sid": {"type": "string"},
        "friendly_name": {"type": "string"},
        "schema_name": {"type": "string"},
        "twilio_account_sid": {"type": "string"},
        "credential_type": {"type": "string", "enum": ["auth_token", "api_key"]},
        "api_key_sid": TEXT,
        "base_url": {"type": "string"},
        "start_date": TEXT,
        "collections": {"type": "array", "items": {"type": "string", "enum": _COLLECTIONS}},
        "schedule": {"type": "string"},
        "lookback_window": {"type": "integer", "description": "Seconds."},
        "include_subaccounts": {"type": "boolean"},
        "enabled": {"type": "boolean"},
        "full_sync_requested": {"type": "boolean"},
        "syncing": {"type": "boolean"},
        "next_sync_at": {**STAMP, "nullable": True},
        "last_error": TEXT,
        "date_created": STAMP,
        "date_updated": STAMP,
        "url": {"type": "string", "format": "uri"},
        "links": {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}},
        "state": {"type": "array", "items": {"type": "object"}, "description": "Fetch only: each collection's cursor."},
    },
}  # fmt: skip
_RUN_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["sid", "source_sid", "kind", "status", "date_started", "collections"],
    "properties": {
        "sid": {"type": "string"},
        "account_sid": {"type": "string"},
        "source_sid": {"type": "string"},
        "kind": {"type": "string", "enum": ["full", "incremental"]},
        "trigger": {"type": "string", "enum": ["scheduled", "manual"]},
        "status": {"type": "string", "enum": ["running", "succeeded", "failed", "interrupted"]},
        "error": TEXT,
        "date_started": STAMP,
        "date_finished": {**STAMP, "nullable": True},
        "rows_read": {"type": "integer"},
        "rows_upserted": {"type": "integer"},
        "collections": {"type": "array", "items": {"type": "object", "properties": {
            "twilio_account_sid": {"type": "string"}, "collection": {"type": "string"},
            "status": {"type": "string"}, "rows_read": {"type": "integer"}, "rows_upserted": {"type": "integer"},
            "duration": {"type": "number"}, "cursor": TEXT, "error": TEXT}}},
        "url": {"type": "string", "format": "uri"},
    },
}  # fmt: skip

PATHS: dict[str, Any] = {
    "/v1/ObjectSources": {
        "get": {
            "operationId": "ListObjectSource",
            "parameters": PAGING,
            "responses": {**json_body("200", "sources", list_of("object_sources", _SOURCE)), "400": ERROR},
        },
        "post": {
            "operationId": "CreateObjectSource",
            "description": "A Twilio object source; its first sync starts at once when enabled.",
            "requestBody": form(_SETTINGS, ["FriendlyName", "TwilioAccountSid"]),
            "responses": {**json_body("201", "source", _SOURCE), "400": ERROR, "409": ERROR},
        },
    },
    "/v1/ObjectSources/{Sid}": {
        "get": {
            "operationId": "FetchObjectSource",
            "parameters": [_SID],
            "responses": {**json_body("200", "source", _SOURCE), "404": ERROR},
        },
        "post": {
            "operationId": "UpdateObjectSource",
            "parameters": [_SID],
            "requestBody": form(_SETTINGS, []),
            "responses": {**json_body("200", "source", _SOURCE), "400": ERROR, "404": ERROR, "409": ERROR},
        },
        "delete": {
            "operationId": "DeleteObjectSource",
            "description": "Deletes the source, its state and runs; its tables stay in the warehouse.",
            "parameters": [_SID],
            "responses": {"204": {"description": "deleted"}, "404": ERROR},
        },
    },
    "/v1/ObjectSources/{Sid}/Syncs": {
        "post": {
            "operationId": "CreateObjectSourceSync",
            "description": "Sync now. Full=true re-reads everything from the start date.",
            "parameters": [_SID],
            "requestBody": form({"Full": {"type": "boolean"}}, []),
            "responses": {**json_body("202", "the source, its sync queued", _SOURCE), "400": ERROR, "404": ERROR},
        },
    },
    "/v1/ObjectSources/{Sid}/Runs": {
        "get": {
            "operationId": "ListObjectSourceRun",
            "description": "Runs, newest first, with rows read and upserted per collection and Twilio account.",
            "parameters": [_SID, *PAGING],
            "responses": {**json_body("200", "runs", list_of("runs", _RUN_BODY)), "400": ERROR, "404": ERROR},
        },
    },
    "/v1/ObjectSources/{Sid}/Runs/{RunSid}": {
        "get": {
            "operationId": "FetchObjectSourceRun",
            "parameters": [_SID, _RUN],
            "responses": {**json_body("200", "run", _RUN_BODY), "404": ERROR},
        },
    },
}
