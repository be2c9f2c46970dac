"""HTTP request -> the event each front sends, sans-I/O (the emulator's direction).

API Gateway HTTP APIs (payload 2.0 and 1.0), REST APIs and Application Load Balancers each put
the same request into a different event. The shapes here follow AWS's documentation of each
event, in our words; where the documentation leaves a rule open, the choice is marked
UNCONFIRMED at the spot and listed in docs/fronts-emulator.md. The function-URL event (2.0 with
``*.lambda-url.*`` names) is built by ``emulator/furl.py``, from the helpers at the top.

No I/O and no clocks: the caller passes the request, its ids and ``now_ms``.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import msgspec

from duplexlambda.protocol.http1 import Headers

from .body import encode_body, is_text
from .fronts import Front

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# --- shared by every HTTP front (the function URL included) ----------------------------------


def clf_time(epoch_ms: int) -> str:
    """``epoch_ms`` in common-log format (``02/Dec/2026:16:51:56 +0000``), as events carry it."""
    t = time.gmtime(epoch_ms / 1000)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def field_text(value: bytes) -> str:
    """A request field value as sent: UTF-8 when it is valid UTF-8 (what clients send for
    non-ASCII text), else its octets as Latin-1 (RFC 9110 5.5 obs-text)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


#: The one text-or-base64 rule (docs/fronts.md#bodies), under the emulator's old name.
is_text_body = is_text


def body_fields(body: bytes, content_type: str | None) -> tuple[str, bool]:
    """``(body, isBase64Encoded)`` for an event: text as is, anything else base64."""
    return encode_body(body, content_type)


@dataclass
class HttpRequestInfo:
    """What of an HTTP request goes into an event (everything but the body)."""

    method: str
    #: the path as sent (percent-encoded as the client sent it)
    raw_path: str
    #: the query string as sent, without ``?``
    raw_query: str
    headers: Headers
    source_ip: str
    #: the id the front gives the request (``requestContext.requestId``)
    request_id: str
    now_ms: int
    #: headers the front adds (lower-case names: ``x-forwarded-for``, ``x-amzn-trace-id``...);
    #: each replaces a header of the same name the client sent
    extra_headers: dict[str, str] = field(default_factory=dict)


# --- the fronts' settings ---------------------------------------------------------------------

#: The API id of the emulated API Gateway APIs: ten lower-case letters and digits, as AWS's.
DEFAULT_API_ID = "duplexlmbd"
#: The REST API's ``/{proxy+}`` resource id (AWS: six lower-case letters and digits).
DEFAULT_RESOURCE_ID = "pr0xy1"


@dataclass(frozen=True)
class FrontSettings:
    """What an API or a target group says about itself in every event."""

    region: str = "us-east-1"
    account_id: str = "123456789012"
    api_id: str = DEFAULT_API_ID
    #: the REST API's stage; HTTP APIs serve ``$default``, whose path has no stage prefix
    stage: str = "prod"
    resource_id: str = DEFAULT_RESOURCE_ID
    #: the ALB target group's name (its ARN ends with it and 16 hex digits)
    target_group: str = "function"

    @property
    def domain_name(self) -> str:
        """``<api-id>.execute-api.<region>.amazonaws.com``."""
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    @property
    def target_group_arn(self) -> str:
        digest = hashlib.sha256(self.target_group.encode()).hexdigest()[:16]
        return (
            f"arn:aws:elasticloadbalancing:{self.region}:{self.account_id}:"
            f"targetgroup/{self.target_group[:32]}/{digest}"
        )


@dataclass(frozen=True)
class RouteMatch:
    """The route of an API that a request matched (``serve --template``), where the
    default events name the catch-all one (``$default``, ``/{proxy+}``).

    Attributes:
        route_key: an HTTP API's ``routeKey`` (``"GET /items/{id}"``).
        resource: a REST API's ``resource`` (``"/items/{id}"``).
        path_parameters: the path's ``{name}`` / ``{name+}`` values, decoded; None for none.
    """

    route_key: str
    resource: str
    path_parameters: dict[str, str] | None = None


