"""Type aliases shared by the protocol core."""

from __future__ import annotations

from typing import TypeAlias

#: Anything with the buffer protocol that the codecs accept (C-contiguous bytes).
Buffer: TypeAlias = bytes | bytearray | memoryview
