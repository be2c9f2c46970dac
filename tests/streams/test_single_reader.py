"""One reader at a time: the rule every body stream keeps, through ``errors.SingleReader``.

The runtime's ``req`` is covered in test_request.py; here the guard itself, and the two wire
readers under it: the runtime's Runtime API connection and the emulator's request body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from duplexlambda.emulator.server import Body, HttpServerProtocol
from duplexlambda.errors import BusyResourceError, SingleReader
from duplexlambda.runtime.connection import ClientConnection


def test_guard_refuses_a_second_reader_and_resets_on_exit() -> None:
    guard = SingleReader("thing")
    with guard:
        assert guard.busy
        with pytest.raises(BusyResourceError, match="another task is reading this thing"), guard:
            pass
        assert guard.busy  # the refused reader does not release the first one's claim
    assert not guard.busy
    with pytest.raises(ValueError, match="failed"), guard:
        raise ValueError("a read that failed")
    assert not guard.busy


class _Conn:
    """The little of ``HttpServerProtocol`` a ``Body`` calls."""

    def pause_reading_for(self, reason: str) -> None:
        pass

    def resume_reading_for(self, reason: str) -> None:
        pass

    def send_continue(self) -> None:
        pass


def _server_body() -> tuple[Callable[[], Awaitable[Any]], Callable[[bytes], None]]:
    body = Body(cast(HttpServerProtocol, _Conn()), expect_continue=False)
    return body.read, lambda data: body._feed([memoryview(data)])


def _runtime_connection() -> tuple[Callable[[], Awaitable[Any]], Callable[[bytes], None]]:
    conn = ClientConnection()
    conn.expect_response(b"GET")
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    return conn.read, lambda data: conn.data_received(b"%x\r\n%s\r\n" % (len(data), data))


@pytest.mark.asyncio
@pytest.mark.parametrize("make", [_server_body, _runtime_connection], ids=["emulator", "runtime"])
async def test_second_reader_is_busy(
    make: Callable[[], tuple[Callable[[], Awaitable[Any]], Callable[[bytes], None]]],
) -> None:
    read, arrive = make()
    first = asyncio.ensure_future(read())
    await asyncio.sleep(0)
    with pytest.raises(BusyResourceError):
        await read()
    arrive(b"data")
    assert bytes(await first) == b"data"
    # The first read is over: the next reader is welcome.
    arrive(b"more")
    assert bytes(await read()) == b"more"