def gateway_request_id() -> str:
    """An HTTP API request id, as API Gateway's look (``apigw-requestid``): 16 characters of
    base64."""
    return base64.b64encode(uuid.uuid4().bytes[:11]).decode("ascii")


def _short_id(request_id: str) -> str:
    """REST's ``extendedRequestId``, derived from its (UUID) ``requestId``."""
    try:
        raw = uuid.UUID(request_id).bytes
    except ValueError:
        raw = hashlib.sha256(request_id.encode()).digest()
    return base64.b64encode(raw[:11]).decode("ascii")


# --- headers and query strings, per front's rule ------------------------------------------------


def _title(name: str) -> str:
    """``x-forwarded-for`` -> ``X-Forwarded-For`` (API Gateway 1.0 spells its own so)."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _grouped(info: HttpRequestInfo, *, title_extra: bool) -> list[tuple[str, list[str]]]:
    """Header fields grouped by name (any case), each under its first spelling, values in
    order; the front's own headers replace the client's of the same name."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for raw_name, raw_value in info.headers:
        name = raw_name.decode("latin-1")
        groups.setdefault(name.lower(), (name, []))[1].append(field_text(raw_value))
    for name, value in info.extra_headers.items():
        groups[name.lower()] = (_title(name) if title_extra else name.lower(), [value])
    return list(groups.values())


def _decoded_query(raw_query: str) -> list[tuple[str, str]]:
    return parse_qsl(raw_query, keep_blank_values=True)


def _encoded_query(raw_query: str) -> list[tuple[str, str]]:
    """Query pairs as sent, percent-encoding kept (the ALB does not decode them)."""
    pairs = []
    for part in raw_query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((key, value))
    return pairs


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def _last(multi: Mapping[str, list[str]]) -> dict[str, str]:
    return {key: values[-1] for key, values in multi.items()}


def _user_agent(groups: list[tuple[str, list[str]]]) -> str:
    return next((values[-1] for name, values in groups if name.lower() == "user-agent"), "")


# --- HTTP API, payload format 2.0 -----------------------------------------------------------


def v2_request_context(
    info: HttpRequestInfo, headers: Mapping[str, str], account_id: str, api_id: str, domain: str
) -> dict[str, Any]:
    """The ``requestContext`` of a payload-format 2.0 event (function URL or HTTP API)."""
    return {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": api_id,
        "http": {
            "method": info.method,
            "path": info.raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": info.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": info.request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": clf_time(info.now_ms),
        "timeEpoch": info.now_ms,
    }


def http_api_event(
    info: HttpRequestInfo,
    body: bytes,
    content_type: str | None,
    settings: FrontSettings,
    *,
    route: RouteMatch | None = None,
) -> dict[str, Any]:
    """An HTTP API's payload-format 2.0 event for its ``$default`` route and stage (or, given
    ``route``, for that route: its ``routeKey`` and ``pathParameters``).

    Header names lower-cased, repeated fields and query parameters comma-joined (values
    decoded), ``cookies`` split out of the ``cookie`` header (which is then dropped), empty
    ``cookies`` / ``queryStringParameters`` / ``body`` left out.
    """
    joined = {name.lower(): values for name, values in _grouped(info, title_extra=False)}
    cookies = [c.strip() for v in joined.pop("cookie", []) for c in v.split(";") if c.strip()]
    headers = {name: ",".join(values) for name, values in joined.items()}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": info.raw_path,
        "rawQueryString": info.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    params = _multi(_decoded_query(info.raw_query))
    if params:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in params.items()}
    event["requestContext"] = v2_request_context(
        info, headers, settings.account_id, settings.api_id, settings.domain_name
    )
    if route is not None:
        event["routeKey"] = event["requestContext"]["routeKey"] = route.route_key
        if route.path_parameters:
            event["pathParameters"] = route.path_parameters
    if body:
        event["body"], event["isBase64Encoded"] = body_fields(body, content_type)
    else:
        event["isBase64Encoded"] = False
    return event


