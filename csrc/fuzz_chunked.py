"""Differential fuzzing of the chunked decoder's C twin (cffi) against the Python reference.

Usage, from the repository root (libFuzzer flags and corpus directories go through atheris)::

    python csrc/fuzz_chunked.py [--target=NAME] [--py-all-modes] [--check-after-end]
                                [libFuzzer flags] [corpus dirs or files...]

    python csrc/fuzz_chunked.py -max_total_time=60 -artifact_prefix=fuzz-artifacts/ \\
        tests/protocol/corpus/chunked/valid tests/protocol/corpus/chunked/invalid
    python csrc/fuzz_chunked.py fuzz-artifacts/crash-<sha1>        # replay one input

Targets (``--target=``, or ``FUZZ_CHUNKED_TARGET`` in the environment):

``chunked`` (default)
    The input is a chunked body. The C twin decodes it fed all at once, one byte at a time (until
    done or error; the bytes left are the unused data) and in random pieces (split points, empty
    feeds and bytes/bytearray/memoryview pieces drawn from a seed that is the input's CRC-32).
    All three runs must agree exactly with the Python twin fed all at once: body data (including
    the data carried by the error), ``done``, trailers, unused data, error class and whether it
    came from ``feed()`` or ``eof()``. Only ``ChunkedEncodingError`` may escape the codec;
    errors must be sticky; a body that is not done must fail ``eof()`` with
    ``TruncatedBodyError``; ``data_total`` must count the data; after the end ``feed(b"")`` is a
    no-op, ``eof()`` passes and ``feed(b"x")`` raises ``DataAfterEndError``; ``feed()`` returns
    a list of non-empty memoryviews (as the Python twin does).
    ``--py-all-modes`` (``FUZZ_CHUNKED_PY_ALL_MODES=1``) also feeds the Python twin byte by byte
    and in random pieces: about half the speed, since the instrumented Python twin is where the
    time goes.
``chunked-large``
    The same checks on bodies built from the input (runs of 4 KiB chunks or of many tiny ones,
    up to about 512 KiB, then up to two corrupted bytes and trailing bytes), to reach the C
    wrapper's paths for large chunks and for a full span array that 4 KiB inputs cannot.
    Byte-by-byte feeding is only done for bodies up to 16 KiB; larger ones are fed in four
    random splits instead. Defaults to ``-max_len=1024 -len_control=0``.
``prelude``
    The input is a JSON + 8 x NUL prelude stream for ``PreludeDecoder`` (with the default size
    limit and with a small one drawn from the input): fed all at once, byte by byte and in
    random pieces, it must give the same prelude, body, completeness and error (class and
    message); only ``PreludeError`` may escape.

Both twins must also agree on ``done`` and ``eof()`` after a ``DataAfterEndError``
(``FUZZ_CHUNKED_AFTER_END=0`` turns that check off; ``--check-after-end`` is kept as a no-op
spelling of the default).

Any broken invariant raises ``Mismatch``; atheris reports it as a crash and libFuzzer writes the
input to ``<artifact_prefix>crash-<sha1>``. A crash of the C code itself (a signal) is caught by
libFuzzer the same way.

Coverage feedback comes from the instrumented Python modules of ``duplexlambda`` (the Python
twin has the same states as the C one, so it guides the fuzzer through them); the C code is not
instrumented unless the extension is built with clang's ``-fsanitize=fuzzer-no-link``. Building
it with ``DUPLEXLAMBDA_SANITIZE=1`` (ASan + UBSan, see .ci/sanitize) makes memory errors fatal.

libFuzzer writes new inputs into the first corpus directory. When that directory is inside the
committed corpus (tests/protocol/corpus), a scratch directory (``fuzz-artifacts/corpus-<target>``,
git-ignored) is put in front of it so that the committed corpus is only read.
"""

from __future__ import annotations

import os
import pathlib
import random
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import atheris

# Coverage comes from the Python twin. The C twin's wrapper is instrumented only for
# chunked-large, whose bodies reach its interesting paths: elsewhere it would cost a third of the
# speed of byte-by-byte feeding for nothing.
with atheris.instrument_imports(
    include=["duplexlambda"],
    exclude=[]
    if "--target=chunked-large" in sys.argv
    or os.environ.get("FUZZ_CHUNKED_TARGET") == "chunked-large"
    else ["duplexlambda.protocol._chunked_c"],
):
    from duplexlambda.errors import (
        ChunkedEncodingError,
        DataAfterEndError,
        PreludeError,
        TruncatedBodyError,
    )
    from duplexlambda.protocol.chunked import IMPORT_ERROR, CChunkDecoder, PyChunkDecoder
    from duplexlambda.protocol.prelude import MAX_PRELUDE, PreludeDecoder

