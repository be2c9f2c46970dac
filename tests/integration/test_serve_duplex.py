"""``duplexlambda serve`` with our runtime as its child: a large duplex upload streams through
with flat memory in the runtime and in the emulator."""

from __future__ import annotations

import os
import pathlib
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest

from duplexlambda.protocol.chunked import ChunkDecoder
from duplexlambda.protocol.http1 import HeadReader, ResponseHead

from ..support.serve_process import Serve

REPO = pathlib.Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
#: Big enough that any buffering of the whole body would show; small enough for CI
#: (DUPLEXLAMBDA_TEST_UPLOAD_MIB=1024 for the full 1 GiB).
UPLOAD = int(os.environ.get("DUPLEXLAMBDA_TEST_UPLOAD_MIB", "256")) * MiB
PIECE = 64 * 1024


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def echo_through(url: str, total: int) -> tuple[int, bool, float]:
    """Upload ``total`` bytes chunked while reading the echo; return (bytes back, all
    uppercase, seconds until the first response byte)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    started = time.monotonic()
    first: list[float] = []

    def upload() -> None:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        frame = b"%x\r\n%s\r\n" % (PIECE, b"abcdefgh" * (PIECE // 8))
        for _ in range(total // PIECE):
            sock.sendall(frame)
        sock.sendall(b"0\r\n\r\n")

    sender = threading.Thread(target=upload, daemon=True)
    sender.start()
    heads = HeadReader("response")
    body: ChunkDecoder | None = None
    received = 0
    upper = True
    with sock:
        while body is None or not body.done:
            data = sock.recv(1 << 20)
            if not data:
                break
            if not first:
                first.append(time.monotonic() - started)
            if body is None:
                head = heads.feed(data)
                if head is None:
                    continue
                assert isinstance(head, ResponseHead)
                assert head.status == 200
                body, data = ChunkDecoder(), heads.rest
            for piece in body.feed(data):
                chunk = bytes(piece)
                received += len(chunk)
                upper = upper and chunk.isupper()
    sender.join(30)
    return received, upper, first[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_large_duplex_upload_with_flat_memory(tmp_path: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_LAMBDA_MAX_CONCURRENCY",)}
    env.pop("DUPLEXLAMBDA_RUNTIME_CMD", None)
    serve = Serve(
        "examples.echo.handler", "--port", "0", "--runtime-api-port", "0",
        "--task-root", str(REPO), env=env,
    )  # fmt: skip
    try:
        url = serve.wait_for(r"Function URL: (http://\S+)", serve.out)[1]
        runtime_pid = int(serve.wait_for(r"runtime started \(pid (\d+)\)", serve.err)[1])
        serve.wait_for(r"duplexlambda runtime: handler examples.echo.handler", serve.err)
        runtime_before = peak_rss_mib(runtime_pid)
        emulator_before = peak_rss_mib(serve.proc.pid)
        received, upper, ttfb = echo_through(url, UPLOAD)
        runtime_growth = peak_rss_mib(runtime_pid) - runtime_before
        emulator_growth = peak_rss_mib(serve.proc.pid) - emulator_before
    finally:
        assert serve.stop() == 0
    assert received == UPLOAD
    assert upper
    assert ttfb < 5.0
    print(f"runtime peak RSS growth {runtime_growth:.1f} MiB, emulator {emulator_growth:.1f} MiB")
    assert runtime_growth < 32, f"runtime grew {runtime_growth:.1f} MiB for {UPLOAD // MiB} MiB"
    assert emulator_growth < 32, f"emulator grew {emulator_growth:.1f} MiB"
