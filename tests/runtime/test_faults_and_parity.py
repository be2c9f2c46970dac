"""Handler faults the runtime must survive, and awslambdaric's formats it must match.

Each test is a regression found by an adversarial pass (issue #13 items 2-4, 16-21): it
failed on the runtime before its fix. Wire: the raw-socket fake Runtime API.
"""

from __future__ import annotations

import asyncio
import base64
import decimal
import logging
import math
import sys
from typing import Any

import msgspec
import pytest

from duplexlambda.context import LambdaContext
from duplexlambda.handler import (
    BadHandlerSignature,
    BuiltInModuleConflict,
    Style,
    load_handler,
    style_of,
)
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime import RuntimeConfig, main_async
from duplexlambda.runtime.logs import JsonFormatter
from duplexlambda.streams import Request, Response

from ..support.fake_api import FakeRuntimeApi, Invocation
from .test_runtime_wire import running, url_event


def error_of(received: Any) -> dict[str, Any]:
    assert received.path.endswith("/error"), received.path
    doc: dict[str, Any] = msgspec.json.decode(received.body)
    return doc


# --- item 2: BaseExceptions from a handler fail that invocation only -----------------------


@pytest.mark.parametrize("exc", [asyncio.CancelledError, GeneratorExit])
@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.asyncio
async def test_base_exception_fails_only_its_invocation(
    api: FakeRuntimeApi, exc: type[BaseException], concurrency: int
) -> None:
    async def handler(req: Request, res: Response) -> None:
        if await req.read() == b'"boom"':
            raise exc("not mine to raise")
        await asyncio.sleep(0.2)
        await res.end(b"ok")

    async with running(handler, api, concurrency=concurrency) as runtime:
        others = [api.add(Invocation(body=b"{}")) for _ in range(concurrency - 1)]
        bad = api.add(Invocation(body=b'"boom"'))
        after = api.add(Invocation(body=b"{}"))
        failed = error_of(await api.result(bad.request_id))
        for inv in [*others, after]:
            got = await api.result(inv.request_id)
            assert got.path.endswith("/response")
            assert got.body.endswith(b"ok"), got.body
    assert runtime.exit_code == 0
    assert failed["errorType"] == exc.__name__


@pytest.mark.asyncio
async def test_base_exception_from_a_sync_handler(api: FakeRuntimeApi) -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        if event == "boom":
            raise GeneratorExit("from a thread")
        return {"ok": True}

    async with running(handler, api):
        bad = api.add(Invocation(body=b'"boom"'))
        ok = api.add(Invocation(body=b"{}"))
        assert error_of(await api.result(bad.request_id))["errorType"] == "GeneratorExit"
        assert (await api.result(ok.request_id)).body == b'{"ok":true}'


# --- item 3: errors that are hard to report are reported at once ---------------------------


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@pytest.mark.parametrize(
    ("make", "check"),
    [
        (lambda: ValueError("lone \udc80 surrogate"), lambda m: "surrogate" in m),
        (lambda: UnprintableError(), lambda m: "UnprintableError" in m),
        (lambda: ValueError("x" * (7 * 1024 * 1024)), lambda m: len(m) < 1024 * 1024),
    ],
    ids=["surrogate", "str-raises", "7MB-message"],
)
@pytest.mark.parametrize("when", ["before", "during"])
@pytest.mark.asyncio
async def test_unreportable_error_is_reported_at_once(
    api: FakeRuntimeApi, make: Any, check: Any, when: str
) -> None:
    async def handler(req: Request, res: Response) -> None:
        if when == "during":
            await res.write(b"partial")
        raise make()

    async with running(handler, api):
        inv = api.add(Invocation(body=b"{}"))
        got = await asyncio.wait_for(api.result(inv.request_id), 5)
        ok = api.add(Invocation(body=b"{}"))
        await asyncio.wait_for(api.result(ok.request_id), 5)
    if when == "before":
        payload = error_of(got)
    else:
        trailers = {k.decode().lower(): v for k, v in got.trailers}
        payload = msgspec.json.decode(
            base64.b64decode(trailers["lambda-runtime-function-error-body"])
        )
        assert got.body.startswith(b"partial")
    assert check(payload["errorMessage"]), payload["errorMessage"][:200]


