"""A lean fake Lambda Runtime API, run in its own process, for the runtime benchmarks.

Started as ``python benchmarks/fakeapi.py --mode buffered|duplex`` (standard library only, so
that it costs the same whatever runtime it serves), it binds a free 127.0.0.1 port, prints
``{"port": N}`` on stdout and then takes commands, one per line, on stdin:

* ``run N [CAPTURE]``: serve N invocations (to the ``/next`` polls that are waiting or still
  to come), then print one JSON line: how many were answered, how many were ``/error``
  reports, the round-trip latency of each (from just before the ``/next`` answer is sent to
  the end of its response's body, microseconds), the wall time from the command to the
  last response, and the monotonic times of the first ``/next`` that arrived and of the
  first and last response. The first CAPTURE responses are returned whole (head and body,
  latin-1) so that the benchmark can check them before timing anything.
* ``reset``: close every connection (a runtime that was stopped leaves its polls behind).
* ``quit``, or the end of stdin: exit. The benchmark's death closes the pipe, so this
  process never outlives it.

What it serves, precomputed once: ``GET /2018-06-01/runtime/invocation/next`` answered with a
1 KiB JSON event (``--mode buffered``) or, for a duplex handler, the way duplexlambda's
emulator serves a streamed function-URL request (``--mode duplex``): content type
``application/vnd.duplexlambda.http-request-stream``, chunked, the payload-2.0 event without
its body, 8 NUL bytes, then the 1 KiB upload, then the last chunk. Every answer carries
Lambda's headers: a request id unique to the invocation, a deadline 15 minutes ahead, the
function ARN and a trace id. ``POST .../{id}/response`` (Content-Length or chunked, streamed
or not, trailers allowed), ``.../{id}/error`` and ``/runtime/init/error`` are answered
``202`` once their body has arrived; connections are kept alive, any number of them, with as
many ``/next`` polls waiting as the runtime makes (one per concurrent loop or worker).
``Expect: 100-continue`` gets its interim answer.

It has one thread and an ``epoll`` loop; its own CPU per invocation is measured by the
benchmark and printed, so that one can see it is not the bottleneck.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import selectors
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO, Any

API = b"/2018-06-01/runtime/invocation/"
NEXT_TARGET = API + b"next"
INIT_ERROR_TARGET = b"/2018-06-01/runtime/init/error"
REQUEST_STREAM = b"application/vnd.duplexlambda.http-request-stream"
EVENT_SIZE = 1024
FUNCTION_ARN = b"arn:aws:lambda:us-east-1:012345678912:function:function"
TRACE_ID = b"Root=1-5e1b4151-43a0913a12345678901234567;Parent=53995c3f42cd8ad8;Sampled=0"
ACCEPTED = b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n'  # noqa: E501
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def make_event(size: int = EVENT_SIZE) -> bytes:
    """A JSON object of exactly ``size`` bytes (the same as ``roundtrip.make_event``)."""
    head, tail = b'{"id":"bench","data":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def make_upload(size: int = EVENT_SIZE) -> bytes:
    """The duplex echo's upload: ``size`` bytes of every value, NULs included."""
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


