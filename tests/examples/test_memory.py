"""csv_stats keeps one accumulator per group: its memory does not grow with the rows."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

from duplexlambda.pipeline import csv_records, pipeline

from ..pipeline.drive import drive


def test_csv_stats_memory_is_flat_in_the_number_of_rows() -> None:
    from examples.csv_stats import statistics

    def upload(rows: int) -> Iterator[bytes]:
        yield b"city,temp\n"
        block = "".join(f"c{i % 5},{i % 50}.5\n" for i in range(2000)).encode()
        for _ in range(rows // 2000):
            yield block

    async def last(items: Any) -> Any:
        seen = None
        async for item in items:
            seen = item
        return seen

    def peak(rows: int) -> int:
        tracemalloc.start()
        try:
            stats = statistics(None, None, 10_000)
            total = drive(pipeline(upload(rows), csv_records(), stats, sink=last))
            assert total["rows"] == rows
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(8_000), peak(80_000)
    assert large < small * 1.5 + 64 * 1024, (small, large)  # 10x the rows, same memory
