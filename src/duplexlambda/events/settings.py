"""Which fronts get a streamed answer: ``DUPLEXLAMBDA_STREAMING`` (docs/fronts.md#streaming).

Whether a front streams is not in the event: a function URL is RESPONSE_STREAM or BUFFERED,
a REST API integration STREAM or BUFFERED, and both send the same event either way. So the
function says which of its fronts invoke it with InvokeWithResponseStream:

* ``DUPLEXLAMBDA_STREAMING``: comma-separated front names, default ``function-url``;
  ``function-url,rest-api`` streams REST APIs too; ``none`` streams nothing (a BUFFERED
  function URL). Read once, at startup.
* per handler, ``@duplexlambda.handler.streaming_fronts(...)`` (or the ``streaming_fronts``
  keyword of the ASGI bridge), which overrides the variable.

Only ``function-url`` and ``rest-api`` can be named: HTTP APIs and ALBs always invoke with a
plain Invoke and read a proxy JSON, so naming them is an error, not a silent no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from duplexlambda.events.answer import STREAMABLE
from duplexlambda.events.fronts import Front

STREAMING_ENV = "DUPLEXLAMBDA_STREAMING"
#: What streams when nothing says otherwise: a function URL (RESPONSE_STREAM).
DEFAULT_STREAMING = frozenset({Front.FUNCTION_URL})
_NONE = "none"


def _front(name: str | Front) -> Front:
    if isinstance(name, Front):
        front = name
    elif name.strip().lower() == _NONE:
        raise ValueError(
            f"{STREAMING_ENV}: {_NONE!r} stands alone, it cannot be listed with fronts"
        )
    else:
        try:
            front = Front(name.strip().lower())
        except ValueError:
            valid = ", ".join(sorted(f.value for f in STREAMABLE))
            raise ValueError(
                f"{STREAMING_ENV}: unknown front {name!r} (fronts that can stream: {valid}; "
                f"or {_NONE})"
            ) from None
    if front not in STREAMABLE:
        raise ValueError(
            f"{STREAMING_ENV}: {front.value} cannot stream: it invokes the function with a "
            "plain Invoke and reads a proxy response JSON (only function-url and rest-api "
            "can stream)"
        )
    return front


def parse_streaming(value: str | Iterable[str | Front] | None) -> frozenset[Front]:
    """The fronts named by ``value``.

    ``None`` or ``""``: the default (``function-url``). ``"none"``, or an empty iterable:
    none. Otherwise comma-separated names (or an iterable of names / ``Front`` members).

    Raises:
        ValueError: an unknown name, or a front that cannot stream.
    """
    if value is None:
        return DEFAULT_STREAMING
    if isinstance(value, str):
        if not value.strip():
            return DEFAULT_STREAMING
        names: list[str | Front] = [n for n in value.split(",") if n.strip()]
    else:
        names = list(value)
    if len(names) == 1 and isinstance(names[0], str) and names[0].strip().lower() == _NONE:
        return frozenset()
    return frozenset(_front(name) for name in names)


def streaming_from_env(environ: Mapping[str, str]) -> frozenset[Front]:
    """``DUPLEXLAMBDA_STREAMING`` read from ``environ``.

    Raises:
        ValueError: as ``parse_streaming``.
    """
    return parse_streaming(environ.get(STREAMING_ENV))
