"""A handler's HTTP answer in the format its front reads (docs/fronts.md#answers).

Buffered fronts (HTTP APIs, buffered REST APIs, ALBs, a BUFFERED function URL) invoke with a
plain Invoke and parse a *proxy response JSON*; ``buffered_response`` writes it, and
``BufferedAnswer`` gathers a streamed handler's writes into it under Lambda's 6 MB cap.
Streamed fronts (a RESPONSE_STREAM function URL, a REST API in STREAM transfer mode) read a
JSON prelude, 8 NUL bytes, then the body; ``streaming_prelude`` writes the prelude.

Which header goes where:

==========================  =========================================================
function URL, HTTP API 2.0  ``headers`` (a repeated name comma-joined), ``cookies``
HTTP API 1.0, REST          ``headers`` for names with one value, ``multiValueHeaders``
                            for repeated names and every ``Set-Cookie``
ALB                         ``headers`` only, one value per name: repeats comma-joined,
                            and only the last ``Set-Cookie`` (a warning is logged)
ALB multi-value             ``multiValueHeaders`` only
==========================  =========================================================
"""

from __future__ import annotations

import http
import logging
from collections.abc import Iterable
from typing import Any

import msgspec

from duplexlambda.errors import DuplexLambdaError, LocalProtocolError
from duplexlambda.events.body import encode_body, is_text_type
from duplexlambda.events.fronts import Front, HttpAnswer
from duplexlambda.protocol.prelude import DELIMITER, MAX_PRELUDE

log = logging.getLogger("duplexlambda")

#: Lambda's cap on a buffered response: the whole proxy JSON, 6 MiB + 100 B = 6,291,556 bytes
#: (docs/runtime-api.md §8). Above it Lambda answers the runtime 413 and the caller gets
#: ``Function.ResponseSizeTooLarge``.
MAX_RESPONSE = 6 * 1024 * 1024 + 100
#: A REST API in STREAM mode wants the metadata and its delimiter within the first 16 KB.
MAX_REST_PRELUDE = 16 * 1024

#: The fronts that can read a streamed answer; the others invoke with a plain Invoke.
STREAMABLE = frozenset({Front.FUNCTION_URL, Front.REST_API})

_BAD_FIELD_CHARS = frozenset("\r\n\x00")
_SET_COOKIE = "set-cookie"


class ResponseTooLarge(DuplexLambdaError):
    """A buffered front's answer would exceed Lambda's 6 MB response cap.

    Raised by the write that would cross it; nothing of that write is kept.
    """

    error_type = "Function.ResponseSizeTooLarge"


class PreludeTooLarge(LocalProtocolError):
    """A streamed answer's metadata (status, headers, cookies) is larger than its front reads."""


def _check_field(name: str, value: str) -> None:
    if not name or _BAD_FIELD_CHARS.intersection(name) or ":" in name or " " in name:
        raise LocalProtocolError(f"invalid header name {name!r}")
    if _BAD_FIELD_CHARS.intersection(value):
        raise LocalProtocolError(f"header {name!r} has CR, LF or NUL in its value")


