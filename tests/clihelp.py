"""Running the ``eventstreams`` CLI against a test server, as a user would: its URL and credentials in the
environment, and a config directory of its own so no stored profile leaks in."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

CLI = [sys.executable, "-m", "eventstreams.cli.main"]


def cli_env(url: str, sid: str, token: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSTREAMS_")}
    return {**env, "XDG_CONFIG_HOME": tempfile.mkdtemp(prefix="es-cli-cfg-"), "EVENTSTREAMS_URL": url,
            "EVENTSTREAMS_ACCOUNT_SID": sid, "EVENTSTREAMS_AUTH_TOKEN": token, "COLUMNS": "200", **extra}  # fmt: skip


def run_cli(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("timeout", 60)
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, **kw)