def function_url_event() -> dict[str, Any]:
    """A function URL's payload-2.0 event for ``POST /echo`` without ``body``, as the
    emulator sends it ahead of a streamed upload (``emulator/furl.py``)."""
    host = "bench.lambda-url.us-east-1.on.aws"
    headers = {
        "host": host,
        "content-type": "application/octet-stream",
        "content-length": str(EVENT_SIZE),
        "user-agent": "bench",
        "x-forwarded-proto": "http",
        "x-forwarded-for": "127.0.0.1",
        "x-forwarded-port": "80",
    }
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/echo",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "bench",
            "domainName": host,
            "domainPrefix": "bench",
            "http": {
                "method": "POST",
                "path": "/echo",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bench",
            },
            "requestId": "00000000-0000-4000-8000-000000000000",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "pathParameters": None,
        "stageVariables": None,
    }


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Answer:
    """The precomputed ``/next`` answer: ``prefix + request id + suffix``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.deadline(time.time())
        self.counter = 0

    def deadline(self, now: float) -> None:
        ms = int(now * 1000) + 15 * 60 * 1000
        if self.mode == "duplex":
            content_type = REQUEST_STREAM
            event = json.dumps(function_url_event(), separators=(",", ":")).encode()
            body = chunk(event) + chunk(b"\x00" * 8) + chunk(make_upload()) + b"0\r\n\r\n"
            framing = b"Transfer-Encoding: chunked"
        else:
            content_type = b"application/json"
            body = make_event()
            framing = b"Content-Length: %d" % len(body)
        self.prefix = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nLambda-Runtime-Aws-Request-Id: " % (
            content_type
        )
        self.suffix = (
            b"\r\nLambda-Runtime-Deadline-Ms: %d\r\nLambda-Runtime-Invoked-Function-Arn: %s\r\n"
            b"Lambda-Runtime-Trace-Id: %s\r\n%s\r\n\r\n%s"
            % (ms, FUNCTION_ARN, TRACE_ID, framing, body)
        )

    def next(self) -> tuple[bytes, bytes]:
        """A new request id and the answer that carries it."""
        self.counter += 1
        rid = b"%08x-0000-4000-8000-00000000b0b0" % self.counter
        return rid, self.prefix + rid + self.suffix


class Conn:
    """One client connection: its read buffer and the request it is reading."""

    __slots__ = ("body", "buf", "head", "keep", "length", "rid", "sock", "state", "target")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.state = "head"  # head | length | chunked | trailers | polling
        self.target = b""
        self.length = 0
        self.rid = b""
        self.head = b""
        self.body: list[bytes] | None = None
        self.keep = True


class Server:
    def __init__(self, mode: str) -> None:
        self.answer = Answer(mode)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.epoll = select.epoll()
        self.control_fd = sys.stdin.fileno()
        self.epoll.register(self.listener.fileno(), select.EPOLLIN)
        self.epoll.register(self.control_fd, select.EPOLLIN)
        self.conns: dict[int, Conn] = {}
        self.polls: deque[Conn] = deque()
        self.control = b""
        self.running = True
        self._clear()

    def _clear(self) -> None:
        self.budget = 0  # invocations still to hand out in this run
        self.want = 0  # responses that end this run
        self.capture = 0
        self.inflight: dict[bytes, float] = {}
        self.latencies: list[int] = []
        self.captured: list[dict[str, str]] = []
        self.done = 0
        self.errors = 0
        self.started = 0.0
        self.first_next = 0.0
        self.first_end = 0.0
        self.last_end = 0.0

    # --- control ---------------------------------------------------------------------------

    def say(self, doc: dict[str, Any]) -> None:
        os.write(1, json.dumps(doc, separators=(",", ":")).encode() + b"\n")

    def on_control(self) -> None:
        data = os.read(sys.stdin.fileno(), 65536)
        if not data:
            self.running = False
            return
        self.control += data
        while b"\n" in self.control:
            line, self.control = self.control.split(b"\n", 1)
            words = line.split()
            if not words:
                continue
            if words[0] == b"run":
                self._clear()
                self.answer.deadline(time.time())
                self.want = self.budget = int(words[1])
                self.capture = int(words[2]) if len(words) > 2 else 0
                self.started = time.monotonic()
                while self.budget and self.polls:
                    conn = self.polls.popleft()
                    if self.hung_up(conn):  # a stopped runtime's poll, not yet seen closed
                        self.close(conn)
                    else:
                        self.serve(conn)
            elif words[0] == b"reset":
                for conn in list(self.conns.values()):
                    self.close(conn)
                self.polls.clear()
                self._clear()
                self.say({"reset": True})
            elif words[0] == b"quit":
                self.running = False
            else:
                self.say({"error": f"unknown command {line!r}"})

    # --- connections -------------------------------------------------------------------------

    def close(self, conn: Conn) -> None:
        fd = conn.sock.fileno()
        if fd >= 0:
            self.conns.pop(fd, None)
            with contextlib.suppress(OSError):
                self.epoll.unregister(fd)
        conn.sock.close()
        conn.state = "closed"

    def accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(sock)
        self.conns[sock.fileno()] = conn
        self.epoll.register(sock.fileno(), select.EPOLLIN)

    def send(self, conn: Conn, data: bytes) -> bool:
        try:
            conn.sock.sendall(data)
        except OSError:
            self.close(conn)
            return False
        return True

    def hung_up(self, conn: Conn) -> bool:
        try:
            return conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def serve(self, conn: Conn) -> None:
        """Answer a waiting ``/next`` poll with a new invocation."""
        rid, data = self.answer.next()
        started = time.monotonic()
        if self.send(conn, data):
            self.budget -= 1
            self.inflight[rid] = started
            conn.state = "head"

    def on_readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(262144)
        except OSError:
            data = b""
        if not data:
            if conn.state == "polling":
                with contextlib.suppress(ValueError):
                    self.polls.remove(conn)
            self.close(conn)
            return
        conn.buf += data
        while conn.state not in ("polling", "closed") and self.step(conn):
            pass

    def step(self, conn: Conn) -> bool:
        """Parse what the buffer holds; False when more bytes are needed."""
        buf = conn.buf
        if conn.state == "head":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, conn.buf = buf[:end], buf[end + 4 :]
            self.on_head(conn, head)
            return True
        if conn.state == "length":
            if len(buf) < conn.length:
                return False
            if conn.body is not None:
                conn.body.append(buf[: conn.length])
            conn.buf = buf[conn.length :]
            self.on_body(conn)
            return True
        if conn.state == "chunked":
            pos = 0
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
                if size == 0:
                    pos = eol + 2
                    conn.state = "trailers"
                    break
                end = eol + 2 + size
                if len(buf) < end + 2:
                    break
                if conn.body is not None:
                    conn.body.append(buf[eol + 2 : end])
                pos = end + 2
            conn.buf = buf[pos:]
            return conn.state == "trailers"
        if conn.state == "trailers":
            if buf.startswith(b"\r\n"):
                conn.buf = buf[2:]
                self.on_body(conn)
                return True
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            if conn.body is not None:
                conn.head += b"\r\n" + buf[:end]  # trailers, kept with the head
            conn.buf = buf[end + 4 :]
            self.on_body(conn)
            return True
        return False

    def on_head(self, conn: Conn, head: bytes) -> None:
        line, _, fields = head.partition(b"\r\n")
        parts = line.split(b" ")
        target = parts[1] if len(parts) > 1 else b""
        lower = fields.lower()
        conn.keep = b"connection: close" not in lower
        if parts[0] == b"GET" and target == NEXT_TARGET:
            if self.first_next == 0.0:
                self.first_next = time.monotonic()
            if self.budget:
                self.serve(conn)
            else:
                conn.state = "polling"
                self.polls.append(conn)
            return
        if parts[0] != b"POST":
            self.send(conn, NOT_FOUND)
            return
        conn.target = target
        conn.head = head
        conn.rid = b""
        if target.startswith(API) and target.endswith((b"/response", b"/error")):
            conn.rid = target[len(API) :].rsplit(b"/", 1)[0]
        elif target != INIT_ERROR_TARGET:
            conn.target = b""  # drained, then answered 404
        capture = (
            conn.rid in self.inflight and len(self.captured) < self.capture
        ) or target == INIT_ERROR_TARGET
        conn.body = [] if capture else None
        if b"100-continue" in lower:
            self.send(conn, CONTINUE)
        if b"transfer-encoding: chunked" in lower:
            conn.state = "chunked"
            return
        conn.length = 0
        at = lower.find(b"content-length:")
        if at >= 0:
            eol = lower.find(b"\r\n", at)
            conn.length = int(lower[at + 15 : eol if eol >= 0 else len(lower)])
        conn.state = "length"

    def on_body(self, conn: Conn) -> None:
        """A POST has arrived whole: note it, answer 202."""
        ended = time.monotonic()
        conn.state = "head"
        if conn.body is not None:
            self.captured.append(
                {
                    "target": conn.target.decode("latin-1"),
                    "head": conn.head.decode("latin-1"),
                    "body": b"".join(conn.body).decode("latin-1"),
                }
            )
            conn.body = None
        if not conn.target:
            self.send(conn, NOT_FOUND)
            return
        started = self.inflight.pop(conn.rid, None)
        if not self.send(conn, ACCEPTED):
            return
        if not conn.keep:
            self.close(conn)
        if started is None:
            if conn.target == INIT_ERROR_TARGET:
                self.errors += 1
            return
        self.latencies.append(int((ended - started) * 1e6))
        if conn.target.endswith(b"/error"):
            self.errors += 1
        self.done += 1
        if self.first_end == 0.0:
            self.first_end = ended
        self.last_end = ended
        if self.done == self.want:
            self.report()

    def report(self) -> None:
        self.say(
            {
                "done": self.done,
                "errors": self.errors,
                "wall": self.last_end - self.started,
                "first_next": self.first_next,
                "first_end": self.first_end,
                "last_end": self.last_end,
                "latencies_us": self.latencies,
                "captured": self.captured,
            }
        )
        self.want = 0

    def loop(self) -> None:
        self.say({"port": self.port, "pid": os.getpid()})
        while self.running:
            for fd, _ in self.epoll.poll():
                conn = self.conns.get(fd)
                if conn is not None:
                    self.on_readable(conn)
                elif fd == self.control_fd:
                    self.on_control()
                elif fd == self.listener.fileno():
                    self.accept()


# --------------------------------------------------------------------------- the driver


class FakeApiError(Exception):
    """The fake API did not answer in time, or exited."""


class FakeApi(contextlib.AbstractContextManager["FakeApi"]):
    """The benchmark's side: starts the fake API in its own process and drives it.

    Stopped by its pid by ``close()`` (or the ``with`` block); it also exits by itself when
    its stdin closes, that is when the benchmark process ends, however it ends.
    """

    def __init__(self, mode: str, log: Path, timeout: float = 30.0) -> None:
        self.mode = mode
        self.log = log
        self._log: IO[bytes] = open(log, "wb")  # noqa: SIM115 (closed in close)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--mode", mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        try:
            hello = self._read(timeout)
        except BaseException:
            self.close()
            raise
        self.port = int(hello["port"])
        self.address = f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_bytes()[-4000:].decode("utf-8", "replace")
        return ""

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:  # ValueError: the pipe was closed here
            raise FakeApiError(f"the fake API is gone ({exc}): {self.output()}") from None

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise FakeApiError(f"no answer from the fake API within {timeout:g} s")
        line = self.proc.stdout.readline()
        if not line:
            raise FakeApiError(f"the fake API exited: {self.output()}")
        doc: dict[str, Any] = json.loads(line)
        if "error" in doc:
            raise FakeApiError(doc["error"])
        return doc

    def run(self, count: int, capture: int = 0, timeout: float = 120.0) -> dict[str, Any]:
        """Serve ``count`` invocations; the fake API's report once all have been answered."""
        self.submit(count, capture)
        return self.result(timeout)

    def submit(self, count: int, capture: int = 0) -> None:
        """Let ``count`` invocations go to the polls, now or as they come (the first
        ``capture`` responses are kept whole); ``result()`` waits for the report."""
        self._send(f"run {count} {capture}")

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        return self._read(timeout)

    def reset(self) -> None:
        """Close every connection: what a stopped runtime left behind goes with them."""
        self._send("reset")
        self._read(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the fake API exits at the end of its stdin
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["buffered", "duplex"], default="buffered")
    args = parser.parse_args()
    server = Server(args.mode)
    with contextlib.suppress(KeyboardInterrupt):
        server.loop()


if __name__ == "__main__":
    main()
