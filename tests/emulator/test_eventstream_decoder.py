"""The sans-I/O event-stream decoder: against our encoder, a frame built by hand, byte-by-byte
feeding, and each way a frame can be broken."""

from __future__ import annotations

import struct
import zlib

import pytest

from duplexlambda.emulator.eventstream import (
    Decoder,
    EventStreamError,
    decode_all,
    encode_message,
    invoke_complete,
    payload_chunk,
)


def hand_built(headers: bytes, payload: bytes) -> bytes:
    prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def test_decodes_what_the_encoder_writes() -> None:
    stream = payload_chunk(b"one") + payload_chunk(b"") + invoke_complete("Oops", "{}", "bG9n")
    messages = decode_all(stream)
    assert [m.event_type for m in messages] == ["PayloadChunk", "PayloadChunk", "InvokeComplete"]
    assert messages[0].headers == {
        ":event-type": "PayloadChunk",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert [m.payload for m in messages[:2]] == [b"one", b""]
    assert b'"ErrorCode":"Oops"' in messages[2].payload


def test_hand_built_frame_with_every_header_type() -> None:
    headers = (
        b"\x01t\x00"  # bool true
        + b"\x01f\x01"  # bool false
        + b"\x01b\x02\xff"  # byte -1
        + b"\x01s\x03\x01\x00"  # short 256
        + b"\x01i\x04\x00\x00\x00\x07"  # int 7
        + b"\x01l\x05" + (2**40).to_bytes(8, "big")  # long
        + b"\x01y\x06\x00\x02\x00\x01"  # bytes
        + b"\x0b:event-type\x07\x00\x04Ping"  # string
        + b"\x01d\x08" + (1700000000000).to_bytes(8, "big")  # timestamp (ms)
        + b"\x01u\x09" + bytes(range(16))  # uuid
    )  # fmt: skip
    [message] = decode_all(hand_built(headers, b"\x00payload"))
    assert message.headers == {
        "t": True,
        "f": False,
        "b": -1,
        "s": 256,
        "i": 7,
        "l": 2**40,
        "y": b"\x00\x01",
        ":event-type": "Ping",
        "d": 1700000000000,
        "u": bytes(range(16)),
    }
    assert message.payload == b"\x00payload"


def test_byte_by_byte_feeding_yields_each_message_when_it_completes() -> None:
    stream = payload_chunk(b"a" * 10) + payload_chunk(b"b")
    decoder = Decoder()
    got = []
    for i in range(len(stream)):
        for message in decoder.feed(stream[i : i + 1]):
            got.append((i, message.payload))
    first_end = len(payload_chunk(b"a" * 10)) - 1
    assert got == [(first_end, b"a" * 10), (len(stream) - 1, b"b")]
    assert decoder.pending == 0


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda m: flip(m, 2), "prelude CRC"),
        (lambda m: flip(m, len(m) - 6), "message CRC"),
        (lambda m: flip(m, len(m) - 1), "message CRC"),
        (lambda m: hand_built(b"\x05ab", b""), "header name cut short"),
        (lambda m: hand_built(b"\x01x\x07\x00\x09ab", b""), "header value cut short"),
        (lambda m: hand_built(b"\x01x\x0c", b""), "unknown header value type 12"),
        (lambda m: m[:-1], "ends mid-message"),
    ],
)
def test_broken_frames_are_refused(mangle: object, error: str) -> None:
    frame = encode_message([(":event-type", "X")], b"hi")
    with pytest.raises(EventStreamError, match=error):
        decode_all(mangle(frame))  # type: ignore[operator]


def test_lengths_out_of_range_and_the_decoder_stays_broken() -> None:
    prelude = struct.pack(">II", 8, 0)
    decoder = Decoder()
    with pytest.raises(EventStreamError, match="length 8 out of range"):
        decoder.feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
    with pytest.raises(EventStreamError):
        decoder.feed(payload_chunk(b"fine"))
    prelude = struct.pack(">II", 20, 10)
    with pytest.raises(EventStreamError, match="headers length 10"):
        Decoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


def test_messages_before_a_broken_frame_come_with_the_error() -> None:
    bad = bytearray(payload_chunk(b"b"))
    bad[-1] ^= 0xFF
    with pytest.raises(EventStreamError) as caught:
        Decoder().feed(payload_chunk(b"a") + bytes(bad))
    assert [m.payload for m in caught.value.messages] == [b"a"]
