"""Hypothesis: the C twin behaves exactly as the Python reference, and decode inverts encode."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duplexlambda.protocol import chunked
from duplexlambda.protocol._chunked_py import ChunkDecoder as PyDecoder
from duplexlambda.protocol._chunked_py import ChunkEncoder as PyEncoder

from .feeding import Outcome, byte_by_byte, split_at

pytestmark = pytest.mark.skipif(chunked.CChunkDecoder is None, reason="C twin not built")

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

sizes = st.one_of(
    st.integers(1, 40), st.integers(4000, 4200), st.sampled_from([1, 16, 1024, 4096, 65536])
)
payloads = st.lists(sizes, max_size=12).flatmap(
    lambda ns: st.tuples(*[st.binary(min_size=n, max_size=n) for n in ns])
)
extensions = st.one_of(
    st.just(b""),
    st.builds(lambda name: b";" + name.encode(), st.text(TOKEN_CHARS, min_size=1, max_size=8)),
    st.just(b' ;q="a;b"'),
)
trailers = st.lists(
    st.tuples(
        st.text(TOKEN_CHARS, min_size=1, max_size=12).map(str.encode),
        st.binary(max_size=20).map(
            lambda v: bytes(c for c in v if c >= 0x21 and c != 0x7F)  # field-vchar only
        ),
    ),
    max_size=4,
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[tuple[bytes, bytes]]]:
    """A valid chunked body with random hex case, zero padding and extensions."""
    chunks = list(draw(payloads))
    wire = []
    for data in chunks:
        digits = b"%x" % len(data)
        if draw(st.booleans()):
            digits = digits.upper()
        digits = b"0" * draw(st.integers(0, 16 - len(digits))) + digits
        wire.append(digits + draw(extensions) + b"\r\n" + data + b"\r\n")
    fields = draw(trailers)
    wire.append(b"0" + draw(extensions) + b"\r\n")
    wire += [name + b": " + value + b"\r\n" for name, value in fields]
    wire.append(b"\r\n")
    return b"".join(wire), chunks, fields


def _same(a: Outcome, b: Outcome) -> None:
    assert (a.error, a.data, a.done, a.trailers, a.unused) == (
        b.error,
        b.data,
        b.done,
        b.trailers,
        b.unused,
    )


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(bodies(), st.lists(st.integers(0, 300_000), max_size=8), st.binary(max_size=8))
def test_valid_bodies_agree(
    case: tuple[bytes, list[bytes], list[tuple[bytes, bytes]]], cuts: list[int], tail: bytes
) -> None:
    wire, chunks, fields = case
    assert chunked.CChunkDecoder is not None
    c = split_at(chunked.CChunkDecoder, wire + tail, cuts)
    py = split_at(PyDecoder, wire + tail, cuts)
    _same(c, py)
    assert c.error is None
    assert c.data == b"".join(chunks)
    assert c.trailers == fields
    assert c.unused == tail


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid body with a few bytes flipped, inserted or deleted: mostly invalid input."""
    wire = bytearray(draw(bodies())[0])
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(wire)))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = draw(st.sampled_from([0, 9, 10, 13, 32, 48, 58, 59, 65, 102, 103, 127, 255]))
        if op == "insert" or pos == len(wire):
            wire.insert(pos, byte)
        elif op == "flip":
            wire[pos] = byte
        else:
            del wire[pos]
    return bytes(wire)


@SETTINGS
@given(mutated(), st.lists(st.integers(0, 300_000), max_size=6))
def test_any_input_agrees(wire: bytes, cuts: list[int]) -> None:
    assert chunked.CChunkDecoder is not None
    c = split_at(chunked.CChunkDecoder, wire, cuts)
    _same(c, split_at(PyDecoder, wire, cuts))
    _same(c, split_at(chunked.CChunkDecoder, wire, []))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_agree_bytewise(wire: bytes) -> None:
    assert chunked.CChunkDecoder is not None
    _same(byte_by_byte(chunked.CChunkDecoder, wire), byte_by_byte(PyDecoder, wire))
    _same(split_at(chunked.CChunkDecoder, wire, []), split_at(PyDecoder, wire, []))


@SETTINGS
@given(payloads, trailers, st.lists(st.integers(0, 300_000), max_size=6), st.booleans())
def test_decode_inverts_encode(
    chunks: tuple[bytes, ...],
    fields: list[tuple[bytes, bytes]],
    cuts: list[int],
    batch: bool,
) -> None:
    assert chunked.CChunkEncoder is not None
    assert chunked.CChunkDecoder is not None
    for enc_cls in (chunked.CChunkEncoder, PyEncoder):
        enc = enc_cls()
        body = enc.data_many(chunks) if batch else b"".join(enc.data(c) for c in chunks)
        wire = body + enc.end(fields)
        for dec_cls in (chunked.CChunkDecoder, PyDecoder):
            out = split_at(dec_cls, wire, cuts)
            assert (out.error, out.data, out.trailers) == (None, b"".join(chunks), fields)
