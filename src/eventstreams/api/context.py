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
from ..store.base import Store

if TYPE_CHECKING:
    from ..delivery.publish import Publisher
    from ..delivery.service import DeliveryService

ACT_AS_HEADER = "x-eventstreams-account"


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
    p = await svc.accounts.authenticate(request.headers.get("authorization"), request.headers.get(ACT_AS_HEADER))
    return svc, p
