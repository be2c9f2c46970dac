"""duplexlambda: an asyncio custom runtime for AWS Lambda that streams both ways.

``import duplexlambda`` is kept lean (cold starts count): submodules are imported on use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
