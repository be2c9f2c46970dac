"""A buffered handler's return value as the bytes awslambdaric would post (both engines).

awslambdaric encodes with simplejson: ``Decimal`` as a number, ``NaN``/``Infinity`` as those
literals, raw UTF-8, sets refused, ``bytes`` sent as they are. The standard library's ``json``
does all of that but ``Decimal``, with no import cost at cold start; results it refuses take
msgspec with a checking pass (imported then, on the first such result).
"""

from __future__ import annotations

import json

from duplexlambda.errors import DuplexLambdaError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class MarshalError(DuplexLambdaError):
    """A buffered handler returned something that cannot be JSON-encoded."""

    error_type = "Runtime.MarshalError"


class UnmarshalError(DuplexLambdaError):
    """The event is not the JSON its content type says."""

    error_type = "Runtime.UnmarshalError"


_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode
_BINARY = (bytes, bytearray, memoryview)


def marshal(result: Any) -> tuple[bytes, str]:
    """``(body, content type)`` of a buffered handler's result.

    Raises:
        MarshalError: the result is not JSON-serializable (awslambdaric's error type).
    """
    if isinstance(result, _BINARY):
        return bytes(result), "application/unknown"
    try:
        return _DUMPS(result).encode("utf-8"), "application/json"
    except (TypeError, ValueError, RecursionError):
        pass  # a Decimal, a lone surrogate, a set, a cycle...: the checking path decides
    return _marshal_checked(result), "application/json"


def _marshal_checked(result: Any) -> bytes:
    import msgspec

    try:
        encoder = msgspec.json.Encoder(decimal_format="number")
        return encoder.encode(_awslambdaric_values(result))
    except (TypeError, ValueError, msgspec.EncodeError, RecursionError) as exc:
        raise MarshalError(f"Unable to marshal response: {exc}") from None


_SCALARS = (str, int, bool, type(None))
_NON_FINITE = {"nan": b"NaN", "inf": b"Infinity", "-inf": b"-Infinity"}


def _awslambdaric_values(value: Any) -> Any:
    """``value`` with non-finite numbers as raw JSON literals; TypeError for sets."""
    import decimal
    import math

    import msgspec

    if isinstance(value, float):
        return value if math.isfinite(value) else msgspec.Raw(_NON_FINITE[repr(value)])
    if isinstance(value, decimal.Decimal):
        if value.is_finite():
            return value
        return msgspec.Raw(b"NaN" if value.is_nan() else str(value).encode("ascii"))
    if isinstance(value, dict):
        return {k: _awslambdaric_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_awslambdaric_values(v) for v in value]
    if isinstance(value, set | frozenset):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    if isinstance(value, _SCALARS):
        return value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
