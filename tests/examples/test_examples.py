"""Each example end to end, in one event loop: an HTTP client uploads through the
emulator's function URL, our runtime runs the example's handler, and the answer streams
back. Timestamps on each response chunk show what arrived while the upload was still going.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import itertools
import json
import math
import zlib
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from duplexlambda.handler import load_handler

from ..pipeline.sse_client import parse
from ..support.emulated import cut, paced, stack
from ..support.wire import Reply, request

pytestmark = pytest.mark.asyncio


def example(name: str) -> Callable[..., Any]:
    """The ``handler`` of ``examples/<name>.py``, loaded the way the runtime loads it."""
    return load_handler(f"examples.{name}.handler")


def ndjson_lines(reply: Reply) -> list[dict[str, Any]]:
    return [json.loads(line) for line in reply.body.splitlines() if line.strip()]


def csv_upload(rows: int, seed: int = 1) -> bytes:
    lines = ["city,temp,station\n"]
    for i in range(rows):
        temp = "" if i % 97 == 0 else f"{((i * 7919 + seed) % 600) / 10 - 20:.1f}"
        lines.append(f"{['Oslo', 'Lima', 'Perth'][i % 3]},{temp},st-{i % 10}\n")
    return "".join(lines).encode()


def reference_stats(data: bytes) -> dict[str, dict[str, float]]:
    groups: dict[str, list[float]] = {}
    for row in csv.DictReader(io.StringIO(data.decode())):
        if row["temp"]:
            groups.setdefault(row["city"], []).append(float(row["temp"]))
    return {
        city: {"count": len(xs), "sum": sum(xs), "min": min(xs), "max": max(xs)}
        for city, xs in groups.items()
    }


def assert_stats_match(groups: dict[str, dict[str, float]], data: bytes) -> None:
    expected = reference_stats(data)
    assert set(groups) == set(expected)
    for city, want in expected.items():
        got = groups[city]
        assert got["count"] == want["count"]
        assert math.isclose(got["sum"], want["sum"], abs_tol=1e-6)
        assert (got["min"], got["max"]) == (want["min"], want["max"])
        assert math.isclose(got["mean"], want["sum"] / want["count"], abs_tol=1e-6)


# --- csv_stats ----------------------------------------------------------------------------


async def test_csv_stats_streams_progress_while_the_upload_arrives() -> None:
    data = csv_upload(6000)
    pieces = cut(data, len(data) // 12 + 1)  # 12 pieces, 0.08 s apart: ~0.9 s of upload
    async with stack(example("csv_stats")) as emu:
        reply = await request(
            emu.url, "POST", "/?group=city&value=temp&every=1000", body=paced(pieces, 0.08)
        )
        record = await asyncio.wait_for(emu.records.get(), 5)
    assert (reply.status, reply.header("content-type")) == (200, "application/x-ndjson")
    lines = ndjson_lines(reply)
    assert [line["type"] for line in lines] == ["progress"] * 6 + ["total"]
    assert [line["rows"] for line in lines] == [1000, 2000, 3000, 4000, 5000, 6000, 6000]
    assert lines[-1]["skipped"] == len(range(0, 6000, 97))
    assert_stats_match(lines[-1]["groups"], data)
    # The first progress line came back while most of the upload was still to be sent...
    upload_time = 0.08 * (len(pieces) - 1)
    first = reply.chunks[0][0] - reply.started
    assert first < upload_time / 2, (first, upload_time)
    # ...and the lines kept coming as it arrived, not all at the end.
    spread = reply.chunks[-1][0] - reply.chunks[0][0]
    assert spread > upload_time / 2, (spread, upload_time)
    assert record.bytes_in == len(data)


async def test_csv_stats_takes_a_gzip_upload() -> None:
    data = csv_upload(3000)
    async with stack(example("csv_stats")) as emu:
        reply = await request(
            emu.url,
            "POST",
            "/",
            headers=[("Content-Encoding", "gzip")],
            body=paced(cut(gzip.compress(data), 500), 0.0),
        )
    total = ndjson_lines(reply)[-1]
    assert total["type"] == "total"
    assert total["rows"] == 3000
    assert_stats_match(total["groups"], data)


async def test_csv_stats_refuses_bad_requests_before_streaming() -> None:
    async with stack(example("csv_stats")) as emu:
        no_column = await request(emu.url, "POST", "/?group=nope", body=csv_upload(10))
        coding = await request(
            emu.url, "POST", "/", headers=[("Content-Encoding", "br")], body=b"x"
        )
    assert no_column.status == 400
    assert b"no column 'nope'" in no_column.body
    assert coding.status == 415
    assert b"unsupported Content-Encoding br" in coding.body


async def test_csv_stats_error_mid_stream_is_visible_and_fails_the_invocation() -> None:
    data = csv_upload(2500) + b'Oslo,"never closed\n'
    async with stack(example("csv_stats")) as emu:
        reply = await request(emu.url, "POST", "/?every=1000", body=paced(cut(data, 4096), 0.0))
        record = await asyncio.wait_for(emu.records.get(), 5)
    lines = ndjson_lines(reply)
    assert [line["type"] for line in lines] == ["progress", "progress", "error"]
    assert "inside a quoted field" in lines[-1]["message"]
    assert not reply.complete  # the body was cut: a client can tell it failed
    assert record.error_type == "StreamDecodeError"


# --- digest -------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True])
async def test_digest_hashes_any_upload_with_progress(gzipped: bool) -> None:
    data = bytes(range(256)) * 4000  # 1 MB
    wire = gzip.compress(data) if gzipped else data
    headers = [("Content-Encoding", "gzip")] if gzipped else []
    pieces = cut(wire, len(wire) // 8 + 1)
    async with stack(example("digest")) as emu:
        reply = await request(
            emu.url, "POST", "/?every=100000", headers=headers, body=paced(pieces, 0.06)
        )
    lines = ndjson_lines(reply)
    *progress, total = lines
    assert total == {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "encoding": "gzip" if gzipped else "identity",
    }
    # A line each time another 100000 bytes went by (one per arriving piece at most).
    passed = [line["bytes"] // 100000 for line in progress]
    assert all(a < b for a, b in itertools.pairwise(passed))
    assert len(progress) >= len(pieces) - 2
    assert reply.chunks[0][0] - reply.started < 0.06 * len(pieces) / 2  # while uploading


async def test_digest_of_a_corrupt_gzip_upload() -> None:
    good = gzip.compress(bytes(300_000))
    async with stack(example("digest")) as emu:
        garbage = await request(
            emu.url, "POST", "/", headers=[("Content-Encoding", "gzip")], body=b"not gzip"
        )
        truncated = await request(
            emu.url,
            "POST",
            "/?every=1000",
            headers=[("Content-Encoding", "gzip")],
            body=paced(cut(good[: len(good) - 20], 100), 0.0),
        )
    assert garbage.status == 400
    assert b"invalid gzip data" in garbage.body
    assert truncated.status == 200  # progress had gone out when the truncation showed
    assert "truncated gzip" in ndjson_lines(truncated)[-1]["message"]
    assert not truncated.complete


# --- ndjson_filter ------------------------------------------------------------------------


def log_records(n: int) -> list[dict[str, Any]]:
    levels = ["info", "warn", "error", "debug"]
    return [
        {
            "i": i,
            "level": levels[i % 4],
            "service": ["auth", "search"][i % 3 % 2],
            "http": {"status": 500 if i % 4 == 2 else 200},
            "msg": f"request {i}\nwith a newline",
        }
        for i in range(n)
    ]


async def test_ndjson_filter_streams_matches_as_found() -> None:
    records = log_records(4000)
    data = b"".join(msgspec.json.encode(r) + b"\n" for r in records) + b"not json\n"
    pieces = cut(data, len(data) // 10 + 1)
    async with stack(example("ndjson_filter")) as emu:
        reply = await request(
            emu.url,
            "POST",
            "/?level=error,warn&service=auth&http.status=500",
            body=paced(pieces, 0.08),
        )
    expected = [
        r
        for r in records
        if r["level"] in ("error", "warn") and r["service"] == "auth" and r["http"]["status"] == 500
    ]
    assert expected  # the query matches something, and not everything
    assert len(expected) < len(records) / 4
    assert ndjson_lines(reply) == expected
    assert reply.chunks[0][0] - reply.started < 0.08 * len(pieces) / 2  # found early, sent early


async def test_ndjson_filter_takes_gzip_and_matches_scalars_as_json() -> None:
    records = [{"ok": True, "n": 1}, {"ok": False, "n": 2}, {"ok": None, "n": 3}, {"n": 4}]
    data = gzip.compress(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    async with stack(example("ndjson_filter")) as emu:
        true = await request(
            emu.url, "POST", "/?ok=true", headers=[("Content-Encoding", "gzip")], body=data
        )
        null = await request(
            emu.url, "POST", "/?ok=null", headers=[("Content-Encoding", "gzip")], body=data
        )
    assert ndjson_lines(true) == [{"ok": True, "n": 1}]
    assert ndjson_lines(null) == [{"ok": None, "n": 3}, {"n": 4}]  # a missing field is null


# --- sse_tokens ---------------------------------------------------------------------------


async def test_sse_tokens_stream_one_event_per_token() -> None:
    from examples.sse_tokens import reply as answer

    async with stack(example("sse_tokens")) as emu:
        reply = await request(emu.url, path="/?prompt=multi%0Aline&delay=0.01")
    assert reply.status == 200
    assert reply.header("content-type") == "text/event-stream"
    assert reply.header("cache-control") == "no-cache"
    events = parse(reply.body).events
    *tokens, done = events
    assert "".join(e.data for e in tokens) == answer("multi\nline")  # newlines survived
    assert [e.id for e in tokens] == [str(i) for i in range(1, len(tokens) + 1)]
    assert {e.event for e in tokens} == {"token"}
    assert done.event == "done"
    assert b"data:\ndata:\ndata: Streams" in reply.body  # "\n\nStreams": one data line per line
    # Each token is its own chunk, arriving as it is made, not all at the end.
    assert len(reply.chunks) >= len(tokens)
    assert reply.chunks[-1][0] - reply.chunks[0][0] > 0.01 * len(tokens) / 2


async def test_sse_tokens_heartbeat_while_the_model_is_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSE_HEARTBEAT", "0.1")  # the 15 s default, shortened
    async with stack(example("sse_tokens")) as emu:
        reply = await request(emu.url, path="/?prompt=hi&delay=0.35&max_tokens=3")
    parsed = parse(reply.body)
    tokens = [e for e in parsed.events if e.event == "token"]
    # ~0.35 s before each token at 0.1 s per beat: 3 beats per token (timing slack: 2-4).
    assert len(tokens) == 3
    assert 2 * len(tokens) <= len(parsed.comments) <= 4 * len(tokens)
    assert set(parsed.comments) == {"heartbeat"}


async def test_sse_tokens_error_frame_and_resume() -> None:
    async with stack(example("sse_tokens")) as emu:
        failed = await request(emu.url, path="/?prompt=a+b+c+d&delay=0&fail_after=3")
        record = await asyncio.wait_for(emu.records.get(), 5)
        resumed = await request(
            emu.url, path="/?prompt=a+b+c+d&delay=0", headers=[("Last-Event-ID", "4")]
        )
    events = parse(failed.body).events
    assert [e.event for e in events] == ["token", "token", "token", "error"]
    assert json.loads(events[-1].data) == {
        "error": "RuntimeError",
        "message": "the model stopped after 3 tokens",
    }
    assert not failed.complete
    assert record.error_type == "RuntimeError"  # the invocation failed, not just the text
    resumed_ids = [e.id for e in parse(resumed.body).events if e.event == "token"]
    assert resumed_ids[0] == "5"


# --- html_stream --------------------------------------------------------------------------


async def test_html_stream_sends_the_shell_first() -> None:
    async with stack(example("html_stream")) as emu:
        reply = await request(emu.url, path="/?delay=0.6&user=%3Cb%3E")
    assert reply.header("content-type") == "text/html; charset=utf-8"
    first_at, first = reply.chunks[0]
    ttfb = first_at - reply.started
    assert ttfb < 0.3, ttfb
    assert b"<head>" in first
    assert b"Orders for &lt;b&gt;" in first  # escaped
    assert b"<table>" not in first
    table_at = next(t for t, c in reply.chunks if b"<table>" in c)
    assert table_at - first_at > 0.5  # the slow section came later, on its own
    assert reply.body.endswith(b"</html>\n")


async def test_html_stream_gzip_still_streams() -> None:
    async with stack(example("html_stream")) as emu:
        reply = await request(
            emu.url, path="/?delay=0.5&gzip=1", headers=[("Accept-Encoding", "gzip, br")]
        )
        plain = await request(emu.url, path="/?delay=0", headers=[("Accept-Encoding", "gzip")])
    assert reply.header("content-encoding") == "gzip"
    assert plain.header("content-encoding") is None  # gzip is opt-in (?gzip=1)
    # Sync-flushed: what arrived before the slow section decodes to the whole shell.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    early = b"".join(c for t, c in reply.chunks if t - reply.chunks[0][0] < 0.3)
    shell = inflater.decompress(early)
    assert shell.rstrip().endswith(b"Loading your orders\xe2\x80\xa6</p>")
    assert gzip.decompress(reply.body).endswith(b"</html>\n")


# --- classic ------------------------------------------------------------------------------


async def test_classic_buffered_handler() -> None:
    async with stack(example("classic")) as emu:
        url_reply = await request(emu.url, "POST", "/hello?name=Ada", body=b"12345")
        invoke = await request(
            emu.url, "POST", "/2015-03-31/functions/function/invocations", body=b'{"name": "Bo"}'
        )
    assert (url_reply.status, url_reply.header("content-type")) == (200, "application/json")
    body = json.loads(url_reply.body)
    assert body["hello"] == "Ada"
    assert (body["method"], body["path"], body["body_bytes"]) == ("POST", "/hello", 5)
    direct = json.loads(invoke.body)
    assert direct["hello"] == "Bo"
    assert direct["request_id"] == invoke.header("x-amzn-requestid")


async def test_echo_still_works() -> None:
    async with stack(example("echo")) as emu:
        reply = await request(emu.url, "POST", body=paced([b"abc", b"def"], 0.05))
    assert reply.body == b"ABCDEF"
