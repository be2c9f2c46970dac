"""A scripted Runtime API on a raw socket, recording every byte the runtime sends.

No emulator involved: each request is kept as received (head bytes, body bytes with their
chunk framing, arrival times), so tests can assert the runtime's wire output byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from duplexlambda.protocol._chunked_py import ChunkDecoder
from duplexlambda.protocol.http1 import HeadReader, RequestHead

from .wire import text_header

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"


@dataclass
class Received:
    """One request the runtime sent."""

    head: RequestHead
    raw_head: bytes
    raw_body: bytes = b""
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: (monotonic time, bytes) as they came off the socket
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)
    complete: bool = False
    #: which accepted connection it came on (0, 1, 2... in the order they were opened)
    connection: int = -1

    @property
    def path(self) -> str:
        return self.head.target.decode()

    def header(self, name: str) -> str | None:
        return text_header(self.head.headers, name)


@dataclass
class Invocation:
    """An invocation to hand out on /next."""

    body: bytes = b"{}"
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    content_type: str = "application/json"
    deadline_ms: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: for request streaming: pieces of the chunked body, sent with a pause between them
    stream: list[bytes] | None = None
    stream_gap: float = 0.0
    #: end the streamed /next body without its last chunk (a client that hung up)
    truncate: bool = False
    #: set once /next has handed this invocation to the runtime
    handed_out: asyncio.Event = field(default_factory=asyncio.Event)


class FakeRuntimeApi:
    """Serves /next from a queue; answers posts with a status (202 unless scripted)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Invocation] = asyncio.Queue()
        self.received: list[Received] = []
        self.status_for: dict[str, tuple[int, bytes]] = {}
        self._done: dict[str, asyncio.Future[Received]] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.next_status: int | None = None
        #: answer this many /next polls with an empty 204 first (cargo-lambda does, docs/runtime-
        #: api.md P3)
        self.idle_204 = 0
        #: request ids whose post is read but never answered (a stalled Runtime API)
        self.never_answer: set[str] = set()
        #: connections accepted so far
        self.connections = 0
        self.address = ""

    async def __aenter__(self) -> FakeRuntimeApi:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def add(self, inv: Invocation) -> Invocation:
        self.queue.put_nowait(inv)
        self._done.setdefault(inv.request_id, asyncio.get_running_loop().create_future())
        return inv

    async def result(self, request_id: str) -> Received:
        """The /response or /error request that finished ``request_id`` (10 s at most)."""
        fut = self._done.setdefault(request_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(fut), 10)

    def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        connection = self.connections
        self.connections += 1
        try:
            while True:
                rec = await self._read_request(reader)
                if rec is None:
                    return
                rec.connection = connection
                self.received.append(rec)
                if rec.head.method == b"GET" and rec.path.endswith("/invocation/next"):
                    await self._send_next(writer)
                else:
                    await self._answer_post(rec, writer)
        except (ConnectionError, asyncio.IncompleteReadError, RuntimeError):
            return  # RuntimeError: uvloop's word for a transport the test aborted
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> Received | None:
        heads = HeadReader("request")
        head = None
        raw = b""
        while head is None:
            data = await reader.read(65536)
            if not data:
                return None
            raw += data
            head = heads.feed(data)
        assert isinstance(head, RequestHead)
        raw_head = raw[: len(raw) - len(heads.rest)]
        rec = Received(head, raw_head)
        rest = heads.rest
        if head.headers.get("transfer-encoding") == b"chunked":
            await self._read_chunked(reader, rec, rest)
        else:
            length = int(head.headers.get("content-length") or b"0")
            body = rest
            while len(body) < length:
                data = await reader.read(65536)
                if not data:
                    break
                body += data
            rec.raw_body = rec.body = body[:length]
            rec.complete = len(body) >= length
        return rec

    async def _read_chunked(self, reader: asyncio.StreamReader, rec: Received, rest: bytes) -> None:
        dec = ChunkDecoder()
        data = rest
        while True:
            if data:
                rec.arrivals.append((time.monotonic(), data))
                rec.raw_body += data
                rec.body += b"".join(bytes(v) for v in dec.feed(data))
                if dec.done:
                    rec.trailers = dec.trailers
                    rec.complete = True
                    return
            data = await reader.read(65536)
            if not data:
                return

    async def _send_next(self, writer: asyncio.StreamWriter) -> None:
        if self.idle_204:
            self.idle_204 -= 1
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            return
        if self.next_status is not None:
            body = b'{"errorMessage":"boom","errorType":"InternalServerError"}\n'
            writer.write(
                b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s"
                % (self.next_status, len(body), body)
            )
            return
        inv = await self.queue.get()
        if writer.is_closing():  # the test dropped this poll's connection: the next poll gets it
            self.queue.put_nowait(inv)
            raise ConnectionError("poll dropped")
        inv.handed_out.set()
        deadline = inv.deadline_ms or int(time.time() * 1000) + 30_000
        fields = {
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline),
            "Lambda-Runtime-Invoked-Function-Arn": ARN,
            "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1",
            "Content-Type": inv.content_type,
            **inv.headers,
        }
        # surrogateescape: a test can send any byte ("\udcff" goes out as 0xFF)
        head = b"".join(
            b"%s: %s\r\n" % (k.encode(), v.encode("utf-8", "surrogateescape"))
            for k, v in fields.items()
        )
        if inv.stream is None:
            writer.write(
                b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s"
                % (head, len(inv.body), inv.body)
            )
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\n\r\n" % head)
        for piece in inv.stream:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            if inv.stream_gap:
                await asyncio.sleep(inv.stream_gap)
        if inv.truncate:
            writer.close()
            raise ConnectionError("truncated on purpose")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _answer_post(self, rec: Received, writer: asyncio.StreamWriter) -> None:
        rid = rec.path.split("/invocation/")[-1].split("/")[0] if "/invocation/" in rec.path else ""
        if rid in self.never_answer:
            await asyncio.Event().wait()  # until the runtime gives up and closes
        status, body = self.status_for.get(rid, (202, b'{"status":"OK"}\n'))
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, len(body), body)
        )
        await writer.drain()
        key = rid if rid and rid != "next" else "init"
        fut = self._done.setdefault(key, asyncio.get_running_loop().create_future())
        if not fut.done():
            fut.set_result(rec)


async def aiter_bytes(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item
