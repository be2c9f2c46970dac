"""The async test harness itself: both loops, leak detection."""

from __future__ import annotations

import asyncio

import pytest

SEEN: set[str] = set()


@pytest.mark.asyncio
async def test_runs_on_each_loop(request: pytest.FixtureRequest) -> None:
    loop = asyncio.get_running_loop()
    name = type(loop).__module__.split(".")[0]
    assert name in request.node.name  # test ids say which loop: [asyncio] / [uvloop]
    SEEN.add(name)


def test_both_loops_were_used() -> None:
    pytest.importorskip("uvloop")
    assert sorted(SEEN) == ["asyncio", "uvloop"]
