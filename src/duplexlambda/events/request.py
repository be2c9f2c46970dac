"""Which front sent an event, and the HTTP request inside it (docs/fronts.md).

``detect(event)`` reads the event's shape; ``parse_request(event)`` applies that front's rules.
The rules differ where it matters most, in what is already percent-encoded:

* payload 2.0 (function URLs, HTTP APIs): ``rawPath`` and ``rawQueryString`` are as the client
  sent them; repeated headers arrive comma-joined; cookies in their own ``cookies`` array;
* payload 1.0 (HTTP APIs, REST APIs): query values in ``multiValueQueryStringParameters`` are
  already *decoded* (so ``raw_query`` re-encodes them; a value is never split on ``&``, ``=``
  or ``+``); headers come from ``multiValueHeaders`` when present; the REST ``path`` leaves
  out the stage that ``requestContext.path`` has;
* ALB: query names and values are *as the client sent them*, still encoded (never encoded a
  second time); in multi-value mode only ``multiValueHeaders`` and
  ``multiValueQueryStringParameters`` exist.

Sans-I/O and total: odd field types are read as empty, never raised on (an event is data the
function did not choose), except a body flagged base64 that is not (``BadEventBody``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_plus

from duplexlambda.events.body import decode_body
from duplexlambda.events.fronts import Front, HttpRequest

#: Characters kept as they are when a decoded path is put back into URL form: RFC 3986
#: ``pchar`` and ``/``, plus ``%`` so that a path that is already encoded stays as it is.
_PATH_SAFE = "/:@!$&'()*+,;=%-._~"
#: ... and for a decoded query name or value: everything but ``&``, ``=``, ``+``, ``#`` and
#: ``%``, which would change how the query splits or decodes.
_QUERY_SAFE = "/:@!$'()*,;?-._~"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, default: str = "") -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


def _values(value: Any) -> list[str]:
    """A multi-value field's list (a lone value is a list of one; ``None`` none)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [_text(v) for v in value if v is not None]
    return [_text(value)]


# --- which front ---------------------------------------------------------------------------------


def _host(domain: str) -> tuple[str, bool]:
    """A domain name's host part, and whether it carried a port."""
    if domain.startswith("["):  # [v6]:port
        host, _, rest = domain[1:].partition("]")
        return host, rest.startswith(":")
    host, sep, port = domain.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, True
    return domain, False


def is_function_url_domain(domain: str) -> bool:
    """Whether a payload-2.0 event's domain is a function URL's rather than an HTTP API's.

    On AWS, a function URL's ``requestContext.domainName`` is always
    ``<url-id>.lambda-url.<region>.on.aws`` (a URL has no custom domains), and an HTTP API's is
    ``<api-id>.execute-api...`` or a custom domain name. A domain that no API Gateway domain can
    be (none at all, a port, ``localhost``, an IP address, a name without a dot) is a local
    emulator's function URL or a hand-written event, which have always been answered as a
    function URL.
    """
    if not domain or ".lambda-url." in domain:
        return True
    host, has_port = _host(domain.strip().lower())
    if has_port or "." not in host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _domain(event: Mapping[str, Any], ctx: Mapping[str, Any]) -> str:
    domain = _text(ctx.get("domainName"))
    if domain:
        return domain
    for name, value in _dict(event.get("headers")).items():
        if isinstance(name, str) and name.lower() == "host":
            return _text(value)
    for name, values in _dict(event.get("multiValueHeaders")).items():
        if isinstance(name, str) and name.lower() == "host" and _values(values):
            return _values(values)[0]
    return ""


def detect(event: Any) -> Front:
    """The front that sent ``event``, read from its shape (docs/fronts.md#detect).

    * ``requestContext.elb``: an ALB; ``ALB_MULTI`` when the event has ``multiValueHeaders``
      and no ``headers`` (the target group's multi-value setting);
    * ``requestContext.http`` or ``"version": "2.0"``: payload 2.0, a function URL when the
      domain is one (``is_function_url_domain``), else an HTTP API;
    * ``httpMethod``: payload 1.0; ``"version": "1.0"`` is an HTTP API (HTTP APIs always write
      it), no version a REST API (REST APIs never write one);
    * anything else (S3, SQS, a direct invoke, a WebSocket API): ``Front.NONE``.
    """
    if not isinstance(event, dict):
        return Front.NONE
    ctx = event.get("requestContext")
    if not isinstance(ctx, dict):
        return Front.NONE
    if isinstance(ctx.get("elb"), dict):
        multi = event.get("headers") is None and isinstance(event.get("multiValueHeaders"), dict)
        return Front.ALB_MULTI if multi else Front.ALB
    version = event.get("version")
    if isinstance(ctx.get("http"), dict) or version == "2.0":
        if is_function_url_domain(_domain(event, ctx)):
            return Front.FUNCTION_URL
        return Front.HTTP_API_V2
    if "httpMethod" in event or "httpMethod" in ctx:
        return Front.HTTP_API_V1 if version == "1.0" else Front.REST_API
    return Front.NONE


