"""``pipeline()`` itself: sinks, sources, backpressure, closing, and streams nesting all the
way to an HTTP client through the emulator."""

from __future__ import annotations

import asyncio
import base64
import gzip
import zlib
from collections.abc import AsyncIterator

import pytest

from duplexlambda.pipeline import (
    Transform,
    base64_encode,
    chain,
    gzip_compress,
    pipeline,
    split_lines,
)
from duplexlambda.streams import Request, Response

from ..support.emulated import cut, paced, stack
from ..support.wire import request
from .drive import collect, drive


class ListWriter:
    def __init__(self) -> None:
        self.items: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.items.append(data)


async def upper(items: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for item in items:
        yield item.upper()


def test_writer_sink_gets_every_item_in_order() -> None:
    sink = ListWriter()
    assert drive(pipeline([b"a", b"b"], upper, sink=sink)) is None
    assert sink.items == [b"A", b"B"]


def test_consumer_sink_result_is_returned_and_the_sink_may_be_positional() -> None:
    assert drive(pipeline([b"a", b"b"], upper, collect)) == [b"A", b"B"]
    assert drive(pipeline([b"x"], collect)) == [b"x"]


def test_bytes_and_str_sources_are_one_item() -> None:
    assert drive(pipeline(b"abc", sink=collect)) == [b"abc"]
    assert drive(pipeline("abc", sink=collect)) == ["abc"]
    assert drive(pipeline(iter([b"a", b"b"]), sink=collect)) == [b"a", b"b"]


def test_no_sink_is_an_error() -> None:
    with pytest.raises(TypeError, match="needs a sink"):
        drive(pipeline([b"a"]))


class Tracked:
    """A source and a transform that record whether they were closed."""

    def __init__(self) -> None:
        self.closed: list[str] = []
        self.produced = 0

    async def source(self, n: int = 1000) -> AsyncIterator[bytes]:
        try:
            for i in range(n):
                self.produced += 1
                yield b"%d\n" % i
        finally:
            self.closed.append("source")

    def stage(self, name: str) -> Transform:
        async def transform(items: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            try:
                async for item in items:
                    yield item
            finally:
                self.closed.append(name)

        return transform


def test_a_failing_sink_closes_every_stage_last_first() -> None:
    tracked = Tracked()

    class Failing:
        async def write(self, data: bytes) -> None:
            if data == b"3\n":
                raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        drive(pipeline(tracked.source(), tracked.stage("a"), tracked.stage("b"), sink=Failing()))
    assert tracked.closed == ["b", "a", "source"]
    assert tracked.produced == 4  # nothing was read past the failure


def test_a_failing_stage_closes_the_others() -> None:
    tracked = Tracked()

    async def boom(items: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for item in items:
            if item == b"2\n":
                raise ValueError("bad record")
            yield item

    with pytest.raises(ValueError, match="bad record"):
        drive(pipeline(tracked.source(), boom, tracked.stage("after"), sink=collect))
    assert tracked.closed == ["after", "source"]


def test_chain_closes_the_stages_it_built() -> None:
    tracked = Tracked()
    combined = chain(tracked.stage("x"), tracked.stage("y"))
    assert drive(pipeline(tracked.source(3), combined, sink=collect)) == [b"0\n", b"1\n", b"2\n"]
    assert tracked.closed == ["source", "x", "y"]  # exhausted in order, then closed


@pytest.mark.asyncio
async def test_backpressure_nothing_runs_ahead_of_a_slow_sink() -> None:
    tracked = Tracked()
    lags: list[int] = []

    class Slow:
        written = 0

        async def write(self, data: bytes) -> None:
            lags.append(tracked.produced - self.written)
            self.written += 1
            await asyncio.sleep(0.001)

    await pipeline(tracked.source(50), split_lines(keepends=True), upper, sink=Slow())
    assert len(lags) == 50
    assert max(lags) == 1  # the source is one item ahead at most: it is pulled, never pushed


@pytest.mark.asyncio
async def test_cancelling_a_pipeline_closes_its_stages() -> None:
    tracked = Tracked()
    started = asyncio.Event()

    class Stuck:
        async def write(self, data: bytes) -> None:
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.get_running_loop().create_task(
        pipeline(tracked.source(), tracked.stage("t"), sink=Stuck())
    )
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tracked.closed == ["t", "source"]


@pytest.mark.asyncio
async def test_gzip_inside_base64_inside_the_response() -> None:
    # The seed's point: streams nest. The client gets base64 of gzip of the upload, and each
    # piece is decodable the moment it arrives (gzip flushes per write; base64 holds back
    # at most 2 bytes).
    async def handler(req: Request, res: Response) -> None:
        res.content_type = "text/plain"
        await pipeline(req, gzip_compress(), base64_encode(), sink=res)

    upload = b"".join(b"line %d of the upload\n" % i for i in range(400))
    async with stack(handler) as emu:
        reply = await request(emu.url, "POST", body=paced(cut(upload, 1000), 0.05))
    assert reply.status == 200
    assert reply.complete
    assert gzip.decompress(base64.b64decode(reply.body)) == upload
    # Streaming, not buffering: the answer came in many chunks over the upload's ~0.4 s, and
    # what had arrived by the middle already decodes to a prefix of the upload.
    assert len(reply.chunks) >= 8
    assert reply.chunks[-1][0] - reply.chunks[0][0] > 0.2
    half = b"".join(c for _, c in reply.chunks[: len(reply.chunks) // 2])
    half = half[: len(half) - len(half) % 4]
    prefix = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(base64.b64decode(half))
    assert len(prefix) > 1000
    assert upload.startswith(prefix)
