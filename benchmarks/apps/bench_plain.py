"""A buffered handler with no imports, for every runtime (awslambdaric included).

Kept import-free on purpose: the cold-start benchmark starts runtimes with it, and a handler
that imported duplexlambda would charge our import time to awslambdaric.
"""

from __future__ import annotations

from typing import Any


def echo(event: Any, context: Any) -> Any:
    """Return the event unchanged (the runtime JSON-decodes and re-encodes it)."""
    return event
