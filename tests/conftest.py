"""Shared fixtures: the codec twins, and the event loops async tests run on."""

from __future__ import annotations

import os
import pathlib

import pytest

from duplexlambda.protocol import chunked
from duplexlambda.protocol._chunked_py import ChunkDecoder as PyChunkDecoder
from duplexlambda.protocol._chunked_py import ChunkEncoder as PyChunkEncoder

VECTORS = pathlib.Path(__file__).parent / "vectors"

# CI builds the extension and must never fall back to Python silently.
if os.environ.get("DUPLEXLAMBDA_REQUIRE_C") == "1":
    assert chunked.CChunkDecoder is not None, chunked.IMPORT_ERROR

_C_MISSING = pytest.mark.skipif(
    chunked.CChunkDecoder is None, reason=f"C twin not built: {chunked.IMPORT_ERROR}"
)

DECODERS = [
    pytest.param(PyChunkDecoder, id="py"),
    pytest.param(chunked.CChunkDecoder, id="c", marks=_C_MISSING),
]
ENCODERS = [
    pytest.param(PyChunkEncoder, id="py"),
    pytest.param(chunked.CChunkEncoder, id="c", marks=_C_MISSING),
]


@pytest.fixture(params=DECODERS)
def decoder_cls(request: pytest.FixtureRequest) -> type[PyChunkDecoder]:
    """Each chunked decoder twin in turn."""
    cls: type[PyChunkDecoder] = request.param
    return cls


@pytest.fixture(params=ENCODERS)
def encoder_cls(request: pytest.FixtureRequest) -> type[PyChunkEncoder]:
    """Each chunked encoder twin in turn."""
    cls: type[PyChunkEncoder] = request.param
    return cls
