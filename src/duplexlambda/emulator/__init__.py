"""The local emulator of the AWS Lambda side: Runtime API, function URL, Invoke API.

It streams both ways: responses chunk by chunk, and (in duplex mode) uploads to the runtime
while they arrive. See ``Emulator`` for the Python API and ``duplexlambda serve`` for the CLI.

The names below are imported on first use, so that building the ``duplexlambda`` command
line (which registers ``serve``) does not load the emulator into a runtime's cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Emulator
    from .config import EmulatorConfig, InvocationRecord

__all__ = ["Emulator", "EmulatorConfig", "InvocationRecord"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from .app import Emulator

        return Emulator
    if name in ("EmulatorConfig", "InvocationRecord"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
