"""Deterministic test data for the examples, written to stdout.

    python examples/gen_data.py csv 500000      # city,temp,station — for csv_stats / digest
    python examples/gen_data.py ndjson 200000   # log records — for ndjson_filter

The same arguments always give the same bytes (``--seed`` changes them).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator

import msgspec

CITIES = ["Lisbon", "Oslo", "Lagos", "Lima", "Perth", "Quito", "Seoul", "Turin"]
SERVICES = ["auth", "billing", "search", "upload"]
LEVELS = ["debug", "info", "info", "info", "warn", "error"]


def csv_lines(rows: int, rng: random.Random) -> Iterator[str]:
    """``city,temp,station`` then ``rows`` rows (temp is a float; every 1000th is blank)."""
    yield "city,temp,station\n"
    for i in range(rows):
        city = CITIES[rng.randrange(len(CITIES))]
        temp = "" if i % 1000 == 999 else f"{rng.gauss(15.0, 8.0):.1f}"
        yield f"{city},{temp},st-{rng.randrange(100):02d}\n"


def ndjson_lines(rows: int, rng: random.Random) -> Iterator[str]:
    """Log records: ``ts``, ``level``, ``service``, ``status``, ``msg``."""
    encode = msgspec.json.encode
    for i in range(rows):
        level = LEVELS[rng.randrange(len(LEVELS))]
        record = {
            "ts": 1_700_000_000 + i,
            "level": level,
            "service": SERVICES[rng.randrange(len(SERVICES))],
            "status": 500 if level == "error" else 200,
            "msg": f"request {i} took {rng.randrange(1, 900)} ms",
        }
        yield encode(record).decode() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["csv", "ndjson"])
    parser.add_argument("rows", type=int)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    lines = csv_lines(args.rows, rng) if args.kind == "csv" else ndjson_lines(args.rows, rng)
    out = sys.stdout.buffer
    batch: list[str] = []
    try:
        for line in lines:
            batch.append(line)
            if len(batch) == 4096:
                out.write("".join(batch).encode())
                batch.clear()
        out.write("".join(batch).encode())
        out.flush()
    except BrokenPipeError:  # the reader stopped early (e.g. `| head`)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
