"""Soak: many mixed invocations through ``duplexlambda serve`` with our runtime as its child.

    python benchmarks/soak.py                      # 10,000 invocations, concurrency 4
    python benchmarks/soak.py --invocations 500 --window 100 --no-doc   # the CI size

The emulator runs as its own process (``python -m duplexlambda serve``, function URL and
Runtime API on free 127.0.0.1 ports, ``--concurrency 4``, ``--timeout 2``), its runtime as
its child, serving one duplex handler written for the soak. This process is the caller, with
4 invocations in flight at all times, of these kinds (by weight):

========== ====== ===================================================================
buffered    30 %  Invoke API, JSON event in, JSON payload out (checked exactly)
stream      25 %  function URL GET, 1-40 chunks streamed out (checked byte for byte)
duplex      25 %  function URL POST, chunked upload of 1-32 pieces echoed (upper-cased)
error        9 %  the handler raises before writing: 502 with its error type
error-mid    9 %  the handler raises after a chunk: the bytes sent, then a cut stream
timeout      2 %  the handler outlives its deadline: 502 ``Function.Timeout`` (the
                  runtime cancels it at deadline - 1.5 s, DUPLEXLAMBDA_DEADLINE_MARGIN_MS)
========== ====== ===================================================================

Every outcome is checked against what its kind must give; anything else is an unexpected
failure. After each window (``--window``, 1000 by default) the script samples the
emulator's and the runtime's open file descriptors and resident memory from ``/proc``, and
the runtime's asyncio task count through a ``/debug`` route of the soak handler (which also
tells the runtime's pid: it must never change, i.e. the runtime never died). Passing means:
zero unexpected failures, the same runtime throughout, and between the first and the last
window no growth in fds (2 of slack for pooled connections) or tasks, and RSS growth under
``--rss-slack`` MiB in each process. The table is printed and, unless ``--no-doc``, written
into docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from duplexlambda.errors import RemoteProtocolError
from duplexlambda.protocol.http1 import HeadReader, ResponseHead, body_reader

REPO = pathlib.Path(__file__).resolve().parent.parent
INVOKE = "/2015-03-31/functions/function/invocations"
KINDS = {
    "buffered": 30,
    "stream": 25,
    "duplex": 25,
    "error": 9,
    "error-mid": 9,
    "timeout": 2,
}

APP = """
import asyncio
import gc
import os


class SoakError(Exception):
    pass


def piece(seed, i):
    return b"%d.%d:" % (seed, i) + bytes([97 + (seed + i) % 26]) * ((seed * 7 + i * 13) % 900)


async def handler(req, res):
    if not req.is_http:  # Invoke API: a JSON event
        event = await req.json()
        res.content_type = "application/json"
        await res.end(b'{"n": %d, "len": %d}' % (event["n"], len(event["pad"])))
        return
    path, query = req.path, req.query
    if path == "/stream":
        seed, count = int(query["seed"]), int(query["count"])
        for i in range(count):
            await res.write(piece(seed, i))
    elif path == "/duplex":
        async for chunk in req:
            await res.write(chunk.upper())
    elif path == "/error":
        raise SoakError("before any byte")
    elif path == "/error-mid":
        await res.write(b"partial")
        raise SoakError("after a chunk")
    elif path == "/timeout":
        await asyncio.sleep(60)
    elif path == "/debug":
        gc.collect()
        tasks = len(asyncio.all_tasks())
        fds = len(os.listdir("/proc/self/fd"))
        await res.end(b'{"pid": %d, "tasks": %d, "fds": %d}' % (os.getpid(), tasks, fds))
"""


def piece(seed: int, i: int) -> bytes:
    """The same as the handler's (APP): the bytes a stream invocation must give."""
    return b"%d.%d:" % (seed, i) + bytes([97 + (seed + i) % 26]) * ((seed * 7 + i * 13) % 900)


# --- a small HTTP client -----------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool


