"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventstreams.runtime import Runtime, build_runtime
from tests.conftest import make_settings


@pytest.fixture
async def rt(database: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime on a fresh store of the test's backend, no dispatcher: the test leases and completes."""
    runtime = await build_runtime(make_settings(database, tmp_path, delivery=False))
    try:
        yield runtime
    finally:
        await runtime.close()
