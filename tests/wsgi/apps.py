"""The WSGI apps the tests serve: a Flask app with every route they need, and bare PEP 3333
apps that misbehave on request. Each is built fresh with a ``Journal`` that records what
happened inside the app (``time.monotonic()`` stamps, from the app's worker thread), so a test
can compare the app's view with the client's."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, redirect, request, stream_with_context
from werkzeug.wrappers import Response as BaseResponse

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


@dataclass
class Journal:
    """What the app saw: named events with the monotonic time they happened (thread-safe)."""

    events: list[tuple[str, float, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, value: Any = None) -> None:
        with self.lock:
            self.events.append((name, time.monotonic(), value))

    def named(self, name: str) -> list[tuple[float, Any]]:
        with self.lock:
            return [(t, v) for n, t, v in self.events if n == name]

    async def wait_for(self, name: str, within: float = 5.0) -> tuple[float, Any]:
        """The first ``name`` event, waiting for it (polled: the app runs in a thread)."""
        async with asyncio.timeout(within):
            while not (found := self.named(name)):  # noqa: ASYNC110 - set from a thread
                await asyncio.sleep(0.01)
        return found[0]


def flask_app(journal: Journal, *, tick: float = 0.1) -> Flask:
    """Every route the Flask tests need."""
    app = Flask("duplexlambda-wsgi-tests")

    @app.route("/", methods=["GET", "HEAD"])
    def hello() -> Response:
        return jsonify(hello="world", method=request.method)

    @app.get("/query/<path:rest>")
    def query(rest: str) -> Response:
        return jsonify(
            rest=rest,
            path=request.path,
            args=list(request.args.items(multi=True)),
            raw=request.query_string.decode("latin-1"),
            url=request.url,
            script_root=request.script_root,
        )

    @app.post("/form")
    def form() -> Response:
        files = {
            name: {
                "filename": upload.filename,
                "size": len(data := upload.read()),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            for name, upload in request.files.items()
        }
        return jsonify(form=list(request.form.items(multi=True)), files=files)

    @app.post("/json")
    def json_body() -> Response:
        payload = request.get_json()
        return jsonify(got=payload, type=request.content_type)

    @app.get("/cookies")
    def cookies() -> Response:
        response = jsonify(set=True)
        response.status_code = 201
        response.set_cookie("sid", "42", httponly=True)
        response.set_cookie("theme", "dark")
        response.headers.add("Vary", "Accept")
        response.headers.add("Vary", "Cookie")
        return response

    @app.get("/whoami")
    def whoami() -> Response:
        return jsonify(cookies=request.cookies, scheme=request.scheme, host=request.host)

    @app.get("/redirect")
    def go() -> BaseResponse:
        return redirect("/target", code=302)

    @app.get("/moved")
    def moved() -> tuple[str, int, dict[str, str]]:
        return "", 302, {"Location": "/elsewhere?x=1"}

    @app.get("/boom")
    def boom() -> Response:
        raise RuntimeError("boom in a view")

    @app.get("/stream")
    def stream() -> Response:
        count = int(request.args.get("n", "4"))

        def ticks() -> Iterator[str]:
            for i in range(count):
                journal.add("yield", i)
                yield f"tick {i}\n"
                time.sleep(tick)

        return Response(ticks(), mimetype="text/plain")

    @app.get("/boom-midway")
    def boom_midway() -> Response:
        def parts() -> Iterator[bytes]:
            yield b"first part;"
            time.sleep(0.01)
            yield b"second part;"
            raise ValueError("failed half way")

        return Response(parts(), mimetype="text/plain")

    @app.get("/watch")
    def watch() -> Response:
        def forever() -> Iterator[bytes]:
            try:
                for i in range(400):  # 20 s at most
                    yield b"watching %d\n" % i
                    time.sleep(0.05)
            except GeneratorExit:
                journal.add("generator exit")
                raise
            finally:
                journal.add("closed")

        return Response(forever(), mimetype="text/plain")

    @app.post("/upload")
    def upload() -> Response:
        # The raw body as it arrives: each 64 KiB read stamped when the app got it.
        stream = request.stream
        sizes = []
        while piece := stream.read(64 * 1024):
            journal.add("piece", len(piece))
            sizes.append(len(piece))
        return jsonify(pieces=len(sizes), bytes=sum(sizes))

    @app.post("/echo-lines")
    def echo_lines() -> Response:
        stream = request.stream  # read inside the generator, after the view returned

        def upper() -> Iterator[bytes]:
            for line in stream:
                journal.add("line", line)
                yield line.upper()

        return Response(upper(), mimetype="text/plain")

    @app.post("/echo")
    def echo() -> Response:
        def upper() -> Iterator[bytes]:  # the request context kept by stream_with_context
            while piece := request.stream.read1(64 * 1024):  # type: ignore[attr-defined]
                yield piece.upper()

        return Response(stream_with_context(upper()), mimetype="application/octet-stream")

    @app.post("/sha256")
    def sha256() -> Response:
        digest = hashlib.sha256()
        size = 0
        while piece := request.stream.read(64 * 1024):
            digest.update(piece)
            size += len(piece)
        return jsonify(size=size, sha256=digest.hexdigest())

    @app.get("/slow")
    def slow() -> Response:
        def late() -> Iterator[bytes]:
            try:
                for _ in range(30):  # 1.5 s before the first byte
                    time.sleep(0.05)
                yield b"too late"
            finally:
                journal.add("closed")

        return Response(late(), mimetype="text/plain")

    @app.get("/sleep")
    def sleep() -> Response:
        journal.add("sleeping", threading.current_thread().name)
        time.sleep(float(request.args.get("s", "0.3")))
        return jsonify(thread=threading.current_thread().name)

    @app.get("/environ")
    def environ() -> Response:
        env = request.environ
        keep = {k: v for k, v in env.items() if isinstance(v, str | bool | int | tuple)}
        env["wsgi.errors"].write("a line for wsgi.errors\nand half")
        env["wsgi.errors"].flush()
        keep["has_event"] = env["lambda.event"] is env["awsgi.event"] is env["aws.event"]
        keep["function_name"] = env["lambda.context"].function_name
        return jsonify(keep)

    return app


# --- bare WSGI apps ----------------------------------------------------------------------------

WSGIApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


class Tracked:
    """A response iterable that records whether ``close()`` was called."""

    def __init__(self, journal: Journal, items: Iterable[Any]) -> None:
        self.journal = journal
        self.items = iter(items)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self.items)

    def close(self) -> None:
        self.journal.add("close")


def raw_app(journal: Journal) -> WSGIApp:
    """A bare PEP 3333 app; the path picks the (mis)behaviour."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        text = [("Content-Type", "text/plain")]
        if path == "/replace-head":
            # Headers not sent yet: exc_info replaces them (PEP 3333's error page pattern).
            start_response("200 OK", [*text, ("X-First", "1")])
            try:
                raise KeyError("failed before the body")
            except KeyError:
                start_response("503 Service Unavailable", text, sys.exc_info())
            return [b"replaced"]
        if path == "/exc-after-head":
            write = start_response("200 OK", text)
            write(b"sent;")
            try:
                raise LookupError("failed after the head went out")
            except LookupError:
                start_response("500 Internal Server Error", text, sys.exc_info())
            return [b"never"]
        if path == "/write":
            write = start_response("201 Created", text)
            write(b"one;")
            write(b"")
            write(bytearray(b"two;"))  # type: ignore[arg-type]  # bytes-like, taken too
            return Tracked(journal, [b"three;", b"", b"four"])
        if path == "/write-head-only":
            write = start_response("202 Accepted", [("X-Early", "yes")])
            write(b"")  # the head goes out now
            journal.add("head written")
            time.sleep(0.2)
            return Tracked(journal, [b"later"])
        if path == "/length-long":
            start_response("200 OK", [*text, ("Content-Length", "5")])
            return Tracked(journal, [b"hel", b"lo world", b"never asked for"])
        if path == "/length-short":
            start_response("200 OK", [*text, ("Content-Length", "10")])
            return Tracked(journal, [b"short"])
        if path == "/empty":
            start_response("204 No Content", [("X-Empty", "yes")])
            return Tracked(journal, [])
        if path == "/empty-items":
            start_response("200 OK", [*text, ("Content-Length", "0")])
            return Tracked(journal, [b"", b""])
        if path == "/no-start":
            return [b"body without a head"]
        if path == "/returns-none-started":
            start_response("200 OK", text)
            return []
        if path == "/raise-before-body":
            start_response("200 OK", text)

            def failing() -> Iterator[bytes]:
                yield b""  # nothing yet: the head is still held back
                raise ValueError("failed before the first byte")

            return failing()
        if path == "/raise-first":
            raise KeyError("raised before start_response")
        if path == "/twice":
            start_response("200 OK", text)
            start_response("200 OK", text)
            return []
        if path == "/bad-status":
            start_response("OK", text)
            return []
        if path == "/bad-header":
            start_response("200 OK", [("X-Bad", "a\r\nInjected: 1")])
            return []
        if path == "/str-body":
            start_response("200 OK", text)
            return ["not bytes"]  # type: ignore[list-item]
        if path == "/hop-by-hop":
            start_response(
                "200 OK",
                [
                    *text,
                    ("Connection", "close"),
                    ("Keep-Alive", "timeout=5"),
                    ("Transfer-Encoding", "chunked"),
                    ("Upgrade", "h2c"),
                    ("X-Kept", "1"),
                    ("X-Multi", "a"),
                    ("X-Multi", "b"),
                    ("Set-Cookie", "a=1; Path=/"),
                    ("Set-Cookie", "b=2; Secure"),
                ],
            )
            return [b"ok"]
        if path == "/close-raises":
            start_response("200 OK", text)

            class Closing(Tracked):
                def close(self) -> None:
                    super().close()
                    raise OSError("close failed")

            return Closing(journal, [b"body"])
        if path == "/input":
            # Each read style of wsgi.input, one after the other, on one upload.
            stream = environ["wsgi.input"]
            out = [
                stream.read(3),
                stream.readline(),
                stream.readline(4),
                stream.read1(100),  # what one piece brought
                b"|".join(stream.readlines(1)),
                b"|".join(stream),
                stream.read(),
                stream.read(10),
            ]
            start_response("200 OK", text)
            return [b"\n".join(repr(piece).encode() for piece in out)]
        if path == "/input-all":
            body = environ["wsgi.input"].read()
            start_response("200 OK", text)
            return [b"%d:%s" % (len(body), body[:40])]
        start_response("404 Not Found", text)
        return [b"not found"]

    return app


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
    """A ``multipart/form-data`` body and its content type."""
    boundary = "duplexlambda-wsgi-boundary-q1w2e3"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for name, (filename, content) in files.items():
        parts.append(
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)
