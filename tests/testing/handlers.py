"""Handlers loaded by name (``LambdaClient("tests.testing.handlers.shout")``)."""

from __future__ import annotations

from duplexlambda.streams import Request, Response


async def shout(req: Request, res: Response) -> None:
    res.content_type = "text/plain"
    async for chunk in req:
        await res.write(chunk.upper())
