"""``serve --reload``: watch the task root and restart the runtime when a file changes.

Imported only with ``--reload`` (watchfiles is an optional dependency, and ``serve``'s start
should not pay for it). A burst of saves is one restart: watchfiles gathers changes until
the tree is quiet for ``DEBOUNCE_MS``. In-flight invocations get ``GRACE`` seconds to finish
before the runtime child is stopped; the new one receives nothing before it polls ``/next``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .supervisor import Supervisor

log = logging.getLogger("duplexlambda.emulator")

#: Quiet time (ms) that ends a burst of changes.
DEBOUNCE_MS = 200
#: Seconds dispatched invocations may run on the old code before it is stopped.
GRACE = 30.0
#: Folder names never watched (besides hidden ones).
IGNORED_DIRS = frozenset({"__pycache__", ".venv", "venv", "node_modules", ".git"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", "~")


def watched(path: str, root: str) -> bool:
    """Whether a change to ``path`` (under ``root``) should reload the function."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        parts = Path(path).parts
    if any(part in IGNORED_DIRS or part.startswith(".") for part in parts):
        return False
    return not path.endswith(IGNORED_SUFFIXES)


def missing_watcher() -> str | None:
    """Why ``--reload`` cannot work here (watchfiles is not installed), or None."""
    import importlib.util

    if importlib.util.find_spec("watchfiles") is None:
        return "--reload needs watchfiles: pip install 'duplexlambda[reload]'"
    return None


def describe(paths: Iterable[str], root: str) -> str:
    """``app.py, lib/util.py`` (relative to ``root``), at most five then ``+N more``."""
    names = sorted({os.path.relpath(path, root) for path in paths})
    shown = ", ".join(names[:5])
    return shown + (f" +{len(names) - 5} more" if len(names) > 5 else "")


async def watch(
    root: str,
    supervisor: Supervisor,
    stop: asyncio.Event,
    *,
    grace: float = GRACE,
    on_restart: Callable[[], None] | None = None,
) -> None:
    """Restart ``supervisor``'s runtime after each burst of changes under ``root`` until
    ``stop`` is set."""
    from watchfiles import awatch

    def keep(_change: object, path: str) -> bool:
        return watched(path, root)

    log.info("reload: watching %s", root)
    async for changes in awatch(
        root, watch_filter=keep, debounce=DEBOUNCE_MS, step=50, stop_event=stop
    ):
        paths = [path for _, path in changes]
        log.info("reload: %s changed; restarting the runtime", describe(paths, root))
        await supervisor.restart(grace)
        if on_restart is not None:
            on_restart()
