"""Liquid templates of the twilio-sms sink (python-liquid), bounded in size, loops and output.

A template is parsed when the sink is created (a syntax error is the API's 91000) and rendered per
event. A missing value renders empty (Liquid's default ``Undefined``); unknown filters are errors.
``include``/``render`` find no templates (the loader is empty), so a template reads nothing but its
context. Render time is bounded by the loop iteration, output and namespace limits below: with at most
:data:`MAX_TEMPLATE_BYTES` of source and :data:`LOOP_LIMIT` iterations a render cannot run long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from liquid import BoundTemplate, Environment
from liquid.exceptions import LiquidError

__all__ = ["LOOP_LIMIT", "MAX_TEMPLATE_BYTES", "OUTPUT_LIMIT", "TemplateError", "compile_template", "render"]

#: most UTF-8 bytes of one template's source
MAX_TEMPLATE_BYTES = 4096
#: most loop iterations in one render (all loops together)
LOOP_LIMIT = 1000
#: most bytes one render may write (an SMS body is at most 1,600 characters; truncation needs some slack)
OUTPUT_LIMIT = 16 * 1024


class TemplateError(ValueError):
    """A template that does not parse or does not render; ``str()`` is one line."""


class _Env(Environment):
    loop_iteration_limit: ClassVar[int | None] = LOOP_LIMIT
    output_stream_limit: ClassVar[int | None] = OUTPUT_LIMIT
    local_namespace_limit: ClassVar[int | None] = 64 * 1024


_ENV = _Env()


def _one_line(exc: LiquidError) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def compile_template(source: str) -> BoundTemplate:
    """The parsed template, or :class:`TemplateError` (too large, or a syntax error)."""
    size = len(source.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"template is {size} bytes; at most {MAX_TEMPLATE_BYTES} are allowed")
    try:
        return _ENV.from_string(source)
    except LiquidError as exc:
        raise TemplateError(f"template does not parse: {_one_line(exc)}") from None


def render(template: BoundTemplate, context: Mapping[str, Any]) -> str:
    """``template`` rendered with ``context``, or :class:`TemplateError` (unknown filter, a limit, ...)."""
    try:
        return template.render(**context)
    except LiquidError as exc:
        raise TemplateError(f"template error: {_one_line(exc)}") from None
    except (RecursionError, ValueError, TypeError, ArithmeticError) as exc:
        raise TemplateError(f"template error: {type(exc).__name__}: {exc}") from None
