"""Running pipelines in tests without an event loop, and the ways to chunk an input.

The built-in byte transforms never wait on anything but their upstream, and a list source
never waits at all, so a pipeline over a list finishes in one ``send(None)``: each of the
hundreds of chunkings a test tries costs microseconds, not an event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

from duplexlambda.pipeline import Transform, pipeline


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends; fail if it does."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the coroutine suspended: it needs an event loop")


async def collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


def run(chunks: list[Any], *transforms: Transform) -> list[Any]:
    """The items ``transforms`` make of ``chunks`` (fed one chunk per item)."""
    return drive(pipeline(chunks, *transforms, sink=collect))  # type: ignore[no-any-return]


def splits(data: bytes) -> Iterator[list[bytes]]:
    """``data`` whole, cut in two at every position, and byte by byte."""
    yield [data]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given positions (sorted, clipped)."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
