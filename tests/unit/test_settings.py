"""Settings: one table generated from config.Settings (README.md holds it), the environment's parsing
rules, and the optional TOML file under the environment."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstreams.cli.main import main
from eventstreams.config import (
    TABLE_END,
    TABLE_START,
    ConfigError,
    Settings,
    documented,
    markdown_table,
    replace_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"

# Every variable the service has read since before the table was generated: none may be renamed.
KNOWN = """DATABASE_URL ACCOUNT_SID AUTH_TOKEN BASE_URL HOST PORT DATA_DIR SECRET_KEY MAX_BODY_BYTES
ONE_SUBSCRIPTION_PER_SINK ALLOW_PRIVATE_DESTINATIONS ALLOW_SINK_ENDPOINT_URL SQLITE_SYNCHRONOUS PG_POOL_SIZE DELIVERY
DELIVERY_PROCESS DELIVERY_PROCESSES DEDUPE_WINDOW_SECONDS PACK_EVENTS PUBLISH_MAX_EVENTS PUBLISH_MAX_BYTES RETRY_FIRST_DELAY RETRY_MAX_DELAY RETRY_MAX_AGE
DELIVERY_TIMEOUT SINK_MAX_IN_FLIGHT LOG_RETENTION_SECONDS ERROR_RETENTION_SECONDS EVENT_RETENTION_SECONDS
ALERT_WEBHOOK_URL POLL_INTERVAL LEASE_SECONDS AWS_ENDPOINT_URL SEGMENT_ENDPOINT METRICS_TOKEN SANDBOX
SANDBOX_DATABASE_URL SANDBOX_PORT SANDBOX_STEP_SECONDS SANDBOX_FAILURE_RATIO SANDBOX_OUTCOMES SANDBOX_PUBLISH_EVENTS
TRACKING_DEDUPE_SECONDS PROFILES_DEFAULT_REGION PROFILES_LIMITS SOURCE_SYNCS SOURCE_SYNC_CONCURRENCY WAREHOUSE_URL
LOG_FORMAT LOG_LEVEL"""


def test_readme_holds_the_generated_table() -> None:
    text = README.read_text()
    assert TABLE_START in text and TABLE_END in text
    assert replace_table(text) == text, (
        "README.md's settings table differs from config.Settings: `eventstreams settings --update README.md`"
    )


def test_every_setting_is_documented_once_and_every_old_name_kept() -> None:
    docs = documented()
    envs = [d.env for d in docs]
    assert len(envs) == len(set(envs)) == len(fields(Settings))
    assert all(d.doc.strip() and d.default for d in docs)
    assert {f"EVENTSTREAMS_{n}" for n in KNOWN.split()} == set(envs)
    table = markdown_table()
    assert all(f"| `{e}` |" in table for e in envs)


def test_the_command_prints_the_table() -> None:
    out = CliRunner().invoke(main, ["settings", "--markdown"])
    assert out.exit_code == 0 and out.output == markdown_table()
    plain = CliRunner().invoke(main, ["settings"])
    assert plain.exit_code == 0 and "EVENTSTREAMS_RETRY_MAX_AGE  (default: 14400)" in plain.output
    assert "`" not in plain.output


def test_the_command_updates_a_files_table(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Doc\n\n{TABLE_START}\n| old |\n{TABLE_END}\n\nafter\n")
    assert CliRunner().invoke(main, ["settings", "--update", str(doc)]).exit_code == 0
    assert doc.read_text() == f"# Doc\n\n{TABLE_START}\n{markdown_table()}{TABLE_END}\n\nafter\n"
    (tmp_path / "none.md").write_text("no markers")
    out = CliRunner().invoke(main, ["settings", "--update", str(tmp_path / "none.md")])
    assert out.exit_code == 1 and "no settings table markers" in out.output


def test_environment_parsing_rules() -> None:
    s = Settings.from_env(
        {
            "EVENTSTREAMS_PORT": "9000",
            "EVENTSTREAMS_RETRY_MAX_AGE": "60",
            "EVENTSTREAMS_DELIVERY": "no",
            "EVENTSTREAMS_SANDBOX": "ON",
            "EVENTSTREAMS_SQLITE_SYNCHRONOUS": "full",
            "EVENTSTREAMS_PROFILES_DEFAULT_REGION": "gb",
            "EVENTSTREAMS_DATA_DIR": "/tmp/x",
            "EVENTSTREAMS_ACCOUNT_SID": "",  # empty: unset
            "EVENTSTREAMS_PG_POOL_SIZE": "  ",  # blank number: unset
            "EVENTSTREAMS_CONFIG": "",  # no file
        }
    )
    assert (s.port, s.retry_max_age, s.delivery, s.sandbox) == (9000, 60.0, False, True)
    assert (s.sqlite_synchronous, s.profiles_default_region, s.data_dir) == ("FULL", "GB", Path("/tmp/x"))
    assert (s.account_sid, s.pg_pool_size) == (None, 8)
    assert Settings.from_env({"EVENTSTREAMS_CONFIG": ""}) == Settings()
    with pytest.raises(ConfigError, match="EVENTSTREAMS_PORT: 'eighty' is not an integer"):
        Settings.from_env({"EVENTSTREAMS_PORT": "eighty", "EVENTSTREAMS_CONFIG": ""})


def test_config_file_under_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "es.toml"
    path.write_text(
        'database_url = "postgresql://db/es"\nport = 9001\nretry_max_age = 60\ndelivery = false\n'
        'sqlite_synchronous = "full"\nsink_max_in_flight = "7"\nsandbox_step_seconds = 2\naccount_sid = ""\n'
    )
    s = Settings.from_env({"EVENTSTREAMS_CONFIG": str(path), "EVENTSTREAMS_PORT": "9002"})
    assert s.database_url == "postgresql://db/es"  # the file over the default
    assert s.port == 9002  # the environment over the file
    assert (s.retry_max_age, s.delivery, s.sqlite_synchronous, s.sink_max_in_flight) == (60.0, False, "FULL", 7)
    assert isinstance(s.sandbox_step_seconds, float) and s.sandbox_step_seconds == 2.0
    assert s.account_sid is None
    # an empty variable is unset, so the file's value stands
    assert Settings.from_env({"EVENTSTREAMS_CONFIG": str(path), "EVENTSTREAMS_PORT": ""}).port == 9001


def test_config_file_found_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for k in [k for k in os.environ if k.startswith("EVENTSTREAMS_")]:
        monkeypatch.delenv(k)
    assert Settings.from_env() == Settings()
    (tmp_path / "eventstreams.toml").write_text("pg_pool_size = 3\n")
    assert Settings.from_env().pg_pool_size == 3  # the real environment: ./eventstreams.toml is read
    assert Settings.from_env({}).pg_pool_size == 8  # a caller's own mapping is all there is: no file
    monkeypatch.setenv("EVENTSTREAMS_CONFIG", "")
    assert Settings.from_env().pg_pool_size == 8  # empty: no file at all


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("pg_pool_sise = 3\n", "unknown setting 'pg_pool_sise'"),
        ("port = true\n", "port: expected int, got bool"),
        ("delivery = 1\n", "delivery: expected bool, got int"),
        ('port = "x"\n', "port: 'x' is not an integer"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_config_file_errors_name_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"EVENTSTREAMS_CONFIG": str(path)})


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.from_env({"EVENTSTREAMS_CONFIG": str(tmp_path / "missing.toml")})


def test_settings_survive_the_environment_of_a_delivery_process(tmp_path: Path) -> None:
    """serve hands its settings to its delivery process as environment variables: every field reads back."""
    changed = Settings(database_url=f"sqlite:///{tmp_path}/x.db", data_dir=tmp_path, delivery_process=False,
                       retry_first_delay=0.25, sink_max_in_flight=7, sqlite_synchronous="FULL",
                       alert_webhook_url=None, auth_token="tok", allow_private_destinations=True)  # fmt: skip
    assert Settings.from_env(changed.to_env()) == changed
    assert "EVENTSTREAMS_ALERT_WEBHOOK_URL" not in changed.to_env()  # unset stays unset


def test_how_many_processes_deliver_from_a_sqlite_file(tmp_path: Path) -> None:
    base = Settings(database_url=f"sqlite:///{tmp_path}/x.db", data_dir=tmp_path, delivery_process=True)
    assert base.serve_deliverers() == 1
    three = Settings.from_env({**base.to_env(), "EVENTSTREAMS_DELIVERY_PROCESSES": "3"})
    assert three.serve_deliverers() == 3
    in_serve = Settings.from_env({**three.to_env(), "EVENTSTREAMS_DELIVERY_PROCESS": "false"})
    assert in_serve.serve_deliverers() == 1  # serve delivers itself: one deliverer, whatever the count says
    with pytest.raises(ConfigError, match="EVENTSTREAMS_DELIVERY_PROCESSES: 0 is below 1"):
        Settings.from_env({**base.to_env(), "EVENTSTREAMS_DELIVERY_PROCESSES": "0"}).serve_deliverers()


def test_a_setting_that_cannot_be_read_stops_a_command_with_its_name_not_a_traceback() -> None:
    for env, message in (({"EVENTSTREAMS_DELIVERY_PROCESSES": "0"}, "EVENTSTREAMS_DELIVERY_PROCESSES: 0 is below 1"),
                         ({"EVENTSTREAMS_PORT": "abc"}, "EVENTSTREAMS_PORT: 'abc' is not an integer")):  # fmt: skip
        result = CliRunner().invoke(main, ["serve"], env=env)
        assert result.exit_code == 1, result.output
        assert f"Error: {message}" in result.output and "Traceback" not in result.output
