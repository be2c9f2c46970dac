"""The benchmarks' fake Runtime API (``benchmarks/fakeapi.py``): what it serves and accepts,
that real runtimes (duplexlambda, awslambdaric, the floor) run against it, and that it leaves
nothing running.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from benchmarks import profile_runtime
from benchmarks import runtime as bench_runtime
from benchmarks.common import APPS, RUNTIMES, Procs, group_pids, lambda_env
from benchmarks.fakeapi import (
    NEXT_TARGET,
    REQUEST_STREAM,
    FakeApi,
    FakeApiError,
    make_event,
    make_upload,
)

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll and /proc"),
]

NEXT = b"GET " + NEXT_TARGET + b" HTTP/1.1\r\nHost: x\r\n\r\n"


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def api(tmp_path: pathlib.Path) -> Iterator[FakeApi]:
    with FakeApi("buffered", tmp_path / "fakeapi.log") as server:
        yield server
    assert not _alive(server.pid)


@pytest.fixture
def duplex_api(tmp_path: pathlib.Path) -> Iterator[FakeApi]:
    with FakeApi("duplex", tmp_path / "fakeapi.log") as server:
        yield server
    assert not _alive(server.pid)


class Client:
    """A raw keep-alive connection to the fake API."""

    def __init__(self, api: FakeApi) -> None:
        self.sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def head(self) -> tuple[bytes, dict[bytes, bytes]]:
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        line, *fields = head.split(b"\r\n")
        headers = {}
        for field in fields:
            name, _, value = field.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return line, headers

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.buf += data
        out, self.buf = self.buf.split(marker, 1)
        return out + marker

    def next(self) -> tuple[bytes, dict[bytes, bytes], bytes]:
        self.sock.sendall(NEXT)
        return self.next_answer()

    def next_answer(self) -> tuple[bytes, dict[bytes, bytes], bytes]:
        line, headers = self.head()
        if headers.get(b"transfer-encoding") == b"chunked":
            body = self.until(b"\r\n0\r\n\r\n")
        else:
            body = self.exactly(int(headers[b"content-length"]))
        return line, headers, body

    def accepted(self) -> None:
        line, headers = self.head()
        assert line == b"HTTP/1.1 202 Accepted"
        self.exactly(int(headers[b"content-length"]))


def test_serves_the_event_with_lambda_headers(api: FakeApi) -> None:
    client = Client(api)
    try:
        api.submit(3, capture=3)
        ids = []
        for _ in range(3):  # one keep-alive connection throughout
            line, headers, body = client.next()
            assert line == b"HTTP/1.1 200 OK"
            assert body == make_event()
            assert len(body) == 1024
            assert headers[b"content-type"] == b"application/json"
            assert int(headers[b"lambda-runtime-deadline-ms"]) > time.time() * 1000 + 600_000
            assert headers[b"lambda-runtime-invoked-function-arn"].startswith(b"arn:aws:lambda:")
            assert headers[b"lambda-runtime-trace-id"].startswith(b"Root=1-")
            rid = headers[b"lambda-runtime-aws-request-id"]
            ids.append(rid)
            client.sock.sendall(
                b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 2\r\n\r\nok" % rid
            )
            client.accepted()
        report = api.result(10)
    finally:
        client.close()
    assert len(set(ids)) == 3
    assert report["done"] == 3
    assert report["errors"] == 0
    assert len(report["latencies_us"]) == 3
    assert all(latency > 0 for latency in report["latencies_us"])
    assert [c["body"] for c in report["captured"]] == ["ok"] * 3
    assert 0 < report["first_next"] <= report["first_end"] <= report["last_end"]


def test_accepts_chunked_trailers_expect_and_errors(api: FakeApi) -> None:
    client = Client(api)
    try:
        api.submit(2, capture=2)
        _, headers, _ = client.next()
        rid = headers[b"lambda-runtime-aws-request-id"]
        client.sock.sendall(
            b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
            b"Lambda-Runtime-Function-Response-Mode: streaming\r\n"
            b"Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"
            b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Done: yes\r\n\r\n" % rid
        )
        client.accepted()
        _, headers, _ = client.next()
        rid = headers[b"lambda-runtime-aws-request-id"]
        body = b'{"errorMessage":"no","errorType":"Bench"}'
        client.sock.sendall(
            b"POST /2018-06-01/runtime/invocation/%s/error HTTP/1.1\r\nHost: x\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (rid, len(body))
        )
        line, _ = client.head()
        assert line == b"HTTP/1.1 100 Continue"
        client.sock.sendall(body)
        client.accepted()
        report = api.result(10)
    finally:
        client.close()
    assert report["done"] == 2
    assert report["errors"] == 1
    first, second = report["captured"]
    assert first["body"] == "hello!"
    assert "X-Done: yes" in first["head"]
    assert second["target"].endswith("/error")
    assert json.loads(second["body"])["errorType"] == "Bench"


def test_holds_concurrent_polls_until_told(api: FakeApi) -> None:
    clients = [Client(api) for _ in range(4)]
    bodies: list[bytes] = []
    try:
        threads = [threading.Thread(target=lambda c=c: bodies.append(c.next()[2])) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        assert bodies == []  # long-polling: nothing to hand out yet
        api.submit(4)
        for thread in threads:
            thread.join(10)
        assert bodies == [make_event()] * 4
        for client, rid in zip(clients, range(1, 5), strict=True):
            client.sock.sendall(
                b"POST /2018-06-01/runtime/invocation/%08x-0000-4000-8000-00000000b0b0/response"
                b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" % rid
            )
            client.accepted()
        report = api.result(10)
    finally:
        for client in clients:
            client.close()
    assert report["done"] == 4


def test_duplex_mode_serves_the_request_stream(duplex_api: FakeApi) -> None:
    client = Client(duplex_api)
    try:
        duplex_api.submit(1)
        _, headers, body = client.next()
    finally:
        client.close()
    assert headers[b"content-type"] == REQUEST_STREAM
    assert headers[b"transfer-encoding"] == b"chunked"
    pieces = []
    rest = body
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        pieces.append(rest[:size])
        rest = rest[size + 2 :]
    event, nuls, upload = pieces
    assert json.loads(event)["requestContext"]["http"]["method"] == "POST"
    assert nuls == b"\x00" * 8
    assert upload == make_upload()


def test_exits_when_its_driver_goes_away(tmp_path: pathlib.Path) -> None:
    server = FakeApi("buffered", tmp_path / "fakeapi.log")
    assert server.proc.stdin is not None
    server.proc.stdin.close()  # what the benchmark's death does
    server.proc.wait(10)
    server.close()
    assert not _alive(server.pid)
    with pytest.raises(FakeApiError):
        server.run(1, timeout=1)


CASES = [
    *((comp, c) for comp in bench_runtime.BUFFERED for c in (1, 4)),
    *((comp, 1) for comp in bench_runtime.DUPLEXED),
]


@pytest.mark.parametrize(
    ("comp", "concurrency"), CASES, ids=[f"{comp.key}-c{c}" for comp, c in CASES]
)
def test_real_runtimes_run_against_it(
    tmp_path: pathlib.Path, comp: bench_runtime.Competitor, concurrency: int
) -> None:
    if comp.kind == "awslambdaric":
        pytest.importorskip("awslambdaric")
    pids: list[int] = []
    with Procs() as procs, FakeApi(comp.mode, tmp_path / "fakeapi.log") as api:
        pids.append(api.pid)
        env = lambda_env(api.address, comp.handler, concurrency)
        child = procs.spawn("runtime", RUNTIMES[comp.kind](comp.handler), env=env, cwd=APPS,
                            group=True)  # fmt: skip
        pids.append(child.pid)
        setup = bench_runtime.Setup(comp, api, child)
        setup.verify()  # the checked answer: the echo, or prelude + NULs + the upload
        stats = bench_runtime.Stats()
        setup.batch(40, stats)
        assert stats.count == 40
        assert len(stats.latencies_us) == 40
        assert stats.cpu > 0
        procs.stop(child)
    deadline = time.monotonic() + 5  # forked workers are killed with their group
    while [p for p in group_pids(child.pid) if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in group_pids(child.pid) if _alive(p)], "workers still running"
    for pid in pids:
        assert not _alive(pid), f"pid {pid} still running"


def test_nothing_listens_after_close(tmp_path: pathlib.Path) -> None:
    with FakeApi("buffered", tmp_path / "fakeapi.log") as api:
        port = api.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert os.path.exists(tmp_path / "fakeapi.log")


def test_a_poll_left_by_a_stopped_runtime_gets_no_invocation(api: FakeApi) -> None:
    gone = Client(api)
    gone.sock.sendall(NEXT)
    time.sleep(0.1)  # its poll is waiting
    gone.close()  # and its runtime is stopped before the next run
    client = Client(api)
    try:
        client.sock.sendall(NEXT)
        time.sleep(0.1)
        api.submit(1)
        _, headers, body = client.next_answer()
        client.sock.sendall(
            b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 0\r\n\r\n" % headers[b"lambda-runtime-aws-request-id"]
        )
        client.accepted()
        assert api.result(10)["done"] == 1
    finally:
        client.close()
    assert body == make_event()


@pytest.mark.parametrize("key", ["duplexlambda", "awslambdaric", "floor-duplex"])
def test_profile_runtime_writes_a_profile(tmp_path: pathlib.Path, key: str) -> None:
    if key == "awslambdaric":
        pytest.importorskip("awslambdaric")
    path = profile_runtime.profile(key, 50, tmp_path / f"{key}.prof")
    text = profile_runtime.report(path, "tottime", 10)
    assert "function calls" in text