# --- the pieces every front has ------------------------------------------------------------------


def _header_lists(pairs: Iterable[tuple[Any, Any]]) -> dict[str, list[str]]:
    """Names lower-cased; names that differ only in case are one field."""
    headers: dict[str, list[str]] = {}
    for name, values in pairs:
        if not isinstance(name, str):
            continue
        headers.setdefault(name.lower(), []).extend(_values(values))
    return headers


def _single_headers(event: Mapping[str, Any]) -> dict[str, list[str]]:
    return _header_lists(_dict(event.get("headers")).items())


def _multi_headers(event: Mapping[str, Any]) -> dict[str, list[str]]:
    return _header_lists(_dict(event.get("multiValueHeaders")).items())


def parse_cookies(header_values: Iterable[str]) -> dict[str, str]:
    """Cookies from ``Cookie`` header values (``a=1; b=2``) or 2.0 ``cookies`` entries.

    Lenient, as browsers send them: pairs without ``=`` are skipped, surrounding quotes
    removed, a repeated name keeps its last value.
    """
    jar: dict[str, str] = {}
    for value in header_values:
        for pair in value.split(";"):
            name, sep, val = pair.strip().partition("=")
            name = name.strip()
            if not sep or not name:
                continue
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1]
            jar[name] = val
    return jar


