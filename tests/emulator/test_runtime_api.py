"""The Runtime API, played byte by byte by a fake runtime on raw sockets (docs/runtime-api.md
§3)."""

from __future__ import annotations

import asyncio
import base64
import time

import msgspec
import pytest

from duplexlambda.emulator import Emulator

from ..conftest import VECTORS
from ..support.wire import (
    API,
    INVOKE,
    NUL8,
    Conn,
    Reply,
    call,
    chunk,
    next_invocation,
    open_stream,
    post_response,
    prelude,
    request_bytes,
    running,
)

VECTOR_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
OK = b'{"status":"OK"}\n'
INVALID_ID = b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}\n'
BAD_MODE = (
    b'{"errorMessage":"Invalid function response mode","errorType":"InvalidFunctionResponseMode"}\n'
)
TRUNCATED = (
    b'{"errorMessage":"HTTP request detected as truncated","errorType":"TruncatedHTTPRequest"}\n'
)
TOO_LARGE = (
    b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",'
    b'"errorType":"RequestEntityTooLarge"}\n'
)


def invoke(
    emu: Emulator, body: bytes = b"{}", headers: list[tuple[str, str]] | None = None
) -> asyncio.Future[Reply]:
    """A buffered Invoke API call, running while the test plays the runtime."""
    return asyncio.ensure_future(call(emu.url, "POST", INVOKE, headers or [], body))


def vector(name: str, request_id: str) -> bytes:
    """A known-answer vector with our request id in place of its own (same length)."""
    data = (VECTORS / name).read_bytes()
    assert VECTOR_ID.encode() in data
    return data.replace(VECTOR_ID.encode(), request_id.encode())


def error_of(reply: Reply) -> dict[str, object]:
    assert reply.status == 200
    assert reply.header("X-Amz-Function-Error") == "Unhandled"
    value = reply.json()
    assert isinstance(value, dict)
    return value


@pytest.mark.asyncio
async def test_next_headers_and_buffered_response() -> None:
    async with running(timeout=30) as emu:
        context = base64.b64encode(b'{"custom": {"k": "v"}}').decode()
        caller = invoke(emu, b'{"a": 1}', [("X-Amz-Client-Context", context)])
        before = time.time() * 1000
        nxt = await next_invocation(emu.runtime_api)
        assert nxt.body == b'{"a": 1}'
        assert nxt.header("Content-Type") == "application/json"
        deadline = int(nxt.header("Lambda-Runtime-Deadline-Ms") or 0)
        assert before + 29_000 < deadline < time.time() * 1000 + 31_000  # epoch ms
        assert nxt.header("Lambda-Runtime-Invoked-Function-Arn") == (
            "arn:aws:lambda:us-east-1:123456789012:function:function"
        )
        assert (nxt.header("Lambda-Runtime-Trace-Id") or "").startswith("Root=1-")
        assert nxt.header("Lambda-Runtime-Client-Context") == '{"custom":{"k":"v"}}'
        assert nxt.header("Lambda-Runtime-Cognito-Identity") is None  # only when given
        reply = await post_response(emu.runtime_api, nxt.request_id, b'{"ok":true}')
        assert (reply.status, reply.body) == (202, OK)
        assert reply.header("Content-Type") == "application/json"
        result = await caller
        assert (result.status, result.body) == (200, b'{"ok":true}')
        assert result.header("X-Amz-Executed-Version") == "$LATEST"
        record = await asyncio.wait_for(emu.records.get(), 5)
        assert (record.request_id, record.status, record.error_type) == (
            nxt.request_id,
            200,
            None,
        )


@pytest.mark.asyncio
async def test_header_names_are_case_insensitive() -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        conn = await Conn.open(emu.runtime_api)
        await conn.send(
            request_bytes(
                "POST",
                f"{API}/invocation/{nxt.request_id}/response",
                [
                    ("lambda-runtime-function-response-mode", "streaming"),
                    ("content-type", "text/plain"),
                    ("transfer-encoding", "chunked"),
                ],
            )
            + chunk(b"lower")
            + b"0\r\n\r\n"
        )
        assert (await conn.read_reply()).status == 202
        await conn.close()
        assert (await caller).body == b"lower"


