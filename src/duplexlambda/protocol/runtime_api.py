"""Runtime API requests and the /next response, sans-I/O (docs/runtime-api.md §1-§4).

One builder per endpoint, each returning the exact bytes of the request head, so that every
request the runtime sends is unit-tested byte for byte without a network.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import traceback
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec

# The /next side and printable text live in light modules of their own (cold start);
# re-exported here for the rest of the package.
from . import invocation_head, text
from .http1 import Headers, encode_request_head

H_ARN = invocation_head.H_ARN
H_CLIENT_CONTEXT = invocation_head.H_CLIENT_CONTEXT
H_COGNITO = invocation_head.H_COGNITO
H_DEADLINE = invocation_head.H_DEADLINE
H_REQUEST_ID = invocation_head.H_REQUEST_ID
H_TENANT = invocation_head.H_TENANT
H_TRACE = invocation_head.H_TRACE
InvocationHead = invocation_head.InvocationHead
printable = text.printable
safe_str = text.safe_str

API_VERSION = "/2018-06-01"
USER_AGENT = invocation_head.USER_AGENT

H_RESPONSE_MODE = "Lambda-Runtime-Function-Response-Mode"
H_ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
H_ERROR_BODY = "Lambda-Runtime-Function-Error-Body"
H_XRAY_CAUSE = "Lambda-Runtime-Function-XRay-Error-Cause"

#: What our runtime accepts on /next: the emulator's live request stream, else plain events.
ACCEPT_NEXT = "application/vnd.duplexlambda.http-request-stream, */*"


#: A host name (underscores allowed: container names) or an IPv4 address.
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
#: A URL path of RFC 3986 segments: unreserved, sub-delims, ":", "@" and %XX escapes.
_PATH = re.compile(r"(?:/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*)*")


def _valid_host(host: str) -> bool:
    if ":" not in host:
        return bool(_HOST_NAME.fullmatch(host))
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class RuntimeApiAddress:
    """Where the Runtime API listens: ``AWS_LAMBDA_RUNTIME_API``.

    Lambda sets ``host:port``; cargo-lambda sets ``http://host:port/prefix`` (docs/runtime-api.md
    §1), so both are accepted.
    """

    host: str
    port: int
    prefix: str = ""

    @classmethod
    def parse(cls, value: str) -> RuntimeApiAddress:
        """Parse ``host:port``, ``[v6]:port`` or ``http://host:port[/prefix]``.

        What awslambdaric (``host:port``, which Lambda sets) and the Rust runtime (which
        also takes cargo-lambda's ``http://host:port/prefix``) accept; the port is required
        (Lambda always sets one), and the prefix must be a plain URL path, since it goes
        into every request line.

        Raises:
            ValueError: not an address of that form; the message is one line that names
                the variable, quotes the value and says what is wrong.
        """
        text = value.strip()
        if not text:
            raise ValueError("AWS_LAMBDA_RUNTIME_API is empty (want host:port)")

        def bad(why: str) -> ValueError:
            return ValueError(f"AWS_LAMBDA_RUNTIME_API {value!r}{why}")

        if any(c.isspace() or not c.isprintable() for c in text):
            # urlsplit would drop tabs and newlines silently; a space breaks the request line
            raise bad(" has a space or a control character")
        if "?" in text or "#" in text:
            raise bad(" has a query or a fragment (want http://host:port/prefix)")
        try:
            parts = urlsplit(text if "://" in text else f"http://{text}")
            host = parts.hostname or ""
        except ValueError:  # an unclosed [
            raise bad(" has a bad host (want host:port)") from None
        if parts.scheme != "http":
            raise bad(f": scheme {parts.scheme!r} is not supported (want host:port)")
        if parts.username is not None:
            raise bad(" has a user name (want host:port)")
        if not _valid_host(host):
            raise bad(f" has a bad host {host!r} (want host:port)")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port is None:
            raise bad(" has no port (want host:port)")
        if not 0 < port < 65536:
            raise bad(" has a bad port (want host:port, a port from 1 to 65535)")
        prefix = parts.path.rstrip("/")
        if not _PATH.fullmatch(prefix):
            raise bad(f": path prefix {prefix!r} is not a plain URL path (want /a/b)")
        return cls(host, port, prefix)

    @property
    def host_header(self) -> str:
        """The ``Host`` header value."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def path(self, endpoint: str) -> str:
        """The request target for an endpoint under ``/2018-06-01``."""
        return f"{self.prefix}{API_VERSION}{endpoint}"


def _base(address: RuntimeApiAddress) -> list[tuple[str, str]]:
    return [("Host", address.host_header), ("User-Agent", USER_AGENT)]


_check_request_id = invocation_head.check_request_id


def next_request(address: RuntimeApiAddress) -> bytes:
    """``GET /runtime/invocation/next`` (keep-alive; no timeout is ever put on it)."""
    headers = [*_base(address), ("Accept", ACCEPT_NEXT)]
    return encode_request_head("GET", address.path("/runtime/invocation/next"), headers)


def response_request(
    address: RuntimeApiAddress, request_id: str, body_len: int, content_type: str
) -> bytes:
    """Head of a buffered ``POST /runtime/invocation/{id}/response`` (body sent after it)."""
    path = address.path(f"/runtime/invocation/{_check_request_id(request_id)}/response")
    headers = [
        *_base(address),
        ("Content-Type", content_type),
        ("Content-Length", str(body_len)),
    ]
    return encode_request_head("POST", path, headers)


def streaming_response_request(
    address: RuntimeApiAddress, request_id: str, content_type: str
) -> bytes:
    """Head of a streaming ``/response`` (docs/runtime-api.md §3.3.1), byte for byte what .NET
    sends.

    The body follows as chunks; trailers are declared so an error can still be reported once
    streaming has begun.
    """
    path = address.path(f"/runtime/invocation/{_check_request_id(request_id)}/response")
    # No User-Agent here: these are exactly the .NET client's bytes (shared vectors).
    headers = [
        ("Host", address.host_header),
        (H_RESPONSE_MODE, "streaming"),
        ("Content-Type", content_type),
        ("Transfer-Encoding", "chunked"),
        ("Trailer", f"{H_ERROR_TYPE}, {H_ERROR_BODY}"),
    ]
    return encode_request_head("POST", path, headers)


def error_request(
    address: RuntimeApiAddress,
    request_id: str | None,
    error_type: str,
    body_len: int,
    xray_cause: bytes | None = None,
) -> bytes:
    """Head of ``POST /runtime/invocation/{id}/error``, or ``/runtime/init/error`` for None."""
    endpoint = (
        "/runtime/init/error"
        if request_id is None
        else f"/runtime/invocation/{_check_request_id(request_id)}/error"
    )
    headers = [
        *_base(address),
        ("Content-Type", "application/json"),
        (H_ERROR_TYPE, error_type),
        ("Content-Length", str(body_len)),
    ]
    # Clients drop the X-Ray cause at 1 MiB; Lambda caps it at 64 KiB (docs/runtime-api.md §3.4).
    if xray_cause is not None and len(xray_cause) < 64 * 1024:
        headers.append((H_XRAY_CAUSE, xray_cause.decode("utf-8")))
    return encode_request_head("POST", address.path(endpoint), headers)


class RequestHeads:
    """The per-invocation request heads of one address, from templates built once.

    The ``/response`` and ``/error`` heads of two invocations differ only in the request id
    (and the body's length and type): rendering them field by field costs several times
    more than formatting a template. Every head is byte for byte what the builder functions
    above return (tests/protocol compare them); validation is the same, and content types,
    which repeat, are checked once each.
    """

    def __init__(self, address: RuntimeApiAddress) -> None:
        self.next = next_request(address)
        base = f"Host: {address.host_header}\r\nUser-Agent: {USER_AGENT}\r\n".encode("latin-1")
        invocation = address.path("/runtime/invocation/").encode("latin-1")
        self._post = b"POST " + invocation
        self._response_tail = b"/response HTTP/1.1\r\n" + base
        self._error_tail = b"/error HTTP/1.1\r\n" + base
        self._stream_host = f"/response HTTP/1.1\r\nHost: {address.host_header}\r\n".encode(
            "latin-1"
        )
        self._stream_rest = (
            f"\r\nTransfer-Encoding: chunked\r\nTrailer: {H_ERROR_TYPE}, {H_ERROR_BODY}\r\n\r\n"
        ).encode("latin-1")
        self._address = address
        self._types: dict[str, bytes] = {}

    def _field(self, value: str) -> bytes:
        """A header value that repeats (a content type, an error type), checked once."""
        checked = self._types.get(value)
        if checked is None:
            # The builder's checks: latin-1 and no CR, LF or NUL.
            encode_request_head("GET", "/", [("X", value)])
            checked = value.encode("latin-1")
            if len(self._types) < 64:
                self._types[value] = checked
        return checked

    def _id(self, request_id: str) -> bytes:
        return _check_request_id(request_id).encode("latin-1")

    def response(self, request_id: str, body_len: int, content_type: str) -> bytes:
        """Same as ``response_request``."""
        return b"%s%s%sContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
            self._post,
            self._id(request_id),
            self._response_tail,
            self._field(content_type),
            body_len,
        )

    def streaming_response(self, request_id: str, content_type: str) -> bytes:
        """Same as ``streaming_response_request``."""
        return b"%s%s%s%s: streaming\r\nContent-Type: %s%s" % (
            self._post,
            self._id(request_id),
            self._stream_host,
            H_RESPONSE_MODE.encode("latin-1"),
            self._field(content_type),
            self._stream_rest,
        )

    def error(
        self,
        request_id: str | None,
        error_type: str,
        body_len: int,
        xray_cause: bytes | None = None,
    ) -> bytes:
        """Same as ``error_request``; the rare cases (init errors, X-Ray causes) use it."""
        if request_id is None or xray_cause is not None:
            return error_request(self._address, request_id, error_type, body_len, xray_cause)
        return b"%s%s%sContent-Type: application/json\r\n%s: %s\r\nContent-Length: %d\r\n\r\n" % (
            self._post,
            self._id(request_id),
            self._error_tail,
            H_ERROR_TYPE.encode("latin-1"),
            self._field(error_type),
            body_len,
        )


