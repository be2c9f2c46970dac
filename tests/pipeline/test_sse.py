"""SSE framing (newlines in data escaped as one ``data:`` line per line), heartbeats while
the source is quiet, and the ``event: error`` frame when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duplexlambda.pipeline import heartbeat, pipeline, sse_events
from duplexlambda.sse import Event, encode_comment, encode_event, error_event

from .drive import collect, splits
from .sse_client import SSEParser, parse


def normalized(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def test_event_fields_and_data_lines() -> None:
    frame = encode_event("one\ntwo", event="token", id=7, retry=1500)
    assert frame == b"id: 7\nevent: token\nretry: 1500\ndata: one\ndata: two\n\n"
    assert encode_event("") == b"data:\n\n"
    assert encode_event({"a": [1, "x\ny"]}) == b'data: {"a":[1,"x\\ny"]}\n\n'
    assert encode_event(b"bytes \xe2\x9c\x93") == "data: bytes ✓\n\n".encode()
    assert Event("hi", event="e").encode() == b"event: e\ndata: hi\n\n"


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_a_line_break_at_every_position_of_the_data_survives(eol: str) -> None:
    text = " lead space, ünï ✓, trailing space "
    for at in range(len(text) + 1):
        data = text[:at] + eol + text[at:]
        frame = encode_event(data, event="t", id=at)
        assert frame.count(b"\n\n") == 1  # one event: no line break escaped the framing
        (event,) = parse(frame).events
        assert (event.data, event.event, event.id) == (normalized(data), "t", str(at))


def test_frames_parse_the_same_at_every_split() -> None:
    stream = b"".join(
        [
            encode_event("a\r\nb", event="token", id=1),
            encode_comment("heartbeat"),
            encode_event("✓\n\nc", id=2),
        ]
    )
    for chunks in splits(stream):
        parser = SSEParser()
        for chunk in chunks:
            parser.feed(chunk)
        assert [(e.data, e.event, e.id) for e in parser.events] == [
            ("a\nb", "token", "1"),
            ("✓\n\nc", "message", "2"),
        ]
        assert parser.comments == ["heartbeat"]


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_any_text_round_trips(data: str) -> None:
    (event,) = parse(encode_event(data)).events
    assert event.data == normalized(data)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"event": "a\nb"}, "event must be one line"),
        ({"event": "a\rb"}, "event must be one line"),
        ({"id": "1\n2"}, "id must be one line"),
        ({"id": "1\x002"}, "NUL"),
        ({"retry": -1}, "retry"),
    ],
)
def test_one_line_fields_are_refused_not_escaped(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_event("x", **kwargs)  # type: ignore[arg-type]


def test_comments() -> None:
    assert encode_comment("heartbeat") == b": heartbeat\n\n"
    assert encode_comment("two\nlines") == b": two\n: lines\n\n"
    assert parse(encode_comment("x")).events == []


def test_error_event() -> None:
    (event,) = parse(error_event(ValueError("bad\nthing"))).events
    assert event.event == "error"
    assert event.data == '{"error":"ValueError","message":"bad\\nthing"}'


async def tokens(gaps: list[float], fail: bool = False) -> AsyncIterator[Event]:
    for index, gap in enumerate(gaps, 1):
        await asyncio.sleep(gap)
        yield Event(f"t{index}", event="token", id=index)
    if fail:
        raise RuntimeError("model crashed")


@pytest.mark.asyncio
async def test_heartbeats_fill_the_silences_only() -> None:
    out = await pipeline(tokens([0.0, 0.35, 0.0]), sse_events(heartbeat_interval=0.1), sink=collect)
    parsed = parse(b"".join(out))
    assert [e.data for e in parsed.events] == ["t1", "t2", "t3"]
    # ~0.35 s of silence between t1 and t2: 3 heartbeats (at 0.1, 0.2, 0.3), none elsewhere.
    assert parsed.comments == ["heartbeat"] * 3
    assert out[1:4] == [b": heartbeat\n\n"] * 3


@pytest.mark.asyncio
async def test_a_failing_source_ends_with_an_error_event_and_raises() -> None:
    seen: list[bytes] = []

    async def sink(frames: AsyncIterator[bytes]) -> None:
        async for frame in frames:
            seen.append(frame)

    with pytest.raises(RuntimeError, match="model crashed"):
        await pipeline(tokens([0, 0], fail=True), sse_events(), sink=sink)
    parsed = parse(b"".join(seen))
    assert [e.event for e in parsed.events] == ["token", "token", "error"]
    assert "model crashed" in parsed.events[-1].data


@pytest.mark.asyncio
async def test_error_frame_without_reraise_or_reraise_without_frame() -> None:
    quiet = await pipeline(tokens([0], fail=True), sse_events(reraise=False), sink=collect)
    assert parse(b"".join(quiet)).events[-1].event == "error"
    with pytest.raises(RuntimeError):
        await pipeline(tokens([0], fail=True), sse_events(error=None), sink=collect)


@pytest.mark.asyncio
async def test_closing_while_waiting_cancels_the_pending_read() -> None:
    finished = asyncio.Event()

    async def forever() -> AsyncIterator[bytes]:
        try:
            await asyncio.sleep(3600)
            yield b"never"
        finally:
            finished.set()

    async def first_two(items: AsyncIterator[bytes]) -> list[bytes]:
        return [await anext(items), await anext(items)]

    beats = await pipeline(forever(), heartbeat(0.02, lambda: b"beat"), sink=first_two)
    assert beats == [b"beat", b"beat"]
    assert finished.is_set()  # the upstream read was cancelled, its generator closed
    # (the conftest fixture fails this test if a task was left behind)


@pytest.mark.asyncio
async def test_heartbeat_disabled_passes_through() -> None:
    assert await pipeline([b"a"], heartbeat(None, b"x"), sink=collect) == [b"a"]
    assert await pipeline([b"a"], heartbeat(0, b"x"), sink=collect) == [b"a"]