async def call(
    host: str, port: int, method: str, path: str, body: bytes | list[bytes] | None = None
) -> Reply:
    """One request on a new connection; a list body is sent chunked, piece by piece."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: soak\r\n"
        if isinstance(body, bytes):
            head += f"Content-Length: {len(body)}\r\n"
        elif body is not None:
            head += "Transfer-Encoding: chunked\r\n"
        writer.write(head.encode() + b"\r\n")
        if isinstance(body, bytes):
            writer.write(body)
        elif body is not None:
            for part in body:
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        return await _read_reply(reader)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    heads = HeadReader("response")
    head = None
    while head is None:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("closed before a response head")
        head = heads.feed(data)
    assert isinstance(head, ResponseHead)
    framing = body_reader(head)
    parts = [bytes(p) for p in framing.feed(heads.rest)]
    complete = framing.done
    while not framing.done:
        data = await reader.read(65536)
        if not data:
            try:
                framing.eof()
            except RemoteProtocolError:
                break
            complete = framing.done
            break
        parts += [bytes(p) for p in framing.feed(data)]
        complete = framing.done
    headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
    return Reply(head.status, headers, b"".join(parts), complete)


# --- the invocations ----------------------------------------------------------------------------


async def one(kind: str, rng: random.Random, host: str, port: int) -> str | None:
    """Run one invocation of ``kind``; None if it gave what it must, else what went wrong."""
    if kind == "buffered":
        n, pad = rng.randrange(10**6), "x" * rng.randrange(0, 4000)
        reply = await call(host, port, "POST", INVOKE, json.dumps({"n": n, "pad": pad}).encode())
        wanted = {"n": n, "len": len(pad)}
        if reply.status != 200 or "x-amz-function-error" in reply.headers:
            return f"status {reply.status} {reply.body[:200]!r}"
        return None if json.loads(reply.body) == wanted else f"payload {reply.body[:200]!r}"
    if kind == "stream":
        seed, count = rng.randrange(10**6), rng.randrange(1, 41)
        reply = await call(host, port, "GET", f"/stream?seed={seed}&count={count}")
        want = b"".join(piece(seed, i) for i in range(count))
        ok = reply.status == 200 and reply.complete and reply.body == want
        return None if ok else f"stream {reply.status} {len(reply.body)}/{len(want)} bytes"
    if kind == "duplex":
        parts = [rng.randbytes(rng.randrange(1, 3000)) for _ in range(rng.randrange(1, 33))]
        reply = await call(host, port, "POST", "/duplex", parts)
        # upper() works byte by byte: however the pieces were regrouped on the way, the
        # echo is exactly the upload upper-cased.
        want = b"".join(parts).upper()
        ok = reply.status == 200 and reply.complete and reply.body == want
        return None if ok else f"duplex {reply.status} {len(reply.body)} bytes"
    if kind in ("error", "timeout"):
        reply = await call(host, port, "GET", f"/{kind}")
        want_type = "SoakError" if kind == "error" else "Function.Timeout"
        try:
            got = json.loads(reply.body).get("errorType")
        except ValueError:
            got = None
        ok = reply.status == 502 and got == want_type
        return None if ok else f"{kind}: {reply.status} {reply.body[:200]!r}"
    reply = await call(host, port, "GET", "/error-mid")
    ok = reply.status == 200 and reply.body == b"partial" and not reply.complete
    return None if ok else f"error-mid: {reply.status} {reply.body[:100]!r} {reply.complete}"


# --- the emulator process and the samples --------------------------------------------------------


def _status_kib(pid: int, field_name: str) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Window:
    index: int
    invocations: int
    seconds: float
    kinds: dict[str, int]
    failures: int
    emulator_fds: int
    emulator_rss_mib: float
    runtime_fds: int
    runtime_rss_mib: float
    runtime_tasks: int
    runtime_pid: int


@dataclass
class Result:
    invocations: int
    concurrency: int
    seconds: float
    windows: list[Window] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed in self.verdicts)


class Serve:
    """``python -m duplexlambda serve`` with the soak app, its stderr drained by a thread."""

    def __init__(self, task_root: str, concurrency: int) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DUPLEXLAMBDA_RUNTIME_CMD"}
        env["DUPLEXLAMBDA_DEADLINE_MARGIN_MS"] = "1500"
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "duplexlambda", "serve", "soak_app.handler",
                "--port", "0", "--runtime-api-port", "0", "--task-root", task_root,
                "--timeout", "2", "--concurrency", str(concurrency),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if m := re.search(r"Function URL: http://([\d.]+):(\d+)/", line):
                self.host, self.port = m[1], int(m[2])
                break
        else:
            raise RuntimeError("serve did not print its URL")
        self.log: list[str] = []
        self._threads = [
            threading.Thread(target=self._drain, args=(s,), daemon=True)
            for s in (self.proc.stdout, self.proc.stderr)
        ]
        for thread in self._threads:
            thread.start()

    def _drain(self, stream: Any) -> None:
        for line in stream:
            if "WARNING" in line or "ERROR" in line or "runtime started" in line:
                self.log.append(line.rstrip())

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(30)
        for thread in self._threads:
            thread.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code


async def _settled_fds(pid: int, within: float = 2.0) -> int:
    """The emulator's open fds once connections the clients just closed are gone: a cut
    stream lingers a moment on the server side (bounded), which is not a leak."""
    count = _fds(pid)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        again = _fds(pid)
        if again == count:
            return count
        count = again
    return count


async def _sample(serve: Serve, index: int, count: int, took: float, kinds: Counter[str],
                  failures: int) -> Window:  # fmt: skip
    reply = await call(serve.host, serve.port, "GET", "/debug")
    debug = json.loads(reply.body)
    pid = int(debug["pid"])
    return Window(
        index=index,
        invocations=count,
        seconds=round(took, 2),
        kinds=dict(kinds),
        failures=failures,
        emulator_fds=await _settled_fds(serve.proc.pid),
        emulator_rss_mib=round(_status_kib(serve.proc.pid, "VmRSS") / 1024, 1),
        runtime_fds=int(debug["fds"]),
        runtime_rss_mib=round(_status_kib(pid, "VmRSS") / 1024, 1),
        runtime_tasks=int(debug["tasks"]),
        runtime_pid=pid,
    )


async def soak(serve: Serve, invocations: int, window: int, concurrency: int, seed: int) -> Result:
    result = Result(invocations, concurrency, 0.0)
    names, weights = list(KINDS), list(KINDS.values())
    began = time.monotonic()
    done = 0
    index = 0
    while done < invocations:
        size = min(window, invocations - done)
        rng = random.Random(seed + index)
        plan = rng.choices(names, weights, k=size)
        kinds = Counter(plan)
        queue = list(enumerate(plan))
        failures = 0
        window_began = time.monotonic()

        async def worker(queue: list[tuple[int, str]] = queue, base: int = done) -> None:
            nonlocal failures
            while queue:
                k, kind = queue.pop()
                problem: str | None
                try:
                    problem = await asyncio.wait_for(
                        one(kind, random.Random(seed * 1_000_003 + base + k), serve.host,
                            serve.port),
                        30,
                    )  # fmt: skip
                except (OSError, TimeoutError, ValueError, RemoteProtocolError) as exc:
                    problem = f"{kind}: {type(exc).__name__}: {exc}"
                if problem is not None:
                    failures += 1
                    result.failures.append(problem)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.monotonic() - window_began
        done += size
        index += 1
        sample = await _sample(serve, index, size, took, kinds, failures)
        result.windows.append(sample)
        print(row(sample), flush=True)
    result.seconds = round(time.monotonic() - began, 1)
    return result


def judge(result: Result, rss_slack: float) -> None:
    first, last = result.windows[0], result.windows[-1]
    pids = {w.runtime_pid for w in result.windows}
    result.verdicts = [
        (f"unexpected failures: {len(result.failures)}", not result.failures),
        (f"one runtime process throughout (pids seen: {len(pids)})", len(pids) == 1),
        (
            f"emulator fds {first.emulator_fds} -> {last.emulator_fds} (slack 2)",
            last.emulator_fds <= first.emulator_fds + 2,
        ),
        (
            f"runtime fds {first.runtime_fds} -> {last.runtime_fds} (slack 2)",
            last.runtime_fds <= first.runtime_fds + 2,
        ),
        (
            f"runtime asyncio tasks {first.runtime_tasks} -> {last.runtime_tasks}",
            last.runtime_tasks <= first.runtime_tasks,
        ),
        (
            f"emulator RSS {first.emulator_rss_mib} -> {last.emulator_rss_mib} MiB"
            f" (slack {rss_slack:g})",
            last.emulator_rss_mib - first.emulator_rss_mib <= rss_slack,
        ),
        (
            f"runtime RSS {first.runtime_rss_mib} -> {last.runtime_rss_mib} MiB"
            f" (slack {rss_slack:g})",
            last.runtime_rss_mib - first.runtime_rss_mib <= rss_slack,
        ),
    ]


HEADER = (
    "| window | invocations | s | inv/s | unexpected failures | emulator fds | emulator RSS MiB "
    "| runtime fds | runtime RSS MiB | runtime tasks |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(w: Window) -> str:
    rate = w.invocations / w.seconds if w.seconds else 0.0
    return (
        f"| {w.index} | {w.invocations} | {w.seconds:.1f} | {rate:.0f} | {w.failures} "
        f"| {w.emulator_fds} | {w.emulator_rss_mib} | {w.runtime_fds} | {w.runtime_rss_mib} "
        f"| {w.runtime_tasks} |"
    )


def report(result: Result) -> str:
    kinds: Counter[str] = Counter()
    for w in result.windows:
        kinds.update(w.kinds)
    mix = ", ".join(f"{k} {kinds[k]:,}" for k in KINDS)
    lines = [
        f"Run: `python benchmarks/soak.py --invocations {result.invocations}` "
        f"(concurrency {result.concurrency}) in {result.seconds} s; mix: {mix}.",
        "",
        HEADER,
        *(row(w) for w in result.windows),
        "",
        *(f"- {'PASS' if passed else 'FAIL'}: {text}" for text, passed in result.verdicts),
    ]
    if result.failures:
        lines += ["", "First unexpected failures:", *(f"- `{f}`" for f in result.failures[:10])]
    return "\n".join(lines)


def run(
    invocations: int = 10_000,
    window: int = 1000,
    concurrency: int = 4,
    seed: int = 1,
    rss_slack: float = 8.0,
) -> Result:
    """Start ``serve``, soak it, stop it; the verdicts are in the result."""
    with tempfile.TemporaryDirectory() as root:
        (pathlib.Path(root) / "soak_app.py").write_text(APP)
        serve = Serve(root, concurrency)
        try:
            print(HEADER, flush=True)
            result = asyncio.run(soak(serve, invocations, window, concurrency, seed))
        finally:
            code = serve.stop()
        judge(result, rss_slack)
        result.verdicts.append((f"serve exited {code} on SIGTERM", code == 0))
        restarts = sum("runtime started" in line for line in serve.log)
        result.verdicts.append((f"runtime started {restarts} time(s)", restarts == 1))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=1000, help="invocations per sample")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rss-slack", type=float, default=8.0, help="MiB of RSS growth allowed")
    parser.add_argument("--no-doc", action="store_true", help="do not update the docs")
    parser.add_argument("--json", type=pathlib.Path, help="also write the numbers here")
    args = parser.parse_args()
    result = run(args.invocations, args.window, args.concurrency, args.seed, args.rss_slack)
    text = report(result)
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    if not args.no_doc:
        sys.path.insert(0, str(REPO))
        from benchmarks.reliability_doc import update_section

        update_section("soak-results", text)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
