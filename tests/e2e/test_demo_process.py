"""`eventstreams demo` as a real process: it starts the service, wires it, reaches "events flowing", and a
SIGINT (Ctrl-C) stops the sender, the receiver and the server, and removes its temp data dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from queue import Empty, Queue

import requests

from tests.clihelp import CLI


def test_demo_reaches_events_flowing_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COLUMNS": "200"}
    proc = subprocess.Popen([*CLI, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: Queue[str] = Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    seen: list[str] = []
    try:
        while not any("events flowing" in line for line in seen):
            try:
                seen.append(lines.get(timeout=60))
            except Empty:
                raise AssertionError("no events flowing:\n" + "".join(seen)) from None
        text = "".join(seen)
        url = re.search(r"starting eventstreams on (http://127\.0\.0\.1:\d+)", text)
        data = re.search(r"\(data in (\S+)\)", text)
        assert url and data, text
        assert f"{url[1]}/console/" in text and "SMS sink" in text
        assert requests.get(f"{url[1]}/healthz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    while True:
        try:
            seen.append(lines.get(timeout=5))
        except Empty:
            break
    assert "demo stopped" in "".join(seen)
    try:  # the server went with it
        requests.get(f"{url[1]}/healthz", timeout=2)
        raise AssertionError("the demo's server still answers")
    except requests.ConnectionError:
        pass
    assert not Path(data[1]).exists()
