"""cli/client.py without a server: where profiles live and with which permissions, which credentials win,
and how an API error becomes a message and an exit code."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from eventstreams.cli.client import AUTH, BUSY, CliError, Credentials, config_path, error_of, resolve, save_profile

SID, OTHER = "AC" + "1" * 32, "AC" + "2" * 32


@pytest.fixture()
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in list(os.environ):
        if k.startswith("EVENTSTREAMS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "eventstreams" / "config.json"


def test_the_profile_file_is_private_even_under_a_permissive_umask(cfg: Path) -> None:
    old = os.umask(0)
    try:
        path = save_profile("default", Credentials("http://h:1", SID, "tok"))
    finally:
        os.umask(old)
    assert path == cfg == config_path()
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600 and stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700
    assert json.loads(cfg.read_text()) == {"active": "default", "profiles": {
        "default": {"url": "http://h:1", "account_sid": SID, "auth_token": "tok"}}}  # fmt: skip


def test_home_config_without_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path() == tmp_path / ".config" / "eventstreams" / "config.json"


def test_environment_over_profile_field_by_field(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_profile("a", Credentials("http://a:1", SID, "tok-a"))
    save_profile("b", Credentials("http://b:1", OTHER, None, "SK" + "3" * 32, "sec"))
    assert resolve(None) == Credentials("http://b:1", OTHER, None, "SK" + "3" * 32, "sec")  # the last logged in
    assert resolve("a").basic() == (SID, "tok-a")
    monkeypatch.setenv("EVENTSTREAMS_PROFILE", "a")
    assert resolve(None).url == "http://a:1"
    assert resolve("b").url == "http://b:1"  # --profile beats EVENTSTREAMS_PROFILE
    monkeypatch.setenv("EVENTSTREAMS_URL", "http://env:9/")
    monkeypatch.setenv("EVENTSTREAMS_AUTH_TOKEN", "tok-env")
    got = resolve("b")  # the environment's token replaces the stored key whole
    assert (got.url, got.account_sid, got.basic()) == ("http://env:9", OTHER, (OTHER, "tok-env"))
    monkeypatch.setenv("EVENTSTREAMS_API_KEY", "SK" + "4" * 32)
    monkeypatch.setenv("EVENTSTREAMS_API_SECRET", "s2")
    assert resolve("a").basic() == ("SK" + "4" * 32, "s2")
    monkeypatch.setenv("EVENTSTREAMS_PROFILE", "nope")
    with pytest.raises(CliError) as err:
        resolve(None)
    assert err.value.exit_code == AUTH and "eventstreams login --profile nope" in err.value.message


def test_not_logged_in(cfg: Path) -> None:
    with pytest.raises(CliError) as err:
        resolve(None)
    assert err.value.exit_code == AUTH and "eventstreams login" in err.value.message


@pytest.mark.parametrize(("status", "code"), [(400, 1), (401, 3), (403, 3), (404, 1), (409, 2), (429, 2), (500, 1)])
def test_exit_code_per_status(status: int, code: int) -> None:
    e = error_of(status, {"code": 20001, "message": "m", "more_info": "https://www.twilio.com/docs/errors/20001"}, "")
    assert e.exit_code == code and "m (HTTP" in e.message and "code 20001" in e.message


def test_segment_shaped_and_non_json_errors() -> None:
    assert "Profile was not found." in error_of(404, {"error": {"code": "not_found",
                                                                "message": "Profile was not found."}}, "").message
    e = error_of(409, None, "<html>busy</html>")
    assert e.exit_code == BUSY and "<html>busy</html>" in e.message and "→" in e.message


def test_next_pages_go_to_the_profiles_server_only() -> None:
    from eventstreams.cli.client import _same_server

    # the server may name itself by another address (EVENTSTREAMS_BASE_URL unset: 127.0.0.1): never follow it
    assert _same_server("http://127.0.0.1:8080/v1/Sinks?PageSize=2&PageToken=PAx") == "/v1/Sinks?PageSize=2&PageToken=PAx"
    assert _same_server("https://evil.example/v1/Sinks") == "/v1/Sinks"
    assert _same_server("/2010-04-01/Accounts.json?Page=1") == "/2010-04-01/Accounts.json?Page=1"
    assert _same_server(None) is None and _same_server("") is None
