"""The fuzz targets' committed corpora, replayed on every test run.

* The C libFuzzer target (csrc/fuzz_decoder.c), built by clang with ASan + UBSan, runs every
  input of the committed chunked corpus once (``-runs=0``): decode or error, never crash,
  one-shot == byte by byte == pieces, round trip. Skipped only where clang is missing
  (CI installs it: .ci/fuzz needs it anyway).
* The HTTP target (csrc/fuzz_http.py) runs every committed seed against an in-process
  emulator and runtime over real sockets, with the same checks as under atheris.
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import subprocess
import sys
from types import ModuleType

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "protocol" / "corpus" / "chunked"
HTTP_SEEDS = REPO / "tests" / "reliability" / "corpus" / "http"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "csrc" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
def test_c_decoder_target_replays_the_committed_corpus(tmp_path: pathlib.Path) -> None:
    binary = tmp_path / "fuzz_decoder"
    subprocess.run(
        [
            "clang", "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
            "-fno-sanitize-recover=undefined", "-Wall", "-Wextra", "-Werror",
            "-Icsrc", "csrc/fuzz_decoder.c", "csrc/chunked.c", "-o", str(binary),
        ],
        cwd=REPO,
        check=True,
        timeout=120,
    )  # fmt: skip
    run = subprocess.run(
        [str(binary), "-runs=0", str(CORPUS / "valid"), str(CORPUS / "invalid")],
        cwd=tmp_path,  # where libFuzzer would write a crash file
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    inputs = len(list((CORPUS / "valid").iterdir())) + len(list((CORPUS / "invalid").iterdir()))
    assert inputs > 50
    assert "INITED" in run.stderr  # every input was executed before it stopped


def test_c_decoder_target_catches_a_broken_invariant(tmp_path: pathlib.Path) -> None:
    """The harness can fail: a decoder that loses the last data byte of a one-shot feed is
    caught on the first valid input (built without sanitizers, with gcc, to stay cheap)."""
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed")
    broken = tmp_path / "chunked_broken.c"
    source = (REPO / "csrc" / "chunked.c").read_text()
    needle = "    res[2] = bytes;\n"
    assert needle in source
    broken.write_text(
        source.replace('#include "chunked.h"', f'#include "{REPO}/csrc/chunked.h"').replace(
            needle, "    res[2] = bytes;\n    if (ns > 1 && in_len > 64) res[1] = ns - 1;\n"
        )
    )
    binary = tmp_path / "fuzz_broken"
    subprocess.run(
        ["clang", "-O1", "-fsanitize=fuzzer", f"-I{REPO}/csrc", str(REPO / "csrc/fuzz_decoder.c"),
         str(broken), "-o", str(binary)],
        check=True,
        timeout=120,
    )  # fmt: skip
    run = subprocess.run(
        [str(binary), "-runs=0", str(CORPUS / "valid")],
        cwd=tmp_path,  # the crash file it writes stays out of the work tree
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "invariant broken" in run.stderr or "disagrees" in run.stderr


def test_http_target_replays_its_seeds() -> None:
    fuzz_http = _load("fuzz_http")
    seeds = sorted(HTTP_SEEDS.iterdir())
    assert {p.name for p in seeds} == set(fuzz_http.seeds())  # committed == generated
    harness = fuzz_http.Harness()
    try:
        one_input = fuzz_http.checker(harness)
        for seed in seeds:
            one_input(seed.read_bytes())
    finally:
        harness.close()


def test_http_target_flags_a_server_error() -> None:
    """The invariants can fail: a 500 in a reply is a broken one."""
    fuzz_http = _load("fuzz_http")
    raw = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
    [(status, _)] = fuzz_http.parse_responses(raw)
    assert status not in fuzz_http.ALLOWED
    with pytest.raises(fuzz_http.Broken):
        fuzz_http.parse_responses(b"HTTP/1.1 200 OK\r\nContent-Len")
