"""What ``duplexlambda invoke`` (send an event to a running emulator) and ``duplexlambda event``
(print an example event to edit) do; their options are in ``invoke_cli.py``, so that building
the parser costs none of these imports.

Standard library only on the wire (``http.client``), plus our own event-stream decoder:
``invoke --stream`` shows each ``PayloadChunk`` as it arrives, with its time since the
request was sent, so a buffered answer (one burst at the end) is told from a streamed one.

Exit status: 0 success, 1 a function error (``X-Amz-Function-Error``, or an
``InvokeComplete`` with an ``ErrorCode``), an API error or no emulator, 2 a usage error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import http.client
import json
import sys
import time
from typing import IO
from urllib.parse import quote, urlencode

INVOKE_PATH = "/2015-03-31/functions/{}/invocations"
STREAM_PATH = "/2021-11-15/functions/{}/response-streaming-invocations"
_READ = 64 * 1024


class UsageError(Exception):
    """A bad flag value: exit 2."""


# --- duplexlambda event ------------------------------------------------------------------------


def cmd_event(args: argparse.Namespace) -> int:
    from duplexlambda import example_events

    if args.list or not args.name:
        if not args.list:
            print("duplexlambda event: name an event, or --list", file=sys.stderr)
        width = max(map(len, example_events.EXAMPLES))
        out = sys.stdout if args.list else sys.stderr
        for name, (description, _) in example_events.EXAMPLES.items():
            print(f"{name:<{width}}  {description}", file=out)
        return 0 if args.list else 2
    try:
        event = example_events.example(args.name)
    except KeyError:
        known = ", ".join(example_events.names())
        print(f"duplexlambda event: no example {args.name!r} (one of: {known})", file=sys.stderr)
        return 2
    print(json.dumps(event, indent=2))
    return 0


# --- duplexlambda invoke -----------------------------------------------------------------------


def _payload(args: argparse.Namespace) -> bytes:
    if args.example is not None:
        from duplexlambda import example_events

        try:
            return json.dumps(example_events.example(args.example)).encode()
        except KeyError:
            known = ", ".join(example_events.names())
            raise UsageError(f"no example {args.example!r} (one of: {known})") from None
    if args.data_file is not None:
        try:
            if args.data_file == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(args.data_file, "rb") as file:
                    raw = file.read()
        except OSError as exc:
            raise UsageError(f"--data-file: {exc.strerror}: {args.data_file}") from None
        source = "--data-file"
    elif args.data is not None:
        raw, source = args.data.encode(), "--data"
    else:
        return b"{}"
    try:
        json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{source} is not JSON: {exc}") from None
    return raw


def _client_context(value: str | None) -> str | None:
    """``--client-context`` as JSON (encoded here) or already base64-encoded JSON."""
    if value is None:
        return None
    try:
        json.loads(value)
    except ValueError:
        pass
    else:
        return base64.b64encode(value.encode()).decode()
    try:
        json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise UsageError("--client-context is neither JSON nor base64-encoded JSON") from None
    return value


def format_error(payload: bytes, error_code: str | None = None) -> str:
    """A function error as people read it: ``errorType: errorMessage`` and the stack trace."""
    try:
        error = json.loads(payload)
    except ValueError:
        error = None
    if isinstance(error, str):  # ErrorDetails that held the JSON as a string twice
        with contextlib.suppress(ValueError):
            error = json.loads(error)
    if not isinstance(error, dict):
        text = payload.decode("utf-8", "replace").strip()
        return f"{error_code}: {text}" if error_code else text
    kind = error.get("errorType") or error_code or "Error"
    lines = [f"{kind}: {error.get('errorMessage', '')}"]
    trace = error.get("stackTrace")
    if isinstance(trace, list):
        for entry in trace:
            text = entry if isinstance(entry, str) else json.dumps(entry)
            lines.extend("  " + line for line in text.rstrip("\n").split("\n"))
    elif isinstance(trace, str):
        lines.extend("  " + line for line in trace.rstrip("\n").split("\n"))
    return "\n".join(lines)


def _print_log_tail(encoded: str | None, err: IO[str]) -> None:
    if not encoded:
        return
    try:
        text = base64.b64decode(encoded).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return
    print("--- log tail ---", file=err)
    err.write(text if text.endswith("\n") else text + "\n")
    print("---", file=err)


def _api_error(response: http.client.HTTPResponse, err: IO[str]) -> int:
    body = response.read()
    kind = response.getheader("x-amzn-ErrorType") or f"HTTP {response.status}"
    try:
        message = json.loads(body).get("message") or body.decode("utf-8", "replace")
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace")
    print(f"duplexlambda invoke: {kind}: {message}".rstrip(), file=err)
    return 1


def _buffered(response: http.client.HTTPResponse, tail: bool, out: IO[bytes], err: IO[str]) -> int:
    body = response.read()
    if tail:
        _print_log_tail(response.getheader("X-Amz-Log-Result"), err)
    if response.getheader("X-Amz-Function-Error"):
        print(format_error(body), file=err)
        return 1
    out.write(body)
    if body and not body.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    return 0


def _preview(data: bytes, width: int = 40) -> str:
    text = data.decode("utf-8", "replace")
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= width else text[: width - 3] + "..."


class _ChunkReport:
    """What ``--stream`` shows per chunk: a line on stderr (bytes on stdout), or with
    ``--timing`` a table row on stdout (no bytes)."""

    def __init__(self, table: bool, out: IO[bytes], err: IO[str]) -> None:
        self.table, self.out, self.err = table, out, err
        self.count = self.total = 0
        self.last = 0.0
        if table:
            self._row("chunk", "at (s)", "gap (s)", "bytes", "data")

    def _row(self, *cells: str) -> None:
        n, at, gap, size, data = cells
        line = f"{n:>5}  {at:>8}  {gap:>8}  {size:>8}  {data}\n"
        self.out.write(line.encode())
        self.out.flush()

    def chunk(self, at: float, data: bytes) -> None:
        self.count += 1
        self.total += len(data)
        gap, self.last = at - self.last, at
        if self.table:
            self._row(str(self.count), f"{at:.3f}", f"{gap:.3f}", str(len(data)), _preview(data))
            return
        self.out.write(data)
        self.out.flush()
        note = self._note(data)
        print(f"[+{at:.3f}s] chunk {self.count}: {len(data)} B{note}", file=self.err, flush=True)

    def _note(self, data: bytes) -> str:
        """Names the HTTP framing an HTTP event's answer starts with (README, ``res``)."""
        if self.count == 1 and data.startswith(b"{") and b'"statusCode"' in data:
            return " (HTTP prelude)"
        if self.count == 2 and data == b"\x00" * 8:
            return " (8 NUL bytes: the prelude ends)"
        return ""

    def done(self, at: float) -> None:
        summary = f"{self.count} chunks, {self.total} B, complete at +{at:.3f}s"
        if self.table:
            self.out.write(f"{summary}\n".encode())
            self.out.flush()
        else:
            print(f"[+{at:.3f}s] {summary}", file=self.err, flush=True)


