"""A finished invocation's ``req`` can never reach a connection another invocation owns.

Regression: a duplex handler that read exactly its body never saw EOF, its ``/next``
connection went back to the pool, and a task it spawned then read the *next* invocation's
request (its event with that caller's Authorization header) while that invocation failed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from duplexlambda.errors import ClosedResourceError
from duplexlambda.streams import Request, Response
from duplexlambda.testing.plugin import LambdaClientFactory
from tests.support.emulated import stack
from tests.support.wire import request

pytestmark = pytest.mark.asyncio

BODY = b"0123456789"


class LateReader:
    """A handler whose first invocation leaves a task behind that reads ``req`` later."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.outcome: asyncio.Future[Any] | None = None
        self.calls = 0

    async def __call__(self, req: Request, res: Response) -> None:
        self.calls += 1
        if self.calls == 1:
            data = await req.readexactly(len(BODY))  # exactly the body: no EOF seen
            self.outcome = asyncio.get_running_loop().create_task(self._late(req))
            await res.end(data)
            return
        await res.end(b"second saw " + await req.read())

    async def _late(self, req: Request) -> Any:
        await self.go.wait()
        try:
            return await asyncio.wait_for(req.read(), 5)
        except ClosedResourceError as exc:
            return exc

    async def settle(self) -> Any:
        self.go.set()
        assert self.outcome is not None
        return await self.outcome


def assert_isolated(late: Any) -> None:
    assert isinstance(late, ClosedResourceError) or late == b"", late


async def test_late_read_through_the_test_client(lambda_client: LambdaClientFactory) -> None:
    handler = LateReader()
    client = await lambda_client(handler)
    first = await client.post("/", body=BODY)
    assert first.body == BODY
    second_task = asyncio.ensure_future(
        client.post("/", body=b"second body", headers={"Authorization": "Bearer secret"})
    )
    await asyncio.sleep(0.05)
    late = await handler.settle()
    second = await second_task
    assert_isolated(late)
    assert second.status == 200, second.body
    assert second.body == b"second saw second body"


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_late_read_through_the_emulator(concurrency: int) -> None:
    handler = LateReader()
    async with stack(handler, concurrency=concurrency) as emu:
        first = await request(emu.url, "POST", "/", body=BODY)
        assert first.body == BODY
        second_task = asyncio.ensure_future(
            request(
                emu.url,
                "POST",
                "/",
                body=b"second body",
                headers=[("Authorization", "Bearer secret")],
            )
        )
        await asyncio.sleep(0.1)
        late = await handler.settle()
        second = await second_task
    assert_isolated(late)
    assert second.status == 200, second.body
    assert second.body == b"second saw second body"


async def test_reads_after_the_invocation_ended_fail_cleanly(
    lambda_client: LambdaClientFactory,
) -> None:
    kept: list[Request] = []

    async def handler(req: Request, res: Response) -> None:
        kept.append(req)
        await res.end(await req.read())

    client = await lambda_client(handler)
    assert (await client.post("/", body=b"abc")).body == b"abc"
    assert await kept[0].read() == b""  # it saw its end: still the end
