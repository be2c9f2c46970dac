"""Fuzzing the emulator's HTTP request parsing over real sockets (atheris, coverage-guided).

Usage, from the repository root (libFuzzer flags and corpus directories go through atheris)::

    python csrc/fuzz_http.py -max_total_time=60 -artifact_prefix=fuzz-artifacts/ \\
        -dict=csrc/http.dict fuzz-artifacts/corpus-http tests/reliability/corpus/http
    python csrc/fuzz_http.py fuzz-artifacts/crash-<sha1>      # replay one input

An in-process emulator (both listeners on 127.0.0.1, free ports) with our runtime serving an
echo handler runs on an event loop in a second thread; the fuzzer's thread is the client.
Each input is one connection's worth of bytes, sent to the function URL or to the Runtime
API (the first byte says which, and how: all at once, in pieces, or trickled one byte at a
time, slowloris-style); the client then reads until the server closes or goes quiet.
``\\x00BIG`` in the input becomes 20 KiB of ``a``, so that short inputs can reach the
header, URL and head limits.

Invariants (a broken one raises, and libFuzzer saves the input as a crash):

* every response the emulator sends parses as HTTP/1.1 and its status is one an emulator may
  give to a bad or good request (1xx, 200, 202, 4xx, 502 and 504 from the function), never
  500 (the server's own failure);
* it either answers or closes, within a bound: a started head must complete within
  ``HEAD_TIMEOUT`` (set to 0.1 s here), else 408 and a close;
* nothing is logged by the emulator at ERROR or above, and no task fails unseen
  (the loop's exception handler collects those);
* afterwards a good request on a new connection works: the echo comes back byte for byte.

The committed seeds are in tests/reliability/corpus/http (``--make-seeds DIR`` writes them);
tests/reliability/test_fuzz_targets.py replays them on every test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
SEEDS = REPO / "tests" / "reliability" / "corpus" / "http"
BIG = b"\x00BIG"
#: statuses an emulator may answer any request with (anything else, 500 above all, is a bug)
ALLOWED = {100, 200, 202, 204, 400, 403, 404, 405, 408, 411, 413, 414, 431, 499, 502, 504}
#: how long a trickled head may take before the emulator must have answered 408 and closed
HEAD_TIMEOUT = 0.1
QUIET = 0.05  # seconds of silence after some response bytes: the server is done
PATIENCE = HEAD_TIMEOUT + 0.15  # ... or before any: it is waiting for more (or answering 408)
GOOD_BODY = bytes(range(256)) * 8


class Broken(AssertionError):
    """A broken invariant: atheris reports it as a crash and saves the input."""


class Harness:
    """The emulator and our runtime on a loop in a background thread; a client here."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.watches: list[logging.Handler] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._emulator: Any = None
        self.front: tuple[str, int] = ("", 0)
        self.api: tuple[str, int] = ("", 0)
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the emulator did not start")

    # --- the server side ----------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(lambda _l, ctx: self.errors.append(f"loop: {ctx}"))
        loop.run_until_complete(self._serve())
        loop.close()

    async def _serve(self) -> None:
        from duplexlambda.emulator import Emulator, EmulatorConfig
        from duplexlambda.emulator import server as http_server

        saved, http_server.HEAD_TIMEOUT = http_server.HEAD_TIMEOUT, HEAD_TIMEOUT
        config = EmulatorConfig(port=0, runtime_api_port=0, timeout=3.0, concurrency=2)
        try:
            await self._serve_with(Emulator(config))
        finally:
            http_server.HEAD_TIMEOUT = saved

    async def _serve_with(self, emulator: Any) -> None:
        from duplexlambda.handler import Lifecycle
        from duplexlambda.protocol.runtime_api import RuntimeApiAddress
        from duplexlambda.runtime import Runtime, RuntimeConfig

        async with emulator as emu:
            self._emulator = emu
            self.front = _split(emu.url)
            self.api = _split(emu.runtime_api)
            rt_config = RuntimeConfig(RuntimeApiAddress.parse(emu.runtime_api), concurrency=2)
            runtime = Runtime(echo, rt_config, Lifecycle())
            task = asyncio.get_running_loop().create_task(runtime.serve())
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            runtime.stop()
            await asyncio.wait_for(task, 10)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        for watch in self.watches:
            logging.getLogger("duplexlambda.emulator").removeHandler(watch)

    # --- the client side ----------------------------------------------------------------

    def exchange(self, data: bytes, *, to_api: bool, mode: int) -> bytes:
        """Send ``data`` on a new connection as ``mode`` says; return what came back."""
        address = self.api if to_api else self.front
        with socket.create_connection(address, timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The server may answer (431, 408...) and close before all is sent.
            with contextlib.suppress(OSError):
                _send(sock, data, mode)
            return _receive(sock)

    def forget_init_error(self) -> None:
        """An input may have posted ``/runtime/init/error`` as a runtime would: the emulator
        then fails invocations with it until a runtime polls ``/next`` afresh (by design,
        docs/runtime-api.md §3.5). Our runtime is already polling: clear it as a restart would."""
        done = threading.Event()

        def clear() -> None:
            self._emulator.dispatcher.init_error = None
            done.set()

        assert self._loop is not None
        self._loop.call_soon_threadsafe(clear)
        done.wait(5)

    def good_request(self) -> None:
        """A well-formed request on a new connection must still be served exactly."""
        head = (
            b"POST /good HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(GOOD_BODY)
        )
        raw = self.exchange(head + GOOD_BODY, to_api=False, mode=0)
        responses = parse_responses(raw)
        if not responses or responses[0][0] != 200 or responses[0][1] != GOOD_BODY[::-1]:
            raise Broken(f"a good request after the input failed: {raw[:300]!r}")


async def echo(req: Any, res: Any) -> None:
    """The function: the request body reversed (so that the client checks every byte)."""
    body = await req.read()
    res.content_type = "application/octet-stream"
    await res.end(body[::-1])


def _split(address: str) -> tuple[str, int]:
    hostport = address.removeprefix("http://").split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


def _send(sock: socket.socket, data: bytes, mode: int) -> None:
    if mode == 0 or len(data) < 2:
        sock.sendall(data)
    elif mode == 1:  # in pieces: a few cut points
        step = max(1, len(data) // 5)
        for k in range(0, len(data), step):
            sock.sendall(data[k : k + step])
            time.sleep(0.002)
    elif mode == 2:  # slowloris: the first bytes one at a time (bounded: 40 bytes, 0.2 s)
        for k in range(min(len(data), 40)):
            sock.sendall(data[k : k + 1])
            time.sleep(0.005)
        sock.sendall(data[40:])
    else:  # all, then half-close: the client is done sending
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)


def _receive(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + 10  # a hard bound on one exchange
    while True:
        wait = QUIET if chunks else PATIENCE
        sock.settimeout(wait)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return b"".join(chunks)  # quiet: done (or waiting for a body that never comes)
        except OSError:
            return b"".join(chunks)  # reset: it closed
        if not data:
            return b"".join(chunks)
        chunks.append(data)
        if time.monotonic() > deadline:
            raise Broken("the server kept talking for 10 s")


def parse_responses(raw: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each whole or partial response in ``raw``.

    Raises:
        Broken: bytes that are not HTTP/1.1 responses.
    """
    from duplexlambda.errors import RemoteProtocolError
    from duplexlambda.protocol.http1 import HeadReader, ResponseHead, body_reader

    out: list[tuple[int, bytes]] = []
    rest = raw
    while rest:
        heads = HeadReader("response")
        try:
            head = heads.feed(rest)
        except RemoteProtocolError as exc:
            raise Broken(f"not an HTTP response: {exc}: {rest[:200]!r}") from None
        if head is None:
            raise Broken(f"a response head cut short: {rest[:200]!r}")
        assert isinstance(head, ResponseHead)
        reader = body_reader(head)
        try:
            body = b"".join(bytes(p) for p in reader.feed(heads.rest))
        except RemoteProtocolError as exc:
            raise Broken(f"a malformed response body: {exc}") from None
        out.append((head.status, body))
        if not reader.done:
            break  # cut short (the server may close mid-response for a failed function)
        rest = reader.unused_data
    return out


def decode_input(data: bytes) -> tuple[bool, int, bytes]:
    """(to the Runtime API?, sending mode, bytes to send) from one fuzz input."""
    if not data:
        return False, 0, b""
    flags, payload = data[0], data[1:]
    return bool(flags & 1), (flags >> 1) & 3, payload.replace(BIG, b"a" * 20 * 1024)


class LogWatch(logging.Handler):
    """Collects what the emulator logs at ERROR and above (its own failures)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.ERROR)
        self._errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        self._errors.append(f"log: {record.name}: {record.getMessage()}")


def checker(harness: Harness) -> Callable[[bytes], None]:
    """The per-input check."""
    watch = LogWatch(harness.errors)
    harness.watches.append(watch)
    logging.getLogger("duplexlambda.emulator").addHandler(watch)

    def one_input(data: bytes) -> None:
        to_api, mode, payload = decode_input(data)
        raw = harness.exchange(payload, to_api=to_api, mode=mode)
        for status, _ in parse_responses(raw):
            if status not in ALLOWED:
                raise Broken(f"status {status} for {payload[:200]!r}")
        if to_api:
            harness.forget_init_error()
        harness.good_request()
        if harness.errors:
            errors, harness.errors[:] = list(harness.errors), []
            raise Broken(f"the emulator failed: {errors}")

    return one_input


# --- seeds ------------------------------------------------------------------------------------

_NEXT = b"/2018-06-01/runtime/invocation/next"


def seeds() -> dict[str, bytes]:
    """The committed starting corpus: flags byte (bit 0: Runtime API; bits 1-2: all at once,
    pieces, slowloris, half-close) + the bytes of one connection."""
    good = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    chunked = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    return {
        "get": b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "post-length": b"\x00" + good,
        "post-length-pieces": b"\x02" + good,
        "pipelined": b"\x00" + good + b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n",
        "chunked": b"\x00" + chunked + b"5\r\nhello\r\n0\r\n\r\n",
        "chunked-trailers": b"\x00" + chunked + b"1;ext=1\r\nx\r\n0\r\nT: v\r\n\r\n",
        "chunked-bad-size": b"\x00" + chunked + b"zz\r\nhello\r\n0\r\n\r\n",
        "chunked-bare-lf": b"\x00" + chunked + b"5\nhello\n0\n\n",
        "chunked-overflow": b"\x00" + chunked + b"fffffffffffffffff\r\n",
        "chunked-truncated": b"\x06" + chunked + b"5\r\nhel",
        "two-lengths": b"\x00POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "length-and-chunked": b"\x00POST / HTTP/1.1\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "gzip": b"\x00POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "bad-version": b"\x00GET / HTTP/9.9\r\n\r\n",
        "no-version": b"\x00GET /\r\n\r\n",
        "space-in-target": b"\x00GET /a b HTTP/1.1\r\n\r\n",
        "obs-fold": b"\x00GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
        "nul-in-header": b"\x00GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        "huge-header": b"\x00GET / HTTP/1.1\r\nX: " + BIG * 4 + b"\r\n\r\n",
        "huge-url": b"\x00GET /" + BIG + b" HTTP/1.1\r\n\r\n",
        "many-headers": b"\x00GET / HTTP/1.1\r\n" + b"A: b\r\n" * 130 + b"\r\n",
        "slowloris": b"\x04GET / HTTP/1.1\r\nHost: x\r\nX-a: b",
        "expect-continue": b"\x00POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
        b"Content-Length: 2\r\n\r\nok",
        "http10": b"\x00GET / HTTP/1.0\r\n\r\n",
        "upgrade": b"\x00GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        "connect": b"\x00CONNECT example.com:443 HTTP/1.1\r\n\r\n",
        "invoke": b"\x00POST /2015-03-31/functions/f/invocations HTTP/1.1\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        "invoke-stream": b"\x00POST /2021-11-15/functions/f/response-streaming-invocations"
        b" HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        "api-unknown-id": b"\x01POST /2018-06-01/runtime/invocation/x/response HTTP/1.1\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        "api-traversal": b"\x01POST /2018-06-01/runtime/invocation/../next/error HTTP/1.1\r\n"
        b"Content-Length: 0\r\n\r\n",
        "api-init-error-garbage": b"\x01POST /2018-06-01/runtime/init/error HTTP/1.1\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\n{{{\r\n0\r\n\r\n",
        "api-next-post": b"\x01POST " + _NEXT + b" HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "api-garbage": b"\x01\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "half-close-mid-head": b"\x06GET / HTTP/1.1\r\nHo",
    }


def make_seeds(directory: pathlib.Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (directory / name).write_bytes(data)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--make-seeds":
        make_seeds(pathlib.Path(sys.argv[2]))
        return
    import atheris

    with atheris.instrument_imports(include=["duplexlambda"]):
        import duplexlambda.emulator.front
        import duplexlambda.emulator.invoke_api
        import duplexlambda.emulator.runtime_api
        import duplexlambda.emulator.server
        import duplexlambda.protocol.http1  # noqa: F401

    # libFuzzer writes new inputs into the first corpus directory: never the committed one.
    argv = list(sys.argv)
    dirs = [k for k, a in enumerate(argv) if k and not a.startswith("-") and os.path.isdir(a)]
    if dirs and pathlib.Path(argv[dirs[0]]).resolve().is_relative_to(SEEDS):
        scratch = pathlib.Path("fuzz-artifacts") / "corpus-http"
        scratch.mkdir(parents=True, exist_ok=True)
        argv.insert(dirs[0], str(scratch))
    # The runtime logs the failures of the echo handler the inputs cause: not ours to see.
    # The emulator's ERROR records are what the watch collects (and they are printed).
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("duplexlambda").setLevel(logging.CRITICAL)
    logging.getLogger("duplexlambda.emulator").setLevel(logging.ERROR)
    harness = Harness()
    one_input = checker(harness)
    try:
        atheris.Setup(argv, one_input)
        atheris.Fuzz()
    finally:
        with contextlib.suppress(Exception):
            harness.close()


if __name__ == "__main__":
    main()
