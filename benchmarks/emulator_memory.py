"""Memory of the local emulator while a large duplex upload streams through it.

Run from the repo root as ``python benchmarks/emulator_memory.py`` (1 GiB) or with
``--size-mib N``; ``--quick`` is a 64 MiB smoke run.

Method, and why:

* The emulator runs as its own process, ``python -m duplexlambda serve --no-runtime``, so
  that its resident memory (``VmRSS``, and the kernel's high-water mark ``VmHWM``, read from
  ``/proc/<pid>/status``) is its own and not that of the peers driving it.
* This process plays both peers on raw sockets: a client that uploads the payload with a
  Content-Length and reads the response as it comes, and a runtime that asks ``/next`` for
  the request stream and echoes every upload piece into a streaming ``/response``. Every byte
  therefore crosses the emulator twice, both ways at once.
* Correctness: the client checks the echoed length and CRC-32 against what it sent.
* Reported: time, throughput (payload bytes per second, one way), the emulator's RSS once idle
  before the run, its peak (VmHWM) and the growth, which should not depend on the size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass

from duplexlambda.protocol.chunked import ChunkDecoder, ChunkEncoder
from duplexlambda.protocol.http1 import HeadReader, ResponseHead, body_reader

BLOCK = os.urandom(256 * 1024)
NEXT = "/2018-06-01/runtime/invocation/next"
STREAM = "application/vnd.duplexlambda.http-request-stream"


@dataclass
class Result:
    size: int
    seconds: float
    rss_before: int
    rss_peak: int


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes."""
    with open(f"/proc/{pid}/status") as status:
        text = status.read()
    return {
        key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M)[1]) * 1024  # type: ignore[index]
        for key in ("VmRSS", "VmHWM")
    }


async def read_head(reader: asyncio.StreamReader) -> tuple[ResponseHead, bytes]:
    heads = HeadReader("response")
    while True:
        data = await reader.read(65536)
        if not data:
            raise EOFError("no response head")
        head = heads.feed(data)
        if head is not None:
            assert isinstance(head, ResponseHead)
            return head, heads.rest


async def client(host: str, port: int, size: int) -> tuple[int, int, int]:
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    writer.write(head.encode())

    async def send() -> int:
        crc = 0
        for _ in range(size // len(BLOCK)):
            writer.write(BLOCK)
            await writer.drain()
            crc = zlib.crc32(BLOCK, crc)
        return crc

    async def receive() -> tuple[int, int]:
        response, rest = await read_head(reader)
        assert response.status == 200, response
        body = body_reader(response)
        got = crc = 0
        data = rest
        while not body.done:
            for piece in body.feed(data):
                got += len(piece)
                crc = zlib.crc32(piece, crc)
            if body.done:
                break
            data = await reader.read(256 * 1024)
            if not data:
                body.eof()
        return got, crc

    sent_crc, (got, got_crc) = await asyncio.gather(send(), receive())
    writer.close()
    await writer.wait_closed()
    return sent_crc, got, got_crc


async def runtime(host: str, port: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {NEXT} HTTP/1.1\r\nHost: x\r\nAccept: {STREAM}\r\n\r\n".encode())
    head, data = await read_head(reader)
    rid = (head.headers.get("Lambda-Runtime-Aws-Request-Id") or b"").decode()
    out_reader, out = await asyncio.open_connection(host, port)
    out.write(
        (
            f"POST /2018-06-01/runtime/invocation/{rid}/response HTTP/1.1\r\nHost: x\r\n"
            "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    decoder, encoder = ChunkDecoder(), ChunkEncoder()
    skip = 2  # the event JSON and the 8 NULs
    while not decoder.done:
        for piece in decoder.feed(data):
            if skip:
                skip -= 1
                continue
            out.write(encoder.data(piece))
        await out.drain()
        if decoder.done:
            break
        data = await reader.read(256 * 1024)
        if not data:
            decoder.eof()
    out.write(encoder.end())
    reply, _ = await read_head(out_reader)
    assert reply.status == 202, reply
    for w in (writer, out):
        w.close()
        await w.wait_closed()


def start_emulator() -> tuple[subprocess.Popen[str], tuple[str, int], tuple[str, int]]:
    """``serve --no-runtime`` on free ports; returns it, its URL and Runtime API addresses."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "duplexlambda", "serve", "--no-runtime", "--port", "0",
         "--runtime-api-port", "0", "--timeout", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(4)]
    url = re.search(r"http://([\d.]+):(\d+)/", lines[1])
    api = re.search(r"RUNTIME_API=([\d.]+):(\d+)", lines[3])
    assert url, lines
    assert api, lines
    return proc, (url[1], int(url[2])), (api[1], int(api[2]))


async def traffic(url: tuple[str, int], api: tuple[str, int], size: int) -> float:
    """Upload ``size`` bytes through the emulator and back; the seconds it took."""
    started = time.perf_counter()
    (sent_crc, got, got_crc), _ = await asyncio.gather(client(*url, size), runtime(*api))
    seconds = time.perf_counter() - started
    assert (got, got_crc) == (size, sent_crc), "echo mismatch"
    return seconds


def run(size: int) -> Result:
    proc, url, api = start_emulator()
    try:
        time.sleep(0.2)
        before = proc_status(proc.pid)["VmRSS"]
        seconds = asyncio.run(traffic(url, api, size))
        return Result(size, seconds, before, proc_status(proc.pid)["VmHWM"])
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="64 MiB smoke run")
    args = parser.parse_args()
    size = (64 if args.quick else args.size_mib) * 1024 * 1024
    r = run(size)
    mib = 1024 * 1024
    print(f"{'upload':>8} {'time':>7} {'MiB/s':>7} {'RSS idle':>9} {'RSS peak':>9} {'growth':>8}")
    print(
        f"{r.size / mib:6.0f}Mi {r.seconds:6.2f}s {r.size / mib / r.seconds:7.0f}"
        f" {r.rss_before / mib:7.1f}Mi {r.rss_peak / mib:7.1f}Mi"
        f" {(r.rss_peak - r.rss_before) / mib:6.1f}Mi"
    )


if __name__ == "__main__":
    main()
