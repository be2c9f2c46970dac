"""``python -m duplexlambda run``: read the environment, load the handler, pick the engine.

Two engines serve the same protocol (docs/architecture.md#engines):

* the **blocking engine** (``runtime/blocking.py``) for a buffered ``def`` or ``async def
  handler(event, context)`` at ``AWS_LAMBDA_MAX_CONCURRENCY`` 1: no event loop around the
  Runtime API, and a cold start that never imports asyncio for a ``def`` handler;
* the **asyncio engine** (``runtime/loop.py``) for everything else: duplex and streaming
  handlers, the ASGI/WSGI bridges, concurrency above 1.

``DUPLEXLAMBDA_ENGINE=asyncio`` keeps every handler on the asyncio engine (``blocking`` is the
default choice, ``auto`` too). Nothing here imports asyncio, msgspec or typing: this module is
the cold start.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from duplexlambda.runtime.blocking import Address

ENGINE_ENV = "DUPLEXLAMBDA_ENGINE"
ENGINES = ("auto", "blocking", "asyncio")


class Settings:
    """What ``run`` reads from the environment before anything else (once, at startup)."""

    __slots__ = ("address", "concurrency", "deadline_margin", "engine")

    def __init__(self, address: Address, concurrency: int, deadline_margin: float, engine: str):
        self.address = address
        self.concurrency = concurrency
        self.deadline_margin = deadline_margin
        self.engine = engine

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check the settings both engines share.

        Raises:
            ValueError: a missing or malformed setting (one line).
        """
        from duplexlambda.runtime.blocking import Address

        if "AWS_LAMBDA_RUNTIME_API" not in env:
            raise ValueError("AWS_LAMBDA_RUNTIME_API is not set: is this running on Lambda?")
        engine = (env.get(ENGINE_ENV) or "auto").strip().lower()
        if engine not in ENGINES:
            raise ValueError(f"{ENGINE_ENV} must be auto, blocking or asyncio, not {engine!r}")
        mode = env.get("DUPLEXLAMBDA_RESPONSE") or None
        if mode not in (None, "http", "raw"):
            raise ValueError(f"DUPLEXLAMBDA_RESPONSE must be http or raw, not {mode!r}")
        if env.get("DUPLEXLAMBDA_STREAMING"):  # checked now, read by the asyncio engine
            from duplexlambda.events.settings import streaming_from_env

            streaming_from_env(env)
        return cls(
            address=Address.parse(env["AWS_LAMBDA_RUNTIME_API"]),
            concurrency=max(1, int(env.get("AWS_LAMBDA_MAX_CONCURRENCY") or 1)),
            deadline_margin=int(env.get("DUPLEXLAMBDA_DEADLINE_MARGIN_MS") or 250) / 1000,
            engine=engine,
        )


def run(spec: str, *, use_uvloop: bool = True, wrap: Callable[[Any], Any] | None = None) -> int:
    """``python -m duplexlambda run HANDLER``: the process a ``bootstrap`` starts.

    ``wrap`` turns the object named by ``spec`` into a handler (``--asgi``/``--wsgi`` pass the
    bridge); it runs at init, so its failures are init errors.
    """
    from duplexlambda.runtime.logs import setup_logging

    setup_logging()
    try:
        settings = Settings.from_env(os.environ)
    except ValueError as exc:  # one line on stderr, no traceback: nothing can be served
        print(f"duplexlambda run: {exc}", file=sys.stderr, flush=True)
        return 2
    loaded = _load(spec, wrap, settings)
    if loaded is None:
        return 1
    handler, style = loaded
    label = getattr(wrap, "__name__", style) if wrap is not None else style
    if _blocking_fits(handler, style, settings):
        return _run_blocking(handler, spec, label, settings, use_uvloop)
    from duplexlambda.runtime.loop import RuntimeConfig, run_asyncio

    try:
        config = RuntimeConfig.from_env()
    except ValueError as exc:
        print(f"duplexlambda run: {exc}", file=sys.stderr, flush=True)
        return 2
    return run_asyncio(handler, config, spec=spec, label=label, use_uvloop=use_uvloop)


def _load(
    spec: str, wrap: Callable[[Any], Any] | None, settings: Settings
) -> tuple[Callable[..., Any], str] | None:
    """The handler and its style, or None once an init error has been reported."""
    import logging

    from duplexlambda.handler import load_handler, streaming_of, style_of

    try:
        handler = load_handler(spec)
        if wrap is not None:
            handler = wrap(handler)
        style = style_of(handler).value
        names = streaming_of(handler)
        if names is not None:  # a bad front name is an init error
            from duplexlambda.events.settings import parse_streaming

            parse_streaming(names)
    except Exception as exc:
        from duplexlambda.protocol.runtime_api import error_type_of
        from duplexlambda.runtime.blocking import post_init_error

        logging.getLogger("duplexlambda").error("init failed: %s: %s", error_type_of(exc), exc)
        post_init_error(settings.address, exc)
        return None
    return handler, style


def _blocking_fits(handler: Callable[..., Any], style: str, settings: Settings) -> bool:
    return style == "buffered" and settings.concurrency == 1 and settings.engine != "asyncio"


def _run_blocking(
    handler: Callable[..., Any], spec: str, label: str, settings: Settings, use_uvloop: bool
) -> int:
    import logging

    from duplexlambda.handler import lifecycle, own_lifecycle
    from duplexlambda.runtime.blocking import BlockingRuntime

    own = own_lifecycle(handler)
    hooks = lifecycle
    if own is not None:
        from duplexlambda.handler import Lifecycle

        hooks = Lifecycle([*lifecycle.init, *own.init], [*own.shutdown, *lifecycle.shutdown])
    is_async = _is_coroutine_function(handler)
    runtime = BlockingRuntime(
        handler,
        settings.address,
        is_async=is_async,
        deadline_margin=settings.deadline_margin,
        hooks=hooks,
        use_uvloop=use_uvloop,
    )
    logging.getLogger("duplexlambda").info(
        "duplexlambda runtime: handler %s (%s), engine blocking (%s), concurrency 1",
        spec,
        label,
        "async def on an event loop" if is_async else "def, called inline",
    )
    return runtime.serve()


def _is_coroutine_function(handler: Callable[..., Any]) -> bool:
    code = getattr(handler, "__code__", None)
    if code is not None and not hasattr(handler, "__wrapped__"):
        return bool(code.co_flags & 0x80)  # CO_COROUTINE, without importing inspect
    import inspect

    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
    )
