"""What every Twilio-surface handler needs: the runtime and Twilio Basic authentication."""

from __future__ import annotations

from starlette.requests import Request

from ..domain.accounts import Principal
from ..errors import not_found
from ..runtime import Runtime
from .surface import runtime_of

ACT_AS_HEADER = "x-eventstreams-account"

def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def services(request: Request) -> Runtime:
    rt: Runtime = runtime_of(request)
    return rt


async def auth(request: Request) -> tuple[Runtime, Principal]:
    """Twilio Basic: account SID + auth token, or API key SID + secret."""
    svc = services(request)
    for value in request.path_params.values():
        # %00 or lone surrogates decoded from the path can name nothing we store
        if isinstance(value, str) and ("\x00" in value or not _encodable(value)):
            raise not_found(f"The requested resource {request.url.path[:200]} was not found")
    p = await svc.accounts.authenticate(request.headers.get("authorization"), request.headers.get(ACT_AS_HEADER))
    return svc, p
