"""Logging as Lambda runtimes do it: ``AWS_LAMBDA_LOG_FORMAT`` (Text|JSON),
``AWS_LAMBDA_LOG_LEVEL``, and the request id on every record (from a contextvar, so it is
right under concurrency)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback

from duplexlambda.context import request_id
from duplexlambda.protocol.text import printable, safe_str

# Light imports only: logging is set up before anything else at cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class RequestIdFilter(logging.Filter):
    """Adds ``aws_request_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = request_id.get() or ""
        return True


class TextFormatter(logging.Formatter):
    """awslambdaric's text layout: ``[LEVEL]\\t<UTC time>\\t<request id>\\t<message>``."""

    converter = time.gmtime  # type: ignore[assignment]  # UTC, as Lambda's log timestamps

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        # A message with a lone surrogate must not make the stream's encoder fail.
        return printable(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the fields Lambda's JSON log format uses."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": printable(record.getMessage()),
            "logger": record.name,
        }
        rid = getattr(record, "aws_request_id", "")
        if rid:
            doc["requestId"] = rid
        exc_type, exc, tb = record.exc_info or (None, None, None)
        if exc_type is not None:
            # awslambdaric's fields, so log queries written for it keep working.
            doc["stackTrace"] = [printable(line) for line in traceback.format_tb(tb)]
            doc["errorType"] = exc_type.__name__
            doc["errorMessage"] = safe_str(exc)
            doc["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def setup_logging(environ: dict[str, str] | None = None) -> None:
    """Configure the root logger from the Lambda environment (idempotent)."""
    env = os.environ if environ is None else environ
    handler = logging.StreamHandler(sys.stdout)
    fmt = env.get("AWS_LAMBDA_LOG_FORMAT", "Text").upper()
    handler.setFormatter(JsonFormatter() if fmt == "JSON" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_duplexlambda", False)]:
        root.removeHandler(old)
    handler._duplexlambda = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    level = env.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    root.setLevel(getattr(logging, level, logging.INFO) if level != "TRACE" else logging.DEBUG)
