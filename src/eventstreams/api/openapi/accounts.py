"""OpenAPI fragment of the 2010-04-01 Accounts and Keys surface (api/accounts.py)."""

from __future__ import annotations

from typing import Any

from .shapes import ERROR, PAGING, ac_param, form, json_body, legacy_list_of, sid_param

PATHS: dict[str, Any] = {
    "/2010-04-01/Accounts.json": {
        "get": {
            "operationId": "ListAccount",
            "parameters": [
                {"name": "FriendlyName", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "Status",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["active", "suspended", "closed"]},
                },
                *PAGING,
            ],
            "responses": {**json_body("200", "accounts", legacy_list_of("accounts")), "400": ERROR},
        },
        "post": {
            "operationId": "CreateAccount",
            "requestBody": form({"FriendlyName": {"type": "string"}}, []),
            "responses": {**json_body("201", "subaccount"), "403": ERROR},
        },
    },
    "/2010-04-01/Accounts/{Sid}.json": {
        "get": {
            "operationId": "FetchAccount",
            "parameters": [ac_param("Sid")],
            "responses": {**json_body("200", "account"), "404": ERROR},
        },
        "post": {
            "operationId": "UpdateAccount",
            "parameters": [ac_param("Sid")],
            "requestBody": form(
                {
                    "FriendlyName": {"type": "string"},
                    "Status": {"type": "string", "enum": ["active", "suspended", "closed"]},
                },
                [],
            ),
            "responses": {**json_body("200", "account"), "400": ERROR, "404": ERROR},
        },
    },
    "/2010-04-01/Accounts/{AccountSid}/Keys.json": {
        "get": {
            "operationId": "ListKey",
            "parameters": [ac_param("AccountSid"), *PAGING],
            "responses": {**json_body("200", "keys", legacy_list_of("keys")), "400": ERROR, "404": ERROR},
        },
        "post": {
            "operationId": "CreateNewKey",
            "parameters": [ac_param("AccountSid")],
            "requestBody": form({"FriendlyName": {"type": "string"}}, []),
            "responses": {**json_body("201", "key with secret"), "404": ERROR},
        },
    },
    "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json": {
        "get": {
            "operationId": "FetchKey",
            "parameters": [ac_param("AccountSid"), sid_param("Sid", "SK", "The API key's SID")],
            "responses": {**json_body("200", "key (without its secret)"), "404": ERROR},
        },
        "post": {
            "operationId": "UpdateKey",
            "parameters": [ac_param("AccountSid"), sid_param("Sid", "SK", "The API key's SID")],
            "requestBody": form({"FriendlyName": {"type": "string"}}, []),
            "responses": {**json_body("200", "key"), "400": ERROR, "404": ERROR},
        },
        "delete": {
            "operationId": "DeleteKey",
            "parameters": [ac_param("AccountSid"), sid_param("Sid", "SK", "The API key's SID")],
            "responses": {"204": {"description": "deleted"}, "404": ERROR},
        },
    },
}
