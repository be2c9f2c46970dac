"""The floor of the benchmarks: a minimal Lambda runtime on blocking sockets.

``python bench_floor.py echo`` (buffered echo), ``python bench_floor.py http`` (the same
function-URL paths as ``bench_duplex.http``) or ``python bench_floor.py duplex`` (the duplex
round trip of ``bench_duplex.echo_duplex``: read the upload, write it back, end; each
response on a new connection, or ``duplex-keepalive``: on one kept alive), configured like
any runtime by ``AWS_LAMBDA_RUNTIME_API`` and ``AWS_LAMBDA_MAX_CONCURRENCY`` (that many forked
processes, one blocking loop each, as awslambdaric does it).

What makes it a floor: no event loop, no handler machinery, no threads; headers are found by
a byte search; the buffered echo posts the event's bytes back without parsing them; every
write is one ``sendall``/``sendmsg`` of a chunk framed by hand; the upload is decoded with
duplexlambda's C chunk decoder (the cheapest decoder at hand). It speaks just enough of the
Runtime API for the benchmarks and has none of the error handling a real runtime needs.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

API = b"/2018-06-01/runtime/invocation/"
STREAM_ACCEPT = b"application/vnd.duplexlambda.http-request-stream"
INTEGRATION = b"application/vnd.awslambda.http-integration-response"
PRELUDE = b'{"statusCode":200,"headers":{"content-type":"application/octet-stream"}}'


class Conn:
    """One keep-alive connection to the Runtime API with its read buffer."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def recv(self) -> bytes:
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("the Runtime API closed the connection")
        return data

    def head(self) -> bytes:
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self.recv()
        self.buf = buf[end + 4 :]
        return buf[: end + 4]

    def exactly(self, n: int) -> bytes:
        buf = self.buf
        while len(buf) < n:
            buf += self.recv()
        self.buf = buf[n:]
        return buf[:n]

    def take(self) -> bytes:
        """What is buffered, else one read."""
        if self.buf:
            data, self.buf = self.buf, b""
            return data
        return self.recv()


def header(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lowercase) in a raw head, or None."""
    start = head.lower().find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    return head[start : head.index(b"\r\n", start)].strip()


def status_of(head: bytes) -> int:
    return int(head[9:12])


def read_reply(conn: Conn) -> int:
    """Read the Runtime API's answer to a post (head and Content-Length body)."""
    head = conn.head()
    conn.exactly(int(header(head, b"content-length") or 0))
    status = status_of(head)
    if status >= 300:
        raise SystemExit(f"bench_floor: the Runtime API answered {status}")
    return status


def serve_echo(host: str, port: int) -> None:
    """Buffered echo: ``/next``, then post its body back as the response."""
    conn = Conn(host, port)
    host_header = f"{host}:{port}".encode()
    next_request = b"GET %snext HTTP/1.1\r\nHost: %s\r\n\r\n" % (API, host_header)
    while True:
        conn.sock.sendall(next_request)
        head = conn.head()
        body = conn.exactly(int(header(head, b"content-length") or 0))
        if status_of(head) != 200:
            continue  # 204: poll again
        rid = header(head, b"lambda-runtime-aws-request-id") or b""
        ctype = header(head, b"content-type") or b"application/json"
        conn.sock.sendall(
            b"POST %s%s/response HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (API, rid, host_header, ctype, len(body), body)
        )
        read_reply(conn)


