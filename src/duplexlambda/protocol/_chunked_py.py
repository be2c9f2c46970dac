"""Pure-Python chunked codec: the reference twin of csrc/chunked.c.

Same states, same limits, same error at the same byte: a differential test holds the two to
that. The grammar and the reasons for its strictness are written once, in csrc/chunked.c.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from duplexlambda import errors
from duplexlambda.errors import LocalProtocolError, chunked_error

from ._types import Buffer

# Limits: DL_MAX_* in chunked.h; the states below are chunked.c's enum, in its order.
MAX_LINE = 8192
MAX_SIZE_DIGITS = 16
MAX_TRAILER_BYTES = 16384
MAX_TRAILERS = 64

# Status codes: the ``code`` of each error class (errors.py), which equal DL_E_* in chunked.h
# (tests/protocol/test_chunked_constants.py). E_TRUNCATED is Python's alone: C never sees EOF.
E_BAD_SIZE = errors.BadChunkSizeError.code
E_SIZE_OVERFLOW = errors.ChunkSizeOverflowError.code
E_LINE_TOO_LONG = errors.LineTooLongError.code
E_BAD_CRLF = errors.BadLineEndingError.code
E_BAD_EXTENSION = errors.BadChunkExtensionError.code
E_BAD_TRAILER = errors.BadTrailerError.code
E_TRAILERS_TOO_LARGE = errors.TrailersTooLargeError.code
E_AFTER_END = errors.DataAfterEndError.code
E_TRUNCATED = errors.TruncatedBodyError.code

(
    S_SIZE_START,
    S_SIZE,
    S_SIZE_BWS,
    S_EXT,
    S_SIZE_LF,
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    S_TRAILER_START,
    S_TNAME,
    S_TVALUE_OWS,
    S_TVALUE,
    S_TLF,
    S_END_LF,
    S_DONE,
) = range(15)

_HEX_RUN = re.compile(rb"[0-9A-Fa-f]*")
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OWS = frozenset(b" \t")
_CR, _LF, _SEMI, _COLON = 13, 10, ord(";"), ord(":")


def _is_ctl(c: int) -> bool:
    return (c < 0x20 and c != 9) or c == 0x7F


def _is_vchar(c: int) -> bool:
    return c >= 0x21 and c != 0x7F


class _Failed(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class ChunkDecoder:
    """Incremental decoder of an HTTP/1.1 chunked body (sans-I/O).

    ``feed(data)`` returns the body data found in ``data`` (views into it where possible: do
    not mutate ``data`` while they are in use). Once the last-chunk, trailers and final CRLF
    have been read, ``done`` is true, ``trailers`` holds the trailer fields and
    ``unused_data`` whatever followed the body in the last ``feed``. ``eof()`` says the input
    has ended: it raises ``TruncatedBodyError`` unless ``done``.

    Raises (from ``feed``): a ``ChunkedEncodingError`` subclass at the first invalid byte,
    carrying in ``.data`` the body data decoded before it. Errors are sticky.
    """

    IMPL = "python"

    def __init__(self) -> None:
        self._state = S_SIZE_START
        self._error = 0
        self._size = 0
        self._digits = 0
        self._line_len = 0
        self._data_total = 0
        self._tbuf = bytearray()
        self._fields: list[tuple[int, int, int, int]] = []
        self._name_off = 0
        self._value_off = 0
        self._value_end = 0
        self.unused_data: bytes = b""

    @property
    def done(self) -> bool:
        """True once the whole body, trailers included, has been read."""
        return self._state == S_DONE

    @property
    def data_total(self) -> int:
        """Body data bytes decoded so far."""
        return self._data_total

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """Trailer fields in wire order, names as sent, values without surrounding OWS."""
        t = bytes(self._tbuf)
        return [(t[no : no + nl], t[vo : vo + vl]) for no, nl, vo, vl in self._fields]

    def eof(self) -> None:
        """Signal the end of input. Raises ``TruncatedBodyError`` unless the body is done."""
        if self._state != S_DONE:
            if not self._error:
                self._error = E_TRUNCATED
            raise chunked_error(self._error)

    def feed(self, data: Buffer) -> list[memoryview]:
        """Decode ``data``; return the body data pieces it held, in order."""
        if self._error:
            raise chunked_error(self._error)
        view = memoryview(data).cast("B")
        if self._state == S_DONE:
            if len(view):
                self._error = E_AFTER_END
                raise chunked_error(E_AFTER_END)
            return []
        out: list[memoryview] = []
        try:
            i = self._run(view, out)
        except _Failed as exc:
            self._error = exc.code
            raise chunked_error(exc.code, out) from None
        if self._state == S_DONE:
            self.unused_data = bytes(view[i:])
        return out

    def _run(self, view: memoryview, out: list[memoryview]) -> int:
        i, n = 0, len(view)
        while i < n:
            state = self._state
            if state == S_DATA:
                take = min(self._size, n - i)
                out.append(view[i : i + take])
                i += take
                self._size -= take
                self._data_total += take
                if self._size:
                    continue
                if i + 2 <= n:
                    if view[i] != _CR or view[i + 1] != _LF:
                        raise _Failed(E_BAD_CRLF)
                    i += 2
                    self._state = S_SIZE_START
                else:
                    self._state = S_DATA_CR
            elif state in (S_SIZE_START, S_SIZE):
                i = self._digits_run(view, i)
                if i == n:
                    break
                if i + 2 <= n and view[i] == _CR and view[i + 1] == _LF:
                    i += 2
                    self._line_len = 0
                    self._state = S_DATA if self._size else S_TRAILER_START
                    continue
                self._step(view[i])
                i += 1
            else:
                self._step(view[i])
                i += 1
                if self._state == S_DONE:
                    break
        return i

    def _digits_run(self, view: memoryview, i: int) -> int:
        run = _HEX_RUN.match(view, i)
        digits = run.group() if run else b""
        if self._state == S_SIZE_START:
            if not digits:
                raise _Failed(E_BAD_SIZE)
            self._size = 0
            self._digits = 0
            self._line_len = 0
            self._state = S_SIZE
        for d in digits:
            # Overflow as in C: a 17th digit, or a value that would reach 2**63.
            self._digits += 1
            if self._digits > MAX_SIZE_DIGITS or self._size >> 59:
                raise _Failed(E_SIZE_OVERFLOW)
            self._size = (self._size << 4) | int(chr(d), 16)
            self._line_len += 1
        return i + len(digits)

    def _store(self, c: int) -> None:
        if len(self._tbuf) >= MAX_TRAILER_BYTES:
            raise _Failed(E_TRAILERS_TOO_LARGE)
        self._tbuf.append(c)

    def _count(self) -> None:
        self._line_len += 1
        if self._line_len > MAX_LINE:
            raise _Failed(E_LINE_TOO_LONG)

    def _line_byte(self, c: int, lf_state: int) -> bool:
        """A byte of a size or trailer line: True if it is the CR that ends it (the state moves
        to ``lf_state``); a bare LF is an error; any other byte counts towards ``MAX_LINE``."""
        if c == _CR:
            self._state = lf_state
            return True
        if c == _LF:
            raise _Failed(E_BAD_CRLF)
        self._count()
        return False

    def _step(self, c: int) -> None:
        state = self._state
        if state in (S_SIZE, S_SIZE_BWS):
            if self._line_byte(c, S_SIZE_LF):
                return
            if c in _OWS:
                self._state = S_SIZE_BWS
            elif c == _SEMI:
                self._state = S_EXT
            else:
                raise _Failed(E_BAD_SIZE)
        elif state == S_EXT:
            if not self._line_byte(c, S_SIZE_LF) and _is_ctl(c):
                raise _Failed(E_BAD_EXTENSION)
        elif state == S_SIZE_LF:
            if c != _LF:
                raise _Failed(E_BAD_CRLF)
            self._line_len = 0
            self._state = S_DATA if self._size else S_TRAILER_START
        elif state == S_DATA_CR:
            if c != _CR:
                raise _Failed(E_BAD_CRLF)
            self._state = S_DATA_LF
        elif state == S_DATA_LF:
            if c != _LF:
                raise _Failed(E_BAD_CRLF)
            self._state = S_SIZE_START
        elif state in (S_TRAILER_START, S_TNAME, S_TVALUE_OWS, S_TVALUE, S_TLF, S_END_LF):
            self._step_trailer(state, c)
        else:
            raise _Failed(E_AFTER_END)

    def _step_trailer(self, state: int, c: int) -> None:
        if state == S_TRAILER_START:
            if c == _CR:
                self._state = S_END_LF
                return
            if c == _LF:
                raise _Failed(E_BAD_CRLF)
            self._line_len = 1
            if c not in _TCHAR:
                raise _Failed(E_BAD_TRAILER)
            if len(self._fields) == MAX_TRAILERS:
                raise _Failed(E_TRAILERS_TOO_LARGE)
            self._name_off = len(self._tbuf)
            self._state = S_TNAME
            self._store(c)
        elif state == S_TNAME:
            if c == _LF:
                raise _Failed(E_BAD_CRLF)
            self._count()
            if c == _COLON:
                self._value_off = self._value_end = len(self._tbuf)
                self._state = S_TVALUE_OWS
            elif c in _TCHAR:
                self._store(c)
            else:
                raise _Failed(E_BAD_TRAILER)
        elif state in (S_TVALUE_OWS, S_TVALUE):
            if self._line_byte(c, S_TLF):
                return
            if c in _OWS:
                if state == S_TVALUE:
                    self._store(c)
                return
            if not _is_vchar(c):
                raise _Failed(E_BAD_TRAILER)
            self._state = S_TVALUE
            self._store(c)
            self._value_end = len(self._tbuf)
        elif state == S_TLF:
            if c != _LF:
                raise _Failed(E_BAD_CRLF)
            name_len = self._value_off - self._name_off
            self._fields.append(
                (self._name_off, name_len, self._value_off, self._value_end - self._value_off)
            )
            del self._tbuf[self._value_end :]  # drop trailing OWS
            self._state = S_TRAILER_START
        else:  # S_END_LF
            if c != _LF:
                raise _Failed(E_BAD_CRLF)
            self._state = S_DONE


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# empty, or field-vchar [ *( field-vchar / SP / HTAB ) field-vchar ]  (RFC 9110 5.5)
_FIELD_VALUE = re.compile(
    rb"(?:[\x21-\x7e\x80-\xff](?:[\t \x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
)

Trailers = Sequence[tuple[bytes | str, bytes | str]]


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def encode_trailers(trailers: Trailers | None) -> bytes:
    """Validate and render trailer fields as ``name: value\\r\\n`` lines.

    Raises:
        LocalProtocolError: a name that is not a token, or a value with CR, LF, NUL or
            leading/trailing whitespace (which could smuggle extra fields).
    """
    lines = []
    for name, value in trailers or ():
        n, v = _as_bytes(name), _as_bytes(value)
        if not _TOKEN.fullmatch(n):
            raise LocalProtocolError(f"invalid trailer name {n!r}")
        if not _FIELD_VALUE.fullmatch(v):
            raise LocalProtocolError(f"invalid trailer value for {n!r}: {v!r}")
        lines.append(b"%s: %s\r\n" % (n, v))
    return b"".join(lines)


class ChunkEncoder:
    """Frames body writes as HTTP/1.1 chunks (sans-I/O; returns bytes to send).

    One ``data()`` call is one chunk: chunk boundaries are never merged or split, which is what
    lets a streamed response reach the client write by write. ``data(b"")`` returns ``b""``
    because a zero-length chunk would end the body (RFC 9112 7.1).
    """

    IMPL = "python"

    def __init__(self) -> None:
        self._ended = False

    @property
    def ended(self) -> bool:
        """True once ``end()`` has been called."""
        return self._ended

    def _check_open(self) -> None:
        if self._ended:
            raise LocalProtocolError("chunked body already ended")

    def head(self, size: int) -> bytes:
        """The chunk-size line for ``size`` data bytes (``b""`` for 0)."""
        return b"%x\r\n" % size if size else b""

    def data(self, chunk: Buffer) -> bytes:
        """Return ``chunk`` framed as one chunk (``b""`` if it is empty)."""
        self._check_open()
        n = len(memoryview(chunk).cast("B"))
        if not n:
            return b""
        return b"".join((b"%x\r\n" % n, chunk, b"\r\n"))

    def data_many(self, chunks: Iterable[Buffer]) -> bytes:
        """Frame several writes at once, one chunk each, empty ones skipped."""
        self._check_open()
        parts: list[Buffer] = []
        for chunk in chunks:
            n = len(memoryview(chunk).cast("B"))
            if n:
                parts += (b"%x\r\n" % n, chunk, b"\r\n")
        return b"".join(parts)

    def end(self, trailers: Trailers | None = None) -> bytes:
        """Return the last-chunk, the trailer fields and the final CRLF."""
        self._check_open()
        rendered = encode_trailers(trailers)
        self._ended = True
        return b"0\r\n" + rendered + b"\r\n"
