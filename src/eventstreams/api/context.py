"""What every handler needs: the services and authentication."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from ..catalog.runtime import Catalog
from ..config import Settings
from ..crypto import Box
from ..domain.accounts import Accounts, Principal
from ..domain.control import ControlPlane
from ..errors import not_found
from ..store.base import Store

if TYPE_CHECKING:
    from ..delivery.publish import Publisher
    from ..delivery.service import DeliveryService

ACT_AS_HEADER = "x-eventstreams-account"


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class Services:
    settings: Settings
    store: Store
    box: Box
    accounts: Accounts
    control: ControlPlane
    catalog: Catalog
    publisher: Publisher
    delivery: DeliveryService | None = None

    @property
    def base(self) -> str:
        return self.settings.public_base_url()


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def auth(request: Request) -> tuple[Services, Principal]:
    svc = services(request)
    for value in request.path_params.values():
        # %00 or lone surrogates decoded from the path can name nothing we store
        if isinstance(value, str) and ("\x00" in value or not _encodable(value)):
            raise not_found(f"The requested resource {request.url.path[:200]} was not found")
    p = await svc.accounts.authenticate(request.headers.get("authorization"), request.headers.get(ACT_AS_HEADER))
    return svc, p
