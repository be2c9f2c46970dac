"""The buffered style still works: a plain ``def handler(event, context)`` returning JSON.

    duplexlambda serve examples.classic.handler
    curl -s 'http://127.0.0.1:9000/hello?name=Ada'

Exactly what awslambdaric runs: the return value is JSON-encoded; for a function URL a dict
with ``statusCode``/``headers``/``body`` becomes the HTTP response. Sync handlers run in a
thread, so a blocking call here never stalls the runtime's event loop.
"""

from __future__ import annotations

import json
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    http = (event.get("requestContext") or {}).get("http")
    if http is None:  # a direct invoke: the event is whatever the caller sent
        return {"hello": event.get("name", "world"), "request_id": context.aws_request_id}
    query = event.get("queryStringParameters") or {}
    answer = {
        "hello": query.get("name", "world"),
        "method": http["method"],
        "path": event.get("rawPath", "/"),
        "body_bytes": len(event.get("body") or ""),
        "request_id": context.aws_request_id,
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(answer),
    }
