"""Buffered handlers run in their worker task, not in a task of their own (run_inline): the
deadline and ``_guarded``'s rules must hold there too, and a cancel the runtime takes back must
leave the worker serving (issue #14)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import pytest

from duplexlambda.context import LambdaContext, request_id
from duplexlambda.handler import buffered
from duplexlambda.streams import Request, Response

from ..support.fake_api import FakeRuntimeApi, Invocation
from .test_faults_and_parity import error_of
from .test_runtime_wire import running

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("exc", [asyncio.CancelledError, GeneratorExit])
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_base_exception_from_a_buffered_async_handler(
    api: FakeRuntimeApi, exc: type[BaseException], concurrency: int
) -> None:
    @buffered
    async def handler(event: Any, context: LambdaContext) -> Any:
        if event == "boom":
            raise exc("not mine to raise")
        await asyncio.sleep(0.05)
        return {"ok": True}

    async with running(handler, api, concurrency=concurrency) as runtime:
        bad = api.add(Invocation(body=b'"boom"'))
        after = [api.add(Invocation(body=b"{}")) for _ in range(concurrency + 1)]
        assert error_of(await api.result(bad.request_id))["errorType"] == exc.__name__
        for inv in after:
            assert (await api.result(inv.request_id)).body == b'{"ok":true}'
    assert runtime.exit_code == 0


async def test_deadline_cancels_a_buffered_async_handler(api: FakeRuntimeApi) -> None:
    @buffered
    async def handler(event: Any, context: LambdaContext) -> Any:
        if event == "slow":
            await asyncio.sleep(30)
        return "fast"

    async with running(handler, api, deadline_margin=0.1):
        slow = api.add(Invocation(body=b'"slow"', deadline_ms=int(time.time() * 1000) + 400))
        got = await api.result(slow.request_id)
        ok = api.add(Invocation(body=b'"fast"'))
        assert (await api.result(ok.request_id)).body == b'"fast"'
    assert got.header("Lambda-Runtime-Function-Error-Type") == "Function.Timeout"


async def test_a_handler_that_swallows_the_deadline_keeps_its_worker(api: FakeRuntimeApi) -> None:
    # The cancel is taken back (uncancel), or the worker's later waits would misread it.
    @buffered
    async def handler(event: Any, context: LambdaContext) -> Any:
        if event == "stubborn":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                return "swallowed"
        await asyncio.sleep(0.01)
        return "next"

    async with running(handler, api, deadline_margin=0.1) as runtime:
        stubborn = api.add(
            Invocation(body=b'"stubborn"', deadline_ms=int(time.time() * 1000) + 300)
        )
        assert (await api.result(stubborn.request_id)).body == b'"swallowed"'
        for _ in range(2):
            inv = api.add(Invocation(body=b'"x"'))
            assert (await api.result(inv.request_id)).body == b'"next"'
        assert not runtime._workers[0].cancelling()
    assert runtime.exit_code == 0


async def test_stop_interrupts_idle_polls_only(api: FakeRuntimeApi) -> None:
    # No task per poll: stop() cancels the workers that wait on /next, never one serving.
    release = asyncio.Event()

    @buffered
    async def handler(event: Any, context: LambdaContext) -> Any:
        await release.wait()
        return "done"

    async with running(handler, api, concurrency=2) as runtime:
        inv = api.add(Invocation(body=b"{}"))
        await asyncio.wait_for(inv.handed_out.wait(), 5)
        await asyncio.sleep(0.05)
        runtime.stop()
        await asyncio.sleep(0.05)
        release.set()
        assert (await api.result(inv.request_id)).body == b'"done"'


async def test_streamed_handlers_keep_their_own_context(api: FakeRuntimeApi) -> None:
    # A duplex handler runs in a task of its own: what it sets in a ContextVar stays with
    # its invocation, as in an ASGI server.
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def handler(req: Request, res: Response) -> None:
        seen = var.get()
        var.set("set by the handler")
        await res.end(seen.encode())

    async with running(handler, api):
        for _ in range(2):
            inv = api.add(Invocation())
            assert (await api.result(inv.request_id)).body == b"unset"


async def test_blocking_handlers_see_their_invocation_and_never_wait_for_a_stuck_one(
    api: FakeRuntimeApi,
) -> None:
    # A handler past its deadline keeps its thread; the next invocation gets another.
    stuck = threading.Event()
    seen: list[tuple[str | None, str]] = []

    def handler(event: Any, context: LambdaContext) -> Any:
        seen.append((request_id.get(), threading.current_thread().name))
        if event == "stuck":
            stuck.wait(10)
        return "ok"

    try:
        async with running(handler, api, deadline_margin=0.1):
            first = api.add(Invocation(body=b'"stuck"', deadline_ms=int(time.time() * 1000) + 300))
            got = await api.result(first.request_id)
            assert got.header("Lambda-Runtime-Function-Error-Type") == "Function.Timeout"
            second = api.add(Invocation(body=b'"quick"'))
            assert (await api.result(second.request_id)).body == b'"ok"'
    finally:
        stuck.set()
    assert [rid for rid, _ in seen] == [first.request_id, second.request_id]
    assert seen[0][1] != seen[1][1]
    assert all(name.startswith("duplexlambda-handler-") for _, name in seen)
