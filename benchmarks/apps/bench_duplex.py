"""duplexlambda handlers of the benchmarks.

* ``echo_async``: the buffered echo as an ``async def`` (no worker thread per invocation).
* ``echo_duplex``: the duplex round trip: read the whole upload, write it back, end.
* ``http``: function-URL paths for the streaming benchmarks, parameters in the query string:
  ``/bytes?total=N&write=W`` answers N bytes in writes of W bytes; ``/upload`` echoes the
  upload piece by piece while it arrives; ``/ticks?n=N&interval_us=I`` opens the stream,
  then writes 16 bytes every I microseconds: the scheduled and the actual write time
  (``time.monotonic()``, one clock for every process on the machine) as two doubles.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from typing import Any

from duplexlambda.handler import buffered
from duplexlambda.streams import Request, Response

_blocks: dict[int, bytes] = {}


def block(size: int) -> bytes:
    """The payload of one write: the same bytes in the client and in every runtime."""
    data = _blocks.get(size)
    if data is None:
        data = _blocks[size] = random.Random(size).randbytes(size)
    return data


@buffered
async def echo_async(event: Any, context: Any) -> Any:
    return event


async def echo_duplex(req: Request, res: Response) -> None:
    data = await req.read()
    await res.write(data)
    await res.end()


async def http(req: Request, res: Response) -> None:
    if req.path == "/bytes":
        total, size = int(req.query["total"]), int(req.query["write"])
        data = block(size)
        write = res.write
        for _ in range(total // size):
            await write(data)
    elif req.path == "/upload":
        async for piece in req:
            await res.write(piece)
    elif req.path == "/ticks":
        count, interval = int(req.query["n"]), int(req.query["interval_us"]) / 1e6
        await res.write(b"")  # opens the stream (status, headers) before the first tick
        start = time.monotonic() + interval
        for i in range(count):
            target = start + i * interval
            # Never early: uvloop's timers have 1 ms granularity and may wake before time.
            while (delay := target - time.monotonic()) > 0:  # noqa: ASYNC110 (a timer)
                await asyncio.sleep(delay)
            await res.write(struct.pack("<dd", target, time.monotonic()))
    else:
        res.status = 404
        await res.write(b"unknown path\n")
