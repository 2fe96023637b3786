"""Secrets at rest.

Credentials are hashed for verification (SHA-256: tokens are 128-bit random
values, so a slow KDF would buy nothing and cost every request). Values the
service must use again (the auth token it signs webhooks with, sink
configurations holding write keys or passwords) are encrypted with Fernet
under a key from EVENTSTREAMS_SECRET_KEY or a key file in the data dir.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def verify_secret(value: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(value), digest)


class Box:
    """Symmetric encryption for values stored in the database."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        # A separate key for MACs (PageTokens), derived so the encryption key is never used twice.
        self._mac_key = hashlib.sha256(b"eventstreams mac\x00" + key).digest()

    def mac(self, text: str) -> str:
        """A short keyed digest of ``text`` (the same on every node sharing EVENTSTREAMS_SECRET_KEY)."""
        return hmac.new(self._mac_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    @classmethod
    def load(cls, configured: str | None, data_dir: Path) -> Box:
        if configured:
            return cls(configured.encode())
        path = data_dir / "secret.key"
        if path.exists():
            return cls(path.read_bytes().strip())
        data_dir.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        # O_EXCL: two processes starting together must not write two keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(path.read_bytes().strip())
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return cls(key)

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:  # wrong EVENTSTREAMS_SECRET_KEY on this node
            raise RuntimeError("stored secret cannot be decrypted: check EVENTSTREAMS_SECRET_KEY") from exc


def new_standard_webhook_secret(n_bytes: int = 32) -> str:
    """A fresh random Standard Webhooks ``whsec_<base64>`` secret (spec allows 24..64 bytes).

    Here, low, because the control plane creates one per sink and must not import the sinks."""
    if not 24 <= n_bytes <= 64:
        raise ValueError("Standard Webhooks secrets are 24 to 64 bytes")
    return "whsec_" + base64.b64encode(secrets.token_bytes(n_bytes)).decode("ascii")