Buffer = bytes | bytearray | memoryview
Decoder = type[PyChunkDecoder]

REPO = pathlib.Path(__file__).resolve().parent.parent
COMMITTED_CORPUS = REPO / "tests" / "protocol" / "corpus"
TARGETS = ("chunked", "chunked-large", "prelude")
BYTEWISE_LIMIT = 16 * 1024
LARGE_LIMIT = 512 * 1024


class Mismatch(AssertionError):
    """A broken invariant: atheris treats it as a crash and saves the input."""


def fail(message: str, data: bytes) -> NoReturn:
    shown = repr(data) if len(data) <= 300 else repr(data[:300]) + "... (see the crash file)"
    raise Mismatch(f"{message}\ninput ({len(data)} bytes): {shown}")


# --- chunked ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkedOutcome:
    """Everything observable about one decoding run."""

    data: bytes
    done: bool
    trailers: tuple[tuple[bytes, bytes], ...]
    unused: bytes
    error: str | None  # class name
    stage: str | None  # "feed" or "eof"
    after_end: tuple[bool, str | None] | None  # (done, eof error) after DataAfterEndError


def _label(cls: Decoder, pieces: Sequence[Buffer], data: bytes) -> str:
    """``c oneshot``, ``py bytewise`` or ``c split [3, 0, 6]`` (piece lengths), for messages."""
    if len(pieces) == 1 and len(pieces[0]) == len(data):
        return f"{cls.IMPL} oneshot"
    if len(pieces) == len(data) and all(len(p) == 1 for p in pieces):
        return f"{cls.IMPL} bytewise"
    return f"{cls.IMPL} split {[len(p) for p in pieces]}"


def _raises(action: Callable[[], object]) -> type[ChunkedEncodingError] | None:
    try:
        action()
    except ChunkedEncodingError as exc:
        return type(exc)
    return None


def _check_sticky(
    dec: PyChunkDecoder, who: str, error: type[ChunkedEncodingError], data: bytes
) -> None:
    if dec.done:
        fail(f"{who}: done after {error.__name__}", data)
    for label, action in (
        ("feed(b'x')", lambda: dec.feed(b"x")),
        ("feed(b'')", lambda: dec.feed(b"")),
        ("eof()", dec.eof),
    ):
        again = _raises(action)
        if again is not error:
            fail(f"{who}: {label} after {error.__name__} gave {again}", data)


def _after_end(
    dec: PyChunkDecoder, who: str, data: bytes, record: bool
) -> tuple[bool, str | None] | None:
    """Check a finished decoder: b"" is a no-op, eof passes, more data is DataAfterEndError."""
    try:
        if dec.feed(b"") != []:
            fail(f"{who}: feed(b'') after the end returned data", data)
        dec.eof()
    except ChunkedEncodingError as exc:
        fail(f"{who}: feed(b'') or eof() after the end raised {exc!r}", data)
    if not dec.done:
        fail(f"{who}: eof() after the end cleared done", data)
    raised = _raises(lambda: dec.feed(b"\r\n"))
    if raised is not DataAfterEndError:
        fail(f"{who}: feed after the end gave {raised}, not DataAfterEndError", data)
    if not record:
        return None
    eof_error = _raises(dec.eof)
    return dec.done, eof_error.__name__ if eof_error else None


def decode_chunked(
    cls: Decoder, pieces: Sequence[Buffer], data: bytes, after_end: bool
) -> ChunkedOutcome:
    """Feed ``pieces`` until done or error, then ``eof()``; pieces left after done are unused."""
    dec = cls()
    who = _label(cls, pieces, data)
    out: list[bytes] = []
    rest: Sequence[Buffer] = ()
    error: type[ChunkedEncodingError] | None = None
    stage: str | None = None
    try:
        for k, piece in enumerate(pieces):
            if dec.done:
                rest = pieces[k:]
                break
            views = dec.feed(piece)
            if not isinstance(views, list) or not all(isinstance(v, memoryview) for v in views):
                fail(f"{who}: feed() returned {type(views)} of non-memoryviews", data)
            if not all(len(v) for v in views):
                fail(f"{who}: feed() of {len(piece)} bytes returned an empty view", data)
            out += [bytes(v) for v in views]
    except ChunkedEncodingError as exc:
        error, stage = type(exc), "feed"
        out += [bytes(v) for v in exc.data]
    else:
        try:
            dec.eof()
        except ChunkedEncodingError as exc:
            error, stage = type(exc), "eof"
            if error is not TruncatedBodyError:
                fail(f"{who}: eof() raised {error.__name__}", data)
    decoded = b"".join(out)
    if dec.data_total != len(decoded):
        fail(f"{who}: data_total {dec.data_total} but {len(decoded)} data bytes", data)
    if error is not None:
        # trailer fields completed before the error are kept; nothing is unused
        failed = ChunkedOutcome(
            decoded, dec.done, tuple(dec.trailers), dec.unused_data, error.__name__, stage, None
        )
        _check_sticky(dec, who, error, data)
        return failed
    if not dec.done:
        fail(f"{who}: neither done nor failed after eof()", data)
    trailers = tuple(dec.trailers)
    unused = dec.unused_data + b"".join(bytes(p) for p in rest)
    ended = _after_end(dec, who, data, after_end)
    return ChunkedOutcome(decoded, True, trailers, unused, None, None, ended)


