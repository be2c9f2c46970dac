"""The sans-I/O parts: function-URL mapping, the response state machine, the result channel,
the dispatcher, the token bucket."""

from __future__ import annotations

import asyncio
import base64

import msgspec
import pytest

from duplexlambda.emulator.furl import (
    HttpRequestInfo,
    build_event,
    http_head,
    is_text_body,
    map_buffered_response,
    with_body,
)
from duplexlambda.emulator.invocations import (
    TRANSITIONS,
    BufferedPayload,
    Chunk,
    Dispatcher,
    End,
    Failure,
    Head,
    Invocation,
    ResponseState,
    ResultChannel,
)
from duplexlambda.emulator.throttle import TokenBucket
from duplexlambda.errors import InvalidStateTransitionError, PreludeError
from duplexlambda.protocol.http1 import Headers


def test_event_without_body() -> None:
    info = HttpRequestInfo(
        method="GET",
        raw_path="/x%20y",
        raw_query="a=1&b=%20&a=2",
        headers=Headers([(b"Host", b"abc.lambda-url.us-east-1.on.aws"), (b"Cookie", b"k=v")]),
        source_ip="10.0.0.1",
        request_id="rid",
        now_ms=1583348638390,
    )
    event = build_event(info)
    assert event["rawPath"] == "/x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": " "}
    assert event["cookies"] == ["k=v"]
    assert event["headers"] == {"host": "abc.lambda-url.us-east-1.on.aws"}
    context = event["requestContext"]
    assert context["time"] == "04/Mar/2020:19:03:58 +0000"
    assert context["timeEpoch"] == 1583348638390
    assert (context["domainPrefix"], context["apiId"]) == ("abc", "abc")
    assert "body" not in event


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain; charset=utf-8", "héllo".encode(), True),
        ("application/json", b'{"a":1}', True),
        ("application/ld+json", b"{}", True),
        (None, b"plain", True),
        ("application/octet-stream", b"abc", False),
        ("image/png", b"\x89PNG", False),
        ("text/plain", b"\xff\xfe", False),  # not UTF-8: must be base64
        ("application/octet-stream", b"", True),
    ],
)
def test_binary_rule(content_type: str | None, body: bytes, text: bool) -> None:
    assert is_text_body(content_type, body) is text
    event = msgspec.json.decode(with_body({"v": 1}, body, content_type))
    assert event["isBase64Encoded"] is (not text)
    if body:
        decoded = base64.b64decode(event["body"]) if not text else event["body"].encode()
        assert decoded == body


def test_http_head_from_prelude() -> None:
    status, headers = http_head(
        {
            "statusCode": 301,
            "headers": {"Location": "/n", "X-N": 5, "Set-Thing": ["a", "b"]},
            "multiValueHeaders": {"X-M": ["1", "2"], "location": ["ignored"]},
            "cookies": ["c=1"],
        }
    )
    assert status == 301
    assert headers == [
        ("Location", "/n"),
        ("X-N", "5"),
        ("Set-Thing", "a"),
        ("Set-Thing", "b"),
        ("X-M", "1"),
        ("X-M", "2"),
        ("Set-Cookie", "c=1"),
    ]
    assert http_head({}) == (200, [])
    _, remapped = http_head({"headers": {"Content-Length": "3", "Connection": "close"}})
    assert remapped == [
        ("x-amzn-remapped-content-length", "3"),
        ("x-amzn-remapped-connection", "close"),
    ]


@pytest.mark.parametrize(
    "meta",
    [
        {"statusCode": 600},
        {"statusCode": "abc"},
        {"statusCode": True},
        {"headers": {"bad name": "v"}},
        {"headers": {"x": "a\nb"}},
        {"headers": {"x": {"nested": 1}}},
        {"headers": ["x"]},
        {"cookies": "c=1"},
        {"cookies": ["a\r\nb"]},
    ],
)
def test_http_head_rejects(meta: dict[str, object]) -> None:
    with pytest.raises(PreludeError):
        http_head(meta)


def test_buffered_response_mapping() -> None:
    result = map_buffered_response(b'{"statusCode": 204}', "application/json")
    assert (result.status, result.body) == (204, b"")
    result = map_buffered_response(b'{"statusCode": 200, "body": {"a": 1}}', None)
    assert result.body == b'{"a":1}'
    result = map_buffered_response(b'"just a string"', "application/json")
    assert (result.status, result.headers, result.body) == (
        200,
        [("Content-Type", "application/json")],
        b'"just a string"',
    )
    result = map_buffered_response(b"\x00raw", "application/unknown")
    assert (result.status, result.headers) == (200, [("Content-Type", "application/unknown")])
    with pytest.raises(PreludeError):
        map_buffered_response(b'{"statusCode": 200, "body": "!!", "isBase64Encoded": true}', None)


def test_transition_table() -> None:
    s = ResponseState
    assert TRANSITIONS[s.NOT_STARTED] == {s.BUFFERED, s.STREAMING, s.FAILED}
    assert not TRANSITIONS[s.DONE]
    assert not TRANSITIONS[s.FAILED]


