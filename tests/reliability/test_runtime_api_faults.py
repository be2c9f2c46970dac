"""Faults of the Runtime API itself, scripted on a raw socket (tests/support/fake_api.py).

Each test is named after the fault: the API answers a post with 400, 403, 413 or 500, or
never answers it. The rules (docs/runtime-api.md §3.2, §3.7, P6; README "Errors"): a 4xx is logged
and the runtime goes on to the next invocation, never calling ``/error`` after a 413; a 500
means "non-recoverable, exit"; an API that never answers must not hang the runtime past the
invocation's deadline. An invocation running beside the faulty one keeps every byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from duplexlambda.handler import Lifecycle
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime import Runtime, RuntimeConfig
from duplexlambda.streams import Request, Response

from ..support.fake_api import FakeRuntimeApi, Invocation, Received
from .harness import GOOD_BODY, write_good

pytestmark = pytest.mark.asyncio

REJECTIONS = {
    400: b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}\n',
    403: b'{"errorMessage":"State transition from X to Y failed for runtime. Error: no",'
    b'"errorType":"InvalidStateTransition"}\n',
    413: b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",'
    b'"errorType":"RequestEntityTooLarge"}\n',
    500: b'{"errorMessage":"Internal Server Error","errorType":"InternalServerError"}\n',
}


class StallingApi(FakeRuntimeApi):
    """The fake API, plus posts for ids in ``stall`` that are read and never answered."""

    def __init__(self) -> None:
        super().__init__()
        self.stall: set[str] = set()
        self.stalled = asyncio.Event()
        self.received_stalled: Received | None = None

    async def __aenter__(self) -> StallingApi:
        await super().__aenter__()
        return self

    async def _answer_post(self, rec: Received, writer: asyncio.StreamWriter) -> None:
        rid = rec.path.split("/invocation/")[-1].split("/")[0]
        if rid in self.stall:
            self.received_stalled = rec
            self.stalled.set()
            await asyncio.sleep(3600)  # cancelled when the fake API closes
        await super()._answer_post(rec, writer)


async def handler(req: Request, res: Response) -> None:
    """A plain invocation: ``{}`` streams the good body; ``{"fail": 1}`` raises first."""
    event = await req.json()
    if event.get("fail"):
        raise RuntimeError("handler failed")
    await write_good(res)


@contextlib.asynccontextmanager
async def runtime_on(
    api: StallingApi, fn: Callable[..., Any] = handler, concurrency: int = 2
) -> AsyncIterator[tuple[Runtime, asyncio.Task[int]]]:
    config = RuntimeConfig(RuntimeApiAddress.parse(api.address), concurrency=concurrency)
    runtime = Runtime(fn, config, Lifecycle())
    task = asyncio.get_running_loop().create_task(runtime.serve())
    try:
        yield runtime, task
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 10)


def posts_for(api: StallingApi, rid: str) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in api.received if f"/invocation/{rid}/" in r.path]


async def good_result(api: StallingApi, inv: Invocation) -> None:
    got = await api.result(inv.request_id)
    assert got.complete, "the well-behaved response was cut"
    assert got.body == GOOD_BODY, "bytes of the well-behaved invocation were lost or mixed"
    assert got.trailers == []


@pytest.mark.parametrize("status", [400, 403, 413])
async def test_runtime_api_rejects_the_streamed_response(status: int) -> None:
    async with StallingApi() as api, runtime_on(api):
        bad, good = api.add(Invocation()), api.add(Invocation())
        api.status_for[bad.request_id] = (status, REJECTIONS[status])
        await good_result(api, good)
        await api.result(bad.request_id)
        after = api.add(Invocation())
        await good_result(api, after)
    # Logged, and never followed by /error: a 4xx there would only be refused again (docs/runtime-
    # api.md P6).
    assert posts_for(api, bad.request_id) == ["response"]


@pytest.mark.parametrize("status", [400, 403, 413])
async def test_runtime_api_rejects_the_error_report(status: int) -> None:
    async with StallingApi() as api, runtime_on(api):
        bad, good = api.add(Invocation(b'{"fail": 1}')), api.add(Invocation())
        api.status_for[bad.request_id] = (status, REJECTIONS[status])
        await good_result(api, good)
        assert (await api.result(bad.request_id)).path.endswith("/error")
        after = api.add(Invocation())
        await good_result(api, after)
    assert posts_for(api, bad.request_id) == ["error"]


async def test_runtime_api_answers_500_to_a_response() -> None:
    async with StallingApi() as api:
        async with runtime_on(api, concurrency=1) as (_, task):
            bad = api.add(Invocation())
            api.status_for[bad.request_id] = (500, REJECTIONS[500])
            began = time.monotonic()
            code = await asyncio.wait_for(asyncio.shield(task), 5)
        # "Container error. Non-recoverable state. Runtime should exit promptly" (3.1).
        assert code == 1
        assert time.monotonic() - began < 2
        assert posts_for(api, bad.request_id) == ["response"]
        # Lambda starts a new runtime: it serves the next invocation.
        async with runtime_on(api, concurrency=1):
            await good_result(api, api.add(Invocation()))


async def test_runtime_api_answers_500_to_next() -> None:
    async with StallingApi() as api:
        api.next_status = 500
        async with runtime_on(api, concurrency=1) as (_, task):
            assert await asyncio.wait_for(asyncio.shield(task), 5) == 1
        api.next_status = None
        async with runtime_on(api, concurrency=1):
            await good_result(api, api.add(Invocation()))


@pytest.mark.parametrize("what", ["response", "error"])
async def test_runtime_api_stalls_on_a_post(what: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API reads the whole post and never answers: the runtime gives up on that
    invocation shortly after its deadline (Lambda would have cut it off by then) and goes
    on; the invocation beside it is unaffected."""
    monkeypatch.setattr("duplexlambda.runtime.loop.STALL_GRACE", 0.5)
    async with StallingApi() as api, runtime_on(api):
        deadline = int(time.time() * 1000) + 600
        body = b'{"fail": 1}' if what == "error" else b"{}"
        bad = api.add(Invocation(body, deadline_ms=deadline))
        api.stall.add(bad.request_id)
        good = api.add(Invocation())
        await good_result(api, good)
        await asyncio.wait_for(api.stalled.wait(), 5)
        stalled = api.received_stalled
        assert stalled is not None
        assert stalled.path.endswith("/" + what)
        assert stalled.complete
        began = time.monotonic()
        # Both loops are free again after the deadline: two more invocations are served.
        after = [api.add(Invocation()), api.add(Invocation())]
        for inv in after:
            await good_result(api, inv)
        assert time.monotonic() - began < 2.5