@pytest.mark.asyncio
@pytest.mark.parametrize("split", [1, 7, 1 << 20], ids=["bytewise", "7-byte", "whole"])
async def test_wire_ok_vector_through_the_function_url(split: int) -> None:
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/hello"))
        nxt = await next_invocation(emu.runtime_api)
        wire = vector("wire_ok.bin", nxt.request_id)
        conn = await Conn.open(emu.runtime_api)
        for i in range(0, len(wire), split):  # the prelude arrives split across reads
            await conn.send(wire[i : i + split])
        assert (await conn.read_reply()).body == OK
        await conn.close()
        reply = await client
        assert reply.status == 200
        assert reply.header("Content-Type") == "text/plain"
        assert (reply.body, reply.truncated) == (b"Hello", False)


@pytest.mark.asyncio
async def test_wire_err_vector_fails_the_invocation_with_type_error() -> None:
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        wire = vector("wire_err.bin", nxt.request_id)
        reply = await _send_raw(emu.runtime_api, wire)
        assert (reply.status, reply.body) == (202, OK)  # a trailer error is still accepted
        got = await client
        assert (got.status, got.header("Content-Type"), got.body) == (200, "text/plain", b"Hello")
        assert got.truncated  # no terminating chunk: the client sees the failure
        record = await asyncio.wait_for(emu.records.get(), 5)
        assert (record.error_type, record.truncated) == ("Error", True)

        # Through the Invoke API the same stream is an error payload, prelude not stripped.
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        await _send_raw(emu.runtime_api, vector("wire_err.bin", nxt.request_id))
        assert error_of(await caller) == {"errorType": "Error", "errorMessage": "boom", "trace": []}


async def _send_raw(api: str, data: bytes) -> Reply:
    conn = await Conn.open(api)
    try:
        await conn.send(data)
        return await conn.read_reply()
    finally:
        await conn.close()


TRAILER_FORMS = {
    "two-lines": [
        "Trailer: Lambda-Runtime-Function-Error-Type",
        "Trailer: Lambda-Runtime-Function-Error-Body",
    ],
    "comma-joined": [
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
    ],
    "undeclared": [],
}


@pytest.mark.asyncio
@pytest.mark.parametrize("form", list(TRAILER_FORMS))
@pytest.mark.parametrize("upper", [False, True], ids=["lower-hex", "upper-hex"])
async def test_error_trailers_in_every_form(form: str, upper: bool) -> None:
    error = b'{"errorType":"TypeError","errorMessage":"bad","trace":["at x"]}'
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        head = (
            f"POST {API}/invocation/{nxt.request_id}/response HTTP/1.1\r\nHost: x\r\n"
            "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
            + "".join(line + "\r\n" for line in TRAILER_FORMS[form])
            + "\r\n"
        ).encode()
        body = (
            chunk(b"x" * 300, upper)  # 12C / 12c
            + b"0\r\n"
            + b"lambda-runtime-function-error-type: TypeError\r\n"
            + b"Lambda-Runtime-Function-Error-Body: "
            + base64.b64encode(error)
            + b"\r\n\r\n"
        )
        assert (await _send_raw(emu.runtime_api, head + body)).status == 202
        assert error_of(await caller) == msgspec.json.decode(error)


@pytest.mark.asyncio
async def test_undecodable_error_body_keeps_the_type() -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        conn = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await conn.send(
            chunk(b"a")
            + b"0\r\nLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n"
            + b"Lambda-Runtime-Function-Error-Body: not base64!\r\n\r\n"
        )
        assert (await conn.read_reply()).status == 202
        await conn.close()
        assert error_of(await caller) == {"errorMessage": "", "errorType": "Runtime.StreamError"}


