"""The Invoke API: raw requests, event-stream framing checked by botocore's own decoder, and
real boto3 ``invoke`` / ``invoke_with_response_stream`` calls (in threads; they block)."""

from __future__ import annotations

import asyncio
import base64
import zlib
from typing import Any

import msgspec
import pytest
from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]

from duplexlambda.emulator import Emulator
from duplexlambda.emulator.eventstream import encode_message, invoke_complete, payload_chunk

from ..support.wire import (
    API,
    INVOKE,
    INVOKE_STREAM,
    NUL8,
    call,
    chunk,
    next_invocation,
    open_stream,
    post_response,
    prelude,
    running,
)


def events(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """Decode an event stream with botocore (which checks both CRCs)."""
    buf = EventStreamBuffer()
    buf.add_data(body)
    return [(dict(m.headers), m.payload) for m in buf]


def test_eventstream_encoding_known_answer() -> None:
    message = encode_message([(":event-type", "X")], b"hi")
    # total 16 + headers (1+11+1+2+1 = 16) + payload 2 = 34
    assert message[:8] == (34).to_bytes(4, "big") + (16).to_bytes(4, "big")
    assert message[8:12] == zlib.crc32(message[:8]).to_bytes(4, "big")
    assert message[-4:] == zlib.crc32(message[:-4]).to_bytes(4, "big")
    [(headers, payload)] = events(message)
    assert (headers, payload) == ({":event-type": "X"}, b"hi")
    [(headers, payload)] = events(payload_chunk(b"\x00data"))
    assert headers[":event-type"] == "PayloadChunk"
    assert headers[":message-type"] == "event"
    assert payload == b"\x00data"
    [(headers, payload)] = events(invoke_complete("Error", '{"x":1}', "bG9n"))
    assert headers[":event-type"] == "InvokeComplete"
    assert msgspec.json.decode(payload) == {
        "ErrorCode": "Error",
        "ErrorDetails": '{"x":1}',
        "LogResult": "bG9n",
    }


@pytest.mark.asyncio
async def test_streaming_invoke_frames_each_chunk_and_passes_the_prelude_through() -> None:
    async with running() as emu:
        caller = asyncio.ensure_future(call(emu.url, "POST", INVOKE_STREAM, body=b"{}"))
        nxt = await next_invocation(emu.runtime_api)
        meta = prelude(200, {"content-type": "text/plain"})
        runtime = await open_stream(emu.runtime_api, nxt.request_id)
        await runtime.send(chunk(meta) + chunk(NUL8) + chunk(b"one") + chunk(b"two"))
        await runtime.send(b"0\r\n\r\n")
        assert (await runtime.read_reply()).status == 202
        await runtime.close()
        reply = await caller
        assert reply.status == 200
        assert reply.header("Content-Type") == "application/vnd.amazon.eventstream"
        assert reply.header("X-Amz-Executed-Version") == "$LATEST"
        decoded = events(reply.body)
        kinds = [h[":event-type"] for h, _ in decoded]
        assert kinds == ["PayloadChunk"] * 4 + ["InvokeComplete"]
        assert [p for _, p in decoded[:4]] == [meta, NUL8, b"one", b"two"]
        assert msgspec.json.decode(decoded[-1][1]) == {
            "ErrorCode": None,
            "ErrorDetails": None,
            "LogResult": None,
        }


@pytest.mark.asyncio
async def test_buffered_invoke_failure_and_extras() -> None:
    async with running() as emu:
        caller = asyncio.ensure_future(
            call(
                emu.url,
                "POST",
                INVOKE + "?Qualifier=live",
                [("X-Amz-Log-Type", "Tail"), ("X-Amz-Tenant-Id", "tenant-7")],
                b"[]",
            )
        )
        nxt = await next_invocation(emu.runtime_api)
        assert str(nxt.header("Lambda-Runtime-Invoked-Function-Arn")).endswith(":function:live")
        assert nxt.header("Lambda-Runtime-Aws-Tenant-Id") == "tenant-7"
        error = b'{"errorMessage":"x","errorType":"KeyError"}'
        await call(emu.runtime_api, "POST", f"{API}/invocation/{nxt.request_id}/error", body=error)
        reply = await caller
        assert (reply.status, reply.body) == (200, error)
        assert reply.header("X-Amz-Function-Error") == "Unhandled"
        assert reply.header("X-Amz-Log-Result") == ""  # no runtime process, no log


@pytest.mark.asyncio
async def test_invocation_types_and_bad_requests() -> None:
    async with running() as emu:
        reply = await call(emu.url, "POST", INVOKE, [("X-Amz-Invocation-Type", "DryRun")], b"{}")
        assert reply.status == 204
        reply = await call(emu.url, "POST", INVOKE, [("X-Amz-Invocation-Type", "Event")], b"{}")
        assert reply.status == 202
        nxt = await next_invocation(emu.runtime_api)  # the async invocation still runs
        assert (await post_response(emu.runtime_api, nxt.request_id, b"null")).status == 202
        reply = await call(emu.url, "POST", INVOKE, [("X-Amz-Client-Context", "%%%")], b"{}")
        assert (reply.status, reply.header("x-amzn-ErrorType")) == (
            400,
            "InvalidRequestContentException",
        )
        reply = await call(emu.url, "POST", INVOKE, body=b"x" * (6 * 1024 * 1024 + 101))
        assert (reply.status, reply.header("x-amzn-ErrorType")) == (
            413,
            "RequestTooLargeException",
        )
        # AWS's words, the same for every front (emulator/invocations.py read_capped).
        assert msgspec.json.decode(reply.body)["message"] == (
            "Request must be smaller than 6291556 bytes for the InvokeFunction operation"
        )
        assert (await call(emu.url, "GET", INVOKE)).status == 405


BAD_INVOKES = {
    "not-json": (INVOKE, [], b"not json", "InvalidRequestContentException"),
    "truncated-json": (INVOKE_STREAM, [], b'{"a": ', "InvalidRequestContentException"),
    "nested-too-deep": (INVOKE, [], b"[" * 100_000, "InvalidRequestContentException"),
    "unknown-type": (INVOKE, [("X-Amz-Invocation-Type", "Sometimes")], b"{}",
                     "InvalidParameterValueException"),
    "lower-case-type": (INVOKE, [("X-Amz-Invocation-Type", "event")], b"{}",
                        "InvalidParameterValueException"),
    "event-on-stream": (INVOKE_STREAM, [("X-Amz-Invocation-Type", "Event")], b"{}",
                        "InvalidParameterValueException"),
    "qualifier-slash": (INVOKE + "?Qualifier=a%2Fb", [], b"{}", "ValidationException"),
    "qualifier-dot": (INVOKE_STREAM + "?Qualifier=v1.2", [], b"{}", "ValidationException"),
    "qualifier-129": (INVOKE + "?Qualifier=" + "q" * 129, [], b"{}", "ValidationException"),
}  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize("how", list(BAD_INVOKES))
async def test_invalid_invoke_requests_are_400s_with_aws_error_types(how: str) -> None:
    """A non-JSON payload ran the function (which crashed unmarshalling it), an unknown
    invocation type was served as RequestResponse, ``Event`` was accepted on the streaming
    endpoint, and any qualifier reached the ARN: each is AWS's 400, and no invocation."""
    target, headers, body, error_type = BAD_INVOKES[how]
    async with running() as emu:
        reply = await call(emu.url, "POST", target, headers, body)
        assert emu.dispatcher.in_flight() == []
        waiting = asyncio.ensure_future(next_invocation(emu.runtime_api))
        await asyncio.sleep(0.05)
        assert not waiting.done(), "the bad request was queued for the runtime"
        good = asyncio.ensure_future(call(emu.url, "POST", INVOKE + "?Qualifier=$LATEST", [], b"1"))
        nxt = await waiting
        assert nxt.body == b"1"
        await post_response(emu.runtime_api, nxt.request_id, b"2")
        assert (await good).body == b"2"
    assert reply.status == 400
    assert reply.header("x-amzn-ErrorType") == error_type
    message = msgspec.json.decode(reply.body)["message"]
    if error_type == "InvalidRequestContentException":
        assert message.startswith("Could not parse request body into json: ")
    elif error_type == "ValidationException":
        assert message.startswith("1 validation error detected: Value '")
        assert "at 'qualifier' failed to satisfy constraint" in message
    else:
        assert "at 'invocationType' failed to satisfy constraint" in message


def _client(emu: Emulator) -> Any:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    return boto3.client(
        "lambda",
        endpoint_url=emu.url.rstrip("/"),
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, read_timeout=10, connect_timeout=5),
    )


