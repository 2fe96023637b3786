"""OpenAPI fragment of the Twilio sandbox surface (sandbox/api.py).

Twilio's own operations come from Twilio's OpenAPI, trimmed to what the sandbox routes
(api/twilio_api_v2010_sandbox.json, made by scripts/trim_twilio_v2010.py); :func:`paths`
adds the error responses Twilio's document leaves out. ``PATHS`` holds what that document
lacks: call feedback (deprecated, dropped from twilio-oai on 2024-02-27, still linked from
every call) and ``Sandbox.json``, eventstreams' own switches.
"""

from __future__ import annotations

import copy
from typing import Any

from .shapes import ERROR, PAGING, ac_param, form, sid_param

_BASE = "/2010-04-01/Accounts/{AccountSid}"
_SECURITY: list[dict[str, list[str]]] = [{"accountSid_authToken": []}]
_DATE = {"type": "string", "format": "date-time-rfc-2822", "nullable": True}

#: What every sandbox operation may answer besides its success (handler order: credentials, the
#: path's account, injected faults, parameters).
_ERRORS: dict[str, Any] = {
    "400": {**ERROR, "description": "Invalid or unknown parameter (Twilio's error JSON, e.g. 21211, 21602, 20001)"},
    "401": {**ERROR, "description": "Bad credentials (20003)"},
    "404": {**ERROR, "description": "No such account or resource visible to the caller (20404)"},
    "429": {
        **ERROR,
        "description": "Rate limit injected through Sandbox.json RateLimitRatio (20429, with Retry-After)",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    "5XX": {**ERROR, "description": "Fault injected through Sandbox.json ServerErrorRatio (ServerErrorStatus)"},
}
_BODY_ERRORS: dict[str, Any] = {"413": {**ERROR, "description": "Request body over the size limit"}}

_FEEDBACK_ISSUES = [
    "audio-latency", "digits-not-captured", "dropped-call", "imperfect-audio", "incorrect-caller-id",
    "one-way-audio", "post-dial-delay", "unsolicited-call",
]  # fmt: skip
_FEEDBACK = {
    "type": "object",
    "title": "api.v2010.account.call.call_feedback",
    "properties": {
        "account_sid": {"type": "string", "minLength": 34, "maxLength": 34, "pattern": "^AC[0-9a-fA-F]{32}$"},
        "date_created": _DATE,
        "date_updated": _DATE,
        "issues": {"type": "array", "items": {"type": "string", "enum": _FEEDBACK_ISSUES}},
        "quality_score": {"type": "integer", "minimum": 1, "maximum": 5},
        "sid": {
            "type": "string",
            "minLength": 34,
            "maxLength": 34,
            "pattern": "^CA[0-9a-fA-F]{32}$",
            "description": "The SID of the call the feedback is about",
        },
        "uri": {"type": "string"},
    },
}
_CALL_SID = sid_param("CallSid", "CA", "The SID of the call the feedback is about")

_RATIO = {"type": "number", "minimum": 0, "maximum": 1}
# form name → (schema, description); the response carries the same names
_SWITCHES: dict[str, tuple[dict[str, Any], str]] = {
    "StepSeconds": ({"type": "number", "minimum": 0, "maximum": 86400}, "Seconds between status changes"),
    "FailureRatio": (_RATIO, "Share of messages without a matching rule that end undelivered"),
    "Outcomes": (
        {"type": "string"},
        "Outcome rules, comma-separated prefix=status[:error_code], e.g. +4477=undelivered:30003",
    ),
    "PublishEvents": ({"type": "boolean"}, "Publish each status change as a Twilio Event Streams event"),
    "RateLimitRatio": (_RATIO, "Share of requests answered 429 (20429)"),
    "RetryAfter": ({"type": "integer", "minimum": 0, "maximum": 3600}, "Retry-After of those 429s, in seconds"),
    "ServerErrorRatio": (_RATIO, "Share of requests answered ServerErrorStatus"),
    "ServerErrorStatus": ({"type": "integer", "minimum": 500, "maximum": 599}, "Status of the injected errors"),
}
_SETTINGS = {
    "type": "object",
    "title": "eventstreams.sandbox.settings",
    "properties": {
        "account_sid": {"type": "string"},
        **{name: {**schema, "description": desc} for name, (schema, desc) in _SWITCHES.items()},
        "uri": {"type": "string"},
    },
}
_OWN = (
    "eventstreams' own, not Twilio's: the sandbox's status clock, outcome rules and injected faults for "
    "this account (docs/sandbox.md). Never faulted itself, so faults can always be turned off."
)


def _ok(code: str, desc: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {code: {"description": desc, "content": {"application/json": {"schema": schema}}}}


PATHS: dict[str, Any] = {
    f"{_BASE}/Calls/{{CallSid}}/Feedback.json": {
        "description": "Call quality feedback (deprecated by Twilio; absent from its current OpenAPI)",
        "get": {
            "operationId": "FetchCallFeedback",
            "summary": "Fetch the feedback left on a call; 404 when there is none",
            "deprecated": True,
            "tags": ["Api20100401Feedback"],
            "parameters": [ac_param("AccountSid"), _CALL_SID],
            "responses": _ok("200", "The call's feedback", _FEEDBACK),
            "security": _SECURITY,
        },
        "post": {
            "operationId": "UpdateCallFeedback",
            "summary": "Leave (or replace) feedback on a call",
            "deprecated": True,
            "tags": ["Api20100401Feedback"],
            "parameters": [ac_param("AccountSid"), _CALL_SID],
            "requestBody": form(
                {
                    "QualityScore": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 5,
                        "description": "The call quality, from 1 (worst) to 5 (best)",
                    },
                    "Issue": {
                        "type": "array",
                        "items": {"type": "string", "enum": _FEEDBACK_ISSUES},
                        "description": "Issues experienced during the call; repeat the parameter for several",
                    },
                },
                ["QualityScore"],
            ),
            "responses": _ok("201", "The feedback stored", _FEEDBACK),
            "security": _SECURITY,
        },
    },
    f"{_BASE}/Sandbox.json": {
        "description": _OWN,
        "get": {
            "operationId": "FetchSandboxSettings",
            "summary": "This account's sandbox settings (eventstreams' own endpoint)",
            "tags": ["EventstreamsSandbox"],
            "parameters": [ac_param("AccountSid")],
            "responses": _ok("200", "The account's sandbox settings", _SETTINGS),
            "security": _SECURITY,
        },
        "post": {
            "operationId": "UpdateSandboxSettings",
            "summary": "Change this account's sandbox settings; parameters left out keep their value",
            "tags": ["EventstreamsSandbox"],
            "parameters": [ac_param("AccountSid")],
            "requestBody": form({name: {**s, "description": d} for name, (s, d) in _SWITCHES.items()}, []),
            "responses": _ok("200", "The account's sandbox settings after the change", _SETTINGS),
            "security": _SECURITY,
        },
    },
}


_ENVELOPE_URIS = {"first_page_uri", "next_page_uri", "previous_page_uri", "uri"}


def paths(twilio: dict[str, Any]) -> dict[str, Any]:
    """Twilio's trimmed ``twilio`` paths (modified in place) and ours, with what the sandbox
    enforces and Twilio's document does not say: the error responses each operation can give
    (Sandbox.json is never faulted), no parameter outside the documented ones, a body where one
    is required, our paging limits; and the list envelope's ``*_uri`` fields as the relative references they are (Twilio
    declares them ``uri`` but sends paths, as we do)."""
    out = {**twilio, **copy.deepcopy(PATHS)}
    paging = {p["name"]: p for p in PAGING}
    for path, item in out.items():
        for method, op in item.items():
            if method not in ("get", "post", "delete"):
                continue
            op["parameters"] = [copy.deepcopy(paging.get(p["name"], p)) for p in op.get("parameters", [])]
            listed = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
            for name in _ENVELOPE_URIS & set(listed.get("properties", {})):
                listed["properties"][name]["format"] = "uri-reference"
            for body in op.get("requestBody", {}).get("content", {}).values():
                body["schema"]["additionalProperties"] = False
                if body["schema"].get("required"):  # a body without its required fields is no use
                    op["requestBody"]["required"] = True
            errors = {k: v for k, v in _ERRORS.items() if path != f"{_BASE}/Sandbox.json" or k not in ("429", "5XX")}
            if "requestBody" in op:
                errors.update(_BODY_ERRORS)
            op["responses"] = {**op["responses"], **errors}
    return out