@pytest.mark.asyncio
async def test_invocation_lifecycle() -> None:
    inv = Invocation(BufferedPayload(b"{}"))
    seen: list[ResponseState] = []
    inv.on_settle(lambda i: seen.append(i.state))
    inv.begin(ResponseState.STREAMING)
    with pytest.raises(InvalidStateTransitionError, match="from STREAMING to BUFFERED"):
        inv.begin(ResponseState.BUFFERED)
    await inv.send(Head("text/plain", True))
    await inv.send(Chunk(b"ab"))
    assert inv.fail("Error", b"{}")
    assert not inv.fail("Other")  # only the first ending counts
    assert seen == [ResponseState.FAILED]
    events = [e async for e in inv.results]
    assert events == [Head("text/plain", True), Chunk(b"ab"), Failure("Error", b"{}", True)]
    assert inv.response_bytes == 2


@pytest.mark.asyncio
async def test_result_channel_backpressure_and_close() -> None:
    channel = ResultChannel(high_water=10)
    await channel.put(Chunk(b"x" * 11))
    blocked = asyncio.ensure_future(channel.put(Chunk(b"y")))
    await asyncio.sleep(0.01)
    assert not blocked.done()  # over the high-water mark: the producer waits
    assert await channel.__anext__() == Chunk(b"x" * 11)
    await asyncio.wait_for(blocked, 1)
    channel.close()
    await channel.put(Chunk(b"dropped"))  # never waits once the consumer is gone
    assert channel.put_final(End())
    assert [e async for e in channel] == []


@pytest.mark.asyncio
async def test_dispatcher_fifo_requeue_and_timeout() -> None:
    timed_out: list[Invocation] = []
    dispatcher = Dispatcher(0.1, on_timeout=timed_out.append)
    first, second = Invocation(BufferedPayload(b"1")), Invocation(BufferedPayload(b"2"))
    dispatcher.submit(first)
    dispatcher.submit(second)
    assert await dispatcher.next() is first
    dispatcher.requeue(first)
    assert await dispatcher.next() is first
    dispatcher.dispatch(first)
    assert dispatcher.get(first.request_id) is first
    # A poller cancelled right after being handed an invocation does not lose it.
    waiter = asyncio.ensure_future(dispatcher.next())
    await asyncio.sleep(0)
    assert waiter.done()
    assert waiter.result() is second
    late = asyncio.ensure_future(dispatcher.next())
    await asyncio.sleep(0)
    third = Invocation(BufferedPayload(b"3"))
    dispatcher.submit(third)
    late.cancel()
    await asyncio.gather(late, return_exceptions=True)
    assert await dispatcher.next() is third
    await asyncio.sleep(0.25)
    assert first.error_type == "Sandbox.Timeout"
    assert timed_out == [first]
    assert second.error_type == "Sandbox.Timeout"  # never dispatched: timed out waiting
    dispatcher.close()


@pytest.mark.asyncio
async def test_dispatcher_hold_keeps_invocations_for_the_next_runtime() -> None:
    dispatcher = Dispatcher(5.0)
    waiting = asyncio.ensure_future(dispatcher.next())  # the old runtime, polling
    await asyncio.sleep(0)
    dispatcher.hold()
    held = Invocation(BufferedPayload(b"1"))
    dispatcher.submit(held)
    late = asyncio.ensure_future(dispatcher.next())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert not late.done()
    waiting.cancel()  # the old runtime is stopped
    await asyncio.gather(waiting, return_exceptions=True)
    dispatcher.release()
    assert await asyncio.wait_for(late, 1) is held
    dispatcher.close()


def test_token_bucket() -> None:
    bucket = TokenBucket(burst=100, rate=10, now=0.0)
    assert bucket.reserve(100, 0.0) == 0.0  # the burst goes at once
    assert bucket.reserve(20, 0.0) == pytest.approx(2.0)  # then 10 bytes/s
    assert bucket.reserve(10, 2.0) == pytest.approx(1.0)
    assert bucket.reserve(0, 100.0) == 0.0  # refilled, capped at the burst
    assert bucket.reserve(100, 100.0) == 0.0
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(burst=0)


def test_config_defaults_and_validation() -> None:
    from duplexlambda.emulator import EmulatorConfig

    assert EmulatorConfig().stream_limit is None  # duplex: no cap
    assert EmulatorConfig(mode="lambda").stream_limit == 200 * 1024 * 1024
    assert EmulatorConfig(mode="lambda", response_limit=0).stream_limit is None
    assert EmulatorConfig(response_limit=5).stream_limit == 5
    assert EmulatorConfig().function_arn.endswith(":function:function")
    for bad in ({"mode": "fast"}, {"timeout": 0}, {"concurrency": 0}):
        with pytest.raises(ValueError, match=r"mode|timeout|concurrency"):
            EmulatorConfig(**bad)