@pytest.mark.asyncio
async def test_boto3_invoke() -> None:
    async with running() as emu:
        client = await asyncio.to_thread(_client, emu)
        context = base64.b64encode(b'{"env": {"k": "v"}}').decode()
        call_ok = asyncio.ensure_future(
            asyncio.to_thread(
                client.invoke, FunctionName="my-fn", Payload=b'{"n": 1}', ClientContext=context
            )
        )
        nxt = await next_invocation(emu.runtime_api)
        assert nxt.body == b'{"n": 1}'
        assert nxt.header("Lambda-Runtime-Client-Context") == '{"env":{"k":"v"}}'
        await post_response(emu.runtime_api, nxt.request_id, b'{"answer": 42}')
        result = await call_ok
        assert result["StatusCode"] == 200
        assert result["ExecutedVersion"] == "$LATEST"
        assert "FunctionError" not in result
        assert result["Payload"].read() == b'{"answer": 42}'

        call_err = asyncio.ensure_future(asyncio.to_thread(client.invoke, FunctionName="my-fn"))
        nxt = await next_invocation(emu.runtime_api)
        error = b'{"errorMessage": "nope", "errorType": "ValueError"}'
        await call(emu.runtime_api, "POST", f"{API}/invocation/{nxt.request_id}/error", body=error)
        result = await call_err
        assert (result["StatusCode"], result["FunctionError"]) == (200, "Unhandled")
        assert result["Payload"].read() == error
        await asyncio.to_thread(client.close)


