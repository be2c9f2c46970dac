"""A large duplex upload streams through with flat emulator memory.

A raw client uploads 256 MiB per event loop; a raw runtime takes the request stream and
echoes every piece back as it arrives. Python allocations (the emulator's, and the two test
peers', which hold no more than a piece each) are traced; the peak growth must stay far
below the size of the upload. (``benchmarks/emulator_memory.py`` does 1 GiB and RSS.)
"""

from __future__ import annotations

import asyncio
import os
import time
import tracemalloc
import zlib

import pytest

from duplexlambda.protocol.chunked import ChunkEncoder

from ..support.wire import Conn, next_invocation, request_bytes, running, streaming_head

SIZE = 256 * 1024 * 1024
BLOCK = os.urandom(256 * 1024)
PEAK_LIMIT = 64 * 1024 * 1024


async def upload(client: Conn) -> int:
    await client.send(
        request_bytes(
            "POST",
            "/echo",
            [("Content-Length", str(SIZE)), ("Content-Type", "application/octet-stream")],
        )
    )
    crc = 0
    for _ in range(SIZE // len(BLOCK)):
        client.writer.write(BLOCK)
        await client.writer.drain()
        crc = zlib.crc32(BLOCK, crc)
    return crc


async def download(client: Conn) -> tuple[int, int]:
    head = await client.read_head(30)
    assert head.status == 200
    size = crc = 0
    async for piece in client.body_pieces(head, 30):
        size += len(piece)
        crc = zlib.crc32(piece, crc)
    return size, crc


async def echo_runtime(api: str) -> None:
    nxt = await next_invocation(api, stream=True, read_body=False, within=30)
    pieces = nxt.conn.body_pieces(nxt.head, 30)
    await pieces.__anext__()  # the event JSON
    await pieces.__anext__()  # the 8 NULs
    response = await Conn.open(api)
    await response.send(streaming_head(nxt.request_id, "application/octet-stream"))
    encoder = ChunkEncoder()
    async for piece in pieces:
        response.writer.write(encoder.data(piece))
        await response.writer.drain()
    await response.send(encoder.end())
    assert (await response.read_reply(30)).status == 202
    await response.close()
    await nxt.conn.close()


@pytest.mark.asyncio
async def test_large_duplex_upload_echoed_with_flat_memory() -> None:
    async with running(timeout=120) as emu:
        client = await Conn.open(emu.url)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            started = time.monotonic()
            async with asyncio.timeout(60):
                runtime = asyncio.ensure_future(echo_runtime(emu.runtime_api))
                sent_crc, (got, got_crc), _ = await asyncio.gather(
                    upload(client), download(client), runtime
                )
            elapsed = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        await client.close()
        assert (got, got_crc) == (SIZE, sent_crc)
        print(f"\n{SIZE >> 20} MiB echoed in {elapsed:.1f} s, peak growth {peak / 2**20:.1f} MiB")
        assert peak < PEAK_LIMIT
