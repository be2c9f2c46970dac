"""The twins share their numbers: csrc/chunked.h and chunked.c against ``_chunked_py``.

Status codes, limits and states are written once in C (chunked.h, chunked.c's state enum)
and once in Python (the error classes' ``code`` in errors.py, named ``E_*`` by the Python
twin; its ``MAX_*`` and ``S_*``). The C wrapper takes the Python names, so these tests are
what keeps the two in step: the sources are parsed, and the compiled values are compared
too when the extension is built.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from duplexlambda import errors
from duplexlambda.protocol import _chunked_py as py
from duplexlambda.protocol import chunked

CSRC = pathlib.Path(__file__).resolve().parents[2] / "csrc"


def _header_defines() -> dict[str, int]:
    """``#define DL_NAME <integer>`` of chunked.h, as {NAME: value}."""
    text = (CSRC / "chunked.h").read_text()
    pattern = re.compile(r"^#define DL_(\w+) +\(?(-?\d+)\)?", re.MULTILINE)
    return {name: int(value) for name, value in pattern.findall(text)}


def _c_states() -> list[str]:
    """The decoder states of chunked.c's enum, in order (numbered from 0)."""
    text = (CSRC / "chunked.c").read_text()
    body = re.search(r"enum \{(.*?)\};", text, re.DOTALL)
    assert body is not None, "chunked.c: no state enum"
    code = re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.DOTALL)
    names = [item.split("=")[0].strip() for item in code.split(",")]
    assert "= 0" in code.split(",")[0], "the first state must be 0"
    return [name for name in names if name]


def _py_codes() -> dict[str, int]:
    return {name[2:]: getattr(py, name) for name in dir(py) if name.startswith("E_")}


def test_error_codes_match_the_header() -> None:
    c_codes = {name[2:]: value for name, value in _header_defines().items() if name[:2] == "E_"}
    py_codes = _py_codes()
    # EOF is Python's to see: C has no code for a truncated body.
    assert py_codes.pop("TRUNCATED") == errors.TruncatedBodyError.code
    assert py_codes == c_codes


def test_every_code_has_its_error_class() -> None:
    assert set(errors.CHUNKED_ERRORS) == set(_py_codes().values())
    for code, cls in errors.CHUNKED_ERRORS.items():
        raised = errors.chunked_error(code)
        assert (type(raised), raised.code, str(raised)) == (cls, code, cls.message)


def test_limits_match_the_header() -> None:
    defines = _header_defines()
    for name in ("MAX_LINE", "MAX_SIZE_DIGITS", "MAX_TRAILER_BYTES", "MAX_TRAILERS"):
        assert getattr(py, name) == defines[name], name


def test_states_match_the_c_enum() -> None:
    states = _c_states()
    assert [getattr(py, name) for name in states] == list(range(len(states)))
    py_states = {name for name in dir(py) if name.startswith("S_")}
    assert py_states == set(states)


@pytest.mark.skipif(chunked.CChunkDecoder is None, reason="C twin not built")
def test_compiled_values_match_the_header() -> None:
    from duplexlambda._chunked_cffi import lib

    compiled = {name: getattr(lib, f"DL_{name}") for name in _header_defines() if name[:2] == "E_"}
    assert compiled == {name: getattr(py, name) for name in compiled}
    assert len(compiled) == len(errors.CHUNKED_ERRORS) - 1  # all but TRUNCATED
