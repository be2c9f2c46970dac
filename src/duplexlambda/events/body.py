"""A body inside an HTTP-shaped event or proxy answer: a JSON string, base64 when binary.

One rule decides text or binary for every front and both directions (the emulator's events
and the runtime's answers): see ``is_text`` and docs/fronts.md#bodies.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from duplexlambda.errors import DuplexLambdaError

#: Media types sent as plain strings besides ``text/*``; everything else is binary (base64).
#: API Gateway's rule of thumb (text, JSON, XML, JavaScript, form data) plus YAML and GraphQL;
#: UNCONFIRMED for real function URLs (docs/runtime-api.md §6).
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
        "application/x-yaml",
        "application/yaml",
        "application/graphql",
    }
)
TEXT_SUFFIXES = ("+json", "+xml")


class BadEventBody(DuplexLambdaError):
    """An event's ``body`` that cannot be decoded (``isBase64Encoded`` but not base64)."""

    error_type = "Runtime.UnmarshalError"


def media_type(content_type: str | None) -> str:
    """``"Text/HTML; charset=utf-8"`` -> ``"text/html"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_text_type(content_type: str | None) -> bool:
    """Whether a body of this content type goes as a string when it is valid UTF-8.

    No content type at all counts as text (a request without one, a hand-written event).
    """
    media = media_type(content_type)
    return (
        not media
        or media.startswith("text/")
        or media in TEXT_TYPES
        or media.endswith(TEXT_SUFFIXES)
    )


def is_text(content_type: str | None, body: bytes) -> bool:
    """Whether ``body`` goes into the JSON as a string (else base64 with
    ``isBase64Encoded: true``): a text-like content type *and* valid UTF-8. Empty is text.
    """
    if not body:
        return True
    if not is_text_type(content_type):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def encode_body(body: bytes, content_type: str | None) -> tuple[str, bool]:
    """``body`` as the JSON ``body`` string and its ``isBase64Encoded`` flag."""
    if is_text(content_type, body):
        return body.decode("utf-8"), False
    return base64.b64encode(body).decode("ascii"), True


def decode_body(value: Any, is_base64: Any) -> bytes:
    """The bytes of an event's ``body`` field.

    ``None`` is empty; a string is UTF-8, or base64 when ``is_base64`` is true; any other JSON
    value (a hand-written test event with an object body) is its JSON encoding.

    Raises:
        BadEventBody: flagged base64 but not base64.
    """
    if value is None:
        return b""
    if not isinstance(value, str):
        return msgspec.json.encode(value)
    if is_base64 is True:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadEventBody(f"the event's body is flagged isBase64Encoded: {exc}") from None
    return value.encode("utf-8", "surrogatepass")


def utf8_or_base64(body: bytes) -> dict[str, Any]:
    """``body``/``isBase64Encoded`` of our emulator's request stream when a handler takes the
    whole event: the text if it is UTF-8, else base64 (both runtime engines)."""
    try:
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}
