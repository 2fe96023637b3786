"""Twilio-style SIDs: a two-letter prefix and 32 lowercase hex digits.

Our SIDs are time-ordered (48-bit milliseconds, then 80 random bits,
monotonic within a process, like ULIDs) so that lists sorted by
(date_created, sid) come back in creation order even within one second.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_lock = threading.Lock()
_last = [0, 0]  # last millisecond, last random part


def new_sid(prefix: str) -> str:
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms = _last[0]
            rand = (_last[1] + 1) & ((1 << 80) - 1)
        else:
            rand = secrets.randbits(80)
        _last[0], _last[1] = ms, rand
    return f"{prefix}{ms & ((1 << 48) - 1):012x}{rand:020x}"


def normalize_sid(prefix: str, value: str) -> str | None:
    """Return the canonical (lowercase hex) SID, or None when malformed.

    Twilio's path patterns accept mixed-case hex, so we do too.
    """
    if len(value) != 34 or value[:2].upper() != prefix or not _HEX32.match(value[2:]):
        return None
    return prefix + value[2:].lower()


def new_token() -> str:
    return secrets.token_hex(16)