# --- item 4: undecodable /next headers fail that invocation only ---------------------------


@pytest.mark.asyncio
async def test_undecodable_next_headers_fail_only_that_invocation(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        await res.end(b"ctx %s" % str(req.context.client_context if req.context else None).encode())

    async with running(handler, api) as runtime:
        bad = api.add(
            Invocation(
                body=b"{}", headers={"Lambda-Runtime-Client-Context": '{"custom": "☃ \udcff"}'}
            )
        )
        bad_json = api.add(
            Invocation(body=b"{}", headers={"Lambda-Runtime-Client-Context": "{nope"})
        )
        ok = api.add(Invocation(body=b"{}"))
        await api.result(bad.request_id)
        await api.result(bad_json.request_id)
        assert (await api.result(ok.request_id)).body.endswith(b"ctx None")
    assert runtime.exit_code == 0


# --- item 16: JSON like awslambdaric -------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "wire"),
    [
        ({"price": decimal.Decimal("1.50")}, b'{"price":1.50}'),
        ({"v": math.nan}, b'{"v":NaN}'),
        ([math.inf, -math.inf], b"[Infinity,-Infinity]"),
        ({"d": decimal.Decimal("NaN")}, b'{"d":NaN}'),
        ({"nested": [{"a": (1, 2)}]}, b'{"nested":[{"a":[1,2]}]}'),
    ],
)
@pytest.mark.asyncio
async def test_buffered_results_encode_as_awslambdaric(
    api: FakeRuntimeApi, result: Any, wire: bytes
) -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        return result

    async with running(handler, api):
        inv = api.add(Invocation(body=b"{}"))
        assert (await api.result(inv.request_id)).body == wire


@pytest.mark.parametrize("result", [{1, 2}, {"s": frozenset()}, {"x": object()}])
@pytest.mark.asyncio
async def test_unencodable_results_are_marshal_errors(api: FakeRuntimeApi, result: Any) -> None:
    def handler(event: Any, context: LambdaContext) -> Any:
        return result

    async with running(handler, api):
        inv = api.add(Invocation(body=b"{}"))
        payload = error_of(await api.result(inv.request_id))
    assert payload["errorType"] == "Runtime.MarshalError"
    assert payload["errorMessage"].startswith("Unable to marshal response: ")
    assert "is not JSON serializable" in payload["errorMessage"]


# --- items 17, 18: stack traces start at the user's code; X-Ray gets the cause -------------


def user_code_raises() -> None:
    raise KeyError("missing")


@pytest.mark.parametrize("style", ["sync", "async", "duplex"])
@pytest.mark.asyncio
async def test_stack_trace_starts_at_user_code(api: FakeRuntimeApi, style: str) -> None:
    def sync_handler(event: Any, context: LambdaContext) -> Any:
        user_code_raises()

    async def duplex_handler(req: Request, res: Response) -> None:
        user_code_raises()

    async def async_handler(event: Any, context: LambdaContext) -> Any:
        user_code_raises()

    from duplexlambda.handler import buffered

    handler: Any = {
        "sync": sync_handler,
        "async": buffered(async_handler),
        "duplex": duplex_handler,
    }[style]
    async with running(handler, api):
        inv = api.add(Invocation(body=b"{}"))
        got = await api.result(inv.request_id)
    payload = error_of(got)
    trace = payload["stackTrace"]
    assert trace[0].startswith(f'  File "{__file__}"'), trace
    assert "_handler" in trace[0]
    assert "user_code_raises" in trace[-1]
    assert not any("^^^" in line for line in trace), trace
    assert not any("duplexlambda/runtime" in line or "asyncio" in line for line in trace), trace
    cause = msgspec.json.decode(got.header("Lambda-Runtime-Function-XRay-Error-Cause") or "null")
    assert cause["exceptions"][0]["type"] == "KeyError"
    assert cause["exceptions"][0]["stack"][-1]["label"] == "user_code_raises"
    assert __file__ in cause["paths"]
    assert cause["working_directory"]


