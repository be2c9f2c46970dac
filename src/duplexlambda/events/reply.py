"""The function's answer -> the HTTP response each front sends, sans-I/O (the emulator's
direction).

API Gateway and the ALB read a Lambda proxy response, a JSON object (``statusCode``,
``headers`` / ``multiValueHeaders``, ``cookies`` for payload 2.0, ``body``,
``isBase64Encoded``; ``statusDescription`` for the ALB); a REST API with a streaming
integration reads the same metadata, eight NUL bytes, then the body. What a front cannot read
becomes the error *that service* sends (``service_error``): the emulator shows locally the
failure the client would get on AWS. Rules AWS leaves open are marked UNCONFIRMED here and
listed in docs/fronts-emulator.md. The function URL's own mapping is ``emulator/furl.py``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from duplexlambda.errors import PreludeError

from .fronts import Front, HttpAnswer

#: A REST API streaming integration wants the metadata JSON and its delimiter within the first
#: 16 KB of the stream (read as KiB; UNCONFIRMED which).
MAX_STREAM_METADATA = 16 * 1024

#: A field name is a token (RFC 9110 5.1, 5.6.2); a value is made of octets, i.e. Latin-1.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_LATIN1 = re.compile(r"[\x00-\xff]*")
#: Fields the front frames itself: API Gateway renames a function's to x-amzn-Remapped-<name>;
#: the ALB's handling is UNCONFIRMED (dropped here). Either way they cannot reach the client.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})

_API_GATEWAY = frozenset({Front.HTTP_API_V2, Front.HTTP_API_V1, Front.REST_API})
_ALBS = frozenset({Front.ALB, Front.ALB_MULTI})


class Problem(enum.Enum):
    """Why a front answers the client itself instead of relaying the function's answer."""

    #: the function failed (``/error``, a crash, its own timeout), or its answer is malformed
    INTEGRATION = "integration"
    #: the front's integration timeout ran out before the answer came
    TIMEOUT = "timeout"
    #: the request is over the front's (or Lambda's) payload cap
    TOO_LARGE = "too-large"
    #: REST API: the path is not under the deployed stage
    FORBIDDEN = "forbidden"


# --- header fields --------------------------------------------------------------------------


