"""The four kinds of handler the front matrix runs behind every front (tests/fronts/test_matrix.py).

Each reports the request as it parsed it, answers 201 with a repeated header and two cookies,
and sends its body in three pieces (where the kind can stream).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from flask import Flask
from flask import Response as FlaskResponse
from flask import request as flask_request
from starlette.requests import Request as StarletteRequest

from duplexlambda.asgi import asgi
from duplexlambda.events import Front
from duplexlambda.events.request import detect, parse_request
from duplexlambda.streams import Request, Response
from duplexlambda.wsgi import wsgi

COOKIES = ["sid=1; Path=/", "theme=dark; Path=/"]


def report(kind: str, method: str, path: str, query: dict[str, list[str]], multi: str | None,
           cookies: dict[str, str], body: bytes) -> list[bytes]:  # fmt: skip
    """The answer body, in three pieces: what the handler saw of the request."""
    doc = json.dumps(
        {"kind": kind, "method": method, "path": path, "query": query, "x-multi": multi,
         "cookies": cookies, "body": body.decode("utf-8", "replace")},
        sort_keys=True,
    )  # fmt: skip
    third = len(doc) // 3
    return [p.encode() for p in (doc[:third], doc[third : 2 * third], doc[2 * third :])]


async def duplex(req: Request, res: Response) -> None:
    body = await req.read()
    query = {name: req.query_list(name) for name in req.query}
    pieces = report(
        "duplex", req.method, req.path, query, req.headers.get("x-multi"), req.cookies, body
    )
    res.status = 201
    res.content_type = "application/json"
    res.headers.add("x-rep", "a")
    res.headers.add("x-rep", "b")
    for cookie in COOKIES:
        res.add_set_cookie(cookie)
    for piece in pieces:
        await res.write(piece)


def _fastapi() -> FastAPI:
    app = FastAPI()

    @app.api_route("/{rest:path}", methods=["GET", "POST"])
    async def anything(request: StarletteRequest) -> StreamingResponse:
        body = await request.body()
        query: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            query.setdefault(name, []).append(value)
        pieces = report(
            "asgi", request.method, request.url.path, query,
            ",".join(request.headers.getlist("x-multi")) or None, dict(request.cookies), body,
        )  # fmt: skip

        async def stream() -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece

        response = StreamingResponse(stream(), status_code=201, media_type="application/json")
        response.headers.append("x-rep", "a")
        response.headers.append("x-rep", "b")
        for cookie in COOKIES:
            response.headers.append("set-cookie", cookie)
        return response

    return app


asgi_app = asgi(_fastapi())


def _flask() -> Flask:
    app = Flask(__name__)
    request = flask_request

    @app.route("/", defaults={"rest": ""}, methods=["GET", "POST"])
    @app.route("/<path:rest>", methods=["GET", "POST"])
    def anything(rest: str) -> FlaskResponse:
        body = request.get_data()
        query = {name: request.args.getlist(name) for name in request.args}
        path = request.script_root + request.path
        pieces = report(
            "wsgi", request.method, path, query, request.headers.get("x-multi"),
            dict(request.cookies), body,
        )  # fmt: skip

        def generate() -> Iterator[bytes]:
            yield from pieces

        response = FlaskResponse(generate(), status=201, mimetype="application/json")
        response.headers.add("x-rep", "a")
        response.headers.add("x-rep", "b")
        for cookie in COOKIES:
            response.headers.add("Set-Cookie", cookie)
        return response

    return app


wsgi_app = wsgi(_flask())


def buffered(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """awslambdaric style: the proxy response JSON, written for every front at once."""
    http = parse_request(event)
    assert http is not None
    body = b"".join(
        report(
            "buffered", http.method, http.path, http.query,
            ",".join(http.headers["x-multi"]) if "x-multi" in http.headers else None,
            http.cookies, http.body,
        )
    )  # fmt: skip
    # Written for the front that asked, as a handler author would: the 2.0 formats take
    # cookies from ``cookies``, the 1.0 ones and a multi-value ALB from multiValueHeaders, and
    # an ALB without multi-value headers reads only ``headers`` (one Set-Cookie fits there).
    front = detect(event)
    answer: dict[str, Any] = {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "x-rep": "a,b"},
        "body": body.decode(),
        "isBase64Encoded": False,
    }
    if front in (Front.FUNCTION_URL, Front.HTTP_API_V2):
        answer["cookies"] = COOKIES
    elif front is Front.ALB:
        answer["statusDescription"] = "201 Created"
        answer["headers"]["set-cookie"] = COOKIES[-1]
    else:
        answer["statusDescription"] = "201 Created"
        answer["multiValueHeaders"] = {"x-rep": ["a", "b"], "set-cookie": COOKIES}
        del answer["headers"]["x-rep"]
    return answer


async def binary_echo(req: Request, res: Response) -> None:
    """The upload back as it came, as binary: base64 both ways behind the buffered fronts."""
    res.content_type = "application/octet-stream"
    await res.write(await req.read())