# --- error payloads --------------------------------------------------------------------------


class ErrorPayload(msgspec.Struct):
    """The standard Lambda error body (docs/runtime-api.md §3.4), with awslambdaric's field names.

    ``requestId`` is ``""`` for init errors, as awslambdaric sends it.
    """

    errorMessage: str
    errorType: str
    stackTrace: list[str] = msgspec.field(default_factory=list)
    requestId: str = ""


#: Longest ``errorMessage`` sent (characters). Lambda refuses error bodies past its payload
#: limit and the caller then waits for the timeout; a readable head of the message is better.
MAX_ERROR_MESSAGE = 256 * 1024


def _truncated(message: str, limit: int) -> str:
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... [truncated {len(message) - limit} characters]"


def error_type_of(exc: BaseException) -> str:
    """``error_type`` of our own errors (``Runtime.*``), else the exception's class name.

    Only printable ASCII: the type also travels in a header, which cannot carry the rest.
    """
    declared = getattr(type(exc), "error_type", None)
    if isinstance(declared, str) and declared != "Runtime.Unknown":
        name = declared
    else:
        name = type(exc).__name__
    name = name.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c for c in name if c.isprintable()) or "Runtime.Unknown"


def user_frames(exc: BaseException, internal: tuple[str, ...] = ()) -> list[traceback.FrameSummary]:
    """The traceback of ``exc`` from the first frame outside ``internal`` (path prefixes).

    awslambdaric drops its own leading frames the same way, so that CloudWatch and X-Ray show
    the user's code first; frames after the first user frame are kept, ours included.
    """
    frames = list(traceback.extract_tb(exc.__traceback__))
    for i, frame in enumerate(frames):
        if not frame.filename.startswith(internal):
            return frames[i:]
    return frames


