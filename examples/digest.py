"""SHA-256 and size of an upload of any size, with progress lines while it arrives.

    duplexlambda serve examples.digest.handler
    python examples/gen_data.py csv 500000 | gzip | curl -sN -T - -H 'Content-Encoding: gzip' http://127.0.0.1:9000/

A gzip (or deflate) upload is decompressed on the fly: the digest is of the decoded bytes,
the same as ``gunzip | sha256sum``. Query: ``every`` (bytes between progress lines, 1 MiB).
Output, NDJSON: ``{"bytes": n}`` as it goes, then ``{"bytes", "sha256", "encoding"}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from duplexlambda.pipeline import (
    StreamDecodeError,
    Transform,
    UnsupportedContentEncoding,
    ndjson_encode,
    pipeline,
    request_body,
)
from duplexlambda.streams import Request, Response


def digest(every: int, encoding: str) -> Transform:
    """Bytes in; a progress dict each time another ``every`` bytes went by, then the total."""

    async def hashing(chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
        sha = hashlib.sha256()
        size = 0
        next_report = every
        async for chunk in chunks:
            sha.update(chunk)
            size += len(chunk)
            if size >= next_report:
                yield {"bytes": size}
                next_report = (size // every + 1) * every
        yield {"bytes": size, "sha256": sha.hexdigest(), "encoding": encoding}

    return hashing


async def handler(req: Request, res: Response) -> None:
    try:
        every = max(1, int(req.query.get("every", str(1 << 20))))
        body = request_body(req)
    except (ValueError, UnsupportedContentEncoding) as exc:
        res.status = 415 if isinstance(exc, UnsupportedContentEncoding) else 400
        await res.end(f"{exc}\n")
        return
    res.content_type = "application/x-ndjson"
    encoding = req.headers.get("content-encoding", "identity")
    try:
        await pipeline(body, digest(every, encoding), ndjson_encode(), sink=res)
    except StreamDecodeError as exc:  # e.g. a corrupt or truncated gzip upload
        if not res.started:
            res.status = 400
            await res.end(f"{exc}\n")
            return
        await res.write(msgspec.json.encode({"type": "error", "message": str(exc)}) + b"\n")
        raise
