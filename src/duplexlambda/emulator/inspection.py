"""The inspector: what the emulator saw of each invocation, served under ``/_duplexlambda/``.

Cheap on the data path: per invocation a bounded list of ``(t, bytes, kind)`` marks (at
most ``MAX_MARKS``, then only counted), the first ``PREVIEW_BYTES`` of each body, and the
last ``MAX_ENTRIES`` invocations. docs/inspector.md describes the page and its API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from array import array
from collections import deque
from importlib import resources
from typing import Any

import msgspec

from .server import Request, Response

#: Reserved path prefix on the front port: never passed to the function.
PREFIX = "/_duplexlambda/"
#: Timeline marks kept per invocation (beyond that they are only counted).
MAX_MARKS = 2000
#: Bytes of each body (request, answer) kept as a preview.
PREVIEW_BYTES = 4096
#: Invocations kept (the oldest are dropped), as ``app.MAX_RECORDS``.
MAX_ENTRIES = 1000
#: Runtime log lines kept in all.
MAX_LOG_LINES = 5000
#: Events queued per server-sent-events subscriber before it is dropped.
MAX_QUEUED = 256

_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


class Entry:
    """One invocation as the inspector records it."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "dropped_marks",
        "duration_ms",
        "ended",
        "error_body",
        "error_type",
        "front",
        "mark_n",
        "mark_t",
        "method",
        "path",
        "request_headers",
        "request_id",
        "request_preview",
        "response_headers",
        "response_preview",
        "started",
        "status",
        "t0",
        "truncated",
        "ttfb_ms",
        "wall",
    )

    def __init__(self, request: Request) -> None:
        self.t0 = request.received_at
        self.wall = time.time() - (time.monotonic() - self.t0)
        self.method = request.method
        self.path = request.path
        self.front = ""
        self.request_id = ""
        self.request_headers: Any = request.headers  # text only when asked for
        self.response_headers: list[tuple[bytes | str, bytes | str]] = []
        self.request_preview = bytearray()
        self.response_preview = bytearray()
        # 16 bytes a mark: seconds since arrival, and bytes (negative: an upload piece)
        self.mark_t = array("d")
        self.mark_n = array("q")
        self.dropped_marks = 0
        self.status = 0
        self.error_type: str | None = None
        self.error_body: Any = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.duration_ms = 0.0
        self.ttfb_ms: float | None = None
        self.truncated = False
        self.started = 0.0
        self.ended = 0.0

    def mark(self, data: Any, kind: str) -> None:
        """A response chunk (``"out"``) or an upload piece (``"in"``) of ``len(data)`` bytes."""
        size = len(data)
        preview = self.response_preview if kind == "out" else self.request_preview
        room = PREVIEW_BYTES - len(preview)
        if room > 0:
            preview += bytes(data[:room])
        if len(self.mark_t) < MAX_MARKS:
            self.mark_t.append(time.monotonic() - self.t0)
            self.mark_n.append(size if kind == "out" else -size)
        else:
            self.dropped_marks += 1

    def summary(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "front": self.front,
            "method": self.method,
            "path": self.path,
            "time": self.wall,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            "ttfb_ms": None if self.ttfb_ms is None else round(self.ttfb_ms, 3),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "error_type": self.error_type,
            "truncated": self.truncated,
        }

    def detail(self, logs: list[str]) -> dict[str, Any]:
        out = self.summary()
        out.update(
            request_headers=[(_text(k), _text(v)) for k, v in self.request_headers],
            response_headers=[(_text(k), _text(v)) for k, v in self.response_headers],
            request_preview=_preview(self.request_preview, self.bytes_in),
            response_preview=_preview(self.response_preview, self.bytes_out),
            marks=[
                {"t_ms": round(t * 1000, 3), "bytes": abs(n), "kind": "out" if n >= 0 else "in"}
                for t, n in zip(self.mark_t, self.mark_n, strict=True)
            ],
            marks_dropped=self.dropped_marks,
            error_body=self.error_body,
            logs=logs,
        )
        return out


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _preview(data: bytearray, total: int) -> dict[str, Any]:
    raw = bytes(data)
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "bytes": total,
        "truncated": total > len(raw),
        "text": text,
        "base64": None if text is not None else base64.b64encode(raw).decode("ascii"),
    }


def decode_error_body(payload: bytes | None) -> Any:
    """The error JSON a runtime reported (e.g. decoded from its trailers), or its text."""
    if not payload:
        return None
    try:
        return msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return payload[:PREVIEW_BYTES].decode("utf-8", "replace")


