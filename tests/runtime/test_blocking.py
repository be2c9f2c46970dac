"""The blocking engine (runtime/blocking.py) against the raw-socket fake Runtime API.

Most tests run the same handler through both engines and expect the same bytes on the wire:
the blocking engine is a second I/O shell, not a second set of rules. The process tests run
``python -m duplexlambda run`` as Lambda would: engine choice, cold-start imports, deadline,
SIGTERM, hooks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import decimal
import json
import math
import os
import pathlib
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from duplexlambda.context import LambdaContext
from duplexlambda.handler import Lifecycle, buffered
from duplexlambda.protocol.prelude import DELIMITER, HTTP_REQUEST_STREAM
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime.blocking import Address, BlockingRuntime
from duplexlambda.runtime.start import Settings

from ..support.fake_api import FakeRuntimeApi, Invocation
from .test_runtime_wire import running

ENGINES = ["asyncio", "blocking"]


@contextlib.asynccontextmanager
async def blocking(handler: Callable[..., Any], api: FakeRuntimeApi) -> AsyncIterator[None]:
    """The blocking engine in a worker thread (no signals there: ``stop()`` ends it)."""
    style_async = asyncio.iscoroutinefunction(handler)
    runtime = BlockingRuntime(handler, Address.parse(api.address), is_async=style_async)
    done = asyncio.get_running_loop().create_future()

    def serve() -> None:
        code = runtime.serve()
        done.get_loop().call_soon_threadsafe(done.set_result, code)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield
    finally:
        runtime.stop()
        assert await asyncio.wait_for(done, 10) == 0


def engine_running(engine: str) -> Any:
    return running if engine == "asyncio" else blocking


async def serve_one(engine: str, handler: Callable[..., Any], inv: Invocation) -> Any:
    async with FakeRuntimeApi() as api, engine_running(engine)(handler, api):
        api.add(inv)
        return await api.result(inv.request_id)


async def both(handler: Callable[..., Any], body: bytes = b"{}", **options: Any) -> list[Any]:
    """What each engine posted for the same invocation."""
    return [
        await serve_one(engine, handler, Invocation(body, f"rid-{engine}", **options))
        for engine in ENGINES
    ]


@pytest.mark.parametrize(
    "result",
    [
        {"price": decimal.Decimal("1.50")},
        {"v": math.nan},
        [math.inf, -math.inf],
        {"d": decimal.Decimal("NaN")},
        {"nested": [{"a": (1, 2)}]},
        "text",
        12,
        None,
        {"unicode": "é ✓ \u2028", "ctl": "\x00\n"},
        b"\x00raw bytes",
        bytearray(b"ba"),
    ],
)
@pytest.mark.asyncio
async def test_results_are_the_same_bytes_on_both_engines(result: Any) -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        return result

    a, b = await both(handler)
    assert a.path.endswith("/response")
    assert b.path.endswith("/response")
    assert a.body == b.body
    assert a.header("Content-Type") == b.header("Content-Type")


@pytest.mark.parametrize("result", [{1, 2}, {"s": frozenset()}, {"x": object()}, "\ud800"])
@pytest.mark.asyncio
async def test_unencodable_results_are_marshal_errors_on_both(result: Any) -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        return result

    for got in await both(handler):
        payload = msgspec.json.decode(got.body)
        assert got.path.endswith("/error")
        assert payload["errorType"] == "Runtime.MarshalError"
        assert payload["errorMessage"].startswith("Unable to marshal response: ")


def user_code_raises() -> None:
    raise KeyError("missing")


@pytest.mark.parametrize("style", ["sync", "async"])
@pytest.mark.asyncio
async def test_errors_are_reported_alike(style: str) -> None:
    def sync_handler(event: Any, context: LambdaContext) -> Any:
        user_code_raises()

    async def async_handler(event: Any, context: LambdaContext) -> Any:
        user_code_raises()

    handler = sync_handler if style == "sync" else buffered(async_handler)
    a, b = await both(handler)
    for got in (a, b):
        assert got.path.endswith("/error")
        assert got.header("Lambda-Runtime-Function-Error-Type") == "KeyError"
    pa, pb = (msgspec.json.decode(g.body) for g in (a, b))
    assert pb["stackTrace"][0].startswith(f'  File "{__file__}"'), pb["stackTrace"]
    assert not any("duplexlambda/runtime" in line for line in pb["stackTrace"])
    assert {**pa, "requestId": ""} == {**pb, "requestId": ""}
    ca, cb = (json.loads(g.header("Lambda-Runtime-Function-XRay-Error-Cause")) for g in (a, b))
    assert ca == cb


@pytest.mark.parametrize("exc", [GeneratorExit, asyncio.CancelledError])
@pytest.mark.asyncio
async def test_a_handlers_base_exception_fails_only_its_invocation(exc: type) -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        if event.get("fail"):
            raise exc()
        return "ok"

    async with FakeRuntimeApi() as api, blocking(handler, api):
        bad = api.add(Invocation(body=b'{"fail": true}'))
        good = api.add(Invocation(body=b"{}"))
        assert (await api.result(bad.request_id)).path.endswith("/error")
        assert (await api.result(good.request_id)).body == b'"ok"'


@pytest.mark.asyncio
async def test_context_and_trace_as_the_asyncio_engine() -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        return {
            "rid": context.aws_request_id,
            "arn": context.invoked_function_arn,
            "left": 0 < context.get_remaining_time_in_millis() <= 30_000,
            "client": context.client_context.custom if context.client_context else None,
            "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        }

    headers = {"Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}})}
    a, b = await both(handler, headers=headers)
    da, db = msgspec.json.decode(a.body), msgspec.json.decode(b.body)
    assert da.pop("rid") == "rid-asyncio"
    assert db.pop("rid") == "rid-blocking"
    assert da == db
    assert db["client"] == {"k": "v"}
    assert db["left"]
    assert db["trace"].startswith("Root=")


@pytest.mark.asyncio
async def test_bad_json_event_is_an_unmarshal_error() -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        return event

    for got in await both(handler, body=b"{not json"):
        assert got.path.endswith("/error")
        assert msgspec.json.decode(got.body)["errorType"] == "Runtime.UnmarshalError"


@pytest.mark.asyncio
async def test_non_json_content_type_gives_the_bytes() -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        return {"type": type(event).__name__, "len": len(event)}

    a, b = await both(handler, body=b"\x00\x01binary", content_type="application/octet-stream")
    assert a.body == b.body == b'{"type":"bytes","len":8}'


@pytest.mark.asyncio
async def test_request_stream_event_is_given_whole() -> None:
    """Our emulator's live request stream (chunked /next) to a def handler: event + body."""

    def handler(event: Any, context: LambdaContext) -> Any:
        return {"body": event["body"], "b64": event["isBase64Encoded"], "path": event["rawPath"]}

    prelude = json.dumps({"version": "2.0", "rawPath": "/up", "headers": {}}).encode()
    for body, b64 in ((b"hello", False), (b"\xff\xfe", True)):
        stream = [prelude + DELIMITER, body[:1], body[1:]]
        a, b = await both(handler, content_type=HTTP_REQUEST_STREAM, stream=stream)
        assert a.body == b.body
        got = msgspec.json.decode(b.body)
        assert got["b64"] is b64
        assert got["path"] == "/up"
        assert (base64.b64decode(got["body"]) if b64 else got["body"].encode()) == body


