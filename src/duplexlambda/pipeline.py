"""Composable streams: ``pipeline(source, *transforms, sink=...)`` over async iterables.

Streams nest: an upload can be gunzipped, split into CSV records, aggregated, encoded as
NDJSON and written to the response, each step a small async generator::

    from duplexlambda.pipeline import csv_records, ndjson_encode, pipeline, request_body

    async def handler(req, res):
        await pipeline(request_body(req), csv_records(), my_stats, ndjson_encode(), sink=res)

A **transform** is a callable that takes an async iterator and returns one (an
``async def`` generator function taking the upstream iterator is one); the built-ins below
are factories that return transforms. The **sink** is either a writer (anything with an
``async write(data)``, such as ``res``) — every item is written — or a consumer, an async
callable that takes the last iterator and whose result ``pipeline`` returns.

Backpressure: nothing runs ahead. Each stage pulls from the one before it only when asked
for its next item, and the sink asks only after its ``write()`` returned (``res.write``
waits while the socket is above its high watermark), so an upload is read no faster than
the response drains and memory stays flat whatever the sizes. A stage holds at most what
it needs to make its next item (a partial line, a partial CSV record, < 3 bytes of base64).

Closing: when the pipeline ends — done, failed or cancelled — every stage it built is closed
(``aclose()``), the last first, and so is the source iterator it obtained.
"""

from __future__ import annotations

import asyncio
import binascii
import csv
import io
import re
import zlib
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any, Protocol, TypeVar, overload

import msgspec

from duplexlambda.errors import DuplexLambdaError
from duplexlambda.protocol._types import Buffer
from duplexlambda.sse import Event, encode_comment, encode_event, error_event

__all__ = [
    "Consumer",
    "LineTooLongError",
    "RecordTooLongError",
    "StreamDecodeError",
    "Transform",
    "UnsupportedContentEncoding",
    "Writer",
    "base64_decode",
    "base64_encode",
    "chain",
    "csv_records",
    "gzip_compress",
    "gzip_decompress",
    "heartbeat",
    "ndjson",
    "ndjson_encode",
    "pipeline",
    "request_body",
    "split_lines",
    "sse_events",
    "tap",
]

R = TypeVar("R")

#: A stage: takes the upstream async iterator, returns the downstream one.
Transform = Callable[[AsyncIterator[Any]], AsyncIterator[Any]]
#: A sink that consumes the last iterator and returns a result.
Consumer = Callable[[AsyncIterator[Any]], Awaitable[R]]


class Writer(Protocol):
    """A sink every item is written to (``Response`` is one)."""

    async def write(self, data: bytes, /) -> Any:
        """Write one item; return once it may be followed by the next."""


class StreamDecodeError(DuplexLambdaError, ValueError):
    """A transform's input is not what it decodes (bad gzip, base64, JSON or CSV)."""


class RecordTooLongError(StreamDecodeError):
    """A line or CSV record grew past the splitter's limit before it ended."""


#: The former name of ``RecordTooLongError`` (docs/examples.md used it), kept so that code that
#: catches it still does. Not ``duplexlambda.errors.LineTooLongError``, the chunked codec's.
LineTooLongError = RecordTooLongError


class UnsupportedContentEncoding(DuplexLambdaError, ValueError):
    """The request's ``Content-Encoding`` is not one ``request_body`` decodes (HTTP 415)."""


# --- running a pipeline ----------------------------------------------------------------------


