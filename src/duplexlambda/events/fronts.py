"""The fronts that invoke a function with an HTTP request, and the two shapes shared by every
module of ``duplexlambda.events``: the request inside an event, and the answer to it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Front(enum.Enum):
    """Who invoked the function, read from the event's shape."""

    #: a Lambda function URL: payload format 2.0, ``requestContext.domainName`` *.lambda-url.*
    FUNCTION_URL = "function-url"
    #: an API Gateway HTTP API, payload format 2.0
    HTTP_API_V2 = "http-api-v2"
    #: an API Gateway HTTP API, payload format 1.0
    HTTP_API_V1 = "http-api-v1"
    #: an API Gateway REST API (payload 1.0; buffered, or STREAM transfer mode)
    REST_API = "rest-api"
    #: an Application Load Balancer target group (single-value headers)
    ALB = "alb"
    #: an Application Load Balancer target group with multi-value headers enabled
    ALB_MULTI = "alb-multi"
    #: not an HTTP event (S3, SQS, a direct invoke, ...)
    NONE = "none"

    @property
    def is_http(self) -> bool:
        return self is not Front.NONE


@dataclass
class HttpRequest:
    """The HTTP request an event carries, decoded by that front's rules."""

    front: Front
    method: str
    #: the path as the handler routes it (stage stripped for REST/HTTP API default mappings)
    path: str
    #: the path as sent, percent-encoded as the client sent it where the front keeps that
    raw_path: str
    #: the query string, percent-encoded (for ASGI's ``query_string`` and ``req.raw_query``)
    raw_query: str
    #: decoded query parameters, every value kept in order
    query: dict[str, list[str]]
    #: header names lower-cased, every value kept in order
    headers: dict[str, list[str]]
    #: request cookies by name
    cookies: dict[str, str]
    body: bytes
    source_ip: str = ""
    #: API Gateway stage ("" when there is none, or ``$default``)
    stage: str = ""
    #: what ASGI calls ``root_path`` / WSGI ``SCRIPT_NAME`` (the stage prefix when present in
    #: the path the client used)
    base_path: str = ""
    #: the request context's domain name (Host), when the event has one
    domain: str = ""


@dataclass
class HttpAnswer:
    """A handler's HTTP answer, before it is put in the shape a front reads."""

    status: int = 200
    #: (name, value) pairs in order; repeated names allowed; no ``Set-Cookie`` here
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: ``Set-Cookie`` values
    cookies: list[str] = field(default_factory=list)
    body: bytes = b""
