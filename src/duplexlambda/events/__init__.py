"""Every way Lambda meets HTTP, sans-I/O: which front sent an event, the HTTP request inside
it, and the answer in the format that front reads (and, for the emulator, the other way
round). Nothing else in the package parses HTTP-shaped events. See docs/fronts.md.

``request``: ``detect``, ``parse_request``. ``answer``: ``buffered_response``,
``streaming_prelude``, ``BufferedAnswer`` (Lambda's 6 MB cap). ``settings``:
``DUPLEXLAMBDA_STREAMING``. ``body``: the one text-or-base64 rule (``is_text``).
"""

from duplexlambda.events.answer import (
    MAX_RESPONSE,
    STREAMABLE,
    BufferedAnswer,
    PreludeTooLarge,
    ResponseTooLarge,
    buffered_response,
    streaming_prelude,
)
from duplexlambda.events.body import BadEventBody, decode_body, encode_body, is_text
from duplexlambda.events.fronts import Front, HttpAnswer, HttpRequest
from duplexlambda.events.request import detect, parse_request
from duplexlambda.events.settings import DEFAULT_STREAMING, STREAMING_ENV, parse_streaming

__all__ = [
    "DEFAULT_STREAMING",
    "MAX_RESPONSE",
    "STREAMABLE",
    "STREAMING_ENV",
    "BadEventBody",
    "BufferedAnswer",
    "Front",
    "HttpAnswer",
    "HttpRequest",
    "PreludeTooLarge",
    "ResponseTooLarge",
    "buffered_response",
    "decode_body",
    "detect",
    "encode_body",
    "is_text",
    "parse_request",
    "parse_streaming",
    "streaming_prelude",
]
