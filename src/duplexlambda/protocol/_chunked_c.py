"""The C twin of the chunked codec: a thin typed wrapper over csrc/chunked.c (cffi).

Same API, same errors as ``_chunked_py`` (the reference). C status codes become exceptions in
one place, ``chunked_error``. Imported only when the extension was built; see ``chunked``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from duplexlambda._chunked_cffi import ffi, lib
from duplexlambda.errors import chunked_error

from ._chunked_py import E_TRUNCATED, S_DATA, S_DONE, Trailers, encode_trailers
from ._chunked_py import ChunkDecoder as _PyChunkDecoder
from ._chunked_py import ChunkEncoder as _PyChunkEncoder
from ._types import Buffer

# Gather buffers are written by C before anyone reads them: skip cffi's zero fill, which
# would cost as much as the copy itself.
_alloc_raw = ffi.new_allocator(should_clear_after_alloc=False)

#: Spans per dl_decode call (16 bytes each). A 64 KiB read of 16-byte chunks holds ~3000.
_MAX_SPANS = 4096
#: Up to this many data runs in one feed are handed out as zero-copy views; more are gathered
#: into one buffer by C (a Python memoryview costs ~100 ns, a small memcpy a few ns).
_MAX_VIEWS = 8
_NEED_MORE, _END, _FULL = lib.DL_NEED_MORE, lib.DL_END, lib.DL_FULL


class ChunkDecoder(_PyChunkDecoder):
    """Incremental chunked-body decoder backed by C. See ``_chunked_py.ChunkDecoder``.

    It subclasses the Python twin only so that both share one nominal type: every public
    member is overridden here and none of the parent's state is used.
    """

    IMPL = "c"

    def __init__(self) -> None:  # the parent's __init__ is deliberately not called
        self._d: Any = ffi.new("dl_decoder *")
        lib.dl_decoder_init(self._d)
        # C writes each span before anyone reads it: 64 KiB not zeroed per decoder (one per
        # chunked message) is a memset saved per invocation.
        self._spans: Any = _alloc_raw("dl_span[]", _MAX_SPANS)
        # C's outputs seen as flat uint64 words: reading them through a memoryview is several
        # times cheaper than through cffi struct attributes.
        self._span_words = memoryview(ffi.buffer(self._spans)).cast("Q")
        self._res: Any = ffi.new("uint64_t[3]")  # consumed, spans, data bytes
        self._res_words = memoryview(ffi.buffer(self._res)).cast("Q")
        # Data bytes left in the current chunk, mirrored here (0 outside chunk data), and
        # bytes consumed by the Python fast path that C has not been told about yet.
        self._left = 0
        self._skipped = 0
        self._truncated = False
        self.unused_data: bytes = b""

    def _sync(self) -> None:
        """Tell C about the data the Python fast path consumed."""
        if self._skipped:
            d = self._d
            d.size -= self._skipped
            d.data_total += self._skipped
            self._skipped = 0

    @property
    def done(self) -> bool:
        """True once the whole body, trailers included, has been read."""
        return bool(self._d.state == S_DONE)

    @property
    def data_total(self) -> int:
        """Body data bytes decoded so far."""
        return int(self._d.data_total) + self._skipped

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """Trailer fields in wire order, names as sent, values without surrounding OWS."""
        d = self._d
        if not d.n_trailers:
            return []  # the usual end: no cffi buffer to build
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
        if self.done:
            return  # bytes fed after the end do not undo the body that ended
        if self._d.error:
            raise chunked_error(self._d.error)
        self._truncated = True
        self._left = 0
        raise chunked_error(E_TRUNCATED)

    def feed(self, data: Buffer) -> list[memoryview]:
        """Decode ``data``; return the body data pieces it held, in order."""
        n = data.nbytes if type(data) is memoryview else len(data)
        if self._left > n > 0:
            # Inside a chunk larger than this read (large uploads): the read is all body data,
            # handed out as one view without crossing into C.
            self._left -= n
            self._skipped += n
            view = memoryview(data)
            return [view if view.format == "B" else view.cast("B")]
        if self._truncated:
            raise chunked_error(E_TRUNCATED)
        if not n:
            if self._d.error:
                raise chunked_error(self._d.error)
            return []
        self._sync()
        return self._decode(data, n)

    def _decode(self, data: Buffer, n: int) -> list[memoryview]:
        self._left = 0  # set again below only if C stops inside chunk data
        d, spans, res, words = self._d, self._spans, self._res_words, self._span_words
        src = base = ffi.from_buffer(data)
        result: list[memoryview] = []
        view: memoryview | None = None
        pos = 0
        while True:
            rc = lib.dl_decode(d, base, n - pos, self._res, spans, _MAX_SPANS)
            count = res[1]
            if count > _MAX_VIEWS:
                # Many small runs: C gathers them into one buffer (one view, not thousands).
                total = res[2]
                buf = _alloc_raw("unsigned char[]", total)
                lib.dl_gather(base, spans, count, buf)
                result.append(memoryview(ffi.buffer(buf, total)))
            elif count:
                if view is None:
                    view = memoryview(data)
                    if view.format != "B":
                        view = view.cast("B")
                for k in range(0, 2 * count, 2):
                    start = pos + words[k]
                    result.append(view[start : start + words[k + 1]])
            pos += res[0]
            if rc == _FULL:
                base = src + pos
                continue
            if rc == _NEED_MORE:
                self._left = d.size if d.state == S_DATA else 0
                return result
            if rc == _END:
                self.unused_data = bytes(memoryview(data).cast("B")[pos:])
                return result
            raise chunked_error(rc, result)


class ChunkEncoder(_PyChunkEncoder):
    """Chunk framing with the batch path for small writes in C.

    A single ``data()`` stays in Python: the cffi crossing costs more than formatting one hex
    line, and ``bytes.join`` copies once either way. ``data_many()`` of many small writes
    frames the batch in one C call; large writes take the Python path, where one join is the
    only copy (C would add a second).
    """

    IMPL = "c"

    def data_many(self, chunks: Iterable[Buffer]) -> bytes:
        """Frame several writes at once, one chunk each, empty ones skipped."""
        self._check_open()
        items = list(chunks)
        lens = [c.nbytes if isinstance(c, memoryview) else len(c) for c in items]
        count, total = len(items), sum(lens)
        if count < _C_BATCH_MIN or total > _C_BATCH_AVG_MAX * count:
            return super().data_many(items)
        c_lens = ffi.new("uint64_t[]", lens)
        size = lib.dl_frame_size(c_lens, count)
        out = _alloc_raw("unsigned char[]", size or 1)
        joined = b"".join(items)
        written = lib.dl_encode_joined(joined, c_lens, count, out)
        framed: bytes = ffi.buffer(out, written)[:]
        return framed


#: data_many() goes to C for at least this many writes averaging at most this many bytes.
_C_BATCH_MIN = 8
_C_BATCH_AVG_MAX = 512


__all__ = ["ChunkDecoder", "ChunkEncoder", "Trailers", "encode_trailers"]