# --- item 19: JSON logs of exceptions ------------------------------------------------------


def test_json_log_of_an_exception_has_awslambdaric_fields() -> None:
    try:
        user_code_raises()
    except KeyError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 7, "failed", (), sys.exc_info(), func="fn"
        )
    doc = msgspec.json.decode(JsonFormatter().format(record))
    assert doc["errorType"] == "KeyError"
    assert doc["errorMessage"] == "'missing'"
    assert doc["location"] == f"{__file__}:fn:7"
    assert isinstance(doc["stackTrace"], list)
    assert "user_code_raises" in doc["stackTrace"][-1]


# --- item 20: init errors -------------------------------------------------------------------


def test_builtin_module_as_handler_is_a_conflict() -> None:
    with pytest.raises(BuiltInModuleConflict) as info:
        load_handler("sys.hello")
    assert info.value.error_type == "Runtime.BuiltInModuleConflict"
    assert str(info.value) == "Cannot use built-in module sys as a handler module"


@pytest.mark.asyncio
async def test_init_error_body_has_an_empty_request_id(api: FakeRuntimeApi) -> None:
    config = RuntimeConfig(RuntimeApiAddress.parse(api.address))
    assert await main_async("no_such_module_here.handler", config) == 1
    body = msgspec.json.decode((await api.result("init")).body)
    assert body["requestId"] == ""
    assert body["stackTrace"] == [] or isinstance(body["stackTrace"], list)


# --- item 21: async def handler(event, context) is buffered --------------------------------


async def _event_context(event: Any, context: Any) -> Any:
    return event


async def _req_res(req: Any, res: Any) -> None:
    return None


async def _ab(a: Any, b: Any) -> None:
    return None


async def _mixed(event: Any, res: Any) -> None:
    return None


async def _mixed2(req: Any, context: Any) -> None:
    return None


def test_parameter_names_tell_the_style() -> None:
    assert style_of(_event_context) is Style.BUFFERED
    assert style_of(_req_res) is Style.DUPLEX
    assert style_of(_ab) is Style.DUPLEX


@pytest.mark.parametrize("func", [_mixed, _mixed2])
def test_ambiguous_signature_is_an_init_error(func: Any) -> None:
    with pytest.raises(BadHandlerSignature, match="ambiguous"):
        style_of(func)


@pytest.mark.asyncio
async def test_async_event_context_handler_runs_buffered(api: FakeRuntimeApi) -> None:
    async def handler(event: Any, context: LambdaContext) -> Any:
        return {"got": event["body"]}

    async with running(handler, api):
        inv = api.add(Invocation(body=url_event("hi")))
        assert (await api.result(inv.request_id)).body == b'{"got":"hi"}'


@pytest.mark.asyncio
async def test_non_latin1_client_context_through_the_emulator() -> None:
    """The emulator once answered /next with a 500 for it, and the runtime exited."""
    from tests.support.emulated import stack
    from tests.support.wire import request

    async def handler(req: Request, res: Response) -> None:
        ctx = req.context.client_context if req.context else None
        await res.end(msgspec.json.encode(ctx.custom if ctx else None))

    context = {"custom": {"who": "café ☃"}}
    encoded = base64.b64encode(msgspec.json.encode(context)).decode()
    path = "/2015-03-31/functions/function/invocations"
    async with stack(handler) as emu:
        got = await request(emu.url, "POST", path, [("X-Amz-Client-Context", encoded)], b"{}")
        after = await request(emu.url, "POST", path, body=b"{}")
    assert got.status == 200
    assert msgspec.json.decode(got.body) == {"who": "café ☃"}
    assert after.status == 200
