"""The runtime: polls the Runtime API's ``/next`` and serves each invocation to the handler.

``loop`` (the invocation loop and ``run``), ``invocation`` (one served invocation, owner of its
``/next`` connection), ``client`` (the Runtime API client), ``connection`` (the asyncio Protocol
under it), ``request`` / ``response`` (``req`` and ``res``) and ``logs`` (Lambda's log formats).
See docs/architecture.md. ``req`` reads, and ``res`` answers, each HTTP front (function URL,
API Gateway HTTP and REST APIs, ALB) in its own format, streamed for the fronts
``DUPLEXLAMBDA_STREAMING`` names: docs/fronts.md.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from duplexlambda.runtime.loop import Runtime, RuntimeConfig, main_async
    from duplexlambda.runtime.start import run

__all__ = ["Runtime", "RuntimeConfig", "main_async", "run"]


def __getattr__(name: str) -> object:
    # Lazy (PEP 562): ``run`` picks the engine before anything imports asyncio, so that a
    # blocking engine's cold start never pays for it (runtime/start.py).
    if name == "run":
        from duplexlambda.runtime.start import run

        return run
    if name in __all__:
        from duplexlambda.runtime import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