# --- payload format 1.0: HTTP API 1.0 and REST APIs ------------------------------------------


#: ``requestContext.identity`` fields that are null for a caller without IAM or Cognito auth.
_NULL_IDENTITY = (
    "accessKey",
    "accountId",
    "caller",
    "cognitoAmr",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
)


def _identity(info: HttpRequestInfo, user_agent: str) -> dict[str, Any]:
    identity: dict[str, Any] = dict.fromkeys(_NULL_IDENTITY)
    identity.update(sourceIp=info.source_ip, user=None, userAgent=user_agent, userArn=None)
    return identity


def _v1_event(
    info: HttpRequestInfo,
    body: bytes,
    content_type: str | None,
    settings: FrontSettings,
    *,
    version: str | None,
    path: str,
    resource: str,
    path_parameters: dict[str, str] | None,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The 1.0 shape both HTTP API 1.0 (``version`` "1.0") and REST APIs (no ``version``)
    send."""
    groups = _grouped(info, title_extra=True)
    multi_headers = dict(groups)
    multi_query = _multi(_decoded_query(info.raw_query))
    event: dict[str, Any] = {} if version is None else {"version": version}
    event.update(
        resource=resource,
        path=path,
        httpMethod=info.method,
        # A repeated header or parameter: its last value here, all of them in multiValue*.
        headers=_last(multi_headers) or None,
        multiValueHeaders=multi_headers or None,
        queryStringParameters=_last(multi_query) or None,
        multiValueQueryStringParameters=multi_query or None,
    )
    request_context: dict[str, Any] = {
        "accountId": settings.account_id,
        "apiId": settings.api_id,
        "domainName": settings.domain_name,
        "domainPrefix": settings.api_id,
        "httpMethod": info.method,
        "identity": _identity(info, _user_agent(groups)),
        "protocol": "HTTP/1.1",
        "requestTime": clf_time(info.now_ms),
        "requestTimeEpoch": info.now_ms,
        **context,
    }
    event["requestContext"] = dict(sorted(request_context.items()))
    event["pathParameters"] = path_parameters
    event["stageVariables"] = None
    if body:
        event["body"], event["isBase64Encoded"] = body_fields(body, content_type)
    else:
        event["body"] = None
        event["isBase64Encoded"] = False
    return event


def http_api_v1_event(
    info: HttpRequestInfo, body: bytes, content_type: str | None, settings: FrontSettings
) -> dict[str, Any]:
    """An HTTP API's payload-format 1.0 event for its ``$default`` route and stage.

    ``version`` "1.0"; ``resource``, ``resourceId`` and ``resourcePath`` are the route key
    ``$default``; ``path`` is the path as sent (no stage in it); header names as the client
    spelled them (the API's own ``X-Forwarded-*`` / ``X-Amzn-Trace-Id`` title-cased).
    """
    return _v1_event(
        info,
        body,
        content_type,
        settings,
        version="1.0",
        path=info.raw_path,
        resource="$default",
        path_parameters=None,
        context={
            "extendedRequestId": info.request_id,
            "path": info.raw_path,
            "requestId": info.request_id,
            "resourceId": "$default",
            "resourcePath": "$default",
            "stage": "$default",
        },
    )


def stage_path(raw_path: str, stage: str) -> str | None:
    """The path below a REST API's stage (``/prod/items`` -> ``/items``, ``/prod`` -> ``/``);
    None when ``raw_path`` is not under ``/{stage}``."""
    prefix = f"/{stage}"
    if raw_path == prefix:
        return "/"
    if raw_path.startswith(prefix + "/"):
        return raw_path[len(prefix) :]
    return None


def rest_event(
    info: HttpRequestInfo,
    body: bytes,
    content_type: str | None,
    settings: FrontSettings,
    *,
    route: RouteMatch | None = None,
) -> dict[str, Any]:
    """A REST API's Lambda proxy event, for a ``/{proxy+}`` resource (and ``/``) with method
    ``ANY`` deployed to ``settings.stage`` (or, given ``route``, for its ``resource`` and
    ``pathParameters``).

    ``info.raw_path`` is the path the client used, stage included (``/prod/items``):
    ``path`` is the part below the stage, ``requestContext.path`` the whole, and
    ``pathParameters.proxy`` the part below ``/``, decoded. No ``version`` field.

    Raises:
        ValueError: ``info.raw_path`` is not under the stage.
    """
    path = stage_path(info.raw_path, settings.stage)
    if path is None:
        raise ValueError(f"{info.raw_path!r} is not under the stage /{settings.stage}")
    resource = "/" if path == "/" else "/{proxy+}"
    parameters = None if path == "/" else {"proxy": unquote(path[1:])}
    if route is not None:
        resource, parameters = route.resource, route.path_parameters
    return _v1_event(
        info,
        body,
        content_type,
        settings,
        version=None,
        path=path,
        resource=resource,
        path_parameters=parameters,
        context={
            "extendedRequestId": _short_id(info.request_id),
            "path": info.raw_path,
            "requestId": info.request_id,
            "resourceId": settings.resource_id,
            "resourcePath": resource,
            "stage": settings.stage,
        },
    )


# --- Application Load Balancer ------------------------------------------------------------------


def alb_event(
    info: HttpRequestInfo,
    body: bytes,
    content_type: str | None,
    settings: FrontSettings,
    *,
    multi_value: bool = False,
) -> dict[str, Any]:
    """The event an ALB target group sends its Lambda target.

    Header names lower-cased; query keys and values kept percent-encoded as sent (the load
    balancer does not decode them). Without multi-value headers, a repeated header or
    parameter gives its last value in ``headers`` / ``queryStringParameters``; with them,
    only ``multiValueHeaders`` / ``multiValueQueryStringParameters`` are sent. An empty body
    is ``""``.
    """
    groups = {name.lower(): values for name, values in _grouped(info, title_extra=False)}
    query = _multi(_encoded_query(info.raw_query))
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": settings.target_group_arn}},
        "httpMethod": info.method,
        "path": info.raw_path,
    }
    if multi_value:
        event["multiValueQueryStringParameters"] = query
        event["multiValueHeaders"] = groups
    else:
        event["queryStringParameters"] = _last(query)
        event["headers"] = _last(groups)
    if body:
        event["body"], event["isBase64Encoded"] = body_fields(body, content_type)
    else:
        event["body"] = ""
        event["isBase64Encoded"] = False
    return event


# --- one entry point --------------------------------------------------------------------------


def build_event(
    front: Front,
    info: HttpRequestInfo,
    body: bytes,
    content_type: str | None,
    settings: FrontSettings,
    *,
    route: RouteMatch | None = None,
) -> dict[str, Any]:
    """The event ``front`` sends for this request (any front but the function URL, whose event
    ``emulator/furl.py`` builds); ``route``: the HTTP API (2.0) or REST route it matched.

    Raises:
        ValueError: ``front`` is not one built here, or (REST) the path is not under the stage.
    """
    if front is Front.HTTP_API_V2:
        return http_api_event(info, body, content_type, settings, route=route)
    if front is Front.HTTP_API_V1:
        return http_api_v1_event(info, body, content_type, settings)
    if front is Front.REST_API:
        return rest_event(info, body, content_type, settings, route=route)
    if front in (Front.ALB, Front.ALB_MULTI):
        multi = front is Front.ALB_MULTI
        return alb_event(info, body, content_type, settings, multi_value=multi)
    raise ValueError(f"no event builder here for {front.value}")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The event as the JSON payload Lambda delivers."""
    return msgspec.json.encode(event)