def _streamed(
    response: http.client.HTTPResponse,
    started: float,
    args: argparse.Namespace,
    out: IO[bytes],
    err: IO[str],
) -> int:
    from duplexlambda.emulator.eventstream import Decoder, EventStreamError

    decoder = Decoder()
    report = _ChunkReport(args.timing, out, err)
    while True:
        data = response.read1(_READ)
        at = time.monotonic() - started
        if not data:
            break
        broken: EventStreamError | None = None
        try:
            messages = decoder.feed(data)
        except EventStreamError as exc:
            messages, broken = exc.messages, exc
        for message in messages:
            kind = message.event_type
            if kind == "PayloadChunk":
                report.chunk(at, message.payload)
            elif kind == "InvokeComplete":
                report.done(at)
                try:
                    complete = json.loads(message.payload or b"{}")
                except ValueError:
                    complete = {}
                if not isinstance(complete, dict):
                    complete = {}
                if args.log_type == "Tail":
                    _print_log_tail(complete.get("LogResult"), err)
                code = complete.get("ErrorCode")
                if code:
                    details = complete.get("ErrorDetails") or ""
                    print(format_error(details.encode(), code), file=err)
                    return 1
                return 0
            elif message.headers.get(":message-type") in ("error", "exception"):
                head = message.headers
                name = head.get(":error-code") or head.get(":exception-type") or "Error"
                text = head.get(":error-message") or message.payload.decode("utf-8", "replace")
                print(f"duplexlambda invoke: {name!s}: {text!s}", file=err)
                return 1
        if broken is not None:
            print(f"duplexlambda invoke: bad event stream: {broken}", file=err)
            return 1
    print("duplexlambda invoke: the stream ended before InvokeComplete", file=err)
    return 1


def invoke(
    args: argparse.Namespace, out: IO[bytes] | None = None, err: IO[str] | None = None
) -> int:
    """Run ``duplexlambda invoke``; returns the exit status."""
    out = sys.stdout.buffer if out is None else out
    err = sys.stderr if err is None else err
    try:
        payload = _payload(args)
        client_context = _client_context(args.client_context)
    except UsageError as exc:
        print(f"duplexlambda invoke: {exc}", file=err)
        return 2
    template = STREAM_PATH if args.stream else INVOKE_PATH
    path = template.format(quote(args.function, safe=""))
    if args.qualifier is not None:
        path += "?" + urlencode({"Qualifier": args.qualifier})
    headers = {"Content-Type": "application/json", "Accept": "*/*"}
    if client_context:
        headers["X-Amz-Client-Context"] = client_context
    if args.log_type:
        headers["X-Amz-Log-Type"] = args.log_type
    connection = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    started = time.monotonic()
    try:
        try:
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
        except ConnectionRefusedError:
            print(
                f"no emulator on {args.host}:{args.port}:"
                " start one with `duplexlambda serve HANDLER`",
                file=err,
            )
            return 1
        except OSError as exc:
            print(f"duplexlambda invoke: {args.host}:{args.port}: {exc}", file=err)
            return 1
        try:
            if response.status >= 300:
                return _api_error(response, err)
            if args.stream:
                return _streamed(response, started, args, out, err)
            return _buffered(response, args.log_type == "Tail", out, err)
        except (OSError, http.client.HTTPException) as exc:
            print(f"duplexlambda invoke: the answer broke off: {exc!r}", file=err)
            return 1
        finally:
            response.close()
    finally:
        connection.close()


def cmd_invoke(args: argparse.Namespace) -> int:
    if args.timing and not args.stream:
        print("duplexlambda invoke: --timing needs --stream", file=sys.stderr)
        return 2
    try:
        return invoke(args)
    except KeyboardInterrupt:  # Ctrl-C while waiting for a slow function: no traceback
        print("duplexlambda invoke: interrupted", file=sys.stderr)
        return 130
