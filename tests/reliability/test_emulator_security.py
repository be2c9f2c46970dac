"""Security of the emulator: where it listens, what it refuses, what it never lets through.

The emulator is a development tool, but it is a server: it must not be reachable from other
hosts unless asked, must bound what a client can make it hold, must never let a runtime's
prelude inject header lines into a client's response, must not be steered by a request id,
and must never load code named by a request.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys
from typing import Any

import msgspec
import pytest

from duplexlambda.emulator import EmulatorConfig
from duplexlambda.emulator import server as http_server
from duplexlambda.emulator.cli import add_serve_parser
from duplexlambda.streams import Request, Response

from ..support.serve_process import Serve
from ..support.wire import (
    NUL8,
    Conn,
    call,
    chunk,
    next_invocation,
    open_stream,
    post_response,
    request,
    running,
)
from .harness import stack

INJECTED = "a\r\nSet-Cookie: evil=1"


def _port(address: str) -> int:
    return int(address.rstrip("/").rsplit(":", 1)[1])


async def _refused(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


# --- where it listens -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_binds_127_0_0_1_by_default() -> None:
    async def handler(req: Request, res: Response) -> None:
        await res.end(b"ok")

    assert EmulatorConfig().host == "127.0.0.1"
    import argparse

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    assert parser.parse_args(["serve", "app.handler"]).host == "127.0.0.1"
    async with stack(handler) as s:
        for address in (s.emulator.url, s.emulator.runtime_api):
            assert "127.0.0.1:" in address
            # Bound to exactly 127.0.0.1, not 0.0.0.0: another loopback address of this
            # very host (127.0.0.2) finds nothing listening on the port.
            assert await _refused("127.0.0.2", _port(address))
        assert (await request(s.url)).body == b"ok"


def test_serve_binds_127_0_0_1_by_default() -> None:
    srv = Serve("--no-runtime", "--port", "0", "--runtime-api-port", "0")
    try:
        url = srv.wait_for(r"Function URL: (http://\S+)", srv.out)[1]
        api = srv.wait_for(r"AWS_LAMBDA_RUNTIME_API=(\S+)", srv.out)[1]
        assert url.startswith("http://127.0.0.1:")
        assert api.startswith("127.0.0.1:")

        async def probe() -> list[bool]:
            return [await _refused("127.0.0.2", _port(a)) for a in (url, api)]

        assert asyncio.run(probe()) == [True, True]
    finally:
        assert srv.stop() == 0


# --- limits ---------------------------------------------------------------------------------


def _head(target: bytes = b"/", fields: int = 0) -> bytes:
    extra = b"".join(b"X-%d: v\r\n" % i for i in range(fields))
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("raw", "status"),
    [
        # 128 fields in all (Host + 127) is the limit; one more is 431.
        (_head(fields=127), 200),
        (_head(fields=128), 431),
        # A request target of 16 KiB is the limit; one byte more is 414.
        (_head(b"/" + b"u" * (16 * 1024 - 1)), 200),
        (_head(b"/" + b"u" * (16 * 1024)), 414),
        # The whole head is capped at 64 KiB (431), however it is made up.
        (b"GET / HTTP/1.1\r\nX-Big: " + b"b" * (64 * 1024) + b"\r\n\r\n", 431),
    ],
    ids=["128-fields", "129-fields", "url-16KiB", "url-16KiB+1", "head-over-64KiB"],
)
async def test_header_count_size_and_url_limits(raw: bytes, status: int) -> None:
    seen: list[str] = []

    async def handler(req: Request, res: Response) -> None:
        seen.append(req.path)
        await res.end(b"served")

    async with stack(handler) as s:
        conn = await Conn.open(s.url)
        await conn.send(raw)
        reply = await conn.read_reply()
        await conn.close()
        good = await request(s.url, path="/after")
    assert reply.status == status
    if status == 200:
        assert reply.body == b"served"
    assert good.body == b"served"
    # A refused request never reached the function.
    assert len(seen) == (2 if status == 200 else 1)


@pytest.mark.asyncio
async def test_slowloris_head_is_cut_after_the_head_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_server, "HEAD_TIMEOUT", 0.4)

    async def handler(req: Request, res: Response) -> None:
        await res.end(b"ok")

    async with stack(handler) as s:
        conns = []
        for address in (s.emulator.url, s.emulator.runtime_api):
            conn = await Conn.open(address)
            await conn.send(b"GET / HTTP/1.1\r\nHo")
            conns.append(conn)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for conn in conns:
            # Trickling more bytes does not buy time: the clock runs from the first byte.
            await conn.send(b"s")
            reply = await asyncio.wait_for(conn.read_reply(), 3)
            assert reply.status == 408
            assert await conn.at_eof(2)
            await conn.close()
        assert loop.time() - began < 1.5
        # An idle keep-alive connection (no head begun) is not cut: the runtime's pooled
        # connections and /next long-polls must live as long as they need.
        idle = await Conn.open(s.emulator.url)
        await asyncio.sleep(0.6)
        await idle.send(_head(b"/late"))
        assert (await idle.read_reply()).body == b"ok"
        await idle.close()


# --- no header injection through the prelude -------------------------------------------------


PRELUDES: dict[str, dict[str, object]] = {
    "header-value": {"headers": {"x": INJECTED}},
    "header-value-lf": {"headers": {"x": "a\nSet-Cookie: evil=1"}},
    "header-value-nul": {"headers": {"x": "a\x00b"}},
    "array-value": {"headers": {"x": ["fine", INJECTED]}},
    "multi-value": {"multiValueHeaders": {"x": [INJECTED]}},
    "cookie": {"cookies": ["ok=1\r\nSet-Cookie: evil=1"]},
    "header-name": {"headers": {"x\r\nSet-Cookie: evil=1\r\ny": "v"}},
}


async def _raw_reply(url: str, path: bytes) -> bytes:
    """Every byte of a response, read up to the close (``Connection: close``)."""
    host, port = url.split("//")[1].strip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return raw


def _assert_no_injection(raw: bytes, error_type: str) -> None:
    assert raw.startswith(b"HTTP/1.1 502 "), raw[:200]
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"set-cookie" not in head.lower()
    assert b"evil" not in head
    assert json.loads(body)["errorType"] == error_type


@pytest.mark.asyncio
@pytest.mark.parametrize("how", list(PRELUDES))
async def test_prelude_with_cr_lf_from_any_runtime_is_a_502(how: str) -> None:
    """A runtime (any runtime: this one writes the wire by hand) can put CR/LF in a prelude
    header, since the prelude is JSON. The emulator answers 502 ``Runtime.InvalidResponse``
    and sends none of the prelude's headers, rather than dropping the bad one. Why: dropping
    would serve a response the function did not write (without a header it set, a cookie
    say), while a function URL answers 502 for a function response it cannot map; the
    handler's author sees the error instead of a silently different response."""
    async with running() as emu:
        caller = asyncio.ensure_future(_raw_reply(emu.url, b"/inject"))
        nxt = await next_invocation(emu.runtime_api)
        stream = await open_stream(emu.runtime_api, nxt.request_id)
        meta = {"statusCode": 200, "cookies": [], **PRELUDES[how]}
        await stream.send(chunk(msgspec.json.encode(meta)) + chunk(NUL8) + chunk(b"body"))
        await stream.send(b"0\r\n\r\n")
        raw = await caller
        await stream.close()
        # The emulator is fine afterwards.
        good = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        await post_response(emu.runtime_api, nxt.request_id, b'"fine"')
        assert (await good).body == b'"fine"'
    _assert_no_injection(raw, "Runtime.InvalidResponse")


