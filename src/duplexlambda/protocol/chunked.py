"""HTTP/1.1 chunked transfer coding: ``ChunkDecoder`` and ``ChunkEncoder``.

The names are bound to the C twin (csrc/chunked.c through cffi) unless
``DUPLEXLAMBDA_NO_EXTENSIONS=1`` is set or the extension was not built; the pure-Python twin
is the reference and is always importable as ``PyChunkDecoder`` / ``PyChunkEncoder``.
``IMPL`` says which one is in use (``"c"`` or ``"python"``); ``IMPORT_ERROR`` says why the C
twin is not, so that a missing build is never silent (``python -m duplexlambda info`` shows it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._chunked_py import ChunkDecoder as PyChunkDecoder
from ._chunked_py import ChunkEncoder as PyChunkEncoder
from ._chunked_py import Trailers, encode_trailers

IMPL: str
IMPORT_ERROR: str | None = None

CChunkDecoder: type[PyChunkDecoder] | None
CChunkEncoder: type[PyChunkEncoder] | None
try:
    from ._chunked_c import ChunkDecoder as _CDecoder
    from ._chunked_c import ChunkEncoder as _CEncoder
except ImportError as exc:  # extension not built (e.g. no compiler at install time)
    CChunkDecoder = CChunkEncoder = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    CChunkDecoder = _CDecoder
    CChunkEncoder = _CEncoder

if TYPE_CHECKING:
    # For type checkers both names are the Python classes, which the C twins subclass: so
    # ``ChunkDecoder`` works in annotations whichever twin is bound at run time.
    from ._chunked_py import ChunkDecoder, ChunkEncoder

    IMPL = "c"
elif os.environ.get("DUPLEXLAMBDA_NO_EXTENSIONS") == "1" or CChunkDecoder is None:
    ChunkDecoder, ChunkEncoder, IMPL = PyChunkDecoder, PyChunkEncoder, "python"
    if CChunkDecoder is not None:
        IMPORT_ERROR = "disabled by DUPLEXLAMBDA_NO_EXTENSIONS=1"
else:
    ChunkDecoder, ChunkEncoder, IMPL = CChunkDecoder, CChunkEncoder, "c"

__all__ = [
    "IMPL",
    "IMPORT_ERROR",
    "CChunkDecoder",
    "CChunkEncoder",
    "ChunkDecoder",
    "ChunkEncoder",
    "PyChunkDecoder",
    "PyChunkEncoder",
    "Trailers",
    "encode_trailers",
]
