"""Unit-test fixtures: the real runtime on SQLite in memory (no files, no server, no network),
so domain logic runs through the same store code as production, in milliseconds."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from eventstreams.config import Settings
from eventstreams.domain.accounts import Principal
from eventstreams.runtime import Runtime, build_runtime


def memory_settings(tmp: Path, **overrides: object) -> Settings:
    base = Settings(
        database_url="sqlite:///:memory:",
        data_dir=tmp,
        secret_key=Fernet.generate_key().decode(),
        delivery=False,
        allow_private_destinations=True,
    )
    return Settings(**{**base.__dict__, **overrides})


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await build_runtime(memory_settings(tmp_path))
    try:
        yield rt
    finally:
        await rt.close()


async def new_principal(rt: Runtime, name: str = "unit", parent: str | None = None) -> Principal:
    row, token = await rt.accounts.create(name, parent_sid=parent)
    return await rt.accounts.authenticate("Basic " + base64.b64encode(f"{row.sid}:{token}".encode()).decode())


@pytest.fixture
async def principal(runtime: Runtime) -> Principal:
    return await new_principal(runtime)
