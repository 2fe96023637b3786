"""OpenAPI fragment of the Twilio callback bridge surface (bridge/api.py)."""

from __future__ import annotations

from typing import Any

from .shapes import ERROR, ac_param, form, json_body, sid_param

PATHS: dict[str, Any] = {
    "/v1/Bridge/Credentials": {
        "get": {"operationId": "FetchBridgeCredentials", "responses": json_body("200", "bridge status and URLs")},
        "post": {
            "operationId": "UpdateBridgeCredentials",
            "description": "eventstreams extension: the Twilio account and auth token the callback bridge checks.",
            "requestBody": form(
                {"TwilioAccountSid": {"type": "string"}, "TwilioAuthToken": {"type": "string"}},
                ["TwilioAccountSid", "TwilioAuthToken"],
            ),
            "responses": {**json_body("201", "configured"), **json_body("200", "replaced"), "400": ERROR},
        },
        "delete": {
            "operationId": "DeleteBridgeCredentials",
            "responses": {"204": {"description": "removed"}, "404": ERROR},
        },
    },
    **{
        f"/bridge/{{AccountSid}}/{kind}": {
            "post": {
                "operationId": f"Bridge{name}",
                "description": "Twilio callback target (authenticated by X-Twilio-Signature, not Basic auth).",
                "security": [],
                "parameters": [ac_param("AccountSid")],
                "requestBody": form({"AccountSid": {"type": "string"}}, []),
                "responses": {"200": {"description": "accepted"}, "400": ERROR, "403": ERROR, "413": ERROR},
            }
        }
        for kind, name in (
            ("messaging/status", "MessageStatus"),
            ("messaging/inbound", "InboundMessage"),
            ("voice/status", "CallStatus"),
        )
    },
    "/bridge/{AccountSid}/sms/{SinkSid}/status": {
        "post": {
            "operationId": "BridgeSmsStatus",
            "description": "StatusCallback of a twilio-sms sink's texts (X-Twilio-Signature with the sink's auth token,"
            " or the bridge credentials when the sink uses an API key): published as the messaging event and"
            " recorded as an SMS track event on the text's profile.",
            "security": [],
            "parameters": [ac_param("AccountSid"), sid_param("SinkSid", "DG", "The twilio-sms sink's SID")],
            "requestBody": form({"AccountSid": {"type": "string"}, "MessageSid": {"type": "string"}}, []),
            "responses": {"200": {"description": "accepted"}, "400": ERROR, "403": ERROR, "413": ERROR},
        }
    },
}
