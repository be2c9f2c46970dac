"""Writes the measured parts of docs/reliability.md: the fuzz table (from .ci/fuzz's logs)
and the soak table (from benchmarks/soak.py). Each part lives between its markers,
``<!-- NAME -->`` and ``<!-- /NAME -->``; the rest of the page is prose kept by hand.

    python benchmarks/reliability_doc.py fuzz --seconds 60 --status 0 fuzz-artifacts
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "reliability.md"

#: target -> (engine, what it checks)
FUZZ_TARGETS = {
    "decoder": (
        "libFuzzer, C built by clang with ASan + UBSan",
        "`csrc/fuzz_decoder.c`: C decoder decode-or-error; one-shot == byte by byte == "
        "random pieces == one span at a time; sticky errors; encoder round trip",
    ),
    "chunked": (
        "atheris",
        "`csrc/fuzz_chunked.py`: C twin (all at once, byte by byte, pieces) == Python twin",
    ),
    "chunked-large": ("atheris", "the same on bodies of many tiny or 4 KiB chunks (≤ 512 KiB)"),
    "prelude": ("atheris", "prelude decoder: one-shot == byte by byte == pieces"),
    "http": (
        "atheris, real sockets",
        "`csrc/fuzz_http.py`: emulator HTTP parsing, both listeners; 4xx or close, never "
        "500 or a logged error; a good request afterwards is served exactly",
    ),
}


def update_section(name: str, body: str, doc: pathlib.Path = DOC) -> None:
    """Replace what lies between ``<!-- name -->`` and ``<!-- /name -->`` in ``doc``."""
    text = doc.read_text()
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if start not in text or end not in text:
        raise SystemExit(f"{doc}: markers {start} / {end} are missing")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    doc.write_text(f"{head}{start}\n{body.strip()}\n{end}{tail}")


def machine() -> str:
    cpus = os.cpu_count() or 0
    return f"{platform.python_implementation()} {platform.python_version()}, {cpus} cores"


def _int(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text, re.MULTILINE)
    return int(found[-1]) if found else None


def parse_fuzz_log(text: str) -> dict[str, str]:
    """Executions, rate, corpus and coverage from a libFuzzer (or atheris) log."""
    runs = _int(r"^stat::number_of_executed_units: *(\d+)", text)
    if runs is None:
        runs = _int(r"^Done (\d+) runs", text)
    rate = _int(r"^stat::average_exec_per_sec: *(\d+)", text)
    took = _int(r"^Done \d+ runs in (\d+) second", text)
    corpus = re.findall(r"corp: (\d+)/(\d+[bKM]b?)", text)
    cov = re.findall(r"cov: (\d+)", text)
    crashes = re.findall(r"Test unit written to (\S+)", text)
    return {
        "runs": f"{runs:,}" if runs is not None else "?",
        "rate": f"{rate:,}/s" if rate is not None else "?",
        "time": f"{took} s" if took is not None else "?",
        "corpus": f"{corpus[-1][0]} inputs, {corpus[-1][1]}" if corpus else "?",
        "cov": cov[-1] if cov else "?",
        "findings": ", ".join(pathlib.Path(c).name for c in crashes) or "none",
    }


def fuzz_table(logs: pathlib.Path, seconds: int, status: int) -> str:
    rows = [
        "| target | engine | checks | time | executions | rate | corpus at the end "
        "| coverage (cov) | findings |",
        "|---|---|---|---:|---:|---:|---|---:|---|",
    ]
    for target, (engine, checks) in FUZZ_TARGETS.items():
        log = logs / f"{target}.log"
        if not log.exists():
            continue
        r = parse_fuzz_log(log.read_text(errors="replace"))
        rows.append(
            f"| {target} | {engine} | {checks} | {r['time']} | {r['runs']} | {r['rate']} "
            f"| {r['corpus']} | {r['cov']} | {r['findings']} |"
        )
    replay = logs / "replay.log"
    note = ""
    if replay.exists():
        r = parse_fuzz_log(replay.read_text(errors="replace"))
        note = (
            f"\nThe C fuzzer's corpus ({r['corpus']}) was then replayed through the atheris "
            f"C == Python differential: {'no mismatch' if status == 0 else 'see the logs'}."
        )
    when = datetime.date.today().isoformat()
    verdict = "all invariants held" if status == 0 else "**FAILED**: inputs in fuzz-artifacts/"
    return (
        f"Run: `bash .ci/fuzz {seconds}` on {when} ({machine()}); {verdict}.\n\n"
        + "\n".join(rows)
        + "\n"
        + note
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    fuzz = sub.add_parser("fuzz", help="the fuzz table, from .ci/fuzz's logs")
    fuzz.add_argument("logs", type=pathlib.Path)
    fuzz.add_argument("--seconds", type=int, required=True)
    fuzz.add_argument("--status", type=int, default=0)
    args = parser.parse_args()
    table = fuzz_table(args.logs, args.seconds, args.status)
    print(table)
    update_section("fuzz-results", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
