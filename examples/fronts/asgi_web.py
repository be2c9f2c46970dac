"""A small ASGI app for the API Gateway and ALB templates (template-http-api.yaml,
template-alb.yaml): no framework, so the zip needs nothing but duplexlambda.

    GET  /            -> {"hello": "world"}
    GET  /items/ID    -> {"item": "ID", "query": {...}}
    POST /echo        -> the request body back, with its content type

Behind a buffered front (an HTTP API, a REST API without streaming, an ALB) the runtime must
answer with proxy JSON, not a stream: the templates set DUPLEXLAMBDA_STREAMING=none, and
``duplexlambda serve --front http-api`` sets it the same way locally.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from duplexlambda.asgi import asgi

Message = MutableMapping[str, Any]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path: str = scope["path"]
    status, content_type, body = 404, b"application/json", b'{"error": "not found"}'
    if path == "/":
        status, body = 200, b'{"hello": "world"}'
    elif path.startswith("/items/"):
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        status, body = 200, json.dumps({"item": path[7:], "query": query}).encode()
    elif path == "/echo" and scope["method"] == "POST":
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        status, body = 200, b"".join(chunks)
        content_type = headers.get(b"content-type", b"application/octet-stream")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )
    await send({"type": "http.response.body", "body": body})


handler = asgi(app)