@pytest.mark.asyncio
async def test_our_runtime_refuses_to_send_a_prelude_with_cr_lf() -> None:
    """Our runtime checks the prelude before it sends a byte: the invocation fails before
    streaming began, so the caller gets the 502 of an error report, not the prelude."""

    async def handler(req: Request, res: Response) -> None:
        res.headers["x"] = INJECTED
        await res.end(b"body")

    async with stack(handler) as s:
        raw = await _raw_reply(s.url, b"/")
    _assert_no_injection(raw, "LocalProtocolError")


@pytest.mark.asyncio
async def test_buffered_result_with_cr_lf_header_is_a_502() -> None:
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"x": INJECTED}, "body": "b"}

    async with stack(handler) as s:
        raw = await _raw_reply(s.url, b"/")
    _assert_no_injection(raw, "Runtime.InvalidResponse")


# --- request ids ------------------------------------------------------------------------------

API = "/2018-06-01/runtime/invocation/"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "status"),
    [
        (API + "../next/response", 404),
        (API + "..%2F..%2Fnext/response", 400),
        (API + "%2e%2e/error", 400),
        (API + "next/../RID/response", 404),
        (API + "RID/../RID/response", 404),
        (API + "RID%00/response", 400),
        (API + "<script>/response", 400),
        (API + "RID;x/response", 400),
        (API + "RID/response/extra", 404),
        (API + "RIDx/response", 400),
        (API + "rid/response", 400),  # ids are compared exactly
        (API + "/response", 404),
        (API + "%E2%80%AE" + "a" * 2000 + "/response", 400),
    ],
)
async def test_request_ids_are_validated(path: str, status: int) -> None:
    """Odd, traversing or unknown ids get 400 ``InvalidRequestID`` (or 404 for a path that
    is not an invocation path), never touch the pending invocation, and the real id works."""
    release = asyncio.Event()
    started = asyncio.Event()

    async def handler(req: Request, res: Response) -> None:
        started.set()
        await release.wait()
        await res.end(b"mine")

    async with stack(handler, concurrency=1) as s:
        caller = asyncio.ensure_future(request(s.url))
        await asyncio.wait_for(started.wait(), 5)
        [inv] = s.emulator.dispatcher.in_flight()
        conn = await Conn.open(s.emulator.runtime_api)
        target = path.replace("RID", inv.request_id).encode("latin-1")
        await conn.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nevil!" % target)
        reply = await conn.read_reply()
        await conn.close()
        assert not inv.settled
        release.set()
        answer = await caller
    assert reply.status == status
    if status == 400:
        assert json.loads(reply.body)["errorType"] == "InvalidRequestID"
    assert answer.body == b"mine"


