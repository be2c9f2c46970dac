"""``python -m benchmarks all|roundtrip|runtime|streaming|ttfb|memory|coldstart|codec [--quick]``.

Runs the chosen benchmarks one after the other (never two at once: they would measure each
other), prints each one's tables as it finishes, and writes ``latest.json``, ``latest.md`` and
``latest.png`` into ``--out`` (default ``benchmarks/results``). A missed target is a finding,
printed as such; the exit status is non-zero only when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from . import coldstart, memory, roundtrip, runtime, streaming, ttfb
from .common import (
    PY,
    REPO,
    BenchmarkError,
    Section,
    Table,
    Target,
    fmt,
    load_average,
    machine_info,
)
from .report import section_markdown, write_results

RESULTS = REPO / "benchmarks" / "results"


def codec(quick: bool = False) -> Section:
    """``benchmarks/codec.py`` as it is, in a subprocess, its JSON folded into the report."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="duplexlambda-codec-") as tmp:
        out = Path(tmp) / "codec.json"
        argv = [PY, str(REPO / "benchmarks" / "codec.py"), "--json", str(out)]
        if quick:
            argv.append("--quick")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
        if proc.returncode != 0 or not out.exists():
            raise BenchmarkError(f"benchmarks/codec.py failed ({proc.returncode}):\n{proc.stderr}")
        doc = json.loads(out.read_text())
    section = Section(
        name="codec",
        title="Chunked codec (benchmarks/codec.py)",
        method=(
            "benchmarks/codec.py run unchanged (its own method: 64 KiB reads, interleaved "
            "competitors, medians; see its docstring). Decode throughput per chunk size."
        ),
    )
    rows = [r for r in doc["rows"] if r["op"] == "decode"]
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    sizes = list(dict.fromkeys(r["chunk_size"] for r in rows))
    by = {(r["chunk_size"], r["impl"]): r for r in rows}
    section.tables.append(
        Table(
            "Decode, MB/s of body (higher is better)",
            ["chunk", *impls],
            [
                [_size(size)]
                + [fmt(by[(size, impl)]["mb_per_s"], 1) if (size, impl) in by else "-"
                   for impl in impls]
                for size in sizes
            ],
        )
    )  # fmt: skip
    enc = [r for r in doc["rows"] if r["op"] == "encode"]
    enc_impls = list(dict.fromkeys(r["impl"] for r in enc))
    enc_by = {(r["chunk_size"], r["impl"]): r for r in enc}
    section.tables.append(
        Table(
            "Encode, MB/s of body (its baseline is b''.join of the chunks)",
            ["chunk", *enc_impls],
            [
                [_size(size)]
                + [fmt(enc_by[(size, impl)]["mb_per_s"], 1) if (size, impl) in enc_by else "-"
                   for impl in enc_impls]
                for size in sizes
            ],
        )
    )  # fmt: skip
    section.targets = [Target(t["text"], t["measured"], t["met"]) for t in doc["targets"]]
    section.notes = list(doc.get("notes", []))
    section.data = {"plan": doc["plan"]["name"], "impl": doc["impl"], "rows": doc["rows"]}
    section.seconds = time.monotonic() - started
    return section


def _size(n: int) -> str:
    return f"{n // 1024**2} MiB" if n >= 1024**2 else f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


BENCHMARKS: dict[str, Callable[[bool], Section]] = {
    "roundtrip": roundtrip.run,
    "runtime": runtime.run,
    "streaming": streaming.run,
    "ttfb": ttfb.run,
    "memory": memory.run,
    "coldstart": coldstart.run,
    "codec": codec,
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="duplexlambda against the runtimes users would pick instead.",
    )
    parser.add_argument("benchmark", choices=["all", *BENCHMARKS], help="what to run")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: the whole suite in well under a minute"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help=f"where latest.json/.md/.png go (default {RESULTS.relative_to(REPO)})",
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C: every child is stopped on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    names = list(BENCHMARKS) if args.benchmark == "all" else [args.benchmark]
    machine = machine_info()
    started = time.monotonic()
    sections: list[Section] = []
    failed: dict[str, str] = {}
    for name in names:
        print(f"== {name}{' (quick)' if args.quick else ''}", file=sys.stderr, flush=True)
        try:
            section = BENCHMARKS[name](args.quick)
        except Exception as exc:  # the others still run; the exit status says it failed
            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {exc}"
            continue
        sections.append(section)
        print(section_markdown(section), flush=True)
    machine["load average at end"] = load_average()
    meta = {
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "seconds": round(time.monotonic() - started, 1),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "failed": failed,
    }
    paths = write_results(args.out, machine, meta, sections, chart=not args.no_chart)
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)
    for name, why in failed.items():
        print(f"FAILED: {name}: {why}", file=sys.stderr)
    return 1 if failed else 0
