"""The C twin of the chunked codec: a thin typed wrapper over csrc/chunked.c (cffi).

Same API, same errors as ``_chunked_py`` (the reference). C status codes become exceptions in
one place, ``chunked_error``. Imported only when the extension was built; see ``chunked``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from duplexlambda._chunked_cffi import ffi, lib
from duplexlambda.errors import chunked_error

from ._chunked_py import ChunkDecoder as _PyChunkDecoder
from ._chunked_py import ChunkEncoder as _PyChunkEncoder
from ._chunked_py import Trailers, encode_trailers
from ._types import Buffer

# Output buffers are written by C before anyone reads them: skip cffi's zero fill, which
# would cost as much as the copy itself.
_alloc_raw = ffi.new_allocator(should_clear_after_alloc=False)

_MAX_SPANS = 64
_NEED_MORE, _END, _FULL = lib.DL_NEED_MORE, lib.DL_END, lib.DL_FULL
_E_TRUNCATED = -9
_S_DONE = 14  # S_DONE in csrc/chunked.c


class ChunkDecoder(_PyChunkDecoder):
    """Incremental chunked-body decoder backed by C. See ``_chunked_py.ChunkDecoder``.

    It subclasses the Python twin only so that both share one nominal type: every public
    member is overridden here and none of the parent's state is used.
    """

    IMPL = "c"

    def __init__(self) -> None:  # the parent's __init__ is deliberately not called
        self._d: Any = ffi.new("dl_decoder *")
        lib.dl_decoder_init(self._d)
        self._spans: Any = ffi.new("dl_span[]", _MAX_SPANS)
        self._consumed: Any = ffi.new("size_t *")
        self._out_len: Any = ffi.new("size_t *")
        self._n_spans: Any = ffi.new("size_t *")
        self._truncated = False
        self.unused_data: bytes = b""

    @property
    def done(self) -> bool:
        """True once the whole body, trailers included, has been read."""
        return bool(self._d.state == _S_DONE and not self._d.error)

    @property
    def data_total(self) -> int:
        """Body data bytes decoded so far."""
        return int(self._d.data_total)

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """Trailer fields in wire order, names as sent, values without surrounding OWS."""
        d = self._d
        raw = ffi.buffer(d.trailers, d.trailer_len)[:]
        fields = d.fields
        return [
            (
                raw[f.name_off : f.name_off + f.name_len],
                raw[f.value_off : f.value_off + f.value_len],
            )
            for f in (fields[k] for k in range(d.n_trailers))
        ]

    def eof(self) -> None:
        """Signal the end of input. Raises ``TruncatedBodyError`` unless the body is done."""
        if self._d.error:
            raise chunked_error(self._d.error)
        if self._truncated or not self.done:
            self._truncated = True
            raise chunked_error(_E_TRUNCATED)

    def feed(self, data: Buffer) -> list[memoryview]:
        """Decode ``data``; return the body data pieces it held, in order."""
        if self._truncated:
            raise chunked_error(_E_TRUNCATED)
        d = self._d
        if d.error:
            raise chunked_error(d.error)
        src = ffi.from_buffer(data)
        n = len(src)
        if not n:
            return []
        spans = self._spans
        consumed, out_len, n_spans = self._consumed, self._out_len, self._n_spans
        result: list[memoryview] = []
        in_view: memoryview | None = None
        out: Any = ffi.NULL
        out_view: memoryview | None = None
        cap = pos = 0
        while True:
            out_len[0] = n_spans[0] = 0
            rc = lib.dl_decode(
                d, src + pos, n - pos, consumed, out, cap, out_len, spans, _MAX_SPANS, n_spans
            )
            for k in range(n_spans[0]):
                s = spans[k]
                if s.in_input:
                    if in_view is None:
                        in_view = memoryview(data).cast("B")
                    start = pos + s.off
                    result.append(in_view[start : start + s.len])
                else:
                    assert out_view is not None
                    result.append(out_view[s.off : s.off + s.len])
            pos += consumed[0]
            if rc == _FULL:
                if n_spans[0] < _MAX_SPANS:
                    # `out` ran out: one buffer large enough for the rest of this feed.
                    cap = n - pos
                    out = _alloc_raw("unsigned char[]", cap)
                    out_view = memoryview(ffi.buffer(out, cap))
                elif out_view is not None:
                    # Spans full: keep filling the same `out` after what is already used.
                    used = out_len[0]
                    out, cap = out + used, cap - used
                    out_view = out_view[used:]
                continue
            if rc == _END:
                self.unused_data = bytes(memoryview(data).cast("B")[pos:])
                return result
            if rc == _NEED_MORE:
                return result
            raise chunked_error(rc, result)


class ChunkEncoder(_PyChunkEncoder):
    """Chunk framing with the batch path in C.

    A single ``data()`` stays in Python: per call the cffi crossing costs more than formatting
    one hex line, and ``bytes.join`` copies once either way. ``data_many()`` frames a whole
    batch in one C call, which is where C wins (about 5 ns a chunk instead of ~150).
    """

    IMPL = "c"

    def data_many(self, chunks: Iterable[Buffer]) -> bytes:
        """Frame several writes at once, one chunk each, empty ones skipped."""
        self._check_open()
        bufs = [ffi.from_buffer(c) for c in chunks]
        count = len(bufs)
        if not count:
            return b""
        ptrs = ffi.new("unsigned char *[]", bufs)
        lens = ffi.new("uint64_t[]", [len(b) for b in bufs])
        size = lib.dl_frame_size(lens, count)
        out = _alloc_raw("unsigned char[]", size or 1)
        written = lib.dl_encode_chunks(ptrs, lens, count, out)
        framed: bytes = ffi.buffer(out, written)[:]
        return framed


__all__ = ["ChunkDecoder", "ChunkEncoder", "Trailers", "encode_trailers"]
