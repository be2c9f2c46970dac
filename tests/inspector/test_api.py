"""The inspector's JSON API and event stream (``/_duplexlambda/``), without a browser."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import urllib.error
import urllib.request
from collections.abc import AsyncGenerator
from typing import cast

import httpx
import pytest

from duplexlambda.emulator import inspection
from duplexlambda.streams import Request, Response

from ..support.emulated import stack
from ..support.serve_process import Serve

CHUNKS = 5


async def streamer(req: Request, res: Response) -> None:
    body = await req.read()
    if body == b"fail":
        await res.write(b"partial")
        raise ValueError("boom after streaming")
    for i in range(CHUNKS):
        await res.write(b"chunk %d\n" % i)
        await asyncio.sleep(0.01)
    await res.end()


async def _detail(client: httpx.AsyncClient, base: str, request_id: str) -> dict:  # type: ignore[type-arg]
    for _ in range(100):
        got = await client.get(f"{base}_duplexlambda/api/invocations/{request_id}")
        if got.status_code == 200:
            return got.json()  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{request_id} never listed")


@pytest.mark.asyncio
async def test_api_lists_invocations_with_marks_previews_and_trailer_errors() -> None:
    async with stack(streamer) as fn, httpx.AsyncClient(timeout=10) as client:
        base = fn.url
        page = await client.get(f"{base}_duplexlambda/")
        assert page.status_code == 200
        assert "inspector" in page.text
        for name, kind in [("app.js", "javascript"), ("style.css", "css")]:
            got = await client.get(f"{base}_duplexlambda/{name}")
            assert got.status_code == 200
            assert kind in got.headers["content-type"]

        ok = await client.post(f"{base}hello?x=1", content=b"ok")
        assert ok.status_code == 200
        ok_id = ok.headers["x-amzn-requestid"]
        async with client.stream("POST", f"{base}fail", content=b"fail") as failed:
            failed_id = failed.headers["x-amzn-requestid"]
            with pytest.raises(httpx.RemoteProtocolError):  # cut mid-stream
                await failed.aread()

        detail = await _detail(client, base, ok_id)
        assert detail["method"] == "POST"
        assert detail["path"] == "/hello"
        assert detail["front"] == "function-url"
        assert detail["status"] == 200
        outs = [m for m in detail["marks"] if m["kind"] == "out"]
        assert len(outs) == CHUNKS
        assert [m["bytes"] for m in outs] == [8] * CHUNKS
        assert all(a["t_ms"] <= b["t_ms"] for a, b in itertools.pairwise(outs))
        assert detail["response_preview"]["text"].startswith("chunk 0\n")
        assert detail["request_preview"]["text"] == "ok"
        assert detail["bytes_in"] == 2
        assert "host" in {k.lower() for k, _ in detail["request_headers"]}
        assert detail["ttfb_ms"] is not None

        bad = await _detail(client, base, failed_id)
        assert bad["error_type"] == "ValueError"
        assert bad["error_body"]["errorMessage"] == "boom after streaming"

        listing = (await client.get(f"{base}_duplexlambda/api/invocations")).json()
        ids = [item["request_id"] for item in listing["invocations"]]
        assert ids[:2] == [failed_id, ok_id]  # newest first

        missing = await client.get(f"{base}_duplexlambda/api/invocations/nope")
        assert missing.status_code == 404
        assert (await client.get(f"{base}_duplexlambda/nothing")).status_code == 404


@pytest.mark.asyncio
async def test_marks_are_capped_then_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert inspection.MAX_MARKS == 2000
    monkeypatch.setattr(inspection, "MAX_MARKS", 3)
    async with stack(streamer) as fn, httpx.AsyncClient(timeout=10) as client:
        got = await client.post(fn.url, content=b"ok")
        detail = await _detail(client, fn.url, got.headers["x-amzn-requestid"])
    assert len(detail["marks"]) == 3
    assert detail["marks_dropped"] == 1 + CHUNKS - 3  # the upload piece and the chunks


@pytest.mark.asyncio
async def test_event_stream_announces_each_new_invocation() -> None:
    async with stack(streamer) as fn, httpx.AsyncClient(timeout=10) as client:
        url = f"{fn.url}_duplexlambda/events"
        async with client.stream("GET", url) as events:
            assert events.headers["content-type"] == "text/event-stream"
            seen: list[str] = []
            lines = cast(AsyncGenerator[str, None], events.aiter_lines())
            async with contextlib.aclosing(lines):
                assert await anext(lines) == ": connected"
                got = await client.post(fn.url, content=b"ok")
                request_id = got.headers["x-amzn-requestid"]
                async with asyncio.timeout(5):
                    async for line in lines:
                        seen.append(line)
                        if line.startswith("data:") and request_id in line:
                            break
            assert "event: invocation" in seen


@pytest.mark.asyncio
async def test_no_inspector_serves_404_records_nothing_and_keeps_the_path_reserved() -> None:
    calls: list[str] = []

    async def handler(req: Request, res: Response) -> None:
        calls.append("called")
        await res.end(b"ok")

    async with stack(handler, inspector=False) as fn, httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(fn.url, content=b"x")).status_code == 200
        assert fn.emulator.hub.inspector is None
        for path in ("", "api/invocations", "events", "index.html"):
            got = await client.get(f"{fn.url}_duplexlambda/{path}")
            assert got.status_code == 404
    assert calls == ["called"]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("inspector", [True, False])
def test_serve_banner_and_no_inspector_flag(inspector: bool) -> None:
    flags = [] if inspector else ["--no-inspector"]
    serve = Serve("--no-runtime", "--port", "0", "--runtime-api-port", "0", *flags)
    try:
        url = serve.url
        serve.wait_for(r"AWS_LAMBDA_RUNTIME_API=", serve.out)
        banner = "\n".join(serve.out)
        if inspector:
            assert f"Inspector:    {url}_duplexlambda/" in banner
            assert _status(f"{url}_duplexlambda/api/invocations") == 200
        else:
            assert "Inspector" not in banner
            assert _status(f"{url}_duplexlambda/") == 404
    finally:
        serve.stop()