@pytest.mark.asyncio
async def test_unknown_and_stale_request_ids_get_400() -> None:
    async with running() as emu:
        for action in ("response", "error"):
            reply = await call(
                emu.runtime_api, "POST", f"{API}/invocation/no-such-id/{action}", body=b"{}"
            )
            assert (reply.status, reply.body) == (400, INVALID_ID)
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        assert (await post_response(emu.runtime_api, nxt.request_id, b"1")).status == 202
        await caller
        # Once the runtime asks for more work, the old id is no longer current.
        waiting = asyncio.ensure_future(next_invocation(emu.runtime_api))
        await asyncio.sleep(0.1)
        reply = await post_response(emu.runtime_api, nxt.request_id, b"2")
        assert (reply.status, reply.body) == (400, INVALID_ID)
        caller = invoke(emu)
        nxt2 = await waiting
        await post_response(emu.runtime_api, nxt2.request_id, b"3")
        assert (await caller).body == b"3"


@pytest.mark.asyncio
async def test_wrong_call_order_gets_403() -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        assert (await post_response(emu.runtime_api, nxt.request_id, b"1")).status == 202
        for action in ("response", "error"):
            reply = await call(
                emu.runtime_api, "POST", f"{API}/invocation/{nxt.request_id}/{action}", body=b"{}"
            )
            assert reply.status == 403
            value = reply.json()
            assert isinstance(value, dict)
            assert value["errorType"] == "InvalidStateTransition"
            assert str(value["errorMessage"]).startswith("State transition from DONE to ")
            assert reply.body.endswith(b"}\n")
        assert (await caller).body == b"1"


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["buffered", "Streaming", ""])
async def test_response_mode_must_be_exactly_streaming(mode: str) -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        reply = await post_response(
            emu.runtime_api,
            nxt.request_id,
            b"{}",
            extra=[("Lambda-Runtime-Function-Response-Mode", mode)],
        )
        assert (reply.status, reply.body) == (400, BAD_MODE)
        assert error_of(await caller)["errorType"] == "Runtime.InvalidResponseModeHeader"


