"""The seam for HTTP surfaces.

A surface is a family of paths with one client population: Twilio's Events
v1 API, Twilio's 2010-04-01 Accounts, our publish/operations API, the Twilio
callback bridge (and later a Segment tracking API, a Twilio sandbox). Each is
its own Starlette sub-application with its own routes, error shape (Twilio's
JSON here, Segment's there) and OpenAPI fragment; its handlers call their own
authenticator. ``api/app.py`` mounts a list of them and knows nothing else
about any of them, so adding a surface is one module plus one line there.

Several surfaces share the ``/v1`` prefix (Events v1 and our operations today;
Segment's ``/v1/track`` later), so a surface is chosen by its routes, not by a
path prefix: the first surface with a route matching path and method handles
the request; a path matched only with another method goes to its surface (for
a 405 in that surface's shape); anything else falls to the root's 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

RUNTIME_KEY = "eventstreams.runtime"

ErrorHandler = Callable[[Request, Exception], Any]


@dataclass(frozen=True)
class Surface:
    """One HTTP surface.

    ``errors`` maps exception classes to handlers rendering them in this surface's shape
    (``Exception`` included: its last resort for bugs). ``openapi`` returns this surface's
    ``paths`` for /openapi.json, or ``None`` when it documents itself elsewhere.
    """

    name: str
    routes: Sequence[Route]
    errors: Mapping[Any, ErrorHandler]
    openapi: Callable[[], dict[str, Any]] | None = None
    middleware: Sequence[Middleware] = field(default_factory=tuple)

    def app(self) -> Starlette:
        sub = Starlette(
            routes=list(self.routes), exception_handlers=dict(self.errors), middleware=list(self.middleware)
        )
        sub.router.redirect_slashes = False  # Twilio answers 404 for a trailing slash; so do we
        return sub


class Mounted(BaseRoute):
    """A surface inside the root application: matches exactly the requests its routes match."""

    def __init__(self, surface: Surface) -> None:
        self.surface = surface
        self.routes = list(surface.routes)
        self.app = surface.app()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        best = Match.NONE
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {}
            if match is Match.PARTIAL:
                best = Match.PARTIAL
        return best, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The root app holds the runtime; the sub-app replaces scope["app"] with itself.
        scope[RUNTIME_KEY] = scope["app"].state.services
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        return self.app.router.url_path_for(name, **path_params)


def runtime_of(request: Request) -> Any:
    """The runtime serving this request (set by :class:`Mounted`)."""
    return request.scope[RUNTIME_KEY]
