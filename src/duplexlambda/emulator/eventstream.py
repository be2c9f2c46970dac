"""AWS event-stream framing (``application/vnd.amazon.eventstream``), encoder side.

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