@pytest.mark.asyncio
async def test_buffered_response_over_6_mib_gets_413_and_error_then_gets_403() -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        big = b"x" * (6 * 1024 * 1024 + 101)
        reply = await post_response(emu.runtime_api, nxt.request_id, big)
        assert (reply.status, reply.body) == (413, TOO_LARGE)
        error = error_of(await caller)
        assert error == {
            "errorMessage": "Response payload size (6291557 bytes) exceeded maximum allowed"
            " payload size (6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
        # docs/runtime-api.md P6: do not call /error after a 413 -- it is refused.
        late = await call(
            emu.runtime_api, "POST", f"{API}/invocation/{nxt.request_id}/error", body=b"{}"
        )
        assert late.status == 403


@pytest.mark.asyncio
async def test_exactly_the_cap_is_accepted() -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        body = b"y" * (6 * 1024 * 1024 + 100)
        assert (await post_response(emu.runtime_api, nxt.request_id, body)).status == 202
        assert len((await caller).body) == len(body)


@pytest.mark.asyncio
async def test_malformed_chunking_gets_400_truncated_and_next_invocation_works() -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        conn = await open_stream(emu.runtime_api, nxt.request_id)
        await conn.send(chunk(prelude()) + b"zz\r\nnot hex\r\n")
        reply = await conn.read_reply()
        assert (reply.status, reply.body) == (400, TRUNCATED)
        assert await conn.at_eof()
        await conn.close()
        assert error_of(await caller)["errorType"] == "Runtime.TruncatedResponse"
        await _one_good_invocation(emu)


@pytest.mark.asyncio
async def test_runtime_hanging_up_mid_body_is_truncated_response_then_next_works() -> None:
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        conn = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await conn.send(chunk(b"partial") + b"10\r\nonly-six")
        await asyncio.sleep(0.05)
        await conn.close()  # hang up mid-chunk
        got = await client
        # Partial chunk data is relayed as it arrives, then the cut.
        assert (got.status, got.body, got.truncated) == (200, b"partialonly-six", True)
        record = await asyncio.wait_for(emu.records.get(), 5)
        assert record.error_type == "Runtime.TruncatedResponse"

        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        conn = await open_stream(emu.runtime_api, nxt.request_id)
        await conn.send(b"5\r\nabc")
        await conn.close()  # before the head reached the caller: an error payload
        assert error_of(await caller)["errorType"] == "Runtime.TruncatedResponse"
        await _one_good_invocation(emu)


async def _one_good_invocation(emu: Emulator) -> None:
    caller = invoke(emu)
    nxt = await next_invocation(emu.runtime_api)
    assert (await post_response(emu.runtime_api, nxt.request_id, b'"fine"')).status == 202
    assert (await caller).body == b'"fine"'


@pytest.mark.asyncio
async def test_error_before_response_reaches_the_caller() -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        # awslambdaric style: no type header, the type is in the body (docs/runtime-api.md P13).
        body = b'{"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}'
        reply = await call(
            emu.runtime_api,
            "POST",
            f"{API}/invocation/{nxt.request_id}/error",
            [("Content-Type", "application/json")],
            body,
        )
        assert (reply.status, reply.body) == (202, OK)
        assert (await caller).body == body
        record = await asyncio.wait_for(emu.records.get(), 5)
        assert record.error_type == "ValueError"


@pytest.mark.asyncio
async def test_error_cause_content_type_forwards_three_fields() -> None:
    async with running() as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        body = msgspec.json.encode(
            {"errorMessage": "m", "errorType": "T", "stackTrace": [], "errorCause": {"x": 1}}
        )
        await call(
            emu.runtime_api,
            "POST",
            f"{API}/invocation/{nxt.request_id}/error",
            [
                ("Content-Type", "application/vnd.aws.lambda.error.cause+json"),
                ("Lambda-Runtime-Function-Error-Type", "Runtime.Custom"),
            ],
            body,
        )
        assert error_of(await caller) == {"errorMessage": "m", "errorType": "T", "stackTrace": []}


@pytest.mark.asyncio
async def test_init_error_is_served_to_the_next_invocation() -> None:
    async with running() as emu:
        body = b'{"errorMessage": "no module", "errorType": "Runtime.ImportModuleError"}'
        reply = await call(
            emu.runtime_api,
            "POST",
            f"{API}/init/error",
            [("Lambda-Runtime-Function-Error-Type", "Runtime.ImportModuleError")],
            body,
        )
        assert (reply.status, reply.body) == (202, OK)
        assert (await invoke(emu)).body == body
        # A runtime that reaches /next has initialised: invocations run again.
        await _one_good_invocation(emu)
        # ... and an init error while an invocation is in flight is out of order.
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        late = await call(emu.runtime_api, "POST", f"{API}/init/error", body=b"{}")
        assert late.status == 403
        await post_response(emu.runtime_api, nxt.request_id, b"1")
        await caller


@pytest.mark.asyncio
async def test_unknown_paths_404_and_wrong_methods_405() -> None:
    async with running() as emu:
        assert (await call(emu.runtime_api, "GET", "/2018-06-01/runtime/nope")).status == 404
        assert (await call(emu.runtime_api, "GET", "/")).status == 404
        reply = await call(emu.runtime_api, "POST", f"{API}/invocation/next", body=b"")
        assert (reply.status, reply.header("Allow")) == (405, "GET")
        reply = await call(emu.runtime_api, "GET", f"{API}/invocation/some-id/response")
        assert (reply.status, reply.header("Allow")) == (405, "POST")
        assert (await call(emu.runtime_api, "PUT", f"{API}/init/error", body=b"")).status == 405


@pytest.mark.asyncio
async def test_concurrent_pollers_each_get_one_invocation() -> None:
    async with running(concurrency=3) as emu:
        pollers = [asyncio.ensure_future(next_invocation(emu.runtime_api)) for _ in range(3)]
        await asyncio.sleep(0.1)
        callers = [invoke(emu, b'{"n": %d}' % i) for i in range(3)]
        nexts = await asyncio.gather(*pollers)
        assert len({n.request_id for n in nexts}) == 3
        # Answer in reverse order: each result goes to its own caller.
        for nxt in reversed(nexts):
            await post_response(emu.runtime_api, nxt.request_id, b"echo " + nxt.body)
        for i, caller in enumerate(callers):
            assert (await caller).body == b'echo {"n": %d}' % i


@pytest.mark.asyncio
async def test_a_poller_that_hangs_up_loses_nothing() -> None:
    async with running() as emu:
        conn = await Conn.open(emu.runtime_api)
        await conn.send(request_bytes("GET", f"{API}/invocation/next"))
        await asyncio.sleep(0.05)
        await conn.close()
        await asyncio.sleep(0.05)
        await _one_good_invocation(emu)


@pytest.mark.asyncio
async def test_timeout_fails_the_invocation_and_cuts_the_runtime() -> None:
    async with running(timeout=0.5) as emu:
        caller = invoke(emu)
        nxt = await next_invocation(emu.runtime_api)
        conn = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await conn.send(chunk(b"slow"))
        error = error_of(await caller)
        assert error["errorType"] == "Sandbox.Timeout"
        assert "Task timed out after 0.50 seconds" in str(error["errorMessage"])
        assert await conn.at_eof(5)  # the runtime's /response connection was closed
        await conn.close()
        late = await post_response(emu.runtime_api, nxt.request_id, b"late")
        assert 400 <= late.status < 500
        await _one_good_invocation(emu)


@pytest.mark.asyncio
async def test_streamed_response_limit() -> None:
    async with running(response_limit=1000) as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        conn = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await conn.send(chunk(b"a" * 600))
        await conn.send(chunk(b"b" * 600))
        reply = await conn.read_reply()
        assert reply.status == 413
        await conn.close()
        got = await client
        assert (got.body, got.truncated) == (b"a" * 600, True)


@pytest.mark.asyncio
async def test_prelude_then_empty_body_vs_nul_delimiter() -> None:
    """The JSON and the NULs may share a chunk with body bytes; NULs in the body stay."""
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        conn = await open_stream(emu.runtime_api, nxt.request_id)
        await conn.send(chunk(prelude(201) + NUL8 + b"a\x00\x00b") + chunk(NUL8) + b"0\r\n\r\n")
        assert (await conn.read_reply()).status == 202
        await conn.close()
        got = await client
        assert (got.status, got.body) == (201, b"a\x00\x00b" + NUL8)


@pytest.mark.asyncio
async def test_a_streamed_response_leaves_its_connection_open_for_the_next_request() -> None:
    # A runtime may reuse its connection after the 202 (HTTP/1.1 keep-alive, as the Node.js
    # runtime client's keep-alive agent does): /next and a second streamed /response on it.
    async with running() as emu:
        first = asyncio.ensure_future(call(emu.url, "GET", "/one"))
        nxt = await next_invocation(emu.runtime_api)
        conn = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await conn.send(chunk(b"one") + b"0\r\n\r\n")
        reply = await conn.read_reply(method=b"POST")
        assert reply.status == 202
        assert reply.body == OK
        assert reply.header("connection") is None  # no "Connection: close"
        assert (await first).body == b"one"

        second = asyncio.ensure_future(call(emu.url, "GET", "/two"))
        await conn.send(request_bytes("GET", f"{API}/invocation/next"))
        head = await conn.read_head()
        assert head.status == 200
        rid = head.headers.get("Lambda-Runtime-Aws-Request-Id")
        assert rid is not None
        assert rid.decode() != nxt.request_id
        _ = [piece async for piece in conn.body_pieces(head)]
        await conn.send(
            request_bytes(
                "POST",
                f"{API}/invocation/{rid.decode()}/response",
                [
                    ("Lambda-Runtime-Function-Response-Mode", "streaming"),
                    ("Content-Type", "text/plain"),
                    ("Transfer-Encoding", "chunked"),
                ],
            )
            + chunk(b"two")
            + b"0\r\n\r\n"
        )
        again = await conn.read_reply(method=b"POST")
        assert again.status == 202
        assert again.body == OK
        assert (await second).body == b"two"
        with pytest.raises(TimeoutError):  # still open for more: no EOF comes
            await conn.at_eof(0.05)
        await conn.close()
