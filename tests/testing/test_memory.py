"""``MemoryTransport``: the in-memory connection under ``LambdaClient`` behaves as TCP does
for asyncio protocols (ordering, flow control both ways, close and reset)."""

from __future__ import annotations

import asyncio

import pytest

from duplexlambda.testing import MemoryTransport, memory_pipe

pytestmark = pytest.mark.asyncio


class Recorder(asyncio.Protocol):
    def __init__(self, keep_open: bool = False) -> None:
        self.transport: MemoryTransport | None = None
        self.events: list[tuple[str, object]] = []
        self.keep_open = keep_open

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, MemoryTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.events.append(("data", data))

    def eof_received(self) -> bool:
        self.events.append(("eof", None))
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", type(exc).__name__ if exc else None))

    def pause_writing(self) -> None:
        self.events.append(("pause_writing", None))

    def resume_writing(self) -> None:
        self.events.append(("resume_writing", None))


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_writes_arrive_later_in_order_one_per_call() -> None:
    a, b = Recorder(), Recorder()
    ta, tb = memory_pipe(a, b)
    ta.write(b"one")
    ta.writelines([b"tw", b"o"])
    ta.write(b"")
    assert b.events == []  # never re-entrant: delivered on a later loop iteration
    await settle()
    assert b.events == [("data", b"one"), ("data", b"two")]
    tb.write(b"back")
    await settle()
    assert a.events == [("data", b"back")]
    assert ta.get_extra_info("socket") is None
    assert tb.get_extra_info("peername") == ("127.0.0.1", 0)


async def test_flow_control_both_ways() -> None:
    a, b = Recorder(), Recorder()
    ta, tb = memory_pipe(a, b)
    ta.set_write_buffer_limits(high=10, low=4)
    tb.pause_reading()
    ta.write(b"x" * 8)
    ta.write(b"y" * 8)  # 16 bytes wait at a reader that paused: over the high watermark
    await settle()
    assert b.events == []
    assert a.events == [("pause_writing", None)]
    assert ta.get_write_buffer_size() == 16
    tb.resume_reading()
    await settle()
    assert [e for e in b.events if e[0] == "data"] == [("data", b"x" * 8), ("data", b"y" * 8)]
    assert a.events == [("pause_writing", None), ("resume_writing", None)]
    assert ta.get_write_buffer_size() == 0


async def test_close_delivers_then_ends() -> None:
    a, b = Recorder(), Recorder()
    ta, tb = memory_pipe(a, b)
    ta.write(b"last words")
    ta.close()
    ta.write(b"dropped")
    assert ta.is_closing()
    await settle()
    assert b.events == [("data", b"last words"), ("eof", None), ("lost", None)]
    assert a.events == [("lost", None)]
    assert tb.is_closing()


async def test_half_close_when_the_peer_keeps_its_side_open() -> None:
    a, b = Recorder(), Recorder(keep_open=True)
    ta, tb = memory_pipe(a, b)
    ta.close()
    await settle()
    assert b.events == [("eof", None)]
    assert not tb.is_closing()
    tb.close()
    await settle()
    assert b.events[-1] == ("lost", None)


async def test_abort_resets_the_peer() -> None:
    a, b = Recorder(), Recorder()
    ta, tb = memory_pipe(a, b)
    tb.pause_reading()
    ta.write(b"never read")
    ta.abort()
    await settle()
    assert b.events == [("lost", "ConnectionResetError")]
    assert a.events == [("lost", None)]