class Inspector:
    """The recorded invocations, the runtime's log lines, and the page's subscribers."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.entries: deque[Entry] = deque(maxlen=max_entries)
        self._by_id: dict[str, Entry] = {}
        self._logs: deque[tuple[float, str]] = deque(maxlen=MAX_LOG_LINES)
        self._pending_log = b""
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()

    # --- recording --------------------------------------------------------------------------

    def begin(self, request: Request, response: Response) -> Entry:
        """Watch ``request``'s upload and ``response``'s chunks."""
        entry = Entry(request)
        request.body.watch(entry)
        response.tap = entry
        return entry

    def finish(self, entry: Entry, fields: dict[str, Any] | None, error_body: bytes | None) -> None:
        """The invocation ended: keep it and tell the subscribers (``fields``: attributes
        of ``entry`` to set first, None if the caller has set them)."""
        for name, value in (fields or {}).items():
            setattr(entry, name, value)
        entry.ended = time.monotonic()
        entry.error_body = decode_error_body(error_body)
        if len(self.entries) == self.entries.maxlen:
            old = self.entries[0]
            self._by_id.pop(old.request_id, None)
        self.entries.append(entry)
        self._by_id[entry.request_id] = entry
        if self._subscribers:
            data = msgspec.json.encode(entry.summary())
            self._publish(b"event: invocation\ndata: " + data + b"\n\n")

    def log(self, data: bytes) -> None:
        """Output of the runtime process (split into lines, time-stamped)."""
        now = time.monotonic()
        *lines, self._pending_log = (self._pending_log + data).split(b"\n")
        if len(self._pending_log) > PREVIEW_BYTES:
            lines.append(self._pending_log)
            self._pending_log = b""
        for line in lines:
            self._logs.append((now, line.rstrip(b"\r").decode("utf-8", "replace")))

    def logs_for(self, entry: Entry) -> list[str]:
        """Log lines naming the request id, else those written while it ran."""
        named = [line for _, line in self._logs if entry.request_id and entry.request_id in line]
        if named:
            return named
        end = entry.ended + 0.05
        return [line for t, line in self._logs if entry.t0 <= t <= end]

    def _publish(self, message: bytes) -> None:
        for queue in list(self._subscribers):
            if queue.qsize() >= MAX_QUEUED:
                self._subscribers.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(message)

    def close(self) -> None:
        for queue in list(self._subscribers):
            queue.put_nowait(None)
        self._subscribers.clear()

    # --- serving ----------------------------------------------------------------------------

    async def serve(self, request: Request, response: Response) -> None:
        """Answer a request under ``PREFIX``."""
        rest = request.path[len(PREFIX) :]
        if request.method not in ("GET", "HEAD"):
            await response.send(405, [("Allow", "GET, HEAD")])
            return
        if rest in ("", "index.html"):
            rest = "index.html"
        if rest in _STATIC:
            body = resources.files(__package__).joinpath("inspector", rest).read_bytes()
            await response.send(
                200, [("Content-Type", _STATIC[rest]), ("Cache-Control", "no-cache")], body
            )
        elif rest == "api/invocations":
            items = [e.summary() for e in reversed(self.entries)]
            await _json(response, 200, {"invocations": items})
        elif rest.startswith("api/invocations/"):
            entry = self._by_id.get(rest[len("api/invocations/") :])
            if entry is None:
                await _json(response, 404, {"message": "no such invocation"})
            else:
                await _json(response, 200, entry.detail(self.logs_for(entry)))
        elif rest == "events":
            await self._events(request, response)
        else:
            await response.send(404, [("Content-Type", "text/plain")], b"Not Found\n")

    async def _events(self, request: Request, response: Response) -> None:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            response.start(
                200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
            )
            await response.write(b": connected\n\n")
            gone = asyncio.ensure_future(request.disconnected.wait())
            try:
                while True:
                    get = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {get, gone}, timeout=15.0, return_when=asyncio.FIRST_COMPLETED
                    )
                    if gone in done:
                        get.cancel()
                        return
                    if get not in done:
                        get.cancel()
                        await response.write(b": keep-alive\n\n")
                        continue
                    message = get.result()
                    if message is None:
                        break
                    await response.write(message)
            finally:
                gone.cancel()
            with contextlib.suppress(Exception):
                await response.end()
        finally:
            self._subscribers.discard(queue)


async def _json(response: Response, status: int, value: Any) -> None:
    body = msgspec.json.encode(value)
    await response.send(
        status, [("Content-Type", "application/json"), ("Cache-Control", "no-cache")], body
    )
