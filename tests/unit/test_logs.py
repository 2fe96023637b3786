"""Structured logs: JSON lines or text, extras as keys, secrets redacted on the handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from eventstreams import logs


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_json_lines_carry_extras_and_never_secrets(restore_root: None) -> None:
    buf = io.StringIO()
    logs.configure("json", "INFO", stream=buf)
    log = logging.getLogger("eventstreams.test")
    log.info(
        "POST to https://user:pa55word@hooks.example/x with Authorization: Bearer abc.def and auth_token=tok123",
        extra={"event_id": "EV1", "sink_sid": "DG1", "account_sid": "AC1", "auth_token": "tok456",
               "headers": {"Authorization": "Basic Zm9vOmJhcg==", "Accept": "json"}, "write_key": "wk789"},
    )  # fmt: skip
    try:
        raise ValueError("connect to postgresql://es:dbpass99@db/es failed")
    except ValueError:
        log.exception("store down", extra={"account_sid": "AC1"})
    log.debug("not at INFO")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert (first["event_id"], first["sink_sid"], first["account_sid"]) == ("EV1", "DG1", "AC1")
    assert first["level"] == "INFO" and first["logger"] == "eventstreams.test" and first["time"].endswith("+00:00")
    assert first["auth_token"] == first["write_key"] == logs.REDACTED
    assert first["headers"] == {"Authorization": logs.REDACTED, "Accept": "json"}
    assert "https://user:[redacted]@hooks.example/x" in first["message"]
    assert "Authorization: [redacted]" in first["message"] and "auth_token=[redacted]" in first["message"]
    assert "ValueError" in lines[1]["exception"] and "postgresql://es:[redacted]@db/es" in lines[1]["exception"]
    text = buf.getvalue()
    for secret in ("pa55word", "abc.def", "tok123", "tok456", "Zm9vOmJhcg", "wk789", "dbpass99"):
        assert secret not in text


def test_text_on_a_terminal_json_elsewhere_and_the_setting_wins(restore_root: None) -> None:
    tty = Tty()
    logs.configure("auto", "INFO", stream=tty)
    logging.getLogger("eventstreams.test").warning("hello %s", "there", extra={"sink_sid": "DG1"})
    line = tty.getvalue().strip()
    assert line.endswith("WARNING eventstreams.test: hello there sink_sid=DG1"), line
    piped = io.StringIO()
    logs.configure("auto", "INFO", stream=piped)
    assert sum(isinstance(h, logs._Handler) for h in logging.getLogger().handlers) == 1, "replaced, not added"
    logging.getLogger("eventstreams.test").warning("x")
    assert json.loads(piped.getvalue())["message"] == "x"
    assert tty.getvalue().count("\n") == 1, "the first handler was replaced"
    forced = Tty()
    logs.configure("json", "WARNING", stream=forced)
    logging.getLogger("eventstreams.test").info("quiet")
    logging.getLogger("eventstreams.test").error("loud")
    assert json.loads(forced.getvalue())["message"] == "loud"


def test_the_settings_choose_format_and_level(restore_root: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSTREAMS_LOG_FORMAT", "text")
    monkeypatch.setenv("EVENTSTREAMS_LOG_LEVEL", "debug")
    monkeypatch.setenv("EVENTSTREAMS_CONFIG", "")
    buf = io.StringIO()
    logs.configure(stream=buf)
    logging.getLogger("eventstreams.test").debug("seen")
    assert logging.getLogger().level == logging.DEBUG and " DEBUG eventstreams.test: seen" in buf.getvalue()


def test_a_root_logger_configured_elsewhere_is_left_alone(restore_root: None) -> None:
    root = logging.getLogger()
    foreign = logging.StreamHandler(io.StringIO())
    root.addHandler(foreign)
    try:
        assert logs.configure() is None  # a host application (or pytest) configured logging: as basicConfig
        assert not any(isinstance(h, logs._Handler) for h in root.handlers)
    finally:
        root.removeHandler(foreign)
