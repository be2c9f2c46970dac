"""Per-group statistics of a CSV upload, streamed back as NDJSON while it still arrives.

    duplexlambda serve examples.csv_stats.handler
    python examples/gen_data.py csv 500000 | curl -sN -T - 'http://127.0.0.1:9000/?group=city&value=temp'

Query: ``group`` (column to group by; the first by default), ``value`` (the numeric column;
the second by default), ``every`` (rows between progress lines, 100000). Each line is
``{"type": "progress" | "total", "rows", "skipped", "groups": {name: {count, sum, mean,
min, max}}}``. Memory grows with the number of groups, never with the number of rows. A
gzip upload (``Content-Encoding: gzip``) is decompressed on the fly.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from duplexlambda.pipeline import (
    StreamDecodeError,
    Transform,
    UnsupportedContentEncoding,
    csv_records,
    ndjson_encode,
    pipeline,
    request_body,
)
from duplexlambda.streams import Request, Response


class BadRequest(ValueError):
    """The upload does not have the columns the query asks for."""


class Stats:
    """Running count, sum, min and max of one group."""

    __slots__ = ("count", "high", "low", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, x: float) -> None:
        self.count += 1
        self.total += x
        self.low = min(self.low, x)
        self.high = max(self.high, x)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "sum": round(self.total, 6),
            "mean": round(self.total / self.count, 6),
            "min": self.low,
            "max": self.high,
        }


def _column(header: list[str], name: str | None, default: int) -> int:
    if name is None:
        if default >= len(header):
            raise BadRequest(f"the CSV has {len(header)} column(s); name the ones to use")
        return default
    if name not in header:
        raise BadRequest(f"no column {name!r} in the header {header}")
    return header.index(name)


def statistics(group: str | None, value: str | None, every: int) -> Transform:
    """CSV records in (the first is the header), progress and total dicts out."""

    async def stats(records: AsyncIterator[list[str]]) -> AsyncIterator[dict[str, Any]]:
        groups: dict[str, Stats] = {}
        rows = skipped = 0

        def report(kind: str) -> dict[str, Any]:
            summary = {k: groups[k].as_dict() for k in sorted(groups)}
            return {"type": kind, "rows": rows, "skipped": skipped, "groups": summary}

        header = await anext(records, None)
        if header is None:
            yield report("total")
            return
        key_at, value_at = _column(header, group, 0), _column(header, value, 1)
        async for record in records:
            rows += 1
            try:
                key, x = record[key_at], float(record[value_at])
            except (IndexError, ValueError):
                skipped += 1  # a short row or a blank / non-numeric value
            else:
                if math.isfinite(x):
                    (groups.get(key) or groups.setdefault(key, Stats())).add(x)
                else:
                    skipped += 1
            if rows % every == 0:
                yield report("progress")
        yield report("total")

    return stats


async def handler(req: Request, res: Response) -> None:
    try:
        every = max(1, int(req.query.get("every", "100000")))
        body = request_body(req)
    except (ValueError, UnsupportedContentEncoding) as exc:
        res.status = 415 if isinstance(exc, UnsupportedContentEncoding) else 400
        await res.end(f"{exc}\n")
        return
    res.content_type = "application/x-ndjson"
    stats = statistics(req.query.get("group"), req.query.get("value"), every)
    try:
        await pipeline(body, csv_records(), stats, ndjson_encode(), sink=res)
    except (BadRequest, StreamDecodeError) as exc:
        if not res.started:  # nothing sent yet: a proper 400
            res.status = 400
            res.content_type = "text/plain; charset=utf-8"
            await res.end(f"{exc}\n")
            return
        # Mid-stream: say so in-band (the client sees it), then fail the invocation too.
        await res.write(msgspec.json.encode({"type": "error", "message": str(exc)}) + b"\n")
        raise