def send_parts(sock: socket.socket, parts: list[bytes | memoryview]) -> None:
    """``sendmsg`` until every byte of ``parts`` is sent (no copy into one buffer)."""
    views = [memoryview(p) for p in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


def serve_http(host: str, port: int) -> None:
    """The function-URL paths of ``bench_duplex.http``, on the request-stream wire."""
    import itertools
    import json
    import random
    import struct
    import time
    from urllib.parse import parse_qsl

    from duplexlambda.protocol.chunked import ChunkDecoder

    conn = Conn(host, port)
    host_header = f"{host}:{port}".encode()
    next_request = b"GET %snext HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\n\r\n" % (
        API,
        host_header,
        STREAM_ACCEPT,
    )

    def pieces(decoder: Any) -> Iterator[memoryview]:
        """The /next body, decoded, as it arrives; leaves ``conn`` after its end."""
        data = conn.take()
        while True:
            yield from decoder.feed(data)
            if decoder.done:
                conn.buf = bytes(decoder.unused_data)
                return
            data = conn.recv()

    while True:
        conn.sock.sendall(next_request)
        head = conn.head()
        if status_of(head) != 200 or header(head, b"transfer-encoding") != b"chunked":
            raise SystemExit(f"bench_floor: not a request stream: {head!r}")
        rid = header(head, b"lambda-runtime-aws-request-id") or b""
        body = pieces(ChunkDecoder())
        # The event JSON, 8 NULs, then the upload (the JSON never contains a NUL).
        first, nul = b"", -1
        for piece in body:
            first += piece
            nul = first.find(b"\x00")
            if nul >= 0 and len(first) >= nul + 8:
                break
        else:
            raise SystemExit("bench_floor: the request stream ended inside the event")
        event = json.loads(first[:nul])
        upload: list[bytes | memoryview] = [first[nul + 8 :]]
        query = dict(parse_qsl(event.get("rawQueryString", "")))
        path = event.get("rawPath", "/")

        out = Conn(host, port)
        prelude = b"%x\r\n%s\r\n8\r\n%s\r\n" % (len(PRELUDE), PRELUDE, b"\x00" * 8)
        out.sock.sendall(
            b"POST %s%s/response HTTP/1.1\r\nHost: %s\r\n"
            b"Lambda-Runtime-Function-Response-Mode: streaming\r\nContent-Type: %s\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%s" % (API, rid, host_header, INTEGRATION, prelude)
        )
        if path == "/bytes":
            total, size = int(query["total"]), int(query["write"])
            frame = b"%x\r\n%s\r\n" % (size, random.Random(size).randbytes(size))
            for _ in range(total // size):
                out.sock.sendall(frame)
        elif path == "/upload":
            for part in itertools.chain(upload, body):
                if len(part):
                    send_parts(out.sock, [b"%x\r\n" % len(part), part, b"\r\n"])
        elif path == "/ticks":
            count, interval = int(query["n"]), int(query["interval_us"]) / 1e6
            start = time.monotonic() + interval
            for i in range(count):
                target = start + i * interval
                while (delay := target - time.monotonic()) > 0:
                    time.sleep(delay)
                out.sock.sendall(b"10\r\n%s\r\n" % struct.pack("<dd", target, time.monotonic()))
        for _ in body:  # the rest of the /next body (empty but for an upload)
            pass
        out.sock.sendall(b"0\r\n\r\n")
        read_reply(out)
        out.sock.close()


def serve_duplex(host: str, port: int, keep_alive: bool = False) -> None:
    """The duplex echo on the request-stream wire: the whole upload back in one write.

    The response goes out on a second connection (a duplex runtime may write while it still
    reads, so not on the ``/next`` one): a new one per response, as ``serve_http`` does, or
    with ``keep_alive`` one kept from one invocation to the next. The head with the
    prelude, then one ``sendall`` for the write and one for the end.
    """
    from duplexlambda.protocol.chunked import ChunkDecoder

    conn = Conn(host, port)
    out: Conn | None = None
    host_header = f"{host}:{port}".encode()
    next_request = b"GET %snext HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\n\r\n" % (
        API,
        host_header,
        STREAM_ACCEPT,
    )
    opening = b"%x\r\n%s\r\n8\r\n%s\r\n" % (len(PRELUDE), PRELUDE, b"\x00" * 8)
    while True:
        conn.sock.sendall(next_request)
        head = conn.head()
        if status_of(head) != 200 or header(head, b"transfer-encoding") != b"chunked":
            raise SystemExit(f"bench_floor: not a request stream: {head!r}")
        rid = header(head, b"lambda-runtime-aws-request-id") or b""
        decoder = ChunkDecoder()
        parts: list[bytes] = []
        data = conn.take()
        while True:
            parts += [bytes(piece) for piece in decoder.feed(data)]
            if decoder.done:
                conn.buf = bytes(decoder.unused_data)
                break
            data = conn.recv()
        stream = b"".join(parts)
        upload = stream[stream.index(b"\x00") + 8 :]  # the event JSON never holds a NUL
        if out is None:
            out = Conn(host, port)
        out.sock.sendall(
            b"POST %s%s/response HTTP/1.1\r\nHost: %s\r\n"
            b"Lambda-Runtime-Function-Response-Mode: streaming\r\nContent-Type: %s\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%s" % (API, rid, host_header, INTEGRATION, opening)
        )
        out.sock.sendall(b"%x\r\n%s\r\n" % (len(upload), upload))
        out.sock.sendall(b"0\r\n\r\n")
        reply = out.head()
        out.exactly(int(header(reply, b"content-length") or 0))
        if status_of(reply) >= 300:
            raise SystemExit(f"bench_floor: the Runtime API answered {status_of(reply)}")
        if not keep_alive or header(reply, b"connection") == b"close":
            out.sock.close()
            out = None


def serve_duplex_keepalive(host: str, port: int) -> None:
    serve_duplex(host, port, keep_alive=True)


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "echo"
    serve = {
        "echo": serve_echo,
        "http": serve_http,
        "duplex": serve_duplex,
        "duplex-keepalive": serve_duplex_keepalive,
    }[kind]
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
    workers = int(os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY") or 1)
    for _ in range(workers - 1):
        if os.fork() == 0:  # the benchmark stops the whole process group
            try:
                serve(host, int(port))
            finally:
                os._exit(0)
    serve(host, int(port))


if __name__ == "__main__":
    try:  # noqa: SIM105 (no contextlib import on the floor's start-up path)
        main()
    except (EOFError, ConnectionError, KeyboardInterrupt):
        pass  # the emulator went away: the benchmark is over
