"""Drive a decoder the three ways every body test uses (h11's test_io discipline)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from duplexlambda.errors import ChunkedEncodingError
from duplexlambda.protocol._chunked_py import ChunkDecoder

TRAILING = b"GET / HTTP/1.1\r\n"


@dataclass
class Outcome:
    """What a decoder made of some input: data, trailers, leftover, or the error class and
    whether ``feed()`` or ``eof()`` raised it."""

    data: bytes = b""
    done: bool = False
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    unused: bytes = b""
    error: type[ChunkedEncodingError] | None = None
    stage: str | None = None  # "feed" or "eof"


def decode(cls: type[ChunkDecoder], pieces: list[bytes], *, eof: bool = True) -> Outcome:
    """Feed ``pieces`` in order; stop feeding once done (the rest is unused data)."""
    dec = cls()
    out = Outcome()
    collected: list[bytes] = []
    rest: list[bytes] = []
    try:
        for i, piece in enumerate(pieces):
            if dec.done:
                rest = pieces[i:]
                break
            collected += [bytes(v) for v in dec.feed(piece)]
    except ChunkedEncodingError as exc:
        collected += [bytes(v) for v in exc.data]
        out.error, out.stage = type(exc), "feed"
    else:
        if eof:
            try:
                dec.eof()
            except ChunkedEncodingError as exc:
                out.error, out.stage = type(exc), "eof"
    out.data = b"".join(collected)
    out.done = dec.done
    if dec.done:
        out.trailers = dec.trailers
        out.unused = dec.unused_data + b"".join(rest)
    return out


def all_at_once(cls: type[ChunkDecoder], body: bytes) -> Outcome:
    return decode(cls, [body])


def byte_by_byte(cls: type[ChunkDecoder], body: bytes) -> Outcome:
    return decode(cls, [body[i : i + 1] for i in range(len(body))])


def split_at(cls: type[ChunkDecoder], body: bytes, cuts: list[int]) -> Outcome:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(body)), len(body)]
    return decode(cls, [body[a:b] for a, b in itertools.pairwise(bounds)])