def bytewise(data: bytes) -> list[Buffer]:
    return [data[k : k + 1] for k in range(len(data))]


def random_pieces(data: bytes, rng: random.Random, max_cuts: int = 12) -> list[Buffer]:
    """``data`` cut at random points, as bytes, bytearray or memoryview, with empty feeds."""
    n = len(data)
    cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(1, max_cuts)))) if n > 1 else []
    view = memoryview(data)
    pieces: list[Buffer] = []
    for a, b in zip([0, *cuts], [*cuts, n], strict=True):
        if rng.random() < 0.1:
            pieces.append(b"")
        kind = rng.randrange(3)
        pieces.append(view[a:b] if kind == 0 else bytearray(data[a:b]) if kind == 1 else data[a:b])
    return pieces


def _describe(outcome: ChunkedOutcome) -> str:
    text = repr(outcome)
    return text if len(text) <= 1500 else text[:1500] + "..."


def check_chunked(data: bytes, *, with_bytewise: bool = True, splits: int = 1) -> None:
    """All feeding modes of both twins agree with the Python twin fed all at once."""
    assert CChunkDecoder is not None
    after_end = os.environ.get("FUZZ_CHUNKED_AFTER_END", "1") == "1"
    ref = decode_chunked(PyChunkDecoder, [data], data, after_end)
    rng = random.Random(zlib.crc32(data))
    modes: list[tuple[str, Sequence[Buffer]]] = [("oneshot", [data])]
    if with_bytewise:
        modes.append(("bytewise", bytewise(data)))
    modes += [(f"split#{k}", random_pieces(data, rng)) for k in range(splits)]
    py_too = os.environ.get("FUZZ_CHUNKED_PY_ALL_MODES") == "1"
    for impl, cls in (("c", CChunkDecoder), ("py", PyChunkDecoder)):
        for mode, pieces in modes:
            if impl == "py" and (mode == "oneshot" or not py_too):
                continue
            got = decode_chunked(cls, pieces, data, after_end)
            if got != ref:
                who = _label(cls, pieces, data)
                fail(
                    f"{who} disagrees with py oneshot:\n"
                    f"  py oneshot: {_describe(ref)}\n  {who}: {_describe(got)}",
                    data,
                )


def one_chunked(data: bytes) -> None:
    check_chunked(data)


def build_large(data: bytes) -> bytes:
    """A chunked body of up to 80 runs of identical chunks (4 KiB ones, or up to 400 tiny ones
    per run, so that one feed can fill the C wrapper's span array), capped near 512 KiB, then
    trailers, up to two corrupted bytes and the rest of the input as trailing bytes."""
    fdp = atheris.FuzzedDataProvider(data)
    parts: list[bytes] = []
    total = 0
    for _ in range(fdp.ConsumeIntInRange(0, 80)):
        if total > LARGE_LIMIT:
            break
        big = fdp.ConsumeBool()
        size = fdp.ConsumeIntInRange(4090, 4200) if big else fdp.ConsumeIntInRange(1, 100)
        repeat = fdp.ConsumeIntInRange(1, 4) if big else fdp.ConsumeIntInRange(1, 400)
        digits = b"%x" % size
        if fdp.ConsumeBool():
            digits = digits.upper()
        fill = bytes([fdp.ConsumeIntInRange(0, 255)])
        chunk = digits + b"\r\n" + fill * size + b"\r\n"
        parts.append(chunk * repeat)
        total += len(chunk) * repeat
    parts.append(b"0\r\n")
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        parts.append(b"T%d: v\r\n" % fdp.ConsumeIntInRange(0, 99))
    parts.append(b"\r\n")
    body = bytearray(b"".join(parts))
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        body[fdp.ConsumeIntInRange(0, len(body) - 1)] = fdp.ConsumeIntInRange(0, 255)
    tail: bytes = fdp.ConsumeBytes(fdp.remaining_bytes())
    return bytes(body) + tail


