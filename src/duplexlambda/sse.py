"""Server-sent events framing (WHATWG HTML, "Server-sent events", section 9.2.5/9.2.6).

Sans-I/O: these functions turn an event into the bytes of its frame. The streaming side (a
heartbeat comment while the source is quiet, an ``event: error`` frame when it fails) is
``duplexlambda.pipeline.sse_events``.

A frame is a block of ``field: value`` lines ended by a blank line. A line ending inside
``data`` would end the field early (and a blank line would dispatch the event half-way), so
data is split on every line ending the spec knows (CRLF, LF, CR) and sent as one ``data:``
line per line; a client joins them back with ``\\n``. ``event`` and ``id`` are one line by
definition: a line ending in them is refused, never escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["MEDIA_TYPE", "Event", "encode_comment", "encode_event", "error_event"]

#: The content type of an event stream.
MEDIA_TYPE = "text/event-stream"

# The spec's end-of-line: CRLF, or a lone LF, or a lone CR.
_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One server-sent event.

    Attributes:
        data: the payload; ``str`` is sent as is, ``bytes`` decoded as UTF-8, anything
            else encoded as JSON.
        event: the event type (``message`` when None, as browsers default).
        id: sets the client's last event id (sent back as ``Last-Event-ID`` on reconnect).
        retry: the client's reconnection delay in milliseconds.
    """

    data: Any = ""
    event: str | None = None
    id: str | int | None = None
    retry: int | None = None

    def encode(self) -> bytes:
        """The event's frame."""
        return encode_event(self.data, event=self.event, id=self.id, retry=self.retry)


def _one_line(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"SSE {name} must be one line, got {value!r}")
    return value


def _text(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data).decode("utf-8")
    return msgspec.json.encode(data).decode("utf-8")


def encode_event(
    data: Any = "",
    *,
    event: str | None = None,
    id: str | int | None = None,  # the field's name on the wire
    retry: int | None = None,
) -> bytes:
    """Frame one event: ``id``, ``event``, ``retry`` fields, one ``data:`` line per line.

    Args:
        data: the payload (``str``; ``bytes`` as UTF-8; other values as JSON).
        event: the event type; one line.
        id: the event id; one line, no NUL (a client ignores an id with NUL).
        retry: reconnection delay in ms, ``>= 0``.

    Returns:
        The UTF-8 frame, ending with the blank line that dispatches it.

    Raises:
        ValueError: a line ending in ``event`` or ``id``, NUL in ``id``, a negative ``retry``.
    """
    lines: list[str] = []
    if id is not None:
        ident = _one_line("id", str(id))
        if "\0" in ident:
            raise ValueError("SSE id must not contain NUL")
        lines.append(f"id: {ident}")
    if event is not None:
        lines.append(f"event: {_one_line('event', event)}")
    if retry is not None:
        if retry < 0:
            raise ValueError("SSE retry must be >= 0")
        lines.append(f"retry: {int(retry)}")
    # One leading space after the colon is removed by the client, so a value that itself
    # starts with a space survives: "data:  x" reads back as " x".
    lines.extend(f"data: {line}" if line else "data:" for line in _EOL.split(_text(data)))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """A comment frame (``: text``), which clients ignore: a heartbeat keeps idle
    connections (CloudFront, proxies) from timing out without dispatching any event."""
    body = "\n".join(f": {line}" if line else ":" for line in _EOL.split(text))
    return (body + "\n\n").encode("utf-8")


def error_event(exc: BaseException, *, event: str = "error") -> bytes:
    """The ``event: error`` frame a failed stream ends with, so a plain HTTP client (an
    ``EventSource``, curl) sees why, not just a cut connection."""
    return encode_event(
        {"error": type(exc).__name__, "message": str(exc)},
        event=event,
    )
