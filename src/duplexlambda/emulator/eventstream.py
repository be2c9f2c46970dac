"""AWS event-stream framing (``application/vnd.amazon.eventstream``): encoder and a sans-I/O
decoder (``Decoder``: prelude, length, header and CRC checks).

A message is ``[total length u32][headers length u32][prelude CRC32][headers][payload]
[message CRC32]``, big-endian, CRC-32 as zlib computes it; a header is ``[name length u8]
[name][type u8 = 7 (string)][value length u16][value]`` (docs/runtime-api.md §7).
InvokeWithResponseStream sends ``PayloadChunk`` events and a final ``InvokeComplete``.
"""

from __future__ import annotations

import struct
import zlib

import msgspec

_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
#: prelude (8) + prelude CRC (4) + message CRC (4)
_OVERHEAD = 16


def _header(name: str, value: str) -> bytes:
    n, v = name.encode("utf-8"), value.encode("utf-8")
    return bytes([len(n)]) + n + bytes([_STRING]) + struct.pack(">H", len(v)) + v


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with string headers."""
    head = b"".join(_header(name, value) for name, value in headers)
    prelude = _PRELUDE.pack(_OVERHEAD + len(head) + len(payload), len(head))
    message = prelude + _CRC.pack(zlib.crc32(prelude)) + head + payload
    return message + _CRC.pack(zlib.crc32(message))


def payload_chunk(data: bytes) -> bytes:
    """A ``PayloadChunk`` event carrying ``data``."""
    return encode_message(
        [
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        data,
    )


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    """The final ``InvokeComplete`` event: ``{"ErrorCode","ErrorDetails","LogResult"}``."""
    body = {"ErrorCode": error_code, "ErrorDetails": error_details, "LogResult": log_result}
    return encode_message(
        [
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        msgspec.json.encode(body),
    )


# --- decoder (sans-I/O) ----------------------------------------------------------------------

#: The smallest and largest message AWS's framing allows (prelude + CRCs; 16 MiB).
_MIN_MESSAGE = _OVERHEAD
_MAX_MESSAGE = 16 * 1024 * 1024
_MAX_HEADERS = 128 * 1024
#: Header value types: fixed sizes (0/1 bool, 2 byte, 3 short, 4 int, 5 long, 8 timestamp,
#: 9 uuid); 6 (bytes) and 7 (string) carry a u16 length.
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
HeaderValue = bool | int | bytes | str


class EventStreamError(ValueError):
    """A frame that is not AWS event-stream: a bad length, CRC or header.

    ``messages``: the whole messages the failing ``feed`` call decoded before the bad frame
    (they were good: a caller shows them before the error)."""

    def __init__(self, message: str, messages: list[Message] | None = None) -> None:
        super().__init__(message)
        self.messages: list[Message] = messages or []


class Message:
    """One decoded event-stream message."""

    __slots__ = ("headers", "payload")

    def __init__(self, headers: dict[str, HeaderValue], payload: bytes) -> None:
        self.headers, self.payload = headers, payload

    @property
    def event_type(self) -> str | None:
        value = self.headers.get(":event-type")
        return value if isinstance(value, str) else None

    def __repr__(self) -> str:
        return f"Message({self.headers!r}, {self.payload!r})"


def _decode_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(raw)
    try:
        while pos < end:
            name_len = raw[pos]
            name_raw = raw[pos + 1 : pos + 1 + name_len]
            if len(name_raw) != name_len:
                raise EventStreamError("header name cut short")
            name = name_raw.decode("utf-8")
            pos += 1 + name_len
            kind = raw[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED:
                size = _FIXED[kind]
                chunk = raw[pos : pos + size]
                if len(chunk) != size:
                    raise EventStreamError("header value cut short")
                value = chunk if kind == 9 else int.from_bytes(chunk, "big", signed=True)
                pos += size
            elif kind in (6, 7):
                (size,) = struct.unpack_from(">H", raw, pos)
                data = raw[pos + 2 : pos + 2 + size]
                if len(data) != size:
                    raise EventStreamError("header value cut short")
                value = data.decode("utf-8") if kind == _STRING else bytes(data)
                pos += 2 + size
            else:
                raise EventStreamError(f"unknown header value type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers: {exc}") from None
    return headers


class Decoder:
    """Feed bytes as they arrive; get back every message they complete.

    Checks the prelude CRC, the lengths and the message CRC; after an error the decoder
    stays broken (the stream cannot be resynchronised)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: EventStreamError | None = None

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a whole message (non-zero at EOF: cut short)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[Message] = []
        try:
            while (message := self._next()) is not None:
                out.append(message)
        except EventStreamError as exc:
            self._error = EventStreamError(str(exc))
            raise EventStreamError(str(exc), out) from None
        return out

    def _next(self) -> Message | None:
        buf = self._buf
        if len(buf) < 12:
            return None
        total, head_len = _PRELUDE.unpack_from(buf)
        (prelude_crc,) = _CRC.unpack_from(buf, 8)
        if zlib.crc32(buf[:8]) != prelude_crc:
            raise EventStreamError("prelude CRC mismatch")
        if not _MIN_MESSAGE <= total <= _MAX_MESSAGE:
            raise EventStreamError(f"message length {total} out of range")
        if head_len > min(_MAX_HEADERS, total - _OVERHEAD):
            raise EventStreamError(f"headers length {head_len} out of range")
        if len(buf) < total:
            return None
        (message_crc,) = _CRC.unpack_from(buf, total - 4)
        if zlib.crc32(buf[: total - 4]) != message_crc:
            raise EventStreamError("message CRC mismatch")
        headers = _decode_headers(bytes(buf[12 : 12 + head_len]))
        payload = bytes(buf[12 + head_len : total - 4])
        del buf[:total]
        return Message(headers, payload)


def decode_all(data: bytes) -> list[Message]:
    """Every message of a complete stream; raises if it ends mid-message."""
    decoder = Decoder()
    messages = decoder.feed(data)
    if decoder.pending:
        raise EventStreamError(f"stream ends mid-message ({decoder.pending} bytes left)")
    return messages