async def _aclose(iterator: object) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def _from_sync(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def _source_iterator(source: AsyncIterable[Any] | Iterable[Any] | Buffer) -> AsyncIterator[Any]:
    if isinstance(source, Buffer | str):
        return _from_sync([source])  # one item, not its bytes one by one
    if isinstance(source, AsyncIterable):
        return aiter(source)
    return _from_sync(source)


@overload
async def pipeline(
    source: AsyncIterable[Any] | Iterable[Any] | Buffer,
    *transforms: Transform,
    sink: Consumer[R],
) -> R: ...


@overload
async def pipeline(
    source: AsyncIterable[Any] | Iterable[Any] | Buffer,
    *transforms: Transform,
    sink: Writer,
) -> None: ...


@overload
async def pipeline(
    source: AsyncIterable[Any] | Iterable[Any] | Buffer,
    *stages: Transform | Writer | Consumer[Any],
) -> Any: ...


async def pipeline(
    source: AsyncIterable[Any] | Iterable[Any] | Buffer,
    *stages: Transform | Writer | Consumer[Any],
    sink: Writer | Consumer[Any] | None = None,
) -> Any:
    """Run ``source`` through ``transforms`` into ``sink``.

    The sink is ``sink=`` or, without it, the last positional argument.

    Args:
        source: an async iterable (``req``, an async generator), a sync iterable, or one
            ``bytes``/``str`` item.
        stages: the transforms, in order (and the sink last if ``sink`` is not given).
        sink: a writer (``res``: ``await sink.write(item)`` for each item; returns None) or
            a consumer (``await sink(iterator)``; its result is returned).

    Returns:
        The consumer's result, or None for a writer.

    Raises:
        TypeError: no sink.
        Exception: whatever a stage or the sink raised (after every stage was closed).
    """
    transforms: tuple[Any, ...] = stages
    target: Any = sink
    if target is None:
        if not stages:
            raise TypeError("pipeline() needs a sink")
        transforms, target = stages[:-1], stages[-1]
    opened: list[AsyncIterator[Any]] = [_source_iterator(source)]
    try:
        for transform in transforms:
            opened.append(transform(opened[-1]))
        stream = opened[-1]
        write = getattr(target, "write", None)
        if write is not None:
            async for item in stream:
                await write(item)
            return None
        return await target(stream)
    finally:
        for iterator in reversed(opened):
            await _aclose(iterator)


def chain(*transforms: Transform) -> Transform:
    """One transform made of several, applied in order (the stages it builds are closed
    when it is)."""

    async def chained(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        opened: list[AsyncIterator[Any]] = []
        stream = items
        try:
            for transform in transforms:
                stream = transform(stream)
                opened.append(stream)
            async for item in stream:
                yield item
        finally:
            for iterator in reversed(opened):
                await _aclose(iterator)

    return chained


def tap(callback: Callable[[Any], object]) -> Transform:
    """Pass items through unchanged, calling ``callback(item)`` on each (to count bytes,
    log progress, hash)."""

    async def tapped(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for item in items:
            callback(item)
            yield item

    return tapped


def _as_bytes(item: Buffer | str) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    return bytes(item)


# --- gzip --------------------------------------------------------------------------------------


def gzip_compress(level: int = 6) -> Transform:
    """Compress to gzip (RFC 1952), flushing after every item so the stream still streams.

    Each input item is compressed and then ``Z_SYNC_FLUSH``-ed: the output so far ends on a
    byte boundary with everything written so far decodable, so a browser renders the HTML
    shell, or an SSE client sees the event, before the next item exists. The cost is a few
    bytes per item and a worse ratio for tiny items: batch small writes upstream. Empty
    items produce nothing. ``str`` items are UTF-8 encoded.
    """

    async def compress(items: AsyncIterator[Buffer | str]) -> AsyncIterator[bytes]:
        deflater = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        async for item in items:
            data = _as_bytes(item)
            if data:
                yield deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        yield deflater.flush(zlib.Z_FINISH)

    return compress


class _Inflater:
    """gzip/zlib decoding with bounded output per step; members one after another."""

    def __init__(self, max_chunk: int) -> None:
        self._max = max_chunk
        self._new()

    def _new(self) -> None:
        # 32 + MAX_WBITS: a gzip or a zlib header, detected (Content-Encoding: deflate is
        # zlib-wrapped, RFC 9110 section 8.4.1.2).
        self._d = zlib.decompressobj(32 + zlib.MAX_WBITS)
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while True:
                if self._d.eof:  # a member ended: what follows is the next one (RFC 1952 2.2)
                    data = self._d.unused_data + data
                    if not data:
                        return
                    self._new()
                if data:
                    self._fed = True
                out = self._d.decompress(data, self._max)
                data = self._d.unconsumed_tail
                if out:
                    yield out
                # Stop when the input is used up and zlib has no more output waiting (a
                # full-size output may have left some behind).
                if not data and len(out) < self._max and not self._d.eof:
                    return
        except zlib.error as exc:
            raise StreamDecodeError(f"invalid gzip data: {exc}") from None

    def finish(self) -> None:
        if self._fed and not self._d.eof:
            raise StreamDecodeError("truncated gzip data: the stream ended inside a member")


def gzip_decompress(*, max_chunk: int = 64 * 1024) -> Transform:
    """Decompress gzip (or zlib) data as it arrives, several members one after another.

    Output comes in pieces of at most ``max_chunk`` bytes, so a small input that inflates
    hugely (a zip bomb) is still handled in constant memory, as the sink drains it.

    Raises:
        StreamDecodeError: not gzip/zlib, a bad checksum, or input ending inside a member.
    """

    async def decompress(items: AsyncIterator[Buffer]) -> AsyncIterator[bytes]:
        inflater = _Inflater(max_chunk)
        async for item in items:
            for out in inflater.feed(bytes(item)):
                yield out
        inflater.finish()

    return decompress


# --- base64 ------------------------------------------------------------------------------------


def base64_encode(*, urlsafe: bool = False) -> Transform:
    """Encode to base64 (RFC 4648), as items arrive: whole 3-byte groups go out at once,
    up to 2 bytes wait for the next item, padding comes at the end."""
    alphabet = bytes.maketrans(b"+/", b"-_") if urlsafe else None

    async def encode(items: AsyncIterator[Buffer | str]) -> AsyncIterator[bytes]:
        carry = b""
        async for item in items:
            data = carry + _as_bytes(item)
            cut = len(data) - len(data) % 3
            carry = data[cut:]
            if cut:
                out = binascii.b2a_base64(data[:cut], newline=False)
                yield out.translate(alphabet) if alphabet else out
        if carry:
            out = binascii.b2a_base64(carry, newline=False)
            yield out.translate(alphabet) if alphabet else out

    return encode


_B64_SPACE = b" \t\r\n\v\f"


def base64_decode(*, urlsafe: bool = False) -> Transform:
    """Decode base64 as it arrives (whitespace and line breaks ignored, strict otherwise).

    Raises:
        StreamDecodeError: a character outside the alphabet, padding before the end, or
            input that does not end on a whole 4-character group.
    """
    alphabet = bytes.maketrans(b"-_", b"+/") if urlsafe else None

    async def decode(items: AsyncIterator[Buffer | str]) -> AsyncIterator[bytes]:
        carry = b""
        total = 0
        async for item in items:
            data = _as_bytes(item).translate(alphabet, _B64_SPACE)
            data = carry + data
            cut = len(data) - len(data) % 4
            carry = data[cut:]
            if cut:
                yield _b64(data[:cut], total)
                total += cut
        if carry:
            raise StreamDecodeError(
                f"truncated base64: {len(carry)} character(s) after the last whole group"
            )

    return decode


def _b64(data: bytes, offset: int) -> bytes:
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as exc:
        raise StreamDecodeError(f"invalid base64 near character {offset}: {exc}") from None


# --- lines and NDJSON --------------------------------------------------------------------------


def split_lines(*, keepends: bool = False, max_line: int = 1024 * 1024) -> Transform:
    """Split bytes into lines, whatever the chunking: ``\\n`` or ``\\r\\n`` ends a line
    (even when the two arrive in different chunks); a last line without one counts.

    Each line is yielded as soon as its ``\\n`` arrives.

    Args:
        keepends: keep the line ending on each line.
        max_line: the longest line held (bytes) before ``RecordTooLongError``.
    """

    async def split(items: AsyncIterator[Buffer]) -> AsyncIterator[bytes]:
        carry = b""
        async for item in items:
            data = carry + bytes(item) if carry else bytes(item)
            *lines, carry = data.split(b"\n")
            if len(carry) > max_line:
                raise RecordTooLongError(f"a line is longer than {max_line} bytes")
            for line in lines:
                if keepends:
                    yield line + b"\n"
                else:
                    yield line[:-1] if line.endswith(b"\r") else line
        if carry:
            yield carry if keepends or not carry.endswith(b"\r") else carry[:-1]

    return split


def ndjson(*, skip_invalid: bool = False, max_line: int = 1024 * 1024) -> Transform:
    """Split bytes into NDJSON / JSON Lines records and decode each (msgspec); blank lines
    are skipped.

    Args:
        skip_invalid: skip lines that are not JSON instead of raising.
        max_line: the longest line held before ``RecordTooLongError``.

    Raises:
        StreamDecodeError: a line that is not JSON (its line number in the message).
    """
    lines_of = split_lines(max_line=max_line)
    decoder = msgspec.json.Decoder()

    async def decode(items: AsyncIterator[Buffer]) -> AsyncIterator[Any]:
        lines = lines_of(items)
        try:
            number = 0
            async for line in lines:
                number += 1
                if not line.strip():
                    continue
                try:
                    record = decoder.decode(line)
                except msgspec.DecodeError as exc:
                    if skip_invalid:
                        continue
                    raise StreamDecodeError(f"line {number} is not JSON: {exc}") from None
                yield record
        finally:
            await _aclose(lines)

    return decode


def ndjson_encode() -> Transform:
    """Encode each item as one JSON line (msgspec; ``\\n`` inside strings is escaped)."""
    encoder = msgspec.json.Encoder()

    async def encode(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
        async for item in items:
            yield encoder.encode(item) + b"\n"

    return encode


# --- CSV ---------------------------------------------------------------------------------------


class _CsvSplitter:
    """Finds where CSV records end in a byte stream, so that each record is parsed whole.

    A record ends at ``\\n`` outside quotes. A quote opens a quoted field only at the start
    of a field (as Python's csv module reads it: ``a"b`` is a literal quote); inside, ``""``
    is an escaped quote and ``"`` closes. The scan resumes where the last one stopped, so a
    long record costs O(its length) however it was chunked.
    """

    def __init__(self, delimiter: str, quotechar: str, max_record: int) -> None:
        self._delim = ord(delimiter.encode("ascii"))
        self._quote = quotechar.encode("ascii")
        self._special = re.compile(b"[" + re.escape(self._quote) + b"\n]")
        self._max = max_record
        self._buf = bytearray()
        self._pos = 0
        self.in_quotes = False

    def feed(self, data: bytes) -> bytes:
        """Add ``data``; return the complete records so far (ending in ``\\n``), if any."""
        buf = self._buf
        buf += data
        pos, end, size = self._pos, 0, len(buf)
        quote, nl = self._quote[0], 10
        while pos < size:
            if self.in_quotes:
                at = buf.find(self._quote, pos)
                if at < 0 or at + 1 == size:  # the byte after a quote decides: wait for it
                    pos = size if at < 0 else at
                    break
                if buf[at + 1] == quote:
                    pos = at + 2  # "" is a quote inside the field
                else:
                    self.in_quotes = False
                    pos = at + 1
                continue
            found = self._special.search(buf, pos)
            if found is None:
                pos = size
                break
            at = found.start()
            if buf[at] == nl:
                end = pos = at + 1
                continue
            # A quote opens a quoted field only where a field starts.
            self.in_quotes = at == 0 or buf[at - 1] in (self._delim, nl)
            pos = at + 1
        records = bytes(buf[:end])
        del buf[:end]
        self._pos = pos - end
        if len(buf) > self._max:
            raise RecordTooLongError(f"a CSV record is longer than {self._max} bytes")
        return records

    def rest(self) -> bytes:
        """What is left at the end of the input (a last record without ``\\n``)."""
        buf = self._buf
        # A quote as the very last byte was left undecided (closing, or the first of "")?
        # Nothing follows it, so it closes the field.
        closed = self._pos == len(buf) - 1 and buf[-1] == self._quote[0]
        if self.in_quotes and not closed:
            raise StreamDecodeError("CSV ended inside a quoted field")
        return bytes(buf)


def csv_records(
    *,
    delimiter: str = ",",
    quotechar: str = '"',
    encoding: str = "utf-8",
    max_record: int = 1024 * 1024,
) -> Transform:
    """Split bytes into CSV records (``list[str]``), whatever the chunking.

    Quoted fields may hold delimiters, doubled quotes and line breaks; records end at
    ``\\n`` or ``\\r\\n``; blank lines are skipped; a UTF-8 byte order mark is dropped.
    Fields are parsed by Python's ``csv`` module (``excel`` dialect with these settings),
    so a record reads the same as ``csv.reader`` would read the whole file.

    Args:
        delimiter: one ASCII character.
        quotechar: one ASCII character.
        encoding: of the bytes (records are decoded whole, so multibyte characters may be
            split across chunks).
        max_record: the longest record held before ``RecordTooLongError``.

    Raises:
        StreamDecodeError: undecodable bytes, or the input ends inside a quoted field.
    """

    if "\n,".encode(encoding) != b"\n," or quotechar.encode(encoding) != quotechar.encode():
        raise ValueError(f"csv_records needs an ASCII-compatible encoding, not {encoding!r}")

    def rows(block: bytes, first: bool) -> list[list[str]]:
        try:
            text = block.decode(encoding)
        except UnicodeDecodeError as exc:
            raise StreamDecodeError(f"CSV is not {encoding}: {exc}") from None
        if first and text.startswith("\ufeff"):
            text = text[1:]
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar)
        try:
            return [row for row in reader if row]
        except csv.Error as exc:
            raise StreamDecodeError(f"invalid CSV: {exc}") from None

    async def split(items: AsyncIterator[Buffer]) -> AsyncIterator[list[str]]:
        splitter = _CsvSplitter(delimiter, quotechar, max_record)
        first = True
        async for item in items:
            block = splitter.feed(bytes(item))
            if block:
                for row in rows(block, first):
                    yield row
                first = False
        last = splitter.rest()
        if last:
            for row in rows(last, first):
                yield row

    return split


# --- timing and SSE ----------------------------------------------------------------------------


async def _next(iterator: AsyncIterator[Any]) -> Any:
    return await anext(iterator)


def heartbeat(interval: float | None, beat: Any) -> Transform:
    """Pass items through; whenever upstream has been quiet for ``interval`` seconds, yield
    ``beat`` (a value, or a zero-argument callable that makes one) instead.

    Upstream is awaited in a task of its own while the timer runs; the task is cancelled if
    the stream is closed while waiting. ``interval`` None or ``<= 0`` disables it.
    """

    async def beating(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if interval is None or interval <= 0:
            async for item in items:
                yield item
            return
        loop = asyncio.get_running_loop()
        pending: asyncio.Task[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = loop.create_task(_next(items))
                done, _ = await asyncio.wait({pending}, timeout=interval)
                if not done:
                    yield beat() if callable(beat) else beat
                    continue
                task, pending = pending, None
                try:
                    item = task.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.wait({pending})
                if not pending.cancelled():
                    pending.exception()  # retrieved: nobody is left to want it

    return beating


def _frame(item: Any) -> bytes:
    return item.encode() if isinstance(item, Event) else encode_event(item)


def sse_events(
    *,
    heartbeat_interval: float | None = 15.0,
    comment: str = "heartbeat",
    error: str | None = "error",
    reraise: bool = True,
) -> Transform:
    """Frame items as server-sent events, with heartbeats and a visible error.

    Items are ``sse.Event``s, or bare payloads (``str``, ``bytes``, or JSON-able values) sent
    as the ``data`` of an unnamed event.

    Args:
        heartbeat_interval: seconds of silence before a ``: heartbeat`` comment (keeps
            CloudFront's and proxies' idle timers from closing the stream); None disables.
        comment: the heartbeat comment's text.
        error: when upstream raises, a frame of this event type (``{"error", "message"}``
            as data) goes out first, so plain HTTP clients see the failure; None disables.
        reraise: re-raise upstream's exception after the error frame (the invocation is
            then marked failed too: Lambda's error trailers).
    """

    async def frames(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
        try:
            async for item in items:
                yield _frame(item)
        except Exception as exc:
            if error is None:
                raise
            yield error_event(exc, event=error)
            if reraise:
                raise

    return chain(frames, heartbeat(heartbeat_interval, encode_comment(comment)))


# --- requests ----------------------------------------------------------------------------------


class _Body(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


_DECODABLE = {"gzip", "x-gzip", "deflate"}


def request_body(req: _Body, *, max_chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """The request body as it arrives, decompressed as its ``Content-Encoding`` says
    (``gzip``, ``x-gzip``, ``deflate``, or none / ``identity``).

    Raises:
        UnsupportedContentEncoding: any other coding (checked now, before any read: answer
            415).
    """
    header = req.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    unknown = [c for c in codings if c not in _DECODABLE]
    if unknown:
        raise UnsupportedContentEncoding(
            f"unsupported Content-Encoding {', '.join(unknown)}: send gzip, deflate or none"
        )
    # Codings are listed in the order they were applied (RFC 9110 8.4): undo the last first.
    decoders = [gzip_decompress(max_chunk=max_chunk) for _ in codings]

    async def body() -> AsyncIterator[bytes]:
        chunks: AsyncIterator[bytes] = aiter(req)
        decoded = chain(*decoders)(chunks) if decoders else chunks
        try:
            async for piece in decoded:
                yield piece
        finally:
            await _aclose(decoded)
            await _aclose(chunks)

    return body()