# --- handler strings ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_handler_strings_are_never_taken_from_requests() -> None:
    """Function names in Invoke API paths, handler-looking headers, query strings and event
    fields all reach the one configured handler; nothing they name is imported."""
    names = ["os.system", "evil_mod_7f3a.handler", "..%2F..%2Fevil_mod_7f3a", "x:y"]
    served: list[Any] = []

    async def handler(req: Request, res: Response) -> None:
        served.append(req.event)
        await res.end(b"the configured handler")

    async with stack(handler) as s:
        replies = []
        for name in names:
            for kind in ("2015-03-31/functions/%s/invocations",
                         "2021-11-15/functions/%s/response-streaming-invocations"):  # fmt: skip
                replies.append(
                    await request(
                        s.url,
                        "POST",
                        "/" + kind % name,
                        headers=[("X-Amz-Handler", name), ("_HANDLER", name)],
                        body=json.dumps({"_HANDLER": name, "handler": name}).encode(),
                    )
                )
        replies.append(
            await request(
                s.url,
                path="/?_HANDLER=evil_mod_7f3a.handler&handler=os.system",
                headers=[("Lambda-Runtime-Function-Handler", "evil_mod_7f3a.handler")],
            )
        )
    assert all(r.status == 200 for r in replies), [r.status for r in replies]
    assert all(b"the configured handler" in r.body for r in replies)
    assert len(served) == len(replies)
    assert not [m for m in sys.modules if "evil_mod" in m]
    assert os.environ.get("_HANDLER") in (None, os.environ.get("_HANDLER"))


def test_serve_keeps_its_handler_whatever_the_requests_say(tmp_path: pathlib.Path) -> None:
    (tmp_path / "app.py").write_text(
        "import os, sys\n"
        "async def handler(req, res):\n"
        "    evil = [m for m in sys.modules if 'evil_mod' in m]\n"
        "    await res.end(f\"{os.environ['_HANDLER']} {os.getpid()} {evil}\")\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DUPLEXLAMBDA_RUNTIME_CMD"}
    srv = Serve(
        "app.handler", "--port", "0", "--runtime-api-port", "0", "--task-root", str(tmp_path),
        env=env,
    )  # fmt: skip
    try:
        url = srv.wait_for(r"Function URL: (http://\S+)", srv.out)[1]

        async def ask() -> list[bytes]:
            bodies = []
            for path in ("/", "/2015-03-31/functions/evil_mod_1.handler/invocations",
                         "/?_HANDLER=evil_mod_2.handler"):  # fmt: skip
                reply = await request(
                    url, "POST", path, headers=[("_HANDLER", "evil_mod_3.h")], body=b"{}"
                )
                bodies.append(reply.body)
            return bodies

        bodies = asyncio.run(ask())
        first = bodies[0]
        assert first.startswith(b"app.handler ")
        assert first.endswith(b" []")
        assert all(body == first for body in bodies)  # same handler, same process
    finally:
        assert srv.stop() == 0
