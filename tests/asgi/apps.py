"""Real Starlette and FastAPI apps the ASGI tests serve, each built fresh with a ``Journal``
that records what happened inside the app (with ``time.monotonic()`` stamps), so a test can
compare the app's view with the client's."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send


@dataclass
class Journal:
    """What the app saw: named events with the monotonic time they happened."""

    events: list[tuple[str, float, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, name: str, value: Any = None) -> None:
        self.events.append((name, time.monotonic(), value))
        self.changed.set()

    def named(self, name: str) -> list[tuple[float, Any]]:
        return [(t, v) for n, t, v in self.events if n == name]

    async def wait_for(self, name: str) -> tuple[float, Any]:
        """The first ``name`` event, waiting for it (5 s at most)."""
        async with asyncio.timeout(5):
            while not (found := self.named(name)):
                self.changed.clear()
                await self.changed.wait()
        return found[0]


class LoopBound:
    """A client opened at startup that only works on the loop it was opened on (like an
    ``httpx.AsyncClient``'s pool): using it on another loop raises."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.uses = 0

    async def use(self) -> int:
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError("used on another event loop than the one it was opened on")
        await asyncio.sleep(0)
        self.uses += 1
        return self.uses


def starlette_app(journal: Journal, *, tick: float = 0.1) -> Starlette:
    """Every route the tests need, on Starlette."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        journal.add("startup")
        yield {"client": LoopBound(), "hits": [0]}
        journal.add("shutdown")

    async def hello(request: Request) -> Response:
        return JSONResponse({"hello": "world", "method": request.method})

    async def item(request: Request) -> Response:
        return JSONResponse(
            {
                "id": request.path_params["item_id"],
                "query": request.query_params.multi_items(),
                "url": str(request.url),
                "client": request.client.host if request.client else None,
            }
        )

    async def echo_headers(request: Request) -> Response:
        return JSONResponse(
            {
                "x-one": request.headers.get("x-one"),
                "cookies": request.cookies,
                "scheme": request.url.scheme,
            }
        )

    async def cookies(request: Request) -> Response:
        response = PlainTextResponse("cookies set", status_code=201)
        response.set_cookie("sid", "42", httponly=True)
        response.set_cookie("theme", "dark")
        response.headers.append("vary", "accept")
        response.headers.append("vary", "cookie")
        return response

    async def upload(request: Request) -> Response:
        # The raw body as it arrives: each piece stamped when the app got it.
        sizes = []
        async for piece in request.stream():
            if piece:
                journal.add("piece", len(piece))
                sizes.append(len(piece))
        return JSONResponse({"pieces": len(sizes), "bytes": sum(sizes)})

    async def upload_echo(request: Request) -> Response:
        async def echo() -> AsyncIterator[bytes]:
            async for piece in request.stream():
                if piece:
                    yield piece.upper()

        return StreamingResponse(echo(), media_type="application/octet-stream")

    async def form(request: Request) -> Response:
        async with request.form() as data:
            upload = data["file"]
            assert isinstance(upload, UploadFile)
            content = await upload.read()
            return JSONResponse(
                {
                    "field": data["title"],
                    "filename": upload.filename,
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
            )

    async def stream(request: Request) -> Response:
        count = int(request.query_params.get("n", "4"))

        async def ticks() -> AsyncIterator[str]:
            for i in range(count):
                journal.add("yield", i)
                yield f"tick {i}\n"
                await asyncio.sleep(tick)

        return StreamingResponse(ticks(), media_type="text/plain")

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom in a route")

    async def boom_midway(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first part;"
            await asyncio.sleep(0.01)
            yield b"second part;"
            raise ValueError("failed half way")

        return StreamingResponse(chunks(), media_type="text/plain")

    async def boom_first(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            raise LookupError("failed before the first chunk")
            yield b"never"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def hits(request: Request) -> Response:
        request.state.hits[0] += 1
        uses = await request.state.client.use()
        return JSONResponse({"hits": request.state.hits[0], "uses": uses})

    async def loop(request: Request) -> Response:
        return JSONResponse({"loop": id(asyncio.get_running_loop())})

    async def slow(request: Request) -> Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            journal.add("slow cancelled")
            raise
        return PlainTextResponse("never")

    class Watch:
        """A raw ASGI endpoint: starts its response, then waits for the client to leave."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"watching\n", "more_body": True})
            message: Message = await receive()
            while message["type"] != "http.disconnect":
                message = await receive()
            journal.add("http.disconnect")
            try:
                await send({"type": "http.response.body", "body": b"late", "more_body": True})
            except OSError as exc:
                journal.add("send raised", type(exc).__name__)

    return Starlette(
        routes=[
            Route("/", hello, methods=["GET", "HEAD"]),
            Route("/items/{item_id:int}", item),
            Route("/headers", echo_headers),
            Route("/cookies", cookies),
            Route("/upload", upload, methods=["POST"]),
            Route("/upload-echo", upload_echo, methods=["POST"]),
            Route("/form", form, methods=["POST"]),
            Route("/stream", stream),
            Route("/boom", boom),
            Route("/boom-midway", boom_midway),
            Route("/boom-first", boom_first),
            Route("/hits", hits),
            Route("/loop", loop),
            Route("/slow", slow),
            Route("/watch", Watch()),
        ],
        lifespan=lifespan,
    )


class NewItem(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def fastapi_app(journal: Journal, *, background_delay: float = 0.3) -> FastAPI:
    """Typical FastAPI routes: models, path and query parameters, background tasks, SSE."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        journal.add("startup")
        yield {"store": {}}
        journal.add("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.post("/items", status_code=201)
    async def create(item: NewItem, request: Request) -> dict[str, Any]:
        store: dict[int, NewItem] = request.state.store
        item_id = len(store) + 1
        store[item_id] = item
        return {"id": item_id, **item.model_dump()}

    @app.get("/items/{item_id}")
    async def read(item_id: int, request: Request, verbose: bool = False) -> dict[str, Any]:
        store: dict[int, NewItem] = request.state.store
        if item_id not in store:
            raise HTTPException(status_code=404, detail=f"no item {item_id}")
        found = store[item_id]
        return {"id": item_id, "name": found.name, **({"tags": found.tags} if verbose else {})}

    @app.post("/jobs", status_code=202)
    async def job(background: BackgroundTasks) -> dict[str, str]:
        async def work() -> None:
            journal.add("background started")
            await asyncio.sleep(background_delay)
            journal.add("background done")

        background.add_task(work)
        return {"status": "queued"}

    @app.get("/events", response_class=EventSourceResponse)
    async def events(n: int = 3) -> AsyncIterator[ServerSentEvent]:
        for i in range(n):
            journal.add("event", i)
            yield ServerSentEvent(data={"i": i}, event="tick", id=str(i))
            await asyncio.sleep(0.1)

    @app.get("/crash")
    async def crash() -> dict[str, str]:
        raise ZeroDivisionError("crash in FastAPI")

    return app


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app without lifespan support, misbehaving on request."""
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/raise-first":
        raise KeyError("raised before http.response.start")
    if path == "/no-response":
        return
    if path == "/cancel-itself":
        raise asyncio.CancelledError()
    if path == "/body-before-start":
        await send({"type": "http.response.body", "body": b"oops"})
        return
    if path == "/unfinished":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        return
    if path == "/scope":
        keep = ("type", "http_version", "method", "scheme", "path", "query_string", "root_path")
        info = {k: scope[k] for k in keep}
        info["raw_path"] = scope["raw_path"].decode()
        info["query_string"] = scope["query_string"].decode()
        info["headers"] = [[k.decode(), v.decode()] for k, v in scope["headers"]]
        info["client"] = scope["client"]
        info["server"] = scope["server"]
        info["asgi"] = scope["asgi"]
        info["has_event"] = "aws.event" in scope and "aws.context" in scope
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        info["body"] = body.decode()
        data = json.dumps(info).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"not found"})


def multipart(title: str, filename: str, content: bytes) -> tuple[str, bytes]:
    """A ``multipart/form-data`` body with one text field and one file."""
    boundary = "duplexlambda-boundary-7MA4YWxkTrZu0gW"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'.encode(),
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode(),
        content,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def recording(app: Any, journal: Journal) -> Any:
    """Pure ASGI middleware: stamps each request body message as the app receives it."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped() -> Message:
            message = await receive()
            if message["type"] == "http.request" and message.get("body"):
                journal.add("received", len(message["body"]))
            return message

        await app(scope, stamped, send)

    return wrapped