@pytest.mark.asyncio
async def test_a_rejected_post_is_logged_and_the_next_invocation_served() -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        return "x" * 10

    async with FakeRuntimeApi() as api, blocking(handler, api):
        api.status_for["too-big"] = (413, b'{"errorType":"RequestEntityTooLarge"}')
        api.add(Invocation(request_id="too-big"))
        await api.result("too-big")
        ok = api.add(Invocation())
        assert (await api.result(ok.request_id)).body == b'"xxxxxxxxxx"'
    assert not any(r.path.endswith("/too-big/error") for r in api.received)


@pytest.mark.asyncio
async def test_idle_204_polls_again() -> None:
    async with FakeRuntimeApi() as api, blocking(lambda event, context: 1, api):
        api.idle_204 = 2
        inv = api.add(Invocation())
        assert (await api.result(inv.request_id)).body == b"1"


@pytest.mark.asyncio
async def test_a_closed_keep_alive_connection_is_opened_again() -> None:
    async with FakeRuntimeApi() as api, blocking(lambda event, context: 2, api):
        first = api.add(Invocation())
        await api.result(first.request_id)
        for writer in list(api._writers):  # the API drops the idle connection
            writer.close()
        second = api.add(Invocation())
        assert (await api.result(second.request_id)).body == b"2"


