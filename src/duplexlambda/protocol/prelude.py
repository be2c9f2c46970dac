"""The JSON + 8 x NUL prelude, both directions (docs/runtime-api.md §5).

On the response side a streaming runtime sends, with content type
``application/vnd.awslambda.http-integration-response``, a JSON object (status, headers,
cookies), eight NUL bytes, then the body. duplexlambda's emulator uses the same framing for
request streaming (``application/vnd.duplexlambda.http-request-stream``): the function-URL
event without its body, eight NULs, then the upload. One codec serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import msgspec

from duplexlambda.errors import LocalProtocolError, PreludeError

from ._types import Buffer

#: The delimiter between the prelude JSON and the body: exactly eight 0x00 bytes.
DELIMITER = b"\x00" * 8
#: A prelude larger than this is rejected (API Gateway wants it in the first 16 KB).
MAX_PRELUDE = 64 * 1024
#: The request stream's "prelude" is the function-URL event without its body: it may be as
#: large as any event Lambda delivers, i.e. the buffered payload cap, 6 MiB + 100 B
#: (docs/runtime-api.md §8), so that every request lambda mode serves is served on this wire too.
MAX_REQUEST_PRELUDE = 6 * 1024 * 1024 + 100

HTTP_INTEGRATION_RESPONSE = "application/vnd.awslambda.http-integration-response"
HTTP_REQUEST_STREAM = "application/vnd.duplexlambda.http-request-stream"


class HttpResponsePrelude(msgspec.Struct):
    """The metadata a function URL turns into the HTTP status line and headers.

    ``cookies`` is always emitted (cargo-lambda rejects a prelude without it); each becomes one
    ``Set-Cookie`` header. ``multiValueHeaders`` is for API Gateway REST and omitted unless set.
    """

    statusCode: int = 200
    headers: dict[str, str | list[str]] = msgspec.field(default_factory=dict)
    cookies: list[str] = msgspec.field(default_factory=list)
    multiValueHeaders: dict[str, list[str]] | msgspec.UnsetType = msgspec.UNSET


_encoder = msgspec.json.Encoder()
_BAD_HEADER_BYTES = frozenset("\r\n\x00")


def _check_field(name: str, value: str) -> None:
    if not name or _BAD_HEADER_BYTES.intersection(name) or ":" in name or " " in name:
        raise LocalProtocolError(f"invalid header name in prelude: {name!r}")
    if _BAD_HEADER_BYTES.intersection(value):
        raise LocalProtocolError(f"header {name!r} has CR, LF or NUL in its value")


def validate_response_prelude(prelude: HttpResponsePrelude) -> None:
    """Reject what a function URL could not send: bad status, CR/LF in headers or cookies.

    Raises:
        LocalProtocolError: the prelude would break HTTP framing (header injection).
    """
    if not 100 <= prelude.statusCode <= 599:
        raise LocalProtocolError(f"invalid HTTP status code {prelude.statusCode}")
    for name, value in prelude.headers.items():
        for v in [value] if isinstance(value, str) else value:
            _check_field(name, v)
    if not isinstance(prelude.multiValueHeaders, msgspec.UnsetType):
        for name, values in prelude.multiValueHeaders.items():
            for v in values:
                _check_field(name, v)
    for cookie in prelude.cookies:
        _check_field("set-cookie", cookie)


def encode_prelude(prelude: HttpResponsePrelude | Mapping[str, Any]) -> bytes:
    """Return the prelude's JSON (send ``DELIMITER`` after it, as its own chunk).

    Raises:
        LocalProtocolError: larger than ``MAX_PRELUDE``, or an invalid response prelude.
    """
    if isinstance(prelude, HttpResponsePrelude):
        validate_response_prelude(prelude)
    # JSON escapes NUL as \\u0000, so the encoded prelude never contains the delimiter.
    raw = _encoder.encode(prelude)
    if len(raw) > MAX_PRELUDE:
        raise LocalProtocolError(f"prelude of {len(raw)} bytes exceeds {MAX_PRELUDE}")
    return raw


class PreludeDecoder:
    """Incremental decoder of ``<JSON object> 00x8 <body>`` (sans-I/O).

    ``feed(data)`` may be given any split of the stream, including one inside the NUL run. It
    returns the body bytes that follow the delimiter (views into ``data``). ``prelude`` is the
    decoded JSON object once the delimiter is complete. The body may contain NULs: only the
    first NUL after the JSON starts the delimiter.

    Raises (from ``feed``/``eof``): ``PreludeError`` for JSON over ``max_size`` bytes, JSON that
    is not an object, fewer than 8 NULs, or input that ends before the body starts.
    """

    def __init__(self, max_size: int = MAX_PRELUDE) -> None:
        self._max = max_size
        self._buf = bytearray()
        self._nuls = -1  # -1 while reading JSON, then NULs seen, 8 = body
        self._error: PreludeError | None = None
        self.prelude: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """True once the JSON and all 8 NUL bytes have been read."""
        return self._nuls == 8

    def eof(self) -> None:
        """Signal the end of input; raises ``PreludeError`` if the prelude was incomplete."""
        if self._error:
            raise self._error
        if not self.complete:
            self._fail(f"stream ended inside the prelude after {len(self._buf)} bytes")

    def _fail(self, message: str) -> NoReturn:
        self._error = PreludeError(message)
        raise self._error

    def feed(self, data: Buffer) -> list[memoryview]:
        """Consume ``data``; return the body bytes found after the prelude."""
        if self._error:
            raise self._error
        view = memoryview(data).cast("B")
        if self._nuls == 8:
            return [view] if len(view) else []
        i = 0
        if self._nuls < 0:
            i = self._read_json(view)
            if i < 0:
                return []
        while self._nuls < 8 and i < len(view):
            if view[i]:
                self._fail(f"prelude JSON must be followed by 8 NUL bytes, got {self._nuls}")
            self._nuls += 1
            i += 1
        return [view[i:]] if self._nuls == 8 and i < len(view) else []

    def _read_json(self, view: memoryview) -> int:
        """Buffer JSON bytes until the first NUL; return its index, or -1 if not seen yet."""
        idx = bytes(view[: self._max + 1 - len(self._buf)]).find(0)
        end = idx if idx >= 0 else len(view)
        if len(self._buf) + end > self._max:
            self._fail(f"prelude larger than {self._max} bytes")
        self._buf += view[:end]
        if idx < 0:
            return -1
        try:
            value = msgspec.json.decode(self._buf)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            self._fail(f"prelude is not valid JSON: {exc}")
        except RecursionError:
            self._fail("prelude JSON is nested too deeply")
        if not isinstance(value, dict):
            self._fail(f"prelude must be a JSON object, not {type(value).__name__}")
        self.prelude = value
        self._nuls = 0
        self._buf = bytearray()
        return idx
