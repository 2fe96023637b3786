"""What every handler needs: the services and authentication."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from ..config import Settings
from ..crypto import Box
from ..domain.accounts import Accounts, Principal
from ..domain.control import ControlPlane
from ..store.base import Store

ACT_AS_HEADER = "x-eventstreams-account"


@dataclass
class Services:
    settings: Settings
    store: Store
    box: Box
    accounts: Accounts
    control: ControlPlane

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