@pytest.mark.asyncio
async def test_async_handler_runs_on_one_loop_for_every_invocation() -> None:
    loops: list[int] = []

    async def handler(event: Any, context: LambdaContext) -> Any:
        loops.append(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        return len(loops)

    async with FakeRuntimeApi() as api, blocking(handler, api):
        for n in (1, 2, 3):
            inv = api.add(Invocation())
            assert (await api.result(inv.request_id)).body == str(n).encode()
    assert len(set(loops)) == 1


@pytest.mark.asyncio
async def test_heads_are_the_wire_builders_bytes() -> None:
    """The blocking engine's precomputed heads equal protocol/runtime_api.py's builders."""
    from duplexlambda.protocol import runtime_api as wire

    async with FakeRuntimeApi() as api, blocking(lambda event, context: {"a": 1}, api):
        inv = api.add(Invocation(request_id="abc-123"))
        got = await api.result(inv.request_id)
    address = RuntimeApiAddress.parse(api.address)
    nxt = next(r for r in api.received if r.head.method == b"GET")
    assert nxt.raw_head == wire.next_request(address)
    assert got.raw_head == wire.response_request(address, "abc-123", 7, "application/json")


@pytest.mark.parametrize(
    ("value", "host", "port", "prefix"),
    [
        ("127.0.0.1:9001", "127.0.0.1", 9001, ""),
        ("LocalHost:80", "localhost", 80, ""),
        ("http://api:9000/lambda", "api", 9000, "/lambda"),
        ("[::1]:9001", "::1", 9001, ""),
        ("h:09", "h", 9, ""),
    ],
)
def test_address_matches_the_full_parser(value: str, host: str, port: int, prefix: str) -> None:
    got = Address.parse(value)
    full = RuntimeApiAddress.parse(value)
    assert (got.host, got.port, got.prefix) == (host, port, prefix)
    assert (full.host, full.port, full.prefix) == (host, port, prefix)
    assert got.host_header == full.host_header


@pytest.mark.parametrize("value", ["127.0.0.1", "h:0", "h:65536", "a b:1", ":1", "h:1x"])
def test_bad_addresses_are_refused_like_the_full_parser(value: str) -> None:
    with pytest.raises(ValueError, match="AWS_LAMBDA_RUNTIME_API"):
        RuntimeApiAddress.parse(value)
    with pytest.raises(ValueError, match="AWS_LAMBDA_RUNTIME_API"):
        Address.parse(value)


# --- as a process ------------------------------------------------------------------------------

APP = """
import os, sys, time

HEAVY = ("asyncio", "msgspec", "typing", "dataclasses", "inspect", "uvloop", "httptools")

def imports(event, context):
    return sorted(m for m in HEAVY if m in sys.modules)

def slow(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return "done"

def swallow(event, context):
    try:
        time.sleep(event.get("sleep", 0))
    except Exception:  # the deadline is not an Exception: it still stops the handler
        return "swallowed"
    return "done"

async def aslow(event, context):
    import asyncio

    await asyncio.sleep(event.get("sleep", 0))
    return "done"
"""


async def start(
    api: FakeRuntimeApi, tmp_path: pathlib.Path, handler: str, **env: str
) -> asyncio.subprocess.Process:
    (tmp_path / "app.py").write_text(APP)
    environ = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "_HANDLER": handler,
        "PYTHONWARNINGS": "error",
        "PYTHONFAULTHANDLER": "1",
        **env,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "duplexlambda",
        "run",
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def stop(proc: asyncio.subprocess.Process, *, term: bool = True) -> tuple[int, str]:
    if term and proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:  # stuck: faulthandler prints where (PYTHONFAULTHANDLER)
        proc.send_signal(signal.SIGABRT)
        await proc.wait()
        assert proc.stdout is not None
        raise AssertionError((await proc.stdout.read()).decode()) from None
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.mark.asyncio
async def test_a_def_handler_never_imports_asyncio_or_msgspec(tmp_path: pathlib.Path) -> None:
    async with FakeRuntimeApi() as api:
        proc = await start(api, tmp_path, "app.imports")
        inv = api.add(Invocation())
        assert (await api.result(inv.request_id)).body == b"[]"
        code, out = await stop(proc)
    assert code == 0, out
    assert "engine blocking (def, called inline)" in out


@pytest.mark.parametrize(
    ("env", "engine"),
    [({"AWS_LAMBDA_MAX_CONCURRENCY": "4"}, "codec"), ({"DUPLEXLAMBDA_ENGINE": "asyncio"}, "codec")],
)
@pytest.mark.asyncio
async def test_the_asyncio_engine_when_asked_or_concurrent(
    tmp_path: pathlib.Path, env: dict[str, str], engine: str
) -> None:
    async with FakeRuntimeApi() as api:
        proc = await start(api, tmp_path, "app.imports", **env)
        inv = api.add(Invocation())
        assert b"asyncio" in (await api.result(inv.request_id)).body
        code, out = await stop(proc)
    assert code == 0, out
    assert "(buffered), codec" in out
    assert "engine blocking" not in out


@pytest.mark.parametrize("handler", ["app.slow", "app.aslow", "app.swallow"])
@pytest.mark.asyncio
async def test_the_deadline_stops_the_handler_and_the_next_is_served(
    tmp_path: pathlib.Path, handler: str
) -> None:
    import time

    async with FakeRuntimeApi() as api:
        proc = await start(api, tmp_path, handler, DUPLEXLAMBDA_DEADLINE_MARGIN_MS="100")
        deadline = int(time.time() * 1000) + 1500
        late = api.add(Invocation(body=b'{"sleep": 5}', deadline_ms=deadline))
        got = await api.result(late.request_id)
        assert time.time() * 1000 < deadline + 200
        assert got.path.endswith("/error")
        payload = msgspec.json.decode(got.body)
        assert payload["errorType"] == "Function.Timeout"
        assert "Task timed out" in payload["errorMessage"]
        ok = api.add(Invocation(body=b"{}"))
        assert (await api.result(ok.request_id)).body in (b'"done"', b"null")
        code, out = await stop(proc)
    assert code == 0, out


@pytest.mark.asyncio
async def test_sigterm_waits_for_the_invocation_in_flight(tmp_path: pathlib.Path) -> None:
    async with FakeRuntimeApi() as api:
        proc = await start(api, tmp_path, "app.slow")
        inv = api.add(Invocation(body=b'{"sleep": 0.5}'))
        await inv.handed_out.wait()
        await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert (await api.result(inv.request_id)).body == b'"done"'
        code, out = await stop(proc, term=False)  # it leaves by itself
    assert code == 0, out


@pytest.mark.asyncio
async def test_sigterm_while_idle_exits_at_once(tmp_path: pathlib.Path) -> None:
    async with FakeRuntimeApi() as api:
        proc = await start(api, tmp_path, "app.slow")
        inv = api.add(Invocation())
        await api.result(inv.request_id)
        await asyncio.sleep(0.1)  # back in /next
        code, out = await stop(proc)
    assert code == 0, out


@pytest.mark.asyncio
async def test_init_error_is_posted_and_exits_1(tmp_path: pathlib.Path) -> None:
    async with FakeRuntimeApi() as api:
        proc = await start(api, tmp_path, "app.missing")
        got = await api.result("init")
        code, out = await stop(proc, term=False)
    assert code == 1, out
    payload = msgspec.json.decode(got.body)
    assert payload["errorType"] == "Runtime.HandlerNotFound"
    assert payload["requestId"] == ""


@pytest.mark.asyncio
async def test_a_500_on_next_exits_1(tmp_path: pathlib.Path) -> None:
    async with FakeRuntimeApi() as api:
        api.next_status = 500
        proc = await start(api, tmp_path, "app.slow")
        code, out = await stop(proc, term=False)
    assert code == 1, out
    assert "the runtime exits" in out


@pytest.mark.asyncio
async def test_hooks_run_on_the_blocking_engine(tmp_path: pathlib.Path) -> None:
    app = tmp_path / "hooked.py"
    app.write_text(
        "import os, pathlib\n"
        "from duplexlambda.handler import on_init, on_shutdown\n"
        "marks = pathlib.Path(os.environ['LAMBDA_TASK_ROOT'])\n"
        "@on_init\nasync def opened():\n    (marks / 'init').write_text('1')\n"
        "@on_shutdown\nasync def closed():\n    (marks / 'shutdown').write_text('1')\n"
        "def handler(event, context):\n    return (marks / 'init').read_text()\n"
    )
    async with FakeRuntimeApi() as api:
        proc = await start(api, tmp_path, "hooked.handler")
        inv = api.add(Invocation())
        assert (await api.result(inv.request_id)).body == b'"1"'
        code, out = await stop(proc)
    assert code == 0, out
    assert "engine blocking" in out
    assert (tmp_path / "shutdown").read_text() == "1"


def test_settings_refuse_an_unknown_engine() -> None:
    with pytest.raises(ValueError, match="DUPLEXLAMBDA_ENGINE"):
        Settings.from_env({"AWS_LAMBDA_RUNTIME_API": "h:1", "DUPLEXLAMBDA_ENGINE": "fast"})


def test_lifecycle_is_still_a_plain_value() -> None:
    hooks = Lifecycle()
    assert hooks.init == []
    assert hooks.shutdown == []


def test_a_refused_connect_is_retried_with_backoff() -> None:
    """As the asyncio engine: the Runtime API may start listening a moment after us."""
    import socket
    import time

    from duplexlambda.runtime.blocking import ApiConnection

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there yet

    def late_server() -> None:
        time.sleep(0.2)
        with socket.create_server(("127.0.0.1", port)) as server:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")

    thread = threading.Thread(target=late_server, daemon=True)
    thread.start()
    conn = ApiConnection("127.0.0.1", port)
    try:
        status, fields, body = conn.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        conn.close()
    thread.join(5)
    assert (status, body) == (202, b"ok")
    assert fields.by_name[b"content-length"] == b"2"


def test_an_unreachable_api_fails_after_the_last_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from duplexlambda.runtime import blocking

    monkeypatch.setattr(blocking, "CONNECT_RETRY_DELAYS", (0.01, 0.01))
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    conn = blocking.ApiConnection("127.0.0.1", port)
    with pytest.raises(ConnectionRefusedError):
        conn.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
