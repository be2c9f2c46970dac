"""Write the chunked-body accept/reject corpus and its expected.json from the table below.

    python tests/protocol/corpus/make_corpus.py          # write, then check both twins
    python tests/protocol/corpus/make_corpus.py --check  # check only, write nothing

Every expectation in the table is written by hand from RFC 9112 section 7.1 and the grammar
comment at the top of csrc/chunked.c, never copied from a decoder run. After writing, the
script decodes every file with both twins and prints each disagreement between the table and
a decoder (exit status 1): a disagreement is a codec bug or a table bug, to be settled against
the RFC, never by editing the table to match the code.

Rules used to pick the expected error class (the project's taxonomy, chunked.h / errors.py):

* The error is the one at the first byte that cannot continue the grammar.
* A bare LF anywhere, and any byte other than LF after a CR, is ``BadLineEndingError``
  (the project accepts CRLF only, RFC 9112 section 2.2 lets it reject bare LF).
* A byte that cannot continue a chunk-size (non-hex, whitespace before the digits, a hex digit
  after BWS) is ``BadChunkSizeError``; more than 16 digits (leading zeros included) or a value
  of 2**63 or more is ``ChunkSizeOverflowError``.
* A control character other than HTAB (CR and LF aside) in an extension is
  ``BadChunkExtensionError``; extensions are otherwise not parsed (see the ``lenient-`` files).
* A trailer line that is not ``token ":" OWS field-value OWS`` is ``BadTrailerError``
  (obs-fold included); more than 64 fields or 16384 stored bytes is ``TrailersTooLargeError``.
* A size line or trailer line of more than 8192 bytes (CRLF excluded) is ``LineTooLongError``.
* Input that ends before the final CRLF is ``TruncatedBodyError``, raised by ``eof()``.

Files named ``lenient-*`` are accepted because csrc/chunked.c deliberately ignores chunk
extensions and tolerates whitespace after the size, although RFC 9112's ABNF is stricter.

expected.json holds byte strings (data, trailers, unused) as latin-1 text: one character per
byte, so ``"caf\\u00e9"`` is ``b"caf\\xe9"``. Data is always given by ``data_len`` and
``data_sha256`` (and as ``data`` too when at most 64 bytes); a trailer value longer than 64 bytes
is given as ``{"len": ..., "sha256": ...}``. For truncated inputs, ``error_with_trailing`` is
the error once ``TRAILING`` (the start of a pipelined request) is appended, worked out by hand
as well: appending bytes to a truncated body turns the truncation into whatever those bytes
break.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
from dataclasses import dataclass
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
CHUNKED = HERE / "chunked"
EXPECTED = CHUNKED / "expected.json"

#: Bytes appended in the "trailing" feeding mode of tests/protocol/test_corpus.py.
TRAILING = b"GET / HTTP/1.1\r\n"

END = b"0\r\n\r\n"

# expected error classes (duplexlambda.errors)
BAD_SIZE = "BadChunkSizeError"
OVERFLOW = "ChunkSizeOverflowError"
TOO_LONG = "LineTooLongError"
CRLF = "BadLineEndingError"
BAD_EXT = "BadChunkExtensionError"
BAD_TRAILER = "BadTrailerError"
TOO_LARGE = "TrailersTooLargeError"
TRUNCATED = "TruncatedBodyError"


@dataclass(frozen=True)
class Valid:
    """A complete chunked body: its data, trailers and the bytes left after its end."""

    name: str
    wire: bytes
    data: bytes
    trailers: tuple[tuple[bytes, bytes], ...] = ()
    unused: bytes = b""


@dataclass(frozen=True)
class Invalid:
    """A body rejected with ``error``, raised by ``feed()`` or, if truncated, by ``eof()``."""

    name: str
    wire: bytes
    error: str
    #: for truncated bodies (stage "eof"): the error once TRAILING is appended
    error_with_trailing: str | None = None

    @property
    def stage(self) -> str:
        return "eof" if self.error == TRUNCATED else "feed"


PATTERN_4096 = bytes(range(256)) * 16
ALPHABET = b"abcdefghijklmnopqrstuvwxyz"

VALID: list[Valid] = [
    # --- chunk sizes
    Valid("single-chunk.bin", b"5\r\nhello\r\n" + END, b"hello"),
    Valid("two-chunks.bin", b"5\r\nhello\r\n6\r\n world\r\n" + END, b"hello world"),
    Valid("empty-body-last-chunk-only.bin", END, b""),
    Valid("uppercase-hex.bin", b"A\r\n0123456789\r\n" + END, b"0123456789"),
    Valid("mixed-case-hex-size.bin", b"1A\r\n" + ALPHABET + b"\r\n" + END, ALPHABET),
    Valid("leading-zeros-size.bin", b"0005\r\nhello\r\n" + END, b"hello"),
    Valid(
        "size-16-digits-leading-zeros.bin",
        b"000000000000000a\r\n0123456789\r\n" + END,
        b"0123456789",
    ),
    # last-chunk = 1*("0"): any number of zeros
    Valid("last-chunk-several-zeros.bin", b"5\r\nhello\r\n000\r\n\r\n", b"hello"),
    Valid("last-chunk-16-zeros.bin", b"0" * 16 + b"\r\n\r\n", b""),
    Valid(
        "many-one-byte-chunks.bin", b"".join(b"1\r\n%c\r\n" % c for c in ALPHABET) + END, ALPHABET
    ),
    Valid(
        "chunks-small-4096-small.bin",
        b"1\r\n<\r\n1000\r\n" + PATTERN_4096 + b"\r\n1\r\n>\r\n" + END,
        b"<" + PATTERN_4096 + b">",
    ),
    # --- chunk data is opaque
    Valid("data-contains-crlf.bin", b"4\r\n\r\n\r\n\r\n" + END, b"\r\n\r\n"),
    Valid(
        "data-contains-nul-and-high-bytes.bin",
        b"4\r\n\x00\xff\x80\x7f\r\n" + END,
        b"\x00\xff\x80\x7f",
    ),
    Valid("data-looks-like-last-chunk.bin", b"5\r\n0\r\n\r\n\r\n" + END, b"0\r\n\r\n"),
    # --- chunk extensions (RFC 9112 7.1.1): BWS ";" BWS name [ BWS "=" BWS token/quoted ]
    Valid("extension-name-only.bin", b"5;foo\r\nhello\r\n" + END, b"hello"),
    Valid(
        "extension-with-quoted-string.bin",
        b'5;name="quoted; value \\"with\\" escapes"\r\nhello\r\n' + END,
        b"hello",
    ),
    Valid("extension-multiple.bin", b'5;a=1;b;c="x"\r\nhello\r\n' + END, b"hello"),
    Valid("extension-bws-before-semicolon.bin", b"5 \t;a=1\r\nhello\r\n" + END, b"hello"),
    Valid(
        "extension-bws-around-semicolon-and-equals.bin", b"5 ; a = 1\r\nhello\r\n" + END, b"hello"
    ),
    Valid("extension-obs-text-in-quoted-string.bin", b'5;a="caf\xe9"\r\nhello\r\n' + END, b"hello"),
    Valid("extension-on-last-chunk.bin", b"5\r\nhello\r\n0;final=yes\r\n\r\n", b"hello"),
    Valid("size-line-8192-bytes.bin", b"5;" + b"e" * 8190 + b"\r\nhello\r\n" + END, b"hello"),
    # --- lenient: accepted by the project's grammar, stricter in RFC 9112's ABNF
    Valid("lenient-whitespace-after-size.bin", b"5  \r\nhello\r\n" + END, b"hello"),
    Valid("lenient-extension-empty-name.bin", b"5;\r\nhello\r\n" + END, b"hello"),
    Valid("lenient-extension-unterminated-quote.bin", b'5;a="x\r\nhello\r\n' + END, b"hello"),
    # --- trailer section (RFC 9112 7.1.2): field-name ":" OWS field-value OWS CRLF
    Valid(
        "trailers-one-field.bin",
        b"5\r\nhello\r\n0\r\nExpires: never\r\n\r\n",
        b"hello",
        ((b"Expires", b"never"),),
    ),
    Valid(
        "trailers-two-fields.bin",
        b"0\r\nLambda-Runtime-Function-Error-Type: Runtime.Oops\r\n"
        b"Lambda-Runtime-Function-Error-Body: eyJ9\r\n\r\n",
        b"",
        (
            (b"Lambda-Runtime-Function-Error-Type", b"Runtime.Oops"),
            (b"Lambda-Runtime-Function-Error-Body", b"eyJ9"),
        ),
    ),
    Valid("trailer-empty-value.bin", b"0\r\nX-Empty:\r\n\r\n", b"", ((b"X-Empty", b""),)),
    Valid("trailer-value-only-ows.bin", b"0\r\nX-Blank: \t \r\n\r\n", b"", ((b"X-Blank", b""),)),
    Valid("trailer-no-space-after-colon.bin", b"0\r\nX:v\r\n\r\n", b"", ((b"X", b"v"),)),
    Valid(
        "trailer-ows-stripped.bin",
        b"0\r\nX-Pad: \t value \t\r\n\r\n",
        b"",
        ((b"X-Pad", b"value"),),
    ),
    Valid(
        "trailer-internal-whitespace-kept.bin",
        b"0\r\nX: a  b\tc\r\n\r\n",
        b"",
        ((b"X", b"a  b\tc"),),
    ),
    Valid("trailer-obs-text-value.bin", b"0\r\nX: caf\xe9\r\n\r\n", b"", ((b"X", b"caf\xe9"),)),
    Valid(
        "trailer-name-every-tchar.bin",
        b"0\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
        b"",
        ((b"!#$%&'*+-.^_`|~09azAZ", b"v"),),
    ),
    Valid(
        "trailer-duplicate-names-kept-in-order.bin",
        b"0\r\nX: 1\r\nx: 2\r\nX: 3\r\n\r\n",
        b"",
        ((b"X", b"1"), (b"x", b"2"), (b"X", b"3")),
    ),
    Valid(
        "trailer-line-8192-bytes.bin",
        b"0\r\nX:" + b"v" * 8190 + b"\r\n\r\n",
        b"",
        ((b"X", b"v" * 8190),),
    ),
    Valid(
        "trailers-64-fields.bin",
        b"0\r\n" + b"".join(b"T%d: %d\r\n" % (i, i) for i in range(64)) + b"\r\n",
        b"",
        tuple((b"T%d" % i, b"%d" % i) for i in range(64)),
    ),
    # two lines of exactly 8192 bytes storing 1 + 8190 bytes each, then "b" + "c": 16384
    Valid(
        "trailer-bytes-16384.bin",
        b"0\r\na:" + b"v" * 8190 + b"\r\na:" + b"w" * 8190 + b"\r\nb:c\r\n\r\n",
        b"",
        ((b"a", b"v" * 8190), (b"a", b"w" * 8190), (b"b", b"c")),
    ),
    # --- bytes after the end belong to whatever follows the body
    Valid(
        "trailing-bytes-after-end.bin",
        b"5\r\nhello\r\n" + END + b"HTTP/1.1 200 OK\r\n",
        b"hello",
        unused=b"HTTP/1.1 200 OK\r\n",
    ),
    Valid(
        "trailing-second-body-after-end.bin",
        END + b"5\r\nhello\r\n" + END,
        b"",
        unused=b"5\r\nhello\r\n" + END,
    ),
    Valid(
        "trailing-bytes-after-trailers.bin",
        b"0\r\nX: 1\r\n\r\n\r\n",
        b"",
        ((b"X", b"1"),),
        unused=b"\r\n",
    ),
]


INVALID: list[Invalid] = [
    # --- chunk-size = 1*HEXDIG
    Invalid("empty-line-instead-of-size.bin", b"\r\n5\r\nhello\r\n" + END, BAD_SIZE),
    Invalid("non-hex-size.bin", b"g\r\nhello\r\n" + END, BAD_SIZE),
    Invalid("size-0x-prefix.bin", b"0x5\r\nhello\r\n" + END, BAD_SIZE),
    Invalid("negative-size.bin", b"-5\r\nhello\r\n" + END, BAD_SIZE),
    Invalid("leading-space-before-size.bin", b" 5\r\nhello\r\n" + END, BAD_SIZE),
    Invalid("whitespace-inside-size.bin", b"1 0\r\n" + b"x" * 16 + b"\r\n" + END, BAD_SIZE),
    Invalid("junk-after-size.bin", b"5x\r\nhello\r\n" + END, BAD_SIZE),
    Invalid("extension-without-semicolon.bin", b"5 a=b\r\nhello\r\n" + END, BAD_SIZE),
    Invalid("size-17-digits.bin", b"10000000000000000\r\n", OVERFLOW),
    Invalid("size-17-digits-leading-zeros.bin", b"00000000000000005\r\nhello\r\n" + END, OVERFLOW),
    Invalid("size-2-pow-63.bin", b"8000000000000000\r\n", OVERFLOW),
    # --- line endings: CRLF only
    Invalid("bare-lf-after-size.bin", b"5\nhello\r\n" + END, CRLF),
    Invalid("bare-lf-after-size-whitespace.bin", b"5 \nhello\r\n" + END, CRLF),
    Invalid("bare-cr-after-size.bin", b"5\rhello\r\n" + END, CRLF),
    Invalid("bare-lf-after-extension.bin", b"5;a=b\nhello\r\n" + END, CRLF),
    Invalid("cr-inside-extension-quoted-string.bin", b'5;a="x\ry"\r\nhello\r\n' + END, CRLF),
    Invalid("missing-crlf-after-data.bin", b"5\r\nhello0\r\n\r\n", CRLF),
    Invalid("data-longer-than-size.bin", b"3\r\nhello\r\n" + END, CRLF),
    Invalid("data-shorter-than-size.bin", b"6\r\nhello\r\n" + END, CRLF),
    Invalid("bare-lf-after-data.bin", b"5\r\nhello\n" + END, CRLF),
    Invalid("cr-without-lf-after-data.bin", b"5\r\nhello\r" + END, CRLF),
    Invalid("bare-lf-after-last-chunk.bin", b"0\n\r\n", CRLF),
    Invalid("bare-lf-final-line.bin", b"0\r\n\n", CRLF),
    Invalid("final-cr-without-lf.bin", b"0\r\n\rX", CRLF),
    Invalid("bare-lf-after-trailer-name.bin", b"0\r\nX\n\r\n", CRLF),
    Invalid("bare-lf-in-trailer-value.bin", b"0\r\nX: a\nY: b\r\n\r\n", CRLF),
    Invalid("bare-cr-in-trailer-value.bin", b"0\r\nX: a\rb\r\n\r\n", CRLF),
    # --- chunk extensions: no control characters
    Invalid("nul-in-extension.bin", b"5;a\x00b\r\nhello\r\n" + END, BAD_EXT),
    Invalid("del-in-extension.bin", b"5;a=\x7f\r\nhello\r\n" + END, BAD_EXT),
    Invalid("size-line-8193-bytes.bin", b"5;" + b"e" * 8191 + b"\r\nhello\r\n" + END, TOO_LONG),
    # --- trailer section
    Invalid("obs-fold-trailer.bin", b"0\r\nX: a\r\n b\r\n\r\n", BAD_TRAILER),
    Invalid("trailer-space-before-colon.bin", b"0\r\nX : v\r\n\r\n", BAD_TRAILER),
    Invalid("trailer-missing-colon.bin", b"0\r\nNoColon\r\n\r\n", BAD_TRAILER),
    Invalid("trailer-empty-name.bin", b"0\r\n: v\r\n\r\n", BAD_TRAILER),
    Invalid("trailer-name-with-parenthesis.bin", b"0\r\nX(y): v\r\n\r\n", BAD_TRAILER),
    Invalid("trailer-name-non-ascii.bin", b"0\r\nX\xe9: v\r\n\r\n", BAD_TRAILER),
    Invalid("nul-in-trailer-value.bin", b"0\r\nX: a\x00b\r\n\r\n", BAD_TRAILER),
    Invalid("trailer-line-8193-bytes.bin", b"0\r\nX:" + b"v" * 8191 + b"\r\n\r\n", TOO_LONG),
    Invalid(
        "trailers-65-fields.bin",
        b"0\r\n" + b"".join(b"T%d: %d\r\n" % (i, i) for i in range(65)) + b"\r\n",
        TOO_LARGE,
    ),
    Invalid(
        "trailer-bytes-16385.bin",
        b"0\r\na:" + b"v" * 8190 + b"\r\na:" + b"w" * 8190 + b"\r\nb:cd\r\n\r\n",
        TOO_LARGE,
    ),
    # --- truncated: rejected by eof(); the error with TRAILING appended worked out by hand
    Invalid("empty-input.bin", b"", TRUNCATED, BAD_SIZE),  # "G" is not a hex digit
    Invalid("truncated-in-size.bin", b"5", TRUNCATED, BAD_SIZE),  # "5G"
    # "5;ext=valGET / HTTP/1.1" is a whole size line; then 5 data bytes never come
    Invalid("truncated-in-extension.bin", b"5;ext=val", TRUNCATED, TRUNCATED),
    Invalid("truncated-after-size-line.bin", b"5\r\n", TRUNCATED, CRLF),  # data "GET /", then " "
    Invalid("truncated-in-data.bin", b"5\r\nhel", TRUNCATED, CRLF),  # data "helGE", then "T"
    Invalid("truncated-before-data-crlf.bin", b"5\r\nhello", TRUNCATED, CRLF),  # "G" not CR
    Invalid("truncated-between-data-cr-and-lf.bin", b"5\r\nhello\r", TRUNCATED, CRLF),
    Invalid(
        "truncated-in-huge-chunk-2-pow-63-minus-1.bin",
        b"7fffffffffffffff\r\nabc",
        TRUNCATED,
        TRUNCATED,  # TRAILING is just more chunk data
    ),
    # trailer name "GET", then " " before any ":"
    Invalid("truncated-after-last-chunk.bin", b"5\r\nhello\r\n0\r\n", TRUNCATED, BAD_TRAILER),
    Invalid("truncated-in-trailer-name.bin", b"0\r\nX-Tr", TRUNCATED, BAD_TRAILER),
    # value "yGET / HTTP/1.1" and its CRLF form a whole trailer line; the final CRLF never comes
    Invalid("truncated-in-trailer-value.bin", b"0\r\nX: y", TRUNCATED, TRUNCATED),
    Invalid("truncated-after-trailer-cr.bin", b"0\r\nX: y\r", TRUNCATED, CRLF),
    Invalid("truncated-missing-final-crlf.bin", b"0\r\nX: y\r\n", TRUNCATED, BAD_TRAILER),
    Invalid("truncated-final-cr.bin", b"0\r\n\r", TRUNCATED, CRLF),
]


def _text(b: bytes) -> str:
    return b.decode("latin-1")


def _trailer_value(value: bytes) -> str | dict[str, Any]:
    """The value as text, or its length and SHA-256 when longer than 64 bytes."""
    if len(value) <= 64:
        return _text(value)
    return {"len": len(value), "sha256": hashlib.sha256(value).hexdigest()}


def expected_entries() -> dict[str, dict[str, Any]]:
    """The content of expected.json, built from the table."""
    valid: dict[str, Any] = {}
    for v in VALID:
        entry: dict[str, Any] = {
            "data_len": len(v.data),
            "data_sha256": hashlib.sha256(v.data).hexdigest(),
        }
        if len(v.data) <= 64:
            entry["data"] = _text(v.data)
        entry["trailers"] = [[_text(n), _trailer_value(val)] for n, val in v.trailers]
        entry["unused"] = _text(v.unused)
        valid[v.name] = entry
    invalid: dict[str, Any] = {}
    for i in INVALID:
        entry = {"error": i.error, "stage": i.stage}
        if i.stage == "eof":
            entry["error_with_trailing"] = i.error_with_trailing
        invalid[i.name] = entry
    return {"valid": valid, "invalid": invalid}


def _check_table() -> list[str]:
    problems = []
    names = [v.name for v in VALID] + [i.name for i in INVALID]
    for name in names:
        if names.count(name) > 1:
            problems.append(f"duplicate name {name}")
    for v in VALID:
        if v.unused and not v.wire.endswith(v.unused):
            problems.append(f"valid/{v.name}: unused is not a suffix of the wire bytes")
    for i in INVALID:
        if (i.stage == "eof") != (i.error_with_trailing is not None):
            problems.append(f"invalid/{i.name}: error_with_trailing iff truncated")
    return problems


def write() -> None:
    """Write the .bin files and expected.json, removing .bin files no longer in the table."""
    for kind, cases in (("valid", VALID), ("invalid", INVALID)):
        folder = CHUNKED / kind
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {c.name for c in cases}
        for stale in folder.glob("*.bin"):
            if stale.name not in wanted:
                stale.unlink()
        for case in cases:
            (folder / case.name).write_bytes(case.wire)
    EXPECTED.write_text(json.dumps(expected_entries(), indent=1, ensure_ascii=True) + "\n")


def _decode(cls: Any, pieces: list[bytes]) -> tuple[Any, ...]:
    """(data, trailers, unused, error class name, stage), feeding until done."""
    from duplexlambda.errors import ChunkedEncodingError

    dec = cls()
    data: list[bytes] = []
    rest: list[bytes] = []
    try:
        for k, piece in enumerate(pieces):
            if dec.done:
                rest = pieces[k:]
                break
            data += [bytes(v) for v in dec.feed(piece)]
    except ChunkedEncodingError as exc:
        return b"".join(data), None, None, type(exc).__name__, "feed"
    try:
        dec.eof()
    except ChunkedEncodingError as exc:
        return b"".join(data), None, None, type(exc).__name__, "eof"
    return b"".join(data), tuple(dec.trailers), dec.unused_data + b"".join(rest), None, None


def check() -> list[str]:
    """Decode every case with both twins, one-shot and byte by byte; list disagreements."""
    from duplexlambda.protocol.chunked import CChunkDecoder, PyChunkDecoder

    twins: list[tuple[str, Any]] = [("py", PyChunkDecoder)]
    if CChunkDecoder is not None:
        twins.append(("c", CChunkDecoder))
    problems = []
    for impl, cls in twins:
        for v in VALID:
            want = (v.data, v.trailers, v.unused, None, None)
            for mode, pieces in (("oneshot", [v.wire]), ("bytewise", _bytewise(v.wire))):
                got = _decode(cls, pieces)
                if got != want:
                    problems.append(f"valid/{v.name} [{impl} {mode}]: got {_short(got)}")
        for i in INVALID:
            with_trailing = i.error_with_trailing or i.error
            for mode, pieces, error in (
                ("oneshot", [i.wire], i.error),
                ("bytewise", _bytewise(i.wire), i.error),
                ("trailing", [i.wire + TRAILING], with_trailing),
            ):
                stage = "eof" if error == TRUNCATED else "feed"
                got = _decode(cls, pieces)
                if got[3:] != (error, stage):
                    problems.append(
                        f"invalid/{i.name} [{impl} {mode}]: want {error} at {stage}, "
                        f"got {got[3]} at {got[4]}"
                    )
    return problems


def _bytewise(wire: bytes) -> list[bytes]:
    return [wire[k : k + 1] for k in range(len(wire))]


def _short(outcome: tuple[Any, ...]) -> str:
    text = repr(outcome)
    return text if len(text) < 300 else text[:300] + "..."


def main(argv: list[str]) -> int:
    problems = _check_table()
    if not problems and "--check" not in argv:
        write()
        print(f"wrote {len(VALID)} valid and {len(INVALID)} invalid files under {CHUNKED}")
    problems += check()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
