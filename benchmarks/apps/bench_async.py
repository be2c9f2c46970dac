"""One coroutine for the async competitors, importing nothing of any runtime.

* ``echo``: ``async def echo(event, context)``, the buffered echo; duplexlambda runs it as it
  is (an ``async def`` whose parameters are named ``event, context`` is a buffered handler).
* ``echo_asyncio_run``: the same coroutine under ``asyncio.run``, as a ``def`` handler: what a
  user of awslambdaric (which has no async handlers) writes to run async code.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def echo(event: Any, context: Any) -> Any:
    """Return the event unchanged (the runtime JSON-decodes and re-encodes it)."""
    return event


def echo_asyncio_run(event: Any, context: Any) -> Any:
    """``echo`` for a runtime that only calls ``def`` handlers."""
    return asyncio.run(echo(event, context))