def _group(
    headers: Iterable[tuple[str, str]], cookies: Iterable[str]
) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Header fields by name (the first spelling of a name wins; order kept), and the
    ``Set-Cookie`` values, those set as headers included.

    Raises:
        LocalProtocolError: CR, LF or NUL in a name or value, or a malformed name.
    """
    grouped: dict[str, tuple[str, list[str]]] = {}
    all_cookies = list(cookies)
    for name, value in headers:
        _check_field(name, value)
        if name.lower() == _SET_COOKIE:
            all_cookies.append(value)
            continue
        grouped.setdefault(name.lower(), (name, []))[1].append(value)
    for cookie in all_cookies:
        _check_field("Set-Cookie", cookie)
    return list(grouped.values()), all_cookies


def _content_type(headers: Iterable[tuple[str, str]]) -> str | None:
    found = None
    for name, value in headers:
        if name.lower() == "content-type":
            found = value
    return found


def _joined(grouped: list[tuple[str, list[str]]]) -> dict[str, str]:
    # One field line per name: RFC 9110 5.3 allows joining list-valued fields with commas.
    return {name: ", ".join(values) for name, values in grouped}


def _split(
    grouped: list[tuple[str, list[str]]], cookies: list[str]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """1.0 / REST: one-value names in ``headers``, the rest in ``multiValueHeaders``.

    Each name is in exactly one of the two, so API Gateway's merging of both maps has
    nothing to merge.
    """
    single = {name: values[0] for name, values in grouped if len(values) == 1}
    multi = {name: values for name, values in grouped if len(values) > 1}
    if cookies:
        multi["Set-Cookie"] = cookies
    return single, multi


def status_description(status: int) -> str:
    """An ALB's ``statusDescription``: ``"200 OK"`` (the code alone when it has no phrase)."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _metadata(front: Front, answer: HttpAnswer) -> dict[str, Any]:
    """The answer's JSON without ``body`` / ``isBase64Encoded``."""
    grouped, cookies = _group(answer.headers, answer.cookies)
    doc: dict[str, Any] = {"statusCode": answer.status}
    if front in (Front.FUNCTION_URL, Front.HTTP_API_V2):
        doc["headers"] = _joined(grouped)
        doc["cookies"] = cookies
    elif front in (Front.HTTP_API_V1, Front.REST_API):
        doc["headers"], doc["multiValueHeaders"] = _split(grouped, cookies)
    elif front is Front.ALB:
        doc["statusDescription"] = status_description(answer.status)
        headers = _joined(grouped)
        if cookies:
            if len(cookies) > 1:
                log.warning(
                    "an ALB target group without multi-value headers takes one Set-Cookie: "
                    "%d of %d dropped, only the last is sent (turn multi-value headers on)",
                    len(cookies) - 1,
                    len(cookies),
                )
            headers["Set-Cookie"] = cookies[-1]
        doc["headers"] = headers
    elif front is Front.ALB_MULTI:
        doc["statusDescription"] = status_description(answer.status)
        multi = dict(grouped)
        if cookies:
            multi["Set-Cookie"] = cookies
        doc["multiValueHeaders"] = multi
    else:
        raise ValueError(f"{front.value!r} is not an HTTP front: it has no proxy response")
    return doc


_json = msgspec.json.Encoder()


def buffered_response(front: Front, answer: HttpAnswer) -> bytes:
    """The proxy response JSON ``front`` parses (the body of a buffered ``/response``).

    ``body`` is a string, base64 with ``isBase64Encoded: true`` unless the content type is
    text-like and the body valid UTF-8 (``events.body.is_text``); an empty body is ``""``.
    The status is kept whatever it is (a 204 stays a 204 without a body).

    Raises:
        LocalProtocolError: a header that could not be sent (CR, LF or NUL, a bad name).
        ValueError: ``front`` is ``Front.NONE``.
    """
    doc = _metadata(front, answer)
    doc["body"], doc["isBase64Encoded"] = encode_body(answer.body, _content_type(answer.headers))
    return _json.encode(doc)


def streaming_prelude(
    front: Front, status: int, headers: Iterable[tuple[str, str]], cookies: Iterable[str]
) -> dict[str, Any]:
    """The metadata that goes before the 8 NUL bytes of a streamed answer.

    Function URL: ``statusCode``, ``headers`` (a repeated name comma-joined), ``cookies``
    (always present: cargo-lambda requires it, docs/runtime-api.md P3). REST API (STREAM
    transfer mode): ``statusCode``, ``headers`` and ``multiValueHeaders`` for repeated names
    and every ``Set-Cookie``.

    Raises:
        PreludeTooLarge: over what the front reads (function URL: 64 KiB, the limit both
            sides of duplexlambda keep; REST: the metadata and its delimiter must be within
            the first 16 KB).
        LocalProtocolError: a header that could not be sent.
        ValueError: ``front`` cannot stream (it invokes with a plain Invoke).
    """
    grouped, all_cookies = _group(headers, cookies)
    doc: dict[str, Any] = {"statusCode": status}
    if front is Front.FUNCTION_URL:
        doc["headers"] = _joined(grouped)
        doc["cookies"] = all_cookies
        limit = MAX_PRELUDE
    elif front is Front.REST_API:
        doc["headers"], doc["multiValueHeaders"] = _split(grouped, all_cookies)
        limit = MAX_REST_PRELUDE - len(DELIMITER)
    else:
        raise ValueError(f"{front.value!r} cannot take a streamed answer")
    size = len(_json.encode(doc))
    if size > limit:
        raise PreludeTooLarge(
            f"the response metadata is {size} bytes, over the {limit} a {front.value} "
            "reads before its body: send fewer or shorter headers and cookies"
        )
    return doc


