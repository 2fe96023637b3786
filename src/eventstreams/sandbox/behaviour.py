"""How the sandbox behaves for one account: the status clock, outcome rules and
injected faults. Defaults come from ``EVENTSTREAMS_SANDBOX_*``; an account can
override any of them through ``/2010-04-01/Accounts/{Sid}/Sandbox.json`` (stored
as JSON in ``sandbox_settings``), so a test or a demo changes them at run time.

Outcome rules are ``prefix=status[:error_code]`` items separated by commas, for
example ``+4477=undelivered:30003,+1555=failed:30008``: a message whose ``To``
starts with the longest matching prefix ends that way. Everything else is
delivered, except a ``failure_ratio`` share that ends undelivered with one of
30003/30005/30006/30007 (chosen reproducibly from the message SID).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson

from ..config import Settings

MESSAGE_FINAL = ("delivered", "undelivered", "failed")
CALL_FINAL = ("completed", "busy", "no-answer", "failed", "canceled")
_RULE = re.compile(r"^\s*(\+?[0-9A-Za-z:]*)\s*=\s*([a-z-]+)\s*(?::\s*(\d{5}))?\s*$")


class BehaviourError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class OutcomeRule:
    prefix: str
    status: str
    error_code: int | None = None

    def render(self) -> str:
        return f"{self.prefix}={self.status}" + (f":{self.error_code}" if self.error_code else "")


def parse_rules(text: str) -> tuple[OutcomeRule, ...]:
    rules = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        m = _RULE.match(item)
        if m is None:
            raise BehaviourError(f"Outcome rule {item[:60]!r} is not prefix=status[:error_code]")
        prefix, status, code = m.group(1), m.group(2), m.group(3)
        if status not in MESSAGE_FINAL + CALL_FINAL:
            raise BehaviourError(
                f"Outcome rule {item[:60]!r}: status must be one of {', '.join(MESSAGE_FINAL + CALL_FINAL[1:])}"
            )
        rules.append(OutcomeRule(prefix, status, int(code) if code else None))
    return tuple(rules)


@dataclass(frozen=True)
class Behaviour:
    step_seconds: float = 1.0
    failure_ratio: float = 0.0
    outcomes: tuple[OutcomeRule, ...] = field(default_factory=tuple)
    publish_events: bool = True
    rate_limit_ratio: float = 0.0
    retry_after: int = 1
    server_error_ratio: float = 0.0
    server_error_status: int = 500

    @classmethod
    def defaults(cls, settings: Settings) -> Behaviour:
        return cls(
            step_seconds=settings.sandbox_step_seconds,
            failure_ratio=settings.sandbox_failure_ratio,
            outcomes=parse_rules(settings.sandbox_outcomes),
            publish_events=settings.sandbox_publish_events,
        )

    def rule_for(self, to: str) -> OutcomeRule | None:
        best: OutcomeRule | None = None
        for r in self.outcomes:
            if to.startswith(r.prefix) and (best is None or len(r.prefix) > len(best.prefix)):
                best = r
        return best

    # -- the stored override document

    def overrides(self, base: Behaviour) -> dict[str, Any]:
        """The fields that differ from ``base`` (what an account stored)."""
        mine, theirs = self.wire(), base.wire()
        return {k: v for k, v in mine.items() if theirs.get(k) != v}

    def wire(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcomes"] = ",".join(r.render() for r in self.outcomes)
        return d

    def with_overrides(self, doc: dict[str, Any]) -> Behaviour:
        """Apply a stored or submitted override document (keys as in :meth:`wire`), checking each value."""
        changes: dict[str, Any] = {}
        for key, value in doc.items():
            if key == "outcomes":
                changes[key] = parse_rules(str(value))
            elif key == "publish_events":
                changes[key] = bool(value)
            elif key in ("step_seconds",):
                changes[key] = _number(key, value, 0.0, 86400.0)
            elif key in ("failure_ratio", "rate_limit_ratio", "server_error_ratio"):
                changes[key] = _number(key, value, 0.0, 1.0)
            elif key == "retry_after":
                changes[key] = int(_number(key, value, 0, 3600))
            elif key == "server_error_status":
                status = int(_number(key, value, 500, 599))
                changes[key] = status
            else:
                raise BehaviourError(f"Unknown sandbox setting {key!r}")
        return replace(self, **changes)

    def dumps(self, base: Behaviour) -> str:
        return orjson.dumps(self.overrides(base)).decode()


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise BehaviourError(f"Sandbox setting {name} must be a number (got {str(value)[:40]!r})") from None
    if not lo <= n <= hi:
        raise BehaviourError(f"Sandbox setting {name} must be between {lo:g} and {hi:g}")
    return n
