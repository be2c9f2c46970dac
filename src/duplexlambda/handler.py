"""Finding the handler, and telling its style from its signature.

Handler strings follow awslambdaric: ``module.function`` split at the last dot, ``/`` in the
module path read as ``.``; ``module:function`` is accepted too. ``LAMBDA_TASK_ROOT`` goes first
on ``sys.path``. Failures carry the error types Lambda uses (docs/runtime-api.md §10).

Styles:

* ``async def handler(req, res)`` — duplex: the request and the response are streams.
* ``def handler(event, context)`` — buffered, as awslambdaric: the return value is sent
  JSON-encoded (``application/json``; a ``str`` too, as a JSON string), except ``bytes`` /
  ``bytearray`` / ``memoryview``, which are sent as they are (``application/unknown``); see
  ``runtime/loop.py`` ``_marshal``. An ``async def`` is buffered when decorated with
  ``@duplexlambda.handler.buffered``.
* ``async def handler(event, res, context)`` — response streaming only (Node's
  ``streamifyResponse`` style).

``@streaming_fronts(...)`` says which HTTP fronts get a handler's answers streamed, over
``DUPLEXLAMBDA_STREAMING`` (docs/fronts.md#streaming).
"""

from __future__ import annotations

import enum
import importlib
import os
import sys

from duplexlambda.errors import DuplexLambdaError

# No inspect, dataclasses or typing at import: loading the handler is on every cold start's
# path, and those three cost more than the rest of the runtime (docs/benchmarks.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable
    from typing import Any, TypeVar


class HandlerInitError(DuplexLambdaError):
    """The handler could not be loaded; reported to ``/runtime/init/error``."""


class MalformedHandlerName(HandlerInitError):
    error_type = "Runtime.MalformedHandlerName"


class ImportModuleError(HandlerInitError):
    error_type = "Runtime.ImportModuleError"


class UserCodeSyntaxError(HandlerInitError):
    error_type = "Runtime.UserCodeSyntaxError"


class HandlerNotFound(HandlerInitError):
    error_type = "Runtime.HandlerNotFound"


class BadHandlerSignature(HandlerInitError):
    error_type = "Runtime.InvalidEntrypoint"


class BuiltInModuleConflict(HandlerInitError):
    """The handler's module is one built into the interpreter (``sys.hello``)."""

    error_type = "Runtime.BuiltInModuleConflict"


class Style(enum.Enum):
    """How the runtime calls a handler."""

    DUPLEX = "duplex"  # async (req, res)
    BUFFERED = "buffered"  # (event, context) -> result
    STREAMING = "streaming"  # async (event, res, context)


if TYPE_CHECKING:
    F = TypeVar("F", bound=Callable[..., Any])
    H = TypeVar("H", bound=Callable[[], Awaitable[None]])

_MARK = "__duplexlambda_style__"


def buffered(func: F) -> F:
    """Mark an ``async def handler(event, context)`` as buffered (awslambdaric style)."""
    setattr(func, _MARK, Style.BUFFERED)
    return func


def streaming(func: F) -> F:
    """Mark ``async def handler(event, res, context)`` explicitly (optional: 3 args say so)."""
    setattr(func, _MARK, Style.STREAMING)
    return func


def duplex(func: F) -> F:
    """Mark ``async def handler(req, res)`` explicitly (optional: 2 async args say so)."""
    setattr(func, _MARK, Style.DUPLEX)
    return func


_STREAMING = "__duplexlambda_streaming__"


def _front_names(fronts: Iterable[object]) -> tuple[str, ...]:
    names: list[str] = []
    for front in fronts:
        if isinstance(front, list | tuple | set | frozenset):
            names.extend(_front_names(front))
        else:  # a name, or a ``duplexlambda.events.Front``
            names.append(str(getattr(front, "value", front)))
    return tuple(names)


def set_streaming_fronts(handler: object, fronts: Iterable[object]) -> None:
    """Say which fronts get ``handler``'s answers streamed (``__duplexlambda_streaming__``).

    Overrides ``DUPLEXLAMBDA_STREAMING`` for this handler (docs/fronts.md#streaming). The
    bridges (``asgi(app, streaming_fronts=...)``) call this on the handler they build. The
    names are checked by the runtime at init: an unknown one is an init error.
    """
    setattr(handler, _STREAMING, _front_names(fronts))


def streaming_fronts(*fronts: object) -> Callable[[F], F]:
    """Decorator: the fronts that get this handler's answers streamed, e.g.
    ``@streaming_fronts("function-url", "rest-api")``; ``@streaming_fronts()`` streams none.

    Overrides ``DUPLEXLAMBDA_STREAMING`` (docs/fronts.md#streaming).
    """

    def mark(func: F) -> F:
        set_streaming_fronts(func, fronts)
        return func

    return mark


def streaming_of(handler: object) -> tuple[str, ...] | None:
    """The front names a handler carries (``set_streaming_fronts``), or None."""
    value = getattr(handler, _STREAMING, None)
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(name for name in value.split(",") if name.strip())
    return _front_names(value)


def style_of(func: Callable[..., Any]) -> Style:
    """Tell a handler's style from its mark or its signature.

    Raises:
        BadHandlerSignature: not callable with 2 or 3 positional arguments as above.
    """
    marked = getattr(func, _MARK, None)
    if isinstance(marked, Style):
        return marked
    facts = _plain_function_facts(func)
    if facts is None:
        facts = _inspected_facts(func)
    is_async, params = facts
    if len(params) == 2:
        return _two_argument_style(func, params[0], params[1], is_async)
    if len(params) == 3 and is_async:
        return Style.STREAMING
    raise BadHandlerSignature(
        f"handler {getattr(func, '__qualname__', func)!r} must be "
        "async def handler(req, res), def handler(event, context) "
        "or async def handler(event, res, context)"
    )


