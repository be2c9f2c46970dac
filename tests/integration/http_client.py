"""A tiny HTTP/1.1 client on asyncio streams that timestamps every response chunk.

Tests need to see chunk boundaries and arrival times, which ordinary clients hide.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: (monotonic arrival time, chunk data), one per HTTP chunk (or per read without chunking)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    #: the terminating chunk arrived (False: the server cut the body short)
    complete: bool = False
    started: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(c for _, c in self.chunks)

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


async def request(
    url: str,
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | AsyncIterator[bytes] | None = None,
) -> Reply:
    """Send one request (a streamed body goes chunked) and read the whole reply."""
    parts = urlsplit(url)
    assert parts.hostname
    assert parts.port
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    reply = Reply(started=time.monotonic())
    try:
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {parts.netloc}",
            *(f"{k}: {v}" for k, v in headers),
        ]
        if isinstance(body, bytes):
            lines.append(f"Content-Length: {len(body)}")
        elif body is not None:
            lines.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        sending = asyncio.get_running_loop().create_task(_send(writer, body))
        try:
            await _read_reply(reader, reply)
        finally:
            if not sending.done():
                sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await writer.wait_closed()
    return reply


async def _send(writer: asyncio.StreamWriter, body: bytes | AsyncIterator[bytes] | None) -> None:
    if isinstance(body, bytes):
        writer.write(body)
    elif body is not None:
        async for piece in body:
            if piece:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
        writer.write(b"0\r\n\r\n")
    await writer.drain()


async def _read_reply(reader: asyncio.StreamReader, reply: Reply) -> None:
    status_line = await reader.readline()
    reply.status = int(status_line.split()[1])
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        reply.headers.append((name.strip(), value.strip()))
    if reply.header("transfer-encoding") == "chunked":
        await _read_chunks(reader, reply)
    elif (length := reply.header("content-length")) is not None:
        data = await reader.readexactly(int(length))
        reply.chunks.append((time.monotonic(), data))
        reply.complete = True
    else:
        while data := await reader.read(65536):
            reply.chunks.append((time.monotonic(), data))
        reply.complete = True


async def _read_chunks(reader: asyncio.StreamReader, reply: Reply) -> None:
    try:
        while True:
            size_line = await reader.readline()
            if not size_line:
                return  # cut short: no terminating chunk
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                reply.complete = True
                return
            data = await reader.readexactly(size + 2)
            reply.chunks.append((time.monotonic(), data[:-2]))
    except (asyncio.IncompleteReadError, ConnectionError):
        return
