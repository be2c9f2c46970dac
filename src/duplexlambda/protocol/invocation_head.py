"""The ``/next`` response's headers, read into an ``InvocationHead`` (docs/runtime-api.md §2).

Sans-I/O and light on purpose (no msgspec, typing or dataclasses at import): both engines read
every invocation through it, the blocking one from the first cold start on.
"""

from __future__ import annotations

from duplexlambda import __version__
from duplexlambda.errors import LocalProtocolError, RemoteProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


#: Who we are, in every request to the Runtime API.
USER_AGENT = f"duplexlambda/{__version__}"

# Header names as Lambda spells them (matching is case-insensitive, docs/runtime-api.md §1).
H_REQUEST_ID = "Lambda-Runtime-Aws-Request-Id"
H_DEADLINE = "Lambda-Runtime-Deadline-Ms"
H_ARN = "Lambda-Runtime-Invoked-Function-Arn"
H_TRACE = "Lambda-Runtime-Trace-Id"
H_CLIENT_CONTEXT = "Lambda-Runtime-Client-Context"
H_COGNITO = "Lambda-Runtime-Cognito-Identity"
H_TENANT = "Lambda-Runtime-Aws-Tenant-Id"

#: An emulator that sends no deadline gets Lambda's longest timeout.
DEFAULT_TIMEOUT_MS = 900_000


class InvocationHead:
    """What ``/next`` says about an invocation, from its response headers (immutable)."""

    __slots__ = (
        "client_context",
        "cognito_identity",
        "content_type",
        "deadline_ms",
        "invoked_function_arn",
        "request_id",
        "tenant_id",
        "trace_id",
    )

    request_id: str
    deadline_ms: int
    invoked_function_arn: str
    trace_id: str | None
    client_context: str | None  # JSON text; parsed (and its errors reported) per invocation
    cognito_identity: str | None
    tenant_id: str | None
    content_type: str

    def __init__(
        self,
        request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        trace_id: str | None,
        client_context: str | None,
        cognito_identity: str | None,
        tenant_id: str | None,
        content_type: str,
    ) -> None:
        init = object.__setattr__  # frozen: our own __setattr__ refuses
        init(self, "request_id", request_id)
        init(self, "deadline_ms", deadline_ms)
        init(self, "invoked_function_arn", invoked_function_arn)
        init(self, "trace_id", trace_id)
        init(self, "client_context", client_context)
        init(self, "cognito_identity", cognito_identity)
        init(self, "tenant_id", tenant_id)
        init(self, "content_type", content_type)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"InvocationHead is immutable (cannot set {name})")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InvocationHead):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"InvocationHead({fields})"


_NOT_IN_REQUEST_ID = frozenset("/?#% \r\n\t\x00")


def check_request_id(request_id: str) -> str:
    """``request_id``, checked: it lands in a request target, so nothing that could change
    the path.

    Raises:
        LocalProtocolError: a character that does not belong in one path segment.
    """
    if not request_id or not _NOT_IN_REQUEST_ID.isdisjoint(request_id):
        raise LocalProtocolError(f"invalid request id {request_id!r}")
    return request_id


#: The ``/next`` header fields read, lowercased, each to its slot in ``parse_next``.
_NEXT_FIELDS = {
    name.lower().encode("latin-1"): slot
    for slot, name in enumerate(
        (
            H_REQUEST_ID,
            H_DEADLINE,
            H_ARN,
            H_TRACE,
            H_CLIENT_CONTEXT,
            H_COGNITO,
            H_TENANT,
            "Content-Type",
        )
    )
}


def parse_next(fields: Iterable[tuple[bytes, bytes]], now_ms: int) -> InvocationHead:
    """Read the invocation's metadata from the ``/next`` response's header fields.

    One pass over the raw ``(name, value)`` pairs, keeping the first of each name: both
    engines read ``/next`` here (the asyncio one gives ``Headers.raw``), and building a
    lookup index first would cost more than the whole parse.

    Args:
        fields: the response's header fields, as received.
        now_ms: the current epoch time in ms; used when an emulator sends no deadline.

    Raises:
        RemoteProtocolError: no request id (aws-lambda-cpp fails ``next`` then too).
    """
    found: list[bytes | None] = [None] * len(_NEXT_FIELDS)
    for name, value in fields:
        slot = _NEXT_FIELDS.get(name.lower())
        if slot is not None and found[slot] is None:
            found[slot] = value
    rid, raw_deadline, arn, trace, client_context, cognito, tenant, ctype = found
    request_id = rid.decode("latin-1") if rid else ""
    if not request_id:
        raise RemoteProtocolError(f"/next response without {H_REQUEST_ID}")
    try:
        deadline = int(raw_deadline or b"")
    except ValueError:
        deadline = 0
    # cargo-lambda sends a constant 600000 (not an epoch, docs/runtime-api.md P3): read small
    # values as relative.
    if deadline < 10**12:
        deadline = now_ms + (deadline or DEFAULT_TIMEOUT_MS)
    return InvocationHead(
        request_id=request_id,
        deadline_ms=deadline,
        invoked_function_arn=arn.decode("latin-1") if arn else "",
        trace_id=trace.decode("latin-1") if trace else None,
        client_context=_json_text(client_context),
        cognito_identity=_json_text(cognito),
        tenant_id=tenant.decode("latin-1") if tenant else None,
        content_type=(ctype or b"application/json").decode("latin-1"),
    )


def _json_text(value: bytes | None) -> str | None:
    # JSON documents: UTF-8 when a platform sends raw non-ASCII; undecodable bytes become
    # U+FFFD instead of failing the whole /next (the context parser judges the rest).
    return value.decode("utf-8", "replace") if value else None
