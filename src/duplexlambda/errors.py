"""The one exception tree of duplexlambda.

Protocol errors split by who broke the protocol (as h11 does): ``LocalProtocolError`` when we
were asked to send something invalid, ``RemoteProtocolError`` when the peer sent it. Stream
errors follow trio's Busy / Closed / Broken resource errors (``SingleReader`` is the guard every
stream raises ``BusyResourceError`` through). Classes whose instances reach the Lambda service
carry the ``error_type`` string it expects.
"""

from __future__ import annotations

# Not ``from typing import TYPE_CHECKING``: importing typing costs milliseconds of every cold
# start (mypy reads this constant the same way).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar


class DuplexLambdaError(Exception):
    """Root of every exception raised by duplexlambda."""

    error_type: ClassVar[str] = "Runtime.Unknown"


class ProtocolError(DuplexLambdaError):
    """A message broke the HTTP or Runtime API protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class HeadTooLargeError(RemoteProtocolError):
    """A message head over the size limit or with too many header fields.

    A server answers it with 431 Request Header Fields Too Large (RFC 6585 section 5); any
    other malformed head is a plain ``RemoteProtocolError`` (400).
    """


# --- chunked transfer coding (RFC 9112 section 7.1) ----------------------------------------


class ChunkedEncodingError(RemoteProtocolError):
    """Malformed chunked body.

    ``code`` is the decoder's status for it: the one place these numbers are written in
    Python. ``protocol/_chunked_py.py`` names them ``E_*``, and tests/protocol hold them equal
    to ``DL_E_*`` in csrc/chunked.h (``TruncatedBodyError`` has no C code: C never sees EOF).
    ``message`` is the text every instance raised by a decoder carries.
    """

    code: ClassVar[int] = 0
    message: ClassVar[str] = "malformed chunked body"

    def __init__(self, message: str, data: list[memoryview] | None = None) -> None:
        super().__init__(message)
        #: data decoded by the failing ``feed()`` call before the bad byte: nothing is lost.
        self.data: list[memoryview] = data if data is not None else []


class BadChunkSizeError(ChunkedEncodingError):
    """The chunk-size is not 1*HEXDIG, or is followed by something other than BWS / ``;``."""

    code = -1
    message = "invalid chunk-size (expected hex digits)"


class ChunkSizeOverflowError(ChunkedEncodingError):
    """A chunk-size of more than 16 hex digits, or of 2**63 or more."""

    code = -2
    message = "chunk-size overflow (more than 16 hex digits, or 2**63 or more)"


class LineTooLongError(ChunkedEncodingError):
    """A chunk-size line or trailer line longer than the limit."""

    code = -3
    message = "chunk-size or trailer line too long"


class BadLineEndingError(ChunkedEncodingError):
    """A line, or a chunk's data, not followed by CRLF."""

    code = -4
    message = "missing CRLF"


class BadChunkExtensionError(ChunkedEncodingError):
    """A control character inside a chunk extension."""

    code = -5
    message = "control character in chunk extension"


class BadTrailerError(ChunkedEncodingError):
    """A trailer line that is not ``field-name ":" OWS field-value OWS``."""

    code = -6
    message = "malformed trailer field"


class TrailersTooLargeError(ChunkedEncodingError):
    """More trailer fields, or trailer bytes, than the limits allow."""

    code = -7
    message = "too many trailer fields or trailer bytes"


class DataAfterEndError(ChunkedEncodingError):
    """Bytes were fed after the chunked body had ended."""

    code = -8
    message = "data after the end of the chunked body"


class TruncatedBodyError(ChunkedEncodingError):
    """The input ended (EOF) before the terminating last-chunk and CRLF."""

    code = -9
    message = "chunked body truncated before its last-chunk"


CHUNKED_ERRORS: dict[int, type[ChunkedEncodingError]] = {
    cls.code: cls
    for cls in (
        BadChunkSizeError,
        ChunkSizeOverflowError,
        LineTooLongError,
        BadLineEndingError,
        BadChunkExtensionError,
        BadTrailerError,
        TrailersTooLargeError,
        DataAfterEndError,
        TruncatedBodyError,
    )
}


def chunked_error(code: int, data: list[memoryview] | None = None) -> ChunkedEncodingError:
    """Build the exception for a decoder status code (shared by the C and Python twins)."""
    cls = CHUNKED_ERRORS[code]
    return cls(cls.message, data)


# --- the JSON + 8 x NUL prelude ---------------------------------------------------------------


class PreludeError(RemoteProtocolError):
    """A prelude that is too large, not a JSON object, or not followed by 8 NUL bytes."""


# --- streams (trio's resource errors) ---------------------------------------------------------


class BusyResourceError(DuplexLambdaError):
    """Another task is already reading (or writing) this stream."""


class SingleReader:
    """The one-reader-at-a-time rule of every stream here, as a guard: ``with guard:`` around
    one read. Entering it while another task is inside raises ``BusyResourceError``.

    Kept with the exception it raises so that the runtime and the emulator, which may not
    import each other, share it (docs/architecture.md#imports).
    """

    __slots__ = ("_what", "busy")

    def __init__(self, what: str) -> None:
        self._what = what
        self.busy = False  #: True while a read is in progress

    def __enter__(self) -> None:
        if self.busy:
            raise BusyResourceError(f"another task is reading this {self._what}")
        self.busy = True

    def __exit__(self, *exc_info: object) -> None:
        self.busy = False


class ClosedResourceError(DuplexLambdaError):
    """The stream was closed by this side; it cannot be used any more."""


class BrokenResourceError(DuplexLambdaError):
    """The stream broke because of the peer or the network (connection reset, hang-up)."""


# --- handler-facing errors (each reaches Lambda with its error_type) ---------------------------


class InvalidStreamingOperation(DuplexLambdaError):
    """The response cannot do that now (e.g. set a header after the first byte was sent)."""

    error_type = "Runtime.InvalidStreamingOperation"


class HandlerTimeoutError(DuplexLambdaError):
    """The handler was cancelled shortly before the invocation deadline."""

    error_type = "Function.Timeout"


# --- the local emulator (the Lambda side) -------------------------------------------------------


class InvalidStateTransitionError(DuplexLambdaError):
    """A runtime call out of order (a second ``/response``, ``/error`` after ``/response``).

    The Runtime API answers it with 403 ``InvalidStateTransition`` (docs/runtime-api.md §3.7).
    """

    error_type = "InvalidStateTransition"


class PayloadTooLargeError(DuplexLambdaError):
    """A body over the limit it was read with. ``size`` is how many bytes were seen."""

    error_type = "Function.ResponseSizeTooLarge"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size
