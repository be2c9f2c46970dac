"""The accept/reject corpus in tests/protocol/corpus/chunked, on both twins, fed three ways.

Each file runs fed all at once (``oneshot``), one byte at a time until done or error
(``bytewise``), and all at once with ``TRAILING`` appended (``trailing``). The expected outcome
of every file is in corpus/chunked/expected.json, written from the hand-checked table in
corpus/make_corpus.py (which regenerates the corpus).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pathlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from duplexlambda.protocol.chunked import IMPORT_ERROR, CChunkDecoder, PyChunkDecoder

from .feeding import TRAILING, Outcome, decode

CORPUS = pathlib.Path(__file__).parent / "corpus"
CHUNKED = CORPUS / "chunked"
EXPECTED: dict[str, dict[str, dict[str, Any]]] = json.loads((CHUNKED / "expected.json").read_text())


def _oneshot(cls: type[PyChunkDecoder], wire: bytes) -> Outcome:
    return decode(cls, [wire])


def _bytewise(cls: type[PyChunkDecoder], wire: bytes) -> Outcome:
    return decode(cls, [wire[k : k + 1] for k in range(len(wire))])


def _trailing(cls: type[PyChunkDecoder], wire: bytes) -> Outcome:
    return decode(cls, [wire + TRAILING])


Feeding = Callable[[type[PyChunkDecoder], bytes], Outcome]
FEEDINGS: list[tuple[str, Feeding]] = [
    ("oneshot", _oneshot),
    ("bytewise", _bytewise),
    ("trailing", _trailing),
]

_NO_C = pytest.mark.skipif(
    CChunkDecoder is None, reason=f"C twin (duplexlambda._chunked_cffi) not built: {IMPORT_ERROR}"
)
TWINS: list[tuple[str, type[PyChunkDecoder] | None, list[pytest.MarkDecorator]]] = [
    ("c", CChunkDecoder, [_NO_C]),
    ("py", PyChunkDecoder, []),
]


def _params(kind: str) -> list[Any]:
    """(file, decoder class, feeding), with ids like ``invalid/nul-in-extension.bin-c-bytewise``."""
    return [
        pytest.param(
            path.name, cls, feeding, id=f"{kind}/{path.name}-{impl}-{feeding_name}", marks=marks
        )
        for path in sorted((CHUNKED / kind).glob("*.bin"))
        for impl, cls, marks in TWINS
        for feeding_name, feeding in FEEDINGS
    ]


def _error_name(got: Outcome) -> str | None:
    return got.error.__name__ if got.error is not None else None


def _text(b: bytes) -> str:
    return b.decode("latin-1")


def _trailer_json(value: bytes) -> str | dict[str, Any]:
    """A trailer value as expected.json writes it (long values by length and digest)."""
    if len(value) <= 64:
        return _text(value)
    return {"len": len(value), "sha256": hashlib.sha256(value).hexdigest()}


@pytest.mark.parametrize(("name", "cls", "feeding"), _params("valid"))
def test_valid(name: str, cls: type[PyChunkDecoder] | None, feeding: Feeding) -> None:
    assert cls is not None
    want = EXPECTED["valid"][name]
    wire = (CHUNKED / "valid" / name).read_bytes()
    got = feeding(cls, wire)
    assert (_error_name(got), got.stage) == (None, None), f"rejected {wire[:80]!r}..."
    assert got.done
    assert len(got.data) == want["data_len"]
    if "data" in want:
        assert _text(got.data) == want["data"]
    assert hashlib.sha256(got.data).hexdigest() == want["data_sha256"]
    assert [[_text(n), _trailer_json(v)] for n, v in got.trailers] == want["trailers"]
    unused = want["unused"].encode("latin-1")
    if feeding is _trailing:
        unused += TRAILING
    assert got.unused == unused


@pytest.mark.parametrize(("name", "cls", "feeding"), _params("invalid"))
def test_invalid(name: str, cls: type[PyChunkDecoder] | None, feeding: Feeding) -> None:
    assert cls is not None
    want = EXPECTED["invalid"][name]
    wire = (CHUNKED / "invalid" / name).read_bytes()
    got = feeding(cls, wire)
    error = want["error"]
    if feeding is _trailing and want["stage"] == "eof":
        # a truncated body: the appended bytes decide the error (hand-checked in the table)
        error = want["error_with_trailing"]
    stage = "eof" if error == "TruncatedBodyError" else "feed"
    assert (_error_name(got), got.stage) == (error, stage)
    assert not got.done


def test_expected_json_lists_every_file() -> None:
    for kind in ("valid", "invalid"):
        on_disk = {p.name for p in (CHUNKED / kind).glob("*.bin")}
        assert on_disk == set(EXPECTED[kind]), kind


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_corpus_is_what_the_generator_writes() -> None:
    """A file edited by hand instead of through make_corpus.py's table fails here."""
    gen = _load_generator()
    assert gen.expected_entries() == EXPECTED
    for kind, cases in (("valid", gen.VALID), ("invalid", gen.INVALID)):
        for case in cases:
            assert (CHUNKED / kind / case.name).read_bytes() == case.wire, f"{kind}/{case.name}"
