"""Fixtures of the runtime tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from ..support.fake_api import FakeRuntimeApi


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeRuntimeApi]:
    """A raw-socket Runtime API that records every byte the runtime sends."""
    async with FakeRuntimeApi() as fake:
        yield fake
