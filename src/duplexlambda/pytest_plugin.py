"""The pytest plugin's old name: it moved to ``duplexlambda.testing.plugin``.

Kept for code that imports the factory types from here, or loads the plugin by this name
(``-p duplexlambda.pytest_plugin``, ``pytest_plugins = [...]``).
"""

from __future__ import annotations

from duplexlambda.testing.plugin import (
    EmulatorFactory,
    LambdaClientFactory,
    emulator,
    lambda_client,
)

__all__ = ["EmulatorFactory", "LambdaClientFactory", "emulator", "lambda_client"]
