"""A Starlette app for the ASGI image test (tests/deploy/test_image.py): a JSON route, an
upload streamed back in upper case while it arrives, and a lifespan whose startup and
shutdown print a line (the shutdown one proves SIGTERM reached the app)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    print("lifespan startup", flush=True)
    yield
    print("lifespan shutdown", flush=True)


async def info(request: Request) -> JSONResponse:
    return JSONResponse(
        {"path": request.url.path, "uid": os.getuid(), "task_root": os.environ["LAMBDA_TASK_ROOT"]}
    )


async def shout(request: Request) -> StreamingResponse:
    async def upper() -> AsyncIterator[bytes]:
        async for piece in request.stream():
            if piece:
                yield piece.upper()

    return StreamingResponse(upper(), media_type="text/plain")


app = Starlette(
    routes=[Route("/info", info), Route("/shout", shout, methods=["POST"])], lifespan=lifespan
)
