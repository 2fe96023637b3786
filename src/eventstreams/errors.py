"""Twilio-style errors: one exception type the HTTP layer renders as
``{code, message, more_info, status}``."""

from __future__ import annotations


class TwilioError(Exception):
    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


# Generic REST codes
BAD_REQUEST = 20001
AUTH_FAILED = 20003
METHOD_NOT_ALLOWED = 20004
FORBIDDEN = 20403
NOT_FOUND = 20404
TOO_LARGE = 20413

# Event Streams control plane codes (see shared reference, section 8.1)
SINK_CREATE_FAILED = 91000
SINK_NOT_FOUND = 91001
BAD_PAGINATION = 91002
LIMIT_REACHED = 91003
TEST_NOT_FOUND = 91004
TEST_ID_INVALID = 91005
SINK_SID_INVALID = 91006
SINK_IN_USE = 91007
SUBSCRIPTION_SINK_NOT_ACTIVE = 91100
SUBSCRIPTION_CREATE_FAILED = 91101
SUBSCRIPTION_NOT_FOUND = 91102
TYPE_LIST_EMPTY = 91103
TYPE_NOT_FOUND = 91104
BAD_PARAMETER = 91201


def bad_request(message: str, code: int = BAD_REQUEST) -> TwilioError:
    return TwilioError(code, message, 400)


def not_found(message: str, code: int = NOT_FOUND) -> TwilioError:
    return TwilioError(code, message, 404)


def limit_reached(message: str) -> TwilioError:
    return TwilioError(LIMIT_REACHED, message, 400)
