"""A handler served end to end in this event loop: the emulator on free 127.0.0.1 ports and
our runtime polling it (``duplexlambda.testing.EmulatedFunction``), for tests that talk to
it over real sockets; and the paced uploads they send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from duplexlambda.emulator import InvocationRecord
from duplexlambda.handler import Lifecycle
from duplexlambda.testing import EmulatedFunction

#: How long the runtime may take to stop (SIGTERM-style) when a test leaves ``stack``.
STOP_WITHIN = 10.0


@contextlib.asynccontextmanager
async def stack(
    handler: Callable[..., Any], *, deadline_margin: float = 0.2, **options: Any
) -> AsyncIterator[EmulatedFunction]:
    """``handler`` served by the emulator and our runtime; both stop on exit.

    No init or shutdown hooks run (an empty ``Lifecycle``); ``options`` are
    ``EmulatedFunction``'s (``timeout``, 300 s unless given, as ``serve``; ``concurrency``,
    ``mode``, ...). The runtime must stop within ``STOP_WITHIN`` seconds of the exit, or
    the test fails.
    """
    options.setdefault("timeout", 300.0)
    function = EmulatedFunction(
        handler, deadline_margin=deadline_margin, lifecycle=Lifecycle(), **options
    )
    await function.start()
    try:
        yield function
    finally:
        await asyncio.wait_for(function.aclose(), STOP_WITHIN)


async def record_of(
    function: EmulatedFunction, request_id: str | None, within: float = 5.0
) -> InvocationRecord:
    """The emulator's record of the invocation ``request_id`` (others are skipped)."""
    assert request_id is not None

    async def find() -> InvocationRecord:
        while True:
            record = await function.records.get()
            if record.request_id == request_id:
                return record

    return await asyncio.wait_for(find(), within)


async def paced(
    pieces: list[bytes], gap: float, *, pause_after_last: bool = False
) -> AsyncIterator[bytes]:
    """An upload that sends ``pieces`` with ``gap`` seconds between them (and after the last
    one too with ``pause_after_last``: the body then ends ``gap`` after its last byte)."""
    for index, piece in enumerate(pieces):
        if index:
            await asyncio.sleep(gap)
        yield piece
    if pause_after_last:
        await asyncio.sleep(gap)


def cut(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of ``size`` bytes."""
    return [data[i : i + size] for i in range(0, len(data), size)]