@pytest.mark.asyncio
async def test_boto3_sees_aws_errors_for_invalid_invokes() -> None:
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    async with running() as emu:
        client = await asyncio.to_thread(_client, emu)
        calls: list[tuple[Any, dict[str, Any]]] = [
            (client.invoke, {"Payload": b"not json"}),
            (client.invoke, {"Payload": b"{}", "InvocationType": "Sometimes"}),
            (client.invoke, {"Payload": b"{}", "Qualifier": "bad/qualifier"}),
            (client.invoke_with_response_stream, {"Payload": b"{}", "InvocationType": "Event"}),
            (client.invoke_with_response_stream, {"Payload": b"{oops"}),
        ]
        codes = []
        for method, kwargs in calls:
            with pytest.raises(ClientError) as caught:
                await asyncio.to_thread(method, FunctionName="my-fn", **kwargs)
            error = caught.value.response["Error"]
            codes.append(error["Code"])
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        await asyncio.to_thread(client.close)
        assert emu.dispatcher.in_flight() == []
    assert codes == [
        "InvalidRequestContentException",
        "InvalidParameterValueException",
        "ValidationException",
        "InvalidParameterValueException",
        "InvalidRequestContentException",
    ]


def _collect_stream(client: Any, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    response = client.invoke_with_response_stream(**kwargs)
    collected = list(response["EventStream"])
    return response, collected


@pytest.mark.asyncio
async def test_boto3_invoke_with_response_stream() -> None:
    async with running() as emu:
        client = await asyncio.to_thread(_client, emu)
        pending = asyncio.ensure_future(
            asyncio.to_thread(_collect_stream, client, FunctionName="my-fn", Payload=b"{}")
        )
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        for word in (b"alpha ", b"beta ", b"gamma"):
            await runtime.send(chunk(word))
            await asyncio.sleep(0.01)
        await runtime.send(b"0\r\n\r\n")
        assert (await runtime.read_reply()).status == 202
        await runtime.close()
        response, collected = await pending
        assert response["StatusCode"] == 200
        assert response["ExecutedVersion"] == "$LATEST"
        chunks = [e["PayloadChunk"]["Payload"] for e in collected if "PayloadChunk" in e]
        assert chunks == [b"alpha ", b"beta ", b"gamma"]
        assert "InvokeComplete" in collected[-1]
        assert "ErrorCode" not in collected[-1]["InvokeComplete"]

        # A mid-stream error trailer: the chunks so far, then InvokeComplete with its code.
        pending = asyncio.ensure_future(
            asyncio.to_thread(_collect_stream, client, FunctionName="my-fn", Payload=b"{}")
        )
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        details = b'{"errorType":"Error","errorMessage":"boom","trace":[]}'
        await runtime.send(
            chunk(b"partial")
            + b"0\r\nLambda-Runtime-Function-Error-Type: Error\r\n"
            + b"Lambda-Runtime-Function-Error-Body: "
            + base64.b64encode(details)
            + b"\r\n\r\n"
        )
        assert (await runtime.read_reply()).status == 202
        await runtime.close()
        _, collected = await pending
        assert collected[0]["PayloadChunk"]["Payload"] == b"partial"
        complete = collected[-1]["InvokeComplete"]
        assert complete["ErrorCode"] == "Error"
        assert msgspec.json.decode(complete["ErrorDetails"]) == msgspec.json.decode(details)
        await asyncio.to_thread(client.close)
