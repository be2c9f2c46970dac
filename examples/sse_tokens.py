"""An LLM-style token stream as server-sent events, with heartbeats and a visible error.

    duplexlambda serve examples.sse_tokens.handler
    curl -sN 'http://127.0.0.1:9000/?prompt=Tell+me+about+streams&delay=0.05'

Each token is an ``event: token`` with an ``id`` (its index) and the token text as data;
the stream ends with ``event: done``. While the model is quiet a ``: heartbeat`` comment goes
out every 15 s (``SSE_HEARTBEAT`` seconds, or ``?heartbeat=``), so CloudFront and proxies
keep the connection open. ``?max_tokens=`` caps the answer. If the generator fails (try
``?fail_after=5``) the stream ends with ``event: error`` — visible to curl and
``EventSource`` — and the invocation is marked failed. A client that reconnects with
``Last-Event-ID: n`` gets the tokens after ``n``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator

from duplexlambda.pipeline import pipeline, sse_events
from duplexlambda.sse import MEDIA_TYPE, Event
from duplexlambda.streams import Request, Response

ANSWER = (
    "Streams compose: bytes arrive, a transform turns them into records, another into "
    "events, and the response carries each one out as soon as it exists.\n\n"
    "Nothing waits for the whole body, so the first token reaches you while the rest "
    "is still being thought of."
)


def reply(prompt: str) -> str:
    """What the "model" answers (a canned text: this is about streaming, not about AI)."""
    return f"You asked: {prompt.strip()}\n\n{ANSWER}" if prompt.strip() else ANSWER


async def generate(
    text: str,
    *,
    delay: float,
    after: int = 0,
    max_tokens: int | None = None,
    fail_after: int | None = None,
) -> AsyncIterator[Event]:
    """One event per token (a word with the whitespace before it), paced like a model."""
    tokens = re.findall(r"\s*\S+", text)[:max_tokens]
    for index, token in enumerate(tokens, 1):
        if index <= after:
            continue  # the client already has it (Last-Event-ID)
        if fail_after is not None and index > fail_after:
            raise RuntimeError(f"the model stopped after {fail_after} tokens")
        await asyncio.sleep(delay)
        yield Event(token, event="token", id=index)
    yield Event(f"{len(tokens)} tokens", event="done")


def _number(text: str | None, default: float, low: float, high: float) -> float:
    try:
        return min(max(float(text), low), high) if text else default
    except ValueError:
        return default


def _count(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


async def handler(req: Request, res: Response) -> None:
    res.content_type = MEDIA_TYPE
    res.headers["Cache-Control"] = "no-cache"
    default_beat = float(os.environ.get("SSE_HEARTBEAT", "15"))
    beat = _number(req.query.get("heartbeat"), default_beat, 0.05, 60.0)
    delay = _number(req.query.get("delay"), 0.05, 0.0, 30.0)
    last_id = req.headers.get("last-event-id", "")
    tokens = generate(
        reply(req.query.get("prompt", "")),
        delay=delay,
        after=int(last_id) if last_id.isdigit() else 0,
        max_tokens=_count(req.query.get("max_tokens")),
        fail_after=_count(req.query.get("fail_after")),
    )
    await pipeline(tokens, sse_events(heartbeat_interval=beat), sink=res)
