"""cffi build script: compiles csrc/chunked.c into ``duplexlambda._chunked_cffi``.

``DUPLEXLAMBDA_SANITIZE=1`` builds with AddressSanitizer and UndefinedBehaviorSanitizer (run
the tests with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``; see .ci/run).
"""

from __future__ import annotations

import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef((HERE / "chunked.cdef").read_text())

compile_args = ["-std=c99", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]
link_args: list[str] = []
if os.environ.get("DUPLEXLAMBDA_SANITIZE") == "1":
    sanitize = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined",
        "-fno-omit-frame-pointer",
        "-O1",
        "-g",
    ]
    compile_args += sanitize
    link_args += sanitize

ffibuilder.set_source(
    "duplexlambda._chunked_cffi",
    '#include "chunked.h"',
    # Relative paths: setuptools refuses absolute source paths in sdists and wheels.
    sources=["csrc/chunked.c"],
    include_dirs=["csrc"],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