class BufferedAnswer:
    """A buffered front's answer, gathered write by write under Lambda's response cap.

    The status and headers are fixed when it is created (the response's first write); each
    ``add()`` knows what the whole JSON will weigh, so the write that would cross ``limit``
    raises, and nothing is ever cut silently. The weight of a text body counts its JSON
    escapes; a binary one its base64 (a text-like type whose body turns out not to be UTF-8 is
    checked again by ``finish()``).
    """

    def __init__(
        self,
        front: Front,
        status: int,
        headers: Iterable[tuple[str, str]],
        cookies: Iterable[str],
        *,
        limit: int = MAX_RESPONSE,
    ) -> None:
        self.front = front
        self.limit = limit
        self._head = HttpAnswer(status, list(headers), list(cookies))
        # ``"body":"","isBase64Encoded":false``: the body's bytes go between those quotes.
        self._base = len(buffered_response(front, self._head))
        self._text = is_text_type(_content_type(self._head.headers))
        self._body = bytearray()
        self._escapes = 0

    @property
    def size(self) -> int:
        """What the JSON weighs so far (exact unless a text-like body is not UTF-8)."""
        return self._weight(len(self._body), self._escapes)

    def _weight(self, length: int, escapes: int) -> int:
        if self._text:
            return self._base + length + escapes
        # base64 of ``length`` bytes; "true" is one byte shorter than "false"
        return self._base + 4 * ((length + 2) // 3) - 1

    def _too_large(self, size: int) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"Response payload size ({size} bytes as {self.front.value} JSON) exceeded the "
            f"maximum allowed payload size ({self.limit} bytes): a buffered front takes the "
            "whole answer at once (stream it to a function URL or a REST API instead)"
        )

    def add(self, data: bytes) -> None:
        """Append ``data`` to the body.

        Raises:
            ResponseTooLarge: the JSON would then exceed ``limit`` (``data`` is not kept).
        """
        escapes = json_escapes(data) if self._text else 0
        size = self._weight(len(self._body) + len(data), self._escapes + escapes)
        if size > self.limit:
            raise self._too_large(size)
        self._body += data
        self._escapes += escapes

    def finish(self) -> bytes:
        """The proxy JSON.

        Raises:
            ResponseTooLarge: over ``limit`` after all (a text-like body that had to go base64).
        """
        head = self._head
        raw = buffered_response(
            self.front, HttpAnswer(head.status, head.headers, head.cookies, bytes(self._body))
        )
        if len(raw) > self.limit:
            raise self._too_large(len(raw))
        return raw


_SHORT_ESCAPES = (b'"', b"\\", b"\b", b"\t", b"\n", b"\f", b"\r")
_CONTROL = bytes(range(0x20))


def json_escapes(data: bytes) -> int:
    """Bytes a JSON string encoder adds to ``data`` (UTF-8 text) by escaping it.

    ``"``, ``\\`` and ``\\b \\t \\n \\f \\r`` take two bytes, other control characters six
    (``\\u00XX``); everything else, non-ASCII included, goes as it is (msgspec's rule).
    """
    if not data:
        return 0
    short = sum(data.count(c) for c in _SHORT_ESCAPES)
    controls = len(data) - len(data.translate(None, _CONTROL))
    # the five short control escapes were counted in both: 1 extra byte each, not 5
    short_controls = sum(data.count(c) for c in _SHORT_ESCAPES[2:])
    return short + 5 * (controls - short_controls)
