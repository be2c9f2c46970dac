"""Text that must survive any exception or log record (docs/runtime-api.md §3.4).

Kept free of heavy imports: the runtime's log formatter uses it from the first line it writes,
at cold start.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates and the like become backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def safe_str(exc: BaseException | None) -> str:
    """``str(exc)``, even when its ``__str__`` raises or returns something odd."""
    try:
        text = str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__} object>"
    return printable(text) if isinstance(text, str) else repr(text)
