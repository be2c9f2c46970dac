"""The Request stream contract, over a scripted body source."""

from __future__ import annotations

import asyncio

import pytest

from duplexlambda.errors import BusyResourceError
from duplexlambda.runtime.request import BodySource, BytesSource, Request

pytestmark = pytest.mark.asyncio


class Pieces(BodySource):
    def __init__(self, *pieces: bytes, gate: asyncio.Event | None = None) -> None:
        self.pieces = list(pieces)
        self.gate = gate

    async def next_piece(self) -> bytes:
        if self.gate is not None:
            await self.gate.wait()
        return self.pieces.pop(0) if self.pieces else b""


async def test_read_sizes() -> None:
    req = Request(Pieces(b"hello ", b"world"))
    assert await req.read(3) == b"hel"
    assert await req.read(100) == b"lo "
    assert await req.read() == b"world"
    assert await req.read() == b""
    assert await req.read(5) == b""


async def test_readexactly_and_incomplete() -> None:
    req = Request(Pieces(b"ab", b"cd", b"e"))
    assert await req.readexactly(3) == b"abc"
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await req.readexactly(5)
    assert info.value.partial == b"de"


async def test_readline_and_lines() -> None:
    req = Request(Pieces(b"a,1\nb,", b"2\r\n", b"last"))
    assert await req.readline() == b"a,1\n"
    assert [line async for line in req.lines()] == ["b,2", "last"]


async def test_iteration_yields_pieces_as_they_come() -> None:
    req = Request(Pieces(b"x", b"", b"never"))
    assert [c async for c in req] == [b"x"]  # b"" is the end of the body


async def test_text_and_json() -> None:
    assert await Request(BytesSource("héllo".encode())).text() == "héllo"
    assert await Request(Pieces(b'{"a":', b"[1]}")).json() == {"a": [1]}


async def test_second_reader_is_busy() -> None:
    gate = asyncio.Event()
    req = Request(Pieces(b"data", gate=gate))
    first = asyncio.get_running_loop().create_task(req.read())
    await asyncio.sleep(0)
    with pytest.raises(BusyResourceError):
        await req.read()
    gate.set()
    assert await first == b"data"
