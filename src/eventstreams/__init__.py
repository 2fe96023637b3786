"""eventstreams: a self-hosted, Twilio-compatible Event Streams service.

Embedding API: :func:`publish` (synchronous) and :class:`EventStreams` (async).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["EventStreams", "__version__", "publish"]

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .embedded import EventStreams, publish


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (e.g. for the CLI) should not load the whole engine.
    if name in ("EventStreams", "publish"):
        from . import embedded

        return getattr(embedded, name)
    raise AttributeError(name)
