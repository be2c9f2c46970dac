"""Filter an NDJSON log upload by the query string; matches stream back as they are found.

    duplexlambda serve examples.ndjson_filter.handler
    python examples/gen_data.py ndjson 200000 | curl -sN -T - 'http://127.0.0.1:9000/?level=error&service=auth'

Each query parameter is a condition ``field=value`` (dotted paths reach into objects:
``http.status=500``; ``a,b`` — or the parameter repeated — means either); a record matches
when all conditions hold. Values compare as their JSON text: ``status=500``,
``ok=true``, ``user=null``. Lines that are not JSON are skipped. A gzip upload
(``Content-Encoding: gzip``) is decompressed on the fly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec

from duplexlambda.pipeline import (
    StreamDecodeError,
    Transform,
    UnsupportedContentEncoding,
    ndjson,
    ndjson_encode,
    pipeline,
    request_body,
)
from duplexlambda.streams import Request, Response

Predicate = Callable[[Any], bool]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def predicate(query: Mapping[str, str]) -> Predicate:
    """``{"level": "error,warn", "http.status": "500"}`` -> a test for one record."""
    conditions = [(path.split("."), set(wanted.split(","))) for path, wanted in query.items()]

    def matches(record: Any) -> bool:
        for path, wanted in conditions:
            value = record
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if _as_text(value) not in wanted:
                return False
        return True

    return matches


def keep(test: Predicate) -> Transform:
    """Records in, the ones that pass ``test`` out."""

    async def filtering(records: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for record in records:
            if test(record):
                yield record

    return filtering


async def handler(req: Request, res: Response) -> None:
    try:
        body = request_body(req)
    except UnsupportedContentEncoding as exc:
        res.status = 415
        await res.end(f"{exc}\n")
        return
    res.content_type = "application/x-ndjson"
    matching = keep(predicate(req.query))
    try:
        await pipeline(body, ndjson(skip_invalid=True), matching, ndjson_encode(), sink=res)
    except StreamDecodeError as exc:  # a corrupt gzip upload, or a line over 1 MiB
        if not res.started:
            res.status = 400
            await res.end(f"{exc}\n")
            return
        raise