def header_value(name: str, value: object) -> str:
    """A proxy response's header value as HTTP text (strings, numbers and booleans).

    Raises:
        PreludeError: another JSON type, CR/LF/NUL, or a character outside Latin-1.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = str(value)
        if any(c in text for c in "\r\n\x00"):
            raise PreludeError(f"header {name!r} has CR, LF or NUL in its value")
        if not _LATIN1.fullmatch(text):
            # JSON holds any character, an HTTP field value only octets (RFC 9110 5.5).
            raise PreludeError(f"header {name!r} has a character outside Latin-1 in its value")
        return text
    raise PreludeError(f"header {name!r} has a value of type {type(value).__name__}")


def header_name(name: object) -> str:
    """A proxy response's header name, checked.

    Raises:
        PreludeError: not an HTTP token.
    """
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise PreludeError(f"invalid header name {name!r}")
    return name


def _add(answer: HttpAnswer, front: Front, name: object, value: object) -> None:
    field = header_name(name)
    text = header_value(field, value)
    lower = field.lower()
    if lower == "set-cookie":
        answer.cookies.append(text)
    elif lower in _FRAMING:
        if front in _API_GATEWAY:
            answer.headers.append(("x-amzn-Remapped-" + field, text))
    else:
        answer.headers.append((field, text))


# --- fields of a proxy response -------------------------------------------------------------


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PreludeError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _status(meta: Mapping[str, Any], *, default: int | None = None) -> int:
    if "statusCode" not in meta and default is not None:
        return default
    status = meta.get("statusCode")
    # A numeric string passes (UNCONFIRMED: API Gateway is said to coerce it); a 1xx is
    # interim, and no front sends one for a function.
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise PreludeError(f"missing or invalid statusCode {status!r}")
    return status


def _single_headers(answer: HttpAnswer, front: Front, meta: Mapping[str, Any]) -> None:
    for name, value in _object(meta.get("headers"), "headers").items():
        _add(answer, front, name, value)


def _multi_headers(
    answer: HttpAnswer, front: Front, meta: Mapping[str, Any], *, skip: frozenset[str]
) -> None:
    for name, values in _object(meta.get("multiValueHeaders"), "multiValueHeaders").items():
        if str(name).lower() in skip:
            continue
        if not isinstance(values, list):
            raise PreludeError(f"multiValueHeaders[{name!r}] must be a JSON array")
        for value in values:
            _add(answer, front, name, value)


def _merged_headers(answer: HttpAnswer, front: Front, meta: Mapping[str, Any]) -> None:
    """Payload 1.0: ``headers`` and ``multiValueHeaders`` merged; for a name in both, only
    the ``multiValueHeaders`` values (as API Gateway documents)."""
    multi = _object(meta.get("multiValueHeaders"), "multiValueHeaders")
    in_multi = {str(name).lower() for name in multi}
    for name, value in _object(meta.get("headers"), "headers").items():
        if str(name).lower() not in in_multi:
            _add(answer, front, name, value)
    _multi_headers(answer, front, meta, skip=frozenset())


def _cookies(answer: HttpAnswer, meta: Mapping[str, Any]) -> None:
    cookies = meta.get("cookies")
    if cookies is None:
        return
    if not isinstance(cookies, list):
        raise PreludeError("cookies must be a JSON array")
    for cookie in cookies:
        if not isinstance(cookie, str):
            raise PreludeError(f"a cookie must be a string, not {type(cookie).__name__}")
        answer.cookies.append(header_value("Set-Cookie", cookie))


def _body(meta: Mapping[str, Any]) -> bytes:
    raw = meta.get("body")
    encoded = meta.get("isBase64Encoded")
    if encoded is not None and not isinstance(encoded, bool):
        raise PreludeError(f"isBase64Encoded must be a boolean, not {type(encoded).__name__}")
    if raw is None:
        return b""
    if not isinstance(raw, str):
        # REST's classic "Malformed Lambda proxy response": the body must be a string.
        raise PreludeError(f"body must be a string, not {type(raw).__name__}")
    if encoded:
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PreludeError(f"isBase64Encoded body is not base64: {exc}") from None
    return raw.encode("utf-8")


# --- the answers ------------------------------------------------------------------------------


def read_answer(front: Front, payload: bytes) -> HttpAnswer:
    """The HTTP response ``front`` makes of a function's whole answer (a buffered invoke).

    * HTTP API 2.0: a JSON object with ``statusCode`` is read as ``{statusCode, headers,
      cookies, body, isBase64Encoded}``; any other JSON value is inferred as API Gateway
      documents: 200, ``content-type: application/json``, the value as the body (a string's
      text, else the JSON as sent).
    * HTTP API 1.0 and REST: ``statusCode`` is required; ``headers`` and
      ``multiValueHeaders`` merged.
    * ALB: ``statusCode`` required (``statusDescription`` a string if given); ``headers``
      only, or with multi-value headers on, ``multiValueHeaders`` only.

    Raises:
        PreludeError: what the front cannot read (not JSON, a missing or invalid
            ``statusCode``, a field of the wrong type, a body that is not base64 when it says
            it is); the front then answers ``service_error(front, Problem.INTEGRATION)``.
        ValueError: ``front`` reads no proxy response here (the function URL, NONE).
    """
    if front not in _API_GATEWAY and front not in _ALBS:
        raise ValueError(f"no proxy response mapping here for {front.value}")
    try:
        value = msgspec.json.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise PreludeError("the function's answer is not JSON") from None
    except RecursionError:
        raise PreludeError("the function's answer is nested too deeply") from None
    if front is Front.HTTP_API_V2 and (not isinstance(value, dict) or "statusCode" not in value):
        body = value.encode("utf-8") if isinstance(value, str) else payload
        return HttpAnswer(200, [("content-type", "application/json")], [], body)
    if not isinstance(value, dict):
        raise PreludeError(f"the answer must be a JSON object, not {type(value).__name__}")
    answer = HttpAnswer(_status(value))
    if front is Front.HTTP_API_V2:
        _single_headers(answer, front, value)
        _cookies(answer, value)
    elif front in (Front.HTTP_API_V1, Front.REST_API):
        _merged_headers(answer, front, value)
    else:
        description = value.get("statusDescription")
        if description is not None and not isinstance(description, str):
            raise PreludeError("statusDescription must be a string")
        if front is Front.ALB_MULTI:
            _multi_headers(answer, front, value, skip=frozenset())
        else:
            _single_headers(answer, front, value)
    answer.body = _body(value)
    return answer


def read_stream_metadata(meta: Mapping[str, Any]) -> HttpAnswer:
    """Status and headers from a REST API streaming integration's metadata (the JSON before
    the eight NULs): ``statusCode`` (200 when absent, UNCONFIRMED), ``headers`` and
    ``multiValueHeaders`` merged, ``cookies``. The body follows on the stream.

    Raises:
        PreludeError: a field the front cannot read.
    """
    answer = HttpAnswer(_status(meta, default=200))
    _merged_headers(answer, Front.REST_API, meta)
    _cookies(answer, meta)
    return answer


# --- what the service says itself ------------------------------------------------------------

_JSON = "application/json"

#: API Gateway's REST API gateway responses (body, and the x-amzn-ErrorType where known).
_REST: dict[Problem, tuple[int, bytes, str | None]] = {
    Problem.INTEGRATION: (
        502,
        b'{"message": "Internal server error"}',
        "InternalServerErrorException",
    ),
    Problem.TIMEOUT: (504, b'{"message": "Endpoint request timed out"}', None),
    Problem.TOO_LARGE: (413, b'{"message":"Request Too Long"}', None),
    Problem.FORBIDDEN: (403, b'{"message":"Forbidden"}', "ForbiddenException"),
}
#: API Gateway's HTTP API errors: 500 for a failed or malformed integration (UNCONFIRMED that
#: it is not 502), 503 when the 30 s integration timeout runs out.
_HTTP_API: dict[Problem, tuple[int, bytes]] = {
    Problem.INTEGRATION: (500, b'{"message":"Internal Server Error"}'),
    Problem.TIMEOUT: (503, b'{"message":"Service Unavailable"}'),
    Problem.TOO_LARGE: (413, b'{"message":"Request Entity Too Large"}'),
    Problem.FORBIDDEN: (403, b'{"message":"Forbidden"}'),
}
_ALB_STATUS = {
    Problem.INTEGRATION: 502,
    Problem.TIMEOUT: 502,  # a Lambda target that times out is a 502 too
    Problem.TOO_LARGE: 413,
    Problem.FORBIDDEN: 403,
}
_REASONS = {502: "Bad Gateway", 413: "Request Entity Too Large", 403: "Forbidden"}


def _alb_page(status: int) -> bytes:
    title = f"{status} {_REASONS[status]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    ).encode("ascii")


def service_error(front: Front, problem: Problem, request_id: str = "") -> HttpAnswer:
    """The response ``front`` itself sends for ``problem``.

    REST API: 502 ``{"message": "Internal server error"}`` with ``x-amzn-ErrorType:
    InternalServerErrorException``, 504 on its integration timeout, 413, 403 outside the stage;
    ``x-amzn-RequestId`` is ``request_id``. HTTP API: 500 ``{"message":"Internal Server
    Error"}``, 503 on its timeout, 413; ``apigw-requestid``. ALB: an HTML page, 502 Bad
    Gateway (413 for a request body over 1 MB), ``Server: awselb/2.0``.

    Raises:
        ValueError: ``front`` is not an API Gateway API or an ALB.
    """
    if front is Front.REST_API:
        status, body, error_type = _REST[problem]
        headers = [("Content-Type", _JSON)]
        if request_id:
            headers.append(("x-amzn-RequestId", request_id))
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
        return HttpAnswer(status, headers, [], body)
    if front in (Front.HTTP_API_V2, Front.HTTP_API_V1):
        status, body = _HTTP_API[problem]
        headers = [("Content-Type", _JSON)]
        if request_id:
            headers.append(("apigw-requestid", request_id))
        return HttpAnswer(status, headers, [], body)
    if front in _ALBS:
        status = _ALB_STATUS[problem]
        fields = [("Server", "awselb/2.0"), ("Content-Type", "text/html")]
        return HttpAnswer(status, fields, [], _alb_page(status))
    raise ValueError(f"no service errors here for {front.value}")


def response_fields(answer: HttpAnswer) -> list[tuple[str, str]]:
    """``answer``'s header fields as sent: its headers, then one ``Set-Cookie`` per cookie."""
    return [*answer.headers, *(("Set-Cookie", cookie) for cookie in answer.cookies)]
