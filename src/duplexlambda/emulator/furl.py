"""Function-URL mapping, sans-I/O: HTTP request -> payload-format 2.0 event, and the
runtime's answer (a prelude, or a buffered result object) -> HTTP status and headers.

The event follows docs/runtime-api.md §6; where AWS's exact rule is UNCONFIRMED the choice is
named at the spot. No asyncio here: the front and the Runtime API call these.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from duplexlambda.errors import PreludeError
from duplexlambda.events.body import is_text
from duplexlambda.events.build import HttpRequestInfo as HttpRequestInfo
from duplexlambda.events.build import field_text, v2_request_context
from duplexlambda.events.reply import header_name, header_value
from duplexlambda.protocol.http1 import Headers

#: The text-or-base64 rule every front shares (docs/fronts.md#bodies), under its old name here.
is_text_body = is_text

#: Response header fields that would break our own framing of the client response; AWS
#: moves ``content-length`` aside the same way (docs/runtime-api.md §5.3), we do it for all three.
_REMAPPED = frozenset({"content-length", "transfer-encoding", "connection"})


def _event_headers(headers: Headers) -> tuple[dict[str, str], list[str]]:
    """Lower-case names, repeated fields comma-joined, cookies split out."""
    joined: dict[str, list[str]] = {}
    for name, value in headers:
        joined.setdefault(name.decode("latin-1").lower(), []).append(field_text(value))
    cookies = [c.strip() for v in joined.pop("cookie", []) for c in v.split(";") if c.strip()]
    return {name: ",".join(values) for name, values in joined.items()}, cookies


def _query_parameters(raw_query: str) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    return {key: ",".join(values) for key, values in params.items()}


def build_event(info: HttpRequestInfo) -> dict[str, Any]:
    """The payload-format 2.0 event without ``body``/``isBase64Encoded`` (docs/runtime-api.md §6).

    Empty ``cookies`` and ``queryStringParameters`` are omitted and ``rawQueryString`` is
    ``""`` when there is none, as the doc's recommended defaults say; the ``cookie`` header
    is dropped once ``cookies`` carries it (UNCONFIRMED, as API Gateway HTTP APIs do).
    """
    headers, cookies = _event_headers(info.headers)
    headers.update(info.extra_headers)
    host = headers.get("host", "localhost")
    prefix = host.split(".", 1)[0].split(":", 1)[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": info.raw_path,
        "rawQueryString": info.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    params = _query_parameters(info.raw_query)
    if params:
        event["queryStringParameters"] = params
    # A URL with auth type NONE reports the account as "anonymous" (UNCONFIRMED).
    event["requestContext"] = v2_request_context(info, headers, "anonymous", prefix, host)
    event["pathParameters"] = None
    event["stageVariables"] = None
    return event


def with_body(event: Mapping[str, Any], body: bytes, content_type: str | None) -> bytes:
    """The whole buffered event as JSON: ``event`` plus ``body`` and ``isBase64Encoded``.

    An empty body adds no ``body`` field (as cargo-lambda; UNCONFIRMED for AWS).
    """
    full = dict(event)
    if body:
        if is_text_body(content_type, body):
            full["body"] = body.decode("utf-8")
            full["isBase64Encoded"] = False
        else:
            full["body"] = base64.b64encode(body).decode("ascii")
            full["isBase64Encoded"] = True
    else:
        full["isBase64Encoded"] = False
    return msgspec.json.encode(full)


# --- the runtime's answer -> HTTP ---------------------------------------------------------------

HeaderList = list[tuple[str, str]]


def _field_name(name: object) -> str:
    checked = header_name(name)
    if checked.lower() in _REMAPPED:
        return "x-amzn-remapped-" + checked.lower()
    return checked


def _add_fields(out: HeaderList, name: object, value: object) -> None:
    header = _field_name(name)
    values = value if isinstance(value, list) else [value]
    # An array value becomes one field line per element (Rust's http_serde writes repeated
    # headers as arrays; joining them would break Set-Cookie-like fields). UNCONFIRMED.
    out.extend((header, header_value(header, v)) for v in values)


def http_head(meta: Mapping[str, Any]) -> tuple[int, HeaderList]:
    """Status and header fields from a prelude or a buffered result object.

    ``headers`` (string or array values), ``multiValueHeaders`` for names not already in
    ``headers``, and each of ``cookies`` as a ``Set-Cookie`` field.

    Raises:
        PreludeError: a status outside 200-599, or headers that could not be sent safely.
    """
    status = meta.get("statusCode", 200)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    # A 1xx is interim: the client would take the answer to its next request as the final
    # one. A function cannot send one (Runtime.InvalidResponse, like any unmappable answer).
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise PreludeError(f"invalid statusCode {status!r}")
    fields: HeaderList = []
    headers = meta.get("headers") or {}
    multi = meta.get("multiValueHeaders") or {}
    cookies = meta.get("cookies") or []
    if not isinstance(headers, dict) or not isinstance(multi, dict):
        raise PreludeError("headers and multiValueHeaders must be JSON objects")
    if not isinstance(cookies, list):
        raise PreludeError("cookies must be a JSON array")
    for name, value in headers.items():
        _add_fields(fields, name, value)
    seen = {str(name).lower() for name in headers}
    for name, values in multi.items():
        if str(name).lower() not in seen:
            _add_fields(fields, name, values if isinstance(values, list) else [values])
    for cookie in cookies:
        fields.append(("Set-Cookie", header_value("Set-Cookie", cookie)))
    return status, fields


@dataclass
class HttpResult:
    """A whole HTTP response for the client."""

    status: int
    headers: HeaderList
    body: bytes


def map_buffered_response(body: bytes, content_type: str | None) -> HttpResult:
    """Map a buffered runtime response as function URLs do (docs/runtime-api.md §6).

    A JSON object with ``statusCode`` is ``{statusCode, headers, body, cookies,
    isBase64Encoded}``; any other JSON is sent as-is, 200, ``application/json``. A body that
    is not JSON at all is sent as-is with the runtime's content type (UNCONFIRMED).

    Raises:
        PreludeError: a result object that cannot be turned into a response.
    """
    try:
        value = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        ctype = content_type or "application/octet-stream"
        return HttpResult(200, [("Content-Type", ctype)], body)
    if not isinstance(value, dict) or "statusCode" not in value:
        return HttpResult(200, [("Content-Type", "application/json")], body)
    status, headers = http_head(value)
    return HttpResult(status, headers, _result_body(value))


def _result_body(value: Mapping[str, Any]) -> bytes:
    raw = value.get("body")
    if raw is None:
        return b""
    if not isinstance(raw, str):
        return msgspec.json.encode(raw)
    if value.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PreludeError(f"isBase64Encoded body is not base64: {exc}") from None
    return raw.encode("utf-8")