def _plain(event: object, context: object) -> None: ...


#: CPython's flag on the code of an ``async def`` (``inspect.CO_COROUTINE``).
_CO_COROUTINE = 0x80


def _plain_function_facts(func: Callable[..., Any]) -> tuple[bool, list[str]] | None:
    """(is async, required positional parameter names) of a plain function, read from its
    code object as ``inspect`` would; None for anything else (wrappers, partials, callable
    objects, marked coroutines), which ``inspect`` reads.
    """
    if type(func) is not type(_plain) or any(
        hasattr(func, name) for name in ("__wrapped__", "__signature__", "_is_coroutine_marker")
    ):
        return None
    code = func.__code__
    required = code.co_argcount - len(func.__defaults__ or ())
    return bool(code.co_flags & _CO_COROUTINE), list(code.co_varnames[:required])


def _inspected_facts(func: Callable[..., Any]) -> tuple[bool, list[str]]:
    import inspect

    is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - async callable objects
    )
    try:
        params = [
            p.name
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        raise BadHandlerSignature(f"cannot read the signature of {func!r}") from None
    return is_async, params


#: Parameter names that say "awslambdaric style" for a two-argument async handler.
_EVENT_NAMES = frozenset({"event", "evt", "lambda_event"})
_CONTEXT_NAMES = frozenset({"context", "ctx", "lambda_context"})


def _two_argument_style(func: Callable[..., Any], first: str, second: str, is_async: bool) -> Style:
    """A sync handler is buffered; an async one is duplex unless its names say otherwise.

    ``async def handler(event, context)`` is the most common first attempt at an async Lambda
    handler: taking it as duplex would fail later, on ``event["body"]``. Names that point both
    ways (``event, res``) are refused at init rather than guessed.
    """
    if not is_async:
        return Style.BUFFERED
    if first in _EVENT_NAMES and second in _CONTEXT_NAMES:
        return Style.BUFFERED
    if first in _EVENT_NAMES or second in _CONTEXT_NAMES:
        raise BadHandlerSignature(
            f"handler {getattr(func, '__qualname__', func)!r} has an ambiguous signature "
            f"({first}, {second}): name it async def handler(req, res) for a duplex handler "
            "or async def handler(event, context) for a buffered one, or mark it with "
            "@duplexlambda.handler.duplex / @duplexlambda.handler.buffered"
        )
    return Style.DUPLEX


class Lifecycle:
    """Async init/shutdown hooks, run once per execution environment."""

    __slots__ = ("init", "shutdown")

    def __init__(
        self,
        init: list[Callable[[], Awaitable[None]]] | None = None,
        shutdown: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        self.init = init if init is not None else []
        self.shutdown = shutdown if shutdown is not None else []

    def __repr__(self) -> str:
        return f"Lifecycle(init={self.init!r}, shutdown={self.shutdown!r})"


#: Hooks registered by ``@on_init`` / ``@on_shutdown`` while the handler module is imported.
lifecycle = Lifecycle()

_OWN_HOOKS = "__duplexlambda_lifecycle__"


def own_lifecycle(func: Callable[..., Any]) -> Lifecycle | None:
    """The hooks a handler object brings along (``__duplexlambda_lifecycle__``), if any.

    The ASGI bridge uses this to run an app's ``lifespan`` once per environment without
    registering anything in the module-global ``lifecycle``.
    """
    hooks = getattr(func, _OWN_HOOKS, None)
    return hooks if isinstance(hooks, Lifecycle) else None


def on_init(func: H) -> H:
    """Run ``async def func()`` once, before the first invocation (open clients here)."""
    lifecycle.init.append(func)
    return func


def on_shutdown(func: H) -> H:
    """Run ``async def func()`` once, when the environment shuts down (SIGTERM)."""
    lifecycle.shutdown.append(func)
    return func


def split_handler(spec: str) -> tuple[str, str]:
    """``"pkg/mod.func"`` or ``"pkg.mod:func"`` -> ``("pkg.mod", "func")``.

    Raises:
        MalformedHandlerName: no separator, or an empty part.
    """
    if ":" in spec:
        module, _, name = spec.partition(":")
    else:
        module, _, name = spec.rpartition(".")
    module = module.replace("/", ".")
    if not module or not name:
        raise MalformedHandlerName(
            f"Bad handler '{spec}': not enough values to unpack (expected module.function)"
        )
    return module, name


def load_handler(spec: str, task_root: str | None = None) -> Callable[..., Any]:
    """Import the handler named by ``spec`` (``_HANDLER``).

    Raises:
        HandlerInitError: one of the ``Runtime.*`` init errors above.
    """
    module_name, attr = split_handler(spec)
    if module_name.split(".")[0] in sys.builtin_module_names:
        # As awslambdaric: importing it would "work" and then find no handler.
        raise BuiltInModuleConflict(f"Cannot use built-in module {module_name} as a handler module")
    root = task_root if task_root is not None else os.environ.get("LAMBDA_TASK_ROOT")
    if root and (not sys.path or sys.path[0] != root):
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise UserCodeSyntaxError(f"Syntax error in module '{module_name}': {exc}") from exc
    except ImportError as exc:
        raise ImportModuleError(f"Unable to import module '{module_name}': {exc}") from exc
    func: Any = module
    for part in attr.split("."):
        func = getattr(func, part, None)
        if func is None:
            raise HandlerNotFound(f"Handler '{attr}' missing on module '{module_name}'")
    if not callable(func):
        raise HandlerNotFound(f"Handler '{attr}' on module '{module_name}' is not callable")
    return func  # type: ignore[no-any-return]
