"""Shared fixtures: the codec twins, and the event loops async tests run on."""

from __future__ import annotations

import asyncio
import os
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from duplexlambda.protocol import chunked
from duplexlambda.protocol._chunked_py import ChunkDecoder as PyChunkDecoder
from duplexlambda.protocol._chunked_py import ChunkEncoder as PyChunkEncoder

VECTORS = pathlib.Path(__file__).parent / "vectors"

# CI builds the extension and must never fall back to Python silently.
if os.environ.get("DUPLEXLAMBDA_REQUIRE_C") == "1":
    assert chunked.CChunkDecoder is not None, chunked.IMPORT_ERROR

_C_MISSING = pytest.mark.skipif(
    chunked.CChunkDecoder is None, reason=f"C twin not built: {chunked.IMPORT_ERROR}"
)

DECODERS = [
    pytest.param(PyChunkDecoder, id="py"),
    pytest.param(chunked.CChunkDecoder, id="c", marks=_C_MISSING),
]
ENCODERS = [
    pytest.param(PyChunkEncoder, id="py"),
    pytest.param(chunked.CChunkEncoder, id="c", marks=_C_MISSING),
]


@pytest.fixture(params=DECODERS)
def decoder_cls(request: pytest.FixtureRequest) -> type[PyChunkDecoder]:
    """Each chunked decoder twin in turn."""
    cls: type[PyChunkDecoder] = request.param
    return cls


@pytest.fixture(params=ENCODERS)
def encoder_cls(request: pytest.FixtureRequest) -> type[PyChunkEncoder]:
    """Each chunked encoder twin in turn."""
    cls: type[PyChunkEncoder] = request.param
    return cls


# --- async tests run on both loops, and fail on leaks ----------------------------------------


def _uvloop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    try:
        import uvloop
    except ImportError:
        return {}
    return {"uvloop": uvloop.new_event_loop}


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test runs once on the stdlib loop and once on uvloop."""
    return {"asyncio": asyncio.new_event_loop, **_uvloop_factories()}


@pytest.fixture(autouse=True)
def _no_leaked_tasks(request: pytest.FixtureRequest) -> None:
    """Fail an async test that leaves tasks running or loop exceptions unhandled."""
    if request.node.get_closest_marker("asyncio"):
        request.getfixturevalue("_install_loop_checks")


@pytest_asyncio.fixture
async def _install_loop_checks() -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    # Give cancelled tasks their last step, then nothing may remain.
    for _ in range(3):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"tasks left running: {leaked}"
    assert not errors, f"unhandled loop errors: {errors}"
