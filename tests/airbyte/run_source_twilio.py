"""Run the real airbyte-source-twilio (from PyPI) against another Twilio host.

Runs under .venv-airbyte/bin/python (``make .venv-airbyte/.done``), never under ours:

    .venv-airbyte/bin/python tests/airbyte/run_source_twilio.py --base-url http://127.0.0.1:8090 \\
        read --config config.json --catalog catalog.json

Everything after ``--base-url URL`` is the Airbyte protocol command line (spec, check, discover,
read); the Airbyte messages go to stdout, one JSON document a line, as the connector's own
``source-twilio`` entry point prints them.

The connector's declarative manifest hard-codes ``https://api.twilio.com`` in its URLs. This copies
the packaged manifest.yaml with only that string replaced and loads the copy through the
connector's own class (same components, same CDK, same paging, retries and cursors).
"""

from __future__ import annotations

import importlib.resources
import sys
import tempfile
from pathlib import Path
from typing import Any

TWILIO = "https://api.twilio.com"


def patched_manifest(base_url: str, directory: Path) -> Path:
    text = (importlib.resources.files("source_twilio") / "manifest.yaml").read_text(encoding="utf-8")
    # Zero hits means the connector moved its host elsewhere: fail loudly instead of calling Twilio.
    hits = text.count(TWILIO)
    if hits == 0:
        raise SystemExit(f"source_twilio/manifest.yaml no longer contains {TWILIO}: update this runner")
    path = directory / "manifest.yaml"
    path.write_text(text.replace(TWILIO, base_url.rstrip("/")), encoding="utf-8")
    return path


def build_source(manifest: Path, args: list[str]) -> Any:
    # Imported here so that `--help`-level mistakes fail before the CDK's slow import.
    from airbyte_cdk.entrypoint import AirbyteEntrypoint
    from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
    from source_twilio import SourceTwilio

    class PatchedSourceTwilio(SourceTwilio):
        # SourceTwilio.__init__ hard-codes path_to_yaml="manifest.yaml"; the rest is the connector's.
        def __init__(self, catalog: Any, config: Any, state: Any) -> None:
            YamlDeclarativeSource.__init__(
                self, path_to_yaml=str(manifest), catalog=catalog, config=config, state=state
            )

    # What source_twilio/run.py's _get_source does, with the patched manifest.
    catalog_path = AirbyteEntrypoint.extract_catalog(args)
    config_path = AirbyteEntrypoint.extract_config(args)
    state_path = AirbyteEntrypoint.extract_state(args)
    return PatchedSourceTwilio(
        SourceTwilio.read_catalog(catalog_path) if catalog_path else None,
        SourceTwilio.read_config(config_path) if config_path else None,
        SourceTwilio.read_state(state_path) if state_path else None,
    )


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[0] != "--base-url":
        raise SystemExit("usage: run_source_twilio.py --base-url URL {spec|check|discover|read} [airbyte args]")
    base_url, args = argv[1], argv[2:]
    if not base_url.startswith(("http://", "https://")):
        raise SystemExit(f"--base-url must be an http(s) URL, got {base_url!r}")

    from airbyte_cdk.entrypoint import launch, logger
    from airbyte_cdk.exception_handler import init_uncaught_exception_handler

    init_uncaught_exception_handler(logger)
    with tempfile.TemporaryDirectory(prefix="source-twilio-") as tmp:
        source = build_source(patched_manifest(base_url, Path(tmp)), args)
        launch(source, args)


if __name__ == "__main__":
    main(sys.argv[1:])