def format_frames(frames: list[traceback.FrameSummary]) -> list[str]:
    """awslambdaric's ``stackTrace`` lines: ``File, line, in name`` and the source line.

    Formatted from plain tuples, so Python 3.11's ``^^^^`` position lines are left out.
    """
    plain = [(f.filename, f.lineno or 0, f.name, f.line) for f in frames]
    return [printable(line) for line in traceback.format_list(plain)]


def error_payload(
    exc: BaseException, request_id: str | None = None, *, internal: tuple[str, ...] = ()
) -> ErrorPayload:
    """Describe ``exc`` the way awslambdaric does; never fails, whatever ``exc`` holds."""
    return ErrorPayload(
        errorMessage=_truncated(safe_str(exc), MAX_ERROR_MESSAGE),
        errorType=error_type_of(exc),
        stackTrace=format_frames(user_frames(exc, internal)),
        requestId=request_id or "",
    )


def xray_cause(exc: BaseException, working_dir: str, internal: tuple[str, ...] = ()) -> bytes:
    """The ``Lambda-Runtime-Function-XRay-Error-Cause`` JSON awslambdaric sends with /error.

    ASCII-only JSON (``ensure_ascii``): it travels in a header.
    """
    frames = user_frames(exc, internal)
    cause = {
        "working_directory": working_dir,
        "exceptions": [
            {
                "message": _truncated(safe_str(exc), 4096),
                "type": error_type_of(exc),
                "stack": [{"label": f.name, "path": f.filename, "line": f.lineno} for f in frames],
            }
        ],
        "paths": sorted({f.filename for f in frames}),
    }
    return json.dumps(cause, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def encode_error(payload: ErrorPayload) -> bytes:
    """JSON body for ``/error`` and ``/init/error``."""
    return msgspec.json.encode(payload)


#: Largest ``Lambda-Runtime-Function-Error-Body`` trailer value sent: trailer sections are
#: small by nature (our decoder, like many HTTP stacks, takes lines of up to 8 KiB).
MAX_ERROR_TRAILER = 6 * 1024


def _fit_for_trailer(payload: ErrorPayload) -> bytes:
    """The payload's JSON, shortened (stack first, then message) to fit in a trailer."""
    body = msgspec.json.encode(payload)
    budget = MAX_ERROR_TRAILER * 3 // 4  # base64 grows it by a third
    if len(body) <= budget:
        return body
    short = msgspec.structs.replace(payload, stackTrace=payload.stackTrace[-5:])
    body = msgspec.json.encode(short)
    if len(body) > budget:
        keep = max(0, len(short.errorMessage) - (len(body) - budget) - 64)
        short = msgspec.structs.replace(short, errorMessage=_truncated(short.errorMessage, keep))
        body = msgspec.json.encode(short)
    if len(body) > budget:
        short = msgspec.structs.replace(short, stackTrace=[])
        body = msgspec.json.encode(short)
    return body


def error_trailers(payload: ErrorPayload) -> list[tuple[str, str]]:
    """The two trailers that end a streamed response in error (docs/runtime-api.md §3.3.3).

    The body is single-line standard base64 of the JSON: raw JSON could carry CR/LF and break
    the chunked framing (docs/runtime-api.md P12).
    """
    body = base64.b64encode(_fit_for_trailer(payload)).decode("ascii")
    return [(H_ERROR_TYPE, payload.errorType), (H_ERROR_BODY, body)]


# --- the /next response ----------------------------------------------------------------------


def parse_next(headers: Headers, now_ms: int) -> InvocationHead:
    """Read the invocation's metadata from the ``/next`` response headers
    (``invocation_head.parse_next`` over their raw fields).

    Raises:
        RemoteProtocolError: no request id.
    """
    return invocation_head.parse_next(headers.raw, now_ms)