def one_chunked_large(data: bytes) -> None:
    body = build_large(data)
    small = len(body) <= BYTEWISE_LIMIT
    check_chunked(body, with_bytewise=small, splits=1 if small else 4)


# --- prelude ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreludeOutcome:
    prelude: dict[str, Any] | None
    complete: bool
    body: bytes
    error: str | None  # "Class: message"
    stage: str | None


def decode_prelude(pieces: Sequence[Buffer], max_size: int, data: bytes) -> PreludeOutcome:
    dec = PreludeDecoder(max_size)
    body: list[bytes] = []
    error: PreludeError | None = None
    stage: str | None = None
    try:
        for piece in pieces:
            body += [bytes(v) for v in dec.feed(piece)]
    except PreludeError as exc:
        error, stage = exc, "feed"
    else:
        try:
            dec.eof()
        except PreludeError as exc:
            error, stage = exc, "eof"
    if error is not None:
        for label, action in (("feed", lambda: dec.feed(b"x")), ("eof", dec.eof)):
            try:
                action()
            except PreludeError as again:
                if str(again) != str(error):
                    fail(f"prelude: {label} after the error raised {again!r}", data)
            else:
                fail(f"prelude: {label} after {error!r} did not raise", data)
    if dec.complete == (error is not None):
        fail(f"prelude: complete={dec.complete} with error {error!r}", data)
    message = f"{type(error).__name__}: {error}" if error else None
    return PreludeOutcome(dec.prelude, dec.complete, b"".join(body), message, stage)


def one_prelude(data: bytes) -> None:
    small = 1 + (data[0] % 64 if data else 0)
    rng = random.Random(zlib.crc32(data))
    for max_size in (MAX_PRELUDE, small):
        ref = decode_prelude([data], max_size, data)
        for mode, pieces in (("bytewise", bytewise(data)), ("split", random_pieces(data, rng))):
            got = decode_prelude(pieces, max_size, data)
            if got != ref:
                fail(
                    f"prelude (max_size={max_size}) {mode} disagrees with oneshot:\n"
                    f"  oneshot: {ref!r}\n  {mode}: {got!r}",
                    data,
                )


# --- driver ----------------------------------------------------------------------------------


def _own_flags(argv: list[str]) -> list[str]:
    """Take this script's flags out of argv (into the environment, which libFuzzer's child
    processes inherit with -fork/-jobs); return the rest for libFuzzer."""
    rest = []
    for arg in argv:
        if arg.startswith("--target="):
            os.environ["FUZZ_CHUNKED_TARGET"] = arg.partition("=")[2]
        elif arg == "--check-after-end":
            os.environ["FUZZ_CHUNKED_AFTER_END"] = "1"
        elif arg == "--py-all-modes":
            os.environ["FUZZ_CHUNKED_PY_ALL_MODES"] = "1"
        else:
            rest.append(arg)
    return rest


def _protect_committed_corpus(argv: list[str], target: str) -> list[str]:
    """Put a scratch corpus in front when libFuzzer would write into the committed one."""
    positional = [k for k, arg in enumerate(argv) if k and not arg.startswith("-")]
    if not positional or not os.path.isdir(argv[positional[0]]):
        return argv
    first = pathlib.Path(argv[positional[0]]).resolve()
    if not first.is_relative_to(COMMITTED_CORPUS):
        return argv
    scratch = pathlib.Path("fuzz-artifacts") / f"corpus-{target}"
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"fuzz_chunked: new inputs go to {scratch}/, not to {first}", file=sys.stderr)
    return [*argv[: positional[0]], str(scratch), *argv[positional[0] :]]


def main() -> None:
    argv = _own_flags(sys.argv)
    target = os.environ.get("FUZZ_CHUNKED_TARGET", "chunked")
    if target not in TARGETS:
        sys.exit(f"fuzz_chunked: unknown target {target!r} (one of {', '.join(TARGETS)})")
    if target != "prelude" and CChunkDecoder is None:
        sys.exit(f"fuzz_chunked: the C twin is not built ({IMPORT_ERROR})")
    fuzz_one: Callable[[bytes], None] = {
        "chunked": one_chunked,
        "chunked-large": one_chunked_large,
        "prelude": one_prelude,
    }[target]
    if target == "chunked-large":
        # the input is a recipe: let it be long from the start rather than grow slowly
        for flag in ("-max_len=1024", "-len_control=0"):
            if not any(arg.startswith(flag.partition("=")[0] + "=") for arg in argv):
                argv.append(flag)
    atheris.Setup(_protect_committed_corpus(argv, target), fuzz_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
