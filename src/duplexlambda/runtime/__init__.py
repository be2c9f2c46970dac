"""The runtime: polls the Runtime API's ``/next`` and serves each invocation to the handler.

``loop`` (the invocation loop and ``run``), ``invocation`` (one served invocation, owner of its
``/next`` connection), ``client`` (the Runtime API client), ``connection`` (the asyncio Protocol
under it), ``request`` / ``response`` (``req`` and ``res``) and ``logs`` (Lambda's log formats).
See docs/architecture.md. ``req`` reads, and ``res`` answers, each HTTP front (function URL,
API Gateway HTTP and REST APIs, ALB) in its own format, streamed for the fronts
``DUPLEXLAMBDA_STREAMING`` names: docs/fronts.md.
"""

from duplexlambda.runtime.loop import Runtime, RuntimeConfig, main_async, run

__all__ = ["Runtime", "RuntimeConfig", "main_async", "run"]