def _query_lists(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for key, value in pairs:
        query.setdefault(key, []).append(value)
    return query


def _encoded_path(path: str) -> str:
    """A path in URL form: left as it is when already encoded, else percent-encoded."""
    return quote(path, safe=_PATH_SAFE)


def _strip_stage(path: str, stage: str, domain: str) -> str:
    """The ``/stage`` prefix of an HTTP API path on its execute-api domain ("" if none).

    A named stage is in the path a client uses on ``<id>.execute-api...``; on a custom domain
    the API mapping replaces it, and the event does not say what it was.
    """
    if not stage or stage == "$default" or ".execute-api." not in domain:
        return ""
    prefix = "/" + stage
    return prefix if path == prefix or path.startswith(prefix + "/") else ""


def _base_path_1_0(path: str, ctx: Mapping[str, Any]) -> str:
    """What of ``requestContext.path`` (the path the client used) is not in ``path``.

    For a REST API on its execute-api domain that is ``/stage``; on a custom domain, the
    base path mapping (when API Gateway reports one).
    """
    full = _text(ctx.get("path"))
    prefix = ""
    if full != path and full.endswith(path):
        prefix = full[: len(full) - len(path)]
    elif path == "/" and full.rstrip("/"):
        prefix = full
    prefix = prefix.rstrip("/")
    return prefix if prefix.startswith("/") else ""


# --- each format ----------------------------------------------------------------------------------


def _parse_2_0(event: Mapping[str, Any], front: Front) -> HttpRequest:
    ctx = _dict(event.get("requestContext"))
    http = _dict(ctx.get("http"))
    domain = _domain(event, ctx)
    stage = _text(ctx.get("stage"))
    raw_path = _text(event.get("rawPath")) or _encoded_path(_text(http.get("path"), "/")) or "/"
    base = _strip_stage(raw_path, stage, domain) if front is Front.HTTP_API_V2 else ""
    path = unquote(raw_path[len(base) :]) or "/"
    raw_query = _text(event.get("rawQueryString"))
    headers = _single_headers(event)
    cookie_list = [_text(c) for c in _values(event.get("cookies"))]
    if cookie_list and "cookie" not in headers:
        # 2.0 moves the Cookie header into ``cookies``: put it back, so that every front's
        # headers are what the client sent.
        headers["cookie"] = ["; ".join(cookie_list)]
    return HttpRequest(
        front=front,
        method=_text(http.get("method"), "GET").upper(),
        path=path,
        raw_path=raw_path,
        raw_query=raw_query,
        query=_query_lists(parse_qsl(raw_query, keep_blank_values=True)),
        headers=headers,
        cookies=parse_cookies(cookie_list or headers.get("cookie", [])),
        body=decode_body(event.get("body"), event.get("isBase64Encoded")),
        source_ip=_text(http.get("sourceIp")),
        stage=stage,
        base_path=base,
        domain=domain,
    )


def _decoded_query_1_0(event: Mapping[str, Any]) -> dict[str, list[str]]:
    multi = _dict(event.get("multiValueQueryStringParameters"))
    if multi:
        return {_text(k): _values(v) for k, v in multi.items()}
    return {_text(k): _values(v) for k, v in _dict(event.get("queryStringParameters")).items()}


def _encode_query(query: Mapping[str, list[str]]) -> str:
    return "&".join(
        f"{quote(key, safe=_QUERY_SAFE)}={quote(value, safe=_QUERY_SAFE)}"
        for key, values in query.items()
        for value in values
    )


def _parse_1_0(event: Mapping[str, Any], front: Front) -> HttpRequest:
    ctx = _dict(event.get("requestContext"))
    domain = _domain(event, ctx)
    stage = _text(ctx.get("stage"))
    path = _text(event.get("path")) or _text(ctx.get("path")) or "/"
    base = _base_path_1_0(path, ctx)
    if not base and front is Front.HTTP_API_V1:
        base = _strip_stage(path, stage, domain)  # a named stage, still in ``path``
        path = path[len(base) :] or "/"
    raw_path = _encoded_path(base + path)
    query = _decoded_query_1_0(event)
    headers = _multi_headers(event) if event.get("multiValueHeaders") else {}
    if not headers:
        headers = _single_headers(event)
    method = _text(event.get("httpMethod")) or _text(ctx.get("httpMethod"), "GET")
    return HttpRequest(
        front=front,
        method=method.upper(),
        path=unquote(_encoded_path(path)),
        raw_path=raw_path,
        raw_query=_encode_query(query),
        query=query,
        headers=headers,
        cookies=parse_cookies(headers.get("cookie", [])),
        body=decode_body(event.get("body"), event.get("isBase64Encoded")),
        source_ip=_text(_dict(ctx.get("identity")).get("sourceIp")),
        stage=stage,
        base_path=base,
        domain=domain,
    )


def _parse_alb(event: Mapping[str, Any], front: Front) -> HttpRequest:
    if front is Front.ALB_MULTI:
        headers = _multi_headers(event)
        raw_pairs = [
            (_text(k), v)
            for k, vs in _dict(event.get("multiValueQueryStringParameters")).items()
            for v in _values(vs)
        ]
    else:
        headers = _single_headers(event)
        raw_pairs = [
            (_text(k), _text(v)) for k, v in _dict(event.get("queryStringParameters")).items()
        ]
    # The ALB passes names and values as the client sent them, still URL-encoded.
    raw_query = "&".join(f"{k}={v}" for k, v in raw_pairs)
    raw_path = _encoded_path(_text(event.get("path"), "/") or "/")
    forwarded = headers.get("x-forwarded-for", [])
    # The ALB appends the address it saw to X-Forwarded-For: the last entry is the client.
    source_ip = forwarded[-1].split(",")[-1].strip() if forwarded else ""
    return HttpRequest(
        front=front,
        method=_text(event.get("httpMethod"), "GET").upper(),
        path=unquote(raw_path),
        raw_path=raw_path,
        raw_query=raw_query,
        query=_query_lists((unquote_plus(k), unquote_plus(v)) for k, v in raw_pairs),
        headers=headers,
        cookies=parse_cookies(headers.get("cookie", [])),
        body=decode_body(event.get("body"), event.get("isBase64Encoded")),
        source_ip=source_ip,
        domain=(headers.get("host") or [""])[0],
    )


def parse_request(event: Any) -> HttpRequest | None:
    """The HTTP request inside ``event``, by its front's rules; None when it is not one.

    Raises:
        BadEventBody: a body flagged ``isBase64Encoded`` that is not base64.
    """
    front = detect(event)
    if front in (Front.FUNCTION_URL, Front.HTTP_API_V2):
        return _parse_2_0(event, front)
    if front in (Front.HTTP_API_V1, Front.REST_API):
        return _parse_1_0(event, front)
    if front in (Front.ALB, Front.ALB_MULTI):
        return _parse_alb(event, front)
    return None
