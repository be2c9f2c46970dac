"""What the benchmarks share: child processes, the emulator, blocking HTTP clients, /proc
readings, statistics, and the result types that the report renders.

Every child is started by ``Procs`` and stopped by its pid (or by the process group it was
given, for runtimes that fork workers) when the ``with`` block ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from duplexlambda.protocol.http1 import HeadReader, ResponseHead, body_reader

REPO = Path(__file__).resolve().parents[1]
#: The task root of the benchmark functions (handlers imported by bare module name).
APPS = REPO / "benchmarks" / "apps"
PY = sys.executable

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MB = 10**6  # throughput is in MB/s, 10^6 bytes a MB

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
#: How long any single wait on a child or a socket may take before the run is abandoned.
IO_TIMEOUT = 120.0
#: How long a competitor's first, checked answer may take (a runtime that died at start-up
#: leaves its invocation queued in the emulator: this is how long that takes to notice).
CHECK_TIMEOUT = 30.0


class BenchmarkError(Exception):
    """A competitor produced wrong output or misbehaved: its numbers would mean nothing."""


def check(ok: bool, what: str) -> None:
    """Like ``assert``, but not stripped by ``python -O``: wrong output is never timed."""
    if not ok:
        raise BenchmarkError(what)


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- results


@dataclass
class Target:
    """One of the issue's targets and whether this run met it (None: not evaluated)."""

    text: str
    measured: str
    met: bool | None
    #: the goal of issue #14 this line measures (see ``GOALS``), or "" for an older target
    goal: str = ""


#: The goals of issue #14, in its order; the report gathers their target lines in a table.
GOALS = {
    "cpu-def": "Runtime CPU per buffered invocation, def handler, concurrency 1: "
    "<= 0.5x awslambdaric",
    "cpu-async": "Runtime CPU per buffered invocation, async def handler, concurrency 1: "
    "<= 0.5x awslambdaric",
    "rate-c4": "Concurrency 4: at least awslambdaric's invocations/s",
    "duplex-cpu": "Duplex 1 KiB round trip: runtime CPU <= 1.3x the floor's",
    "duplex-p50": "Duplex 1 KiB round trip: p50 <= 1.10x the floor's (through a Runtime API "
    "that is not the bottleneck)",
    "cold-def": "Cold start to the first response posted, def: <= 1.0x awslambdaric "
    "(with and without .pyc)",
    "cold-async": "Cold start to the first response posted, async: <= 1.0x awslambdaric "
    "running the same coroutine under asyncio.run (with and without .pyc)",
    "emulator-cpu": "Emulator: CPU per relayed invocation <= 2x the runtime's",
    "emulator-stream": "Emulator: 64 KiB streaming through it >= 2 GB/s",
    "no-regression": "No regression in streaming (each write its own chunk, memory flat, "
    "TTFB): the earlier streaming targets, which stand for it",
}


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One benchmark's results: printed tables, targets, notes, and raw numbers."""

    name: str
    title: str
    method: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


# --------------------------------------------------------------------------- statistics


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method: a value that was measured."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.median(items) if items else math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def fmt(value: float, digits: int = 2) -> str:
    """A number for a table: fixed digits below 100, thousands separators above."""
    if value is None or math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not evaluated"}[met]


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "n/a"


def machine_info() -> dict[str, str]:
    """Where the numbers come from: enough to tell whether two runs can be compared."""
    from duplexlambda.protocol import chunked

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    loop = _version("uvloop")
    return {
        "cpu": _cpu_model(),
        "cores": f"{usable} usable of {os.cpu_count()}",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "loop": f"uvloop {loop} (runtime and emulator)" if loop[0].isdigit() else "asyncio",
        "duplexlambda": f"{_version('duplexlambda')} (codec {chunked.IMPL})",
        "awslambdaric": _version("awslambdaric"),
        "load average at start": load_average(),
    }


# --------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (``/proc/<pid>/stat`` utime + stime)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (a runtime and the workers it forked)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[2]) == pgid:
            pids.append(int(entry))
    return pids


def task_cpu_seconds(pid: int) -> float:
    """CPU seconds of a live process's live threads, to the nanosecond
    (``/proc/<pid>/task/<tid>/schedstat``: ``stat`` counts in 10 ms ticks). A thread that
    ended is not counted here; ``cpu_seconds`` still counts it, in ticks."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return total / 1e9


@dataclass
class CpuReading:
    """CPU use of a process group at one moment (see ``cpu_delta``)."""

    precise: float  # seconds: schedstat of live threads, ns
    ticks: float  # seconds: stat utime + stime, 10 ms ticks, ended threads included
    user: float = 0.0  # seconds: stat utime alone (ticks)
    system: float = 0.0  # seconds: stat stime alone (ticks)
    switches: int = 0  # context switches of live threads, voluntary and not


def _process_reading(pid: int) -> CpuReading:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    hz = os.sysconf("SC_CLK_TCK")
    user, system = int(fields[11]) / hz, int(fields[12]) / hz
    switches = 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
                switches += sum(
                    int(line.split(":")[1])
                    for line in status.splitlines()
                    if line.endswith("ctxt_switches", 0, line.find(":"))
                )
    return CpuReading(task_cpu_seconds(pid), user + system, user, system, switches)


def group_cpu(pgid: int) -> CpuReading:
    total = CpuReading(0.0, 0.0)
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            one = _process_reading(pid)
            total.precise += one.precise
            total.ticks += one.ticks
            total.user += one.user
            total.system += one.system
            total.switches += one.switches
    return total


def process_cpu(pid: int) -> CpuReading:
    """``group_cpu`` for one process (that need not lead a group)."""
    return _process_reading(pid)


def cpu_delta(before: CpuReading, after: CpuReading) -> float:
    """CPU seconds between two readings: the precise one, unless the tick count says that
    threads which ended in between used more than a few ticks (then the tick count)."""
    precise = after.precise - before.precise
    ticks = after.ticks - before.ticks
    return ticks if ticks > precise * 1.1 + 0.03 else precise


def memory(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a live process, in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    out = {}
    for key in ("VmRSS", "VmHWM"):
        match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
        check(match is not None, f"no {key} in /proc/{pid}/status")
        assert match is not None
        out[key] = int(match[1]) * KiB
    return out


def reset_peak(pid: int) -> bool:
    """Reset a process's ``VmHWM`` to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- processes


class Child:
    """A child process, its output in a log file; stopped by pid (or by its own group)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        group: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.group = group
        self._out: IO[bytes] = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            # A runtime that forks workers (awslambdaric, the floor) gets its own process
            # group, so that stopping it stops them all, by that group's id.
            start_new_session=group,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, limit: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_bytes()[-limit:].decode("utf-8", "replace")
        return ""

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.group:
                os.killpg(self.proc.pid, sig)  # the group this child leads
            elif self.proc.poll() is None:
                self.proc.send_signal(sig)

    def stop(self, grace: float = 5.0) -> None:
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(grace)
        if self.group:  # forked workers outlive their parent otherwise
            self._signal(signal.SIGKILL)
        self._out.close()


class Procs(contextlib.AbstractContextManager["Procs"]):
    """Starts children and stops every one of them (newest first) on exit."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="duplexlambda-bench-")
        self.dir = Path(self._tmp.name)
        self.children: list[Child] = []
        self._count = 0

    def spawn(self, name: str, argv: Sequence[str], **kwargs: Any) -> Child:
        self._count += 1
        child = Child(name, argv, self.dir / f"{self._count:03d}-{name}.log", **kwargs)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        with contextlib.suppress(ValueError):
            self.children.remove(child)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                child.stop()
        self.children.clear()
        self._tmp.cleanup()


# --------------------------------------------------------------------------- the emulator


@dataclass
class EmulatorProc:
    """``duplexlambda serve --no-runtime`` on free 127.0.0.1 ports."""

    child: Child
    host: str
    port: int
    runtime_api: str  # host:port, the runtimes' AWS_LAMBDA_RUNTIME_API

    @property
    def pid(self) -> int:
        return self.child.pid


def start_emulator(procs: Procs, name: str, mode: str = "duplex") -> EmulatorProc:
    argv = [
        PY, "-m", "duplexlambda", "serve", "--no-runtime", "--host", "127.0.0.1",
        "--port", "0", "--runtime-api-port", "0", "--timeout", "900", "--mode", mode,
    ]  # fmt: skip
    child = procs.spawn(f"emulator-{name}", argv)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = child.output(100_000)
        url = re.search(r"Function URL: http://([\d.]+):(\d+)/", text)
        api = re.search(r"AWS_LAMBDA_RUNTIME_API=([\d.]+:\d+)", text)
        if url and api:
            return EmulatorProc(child, url[1], int(url[2]), api[1])
        if not child.alive():
            break
        time.sleep(0.02)
    raise BenchmarkError(f"the emulator did not start:\n{child.output()}")


def lambda_env(runtime_api: str, handler: str, concurrency: int = 1) -> dict[str, str]:
    """The environment Lambda gives a runtime, as ``duplexlambda serve`` would."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_LAMBDA_", "DUPLEXLAMBDA_", "_HANDLER", "_X_AMZN"))
    }
    env.update(
        AWS_LAMBDA_RUNTIME_API=runtime_api,
        _HANDLER=handler,
        LAMBDA_TASK_ROOT=str(APPS),
        AWS_LAMBDA_FUNCTION_NAME="function",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="3008",
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/function",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
        AWS_LAMBDA_INITIALIZATION_TYPE="on-demand",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
    )
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APPS), env.get("PYTHONPATH")) if p)
    if concurrency > 1:
        # Its presence alone switches awslambdaric to forked workers: set only when asked.
        env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(concurrency)
    return env


#: How each runtime under test is started, given its handler.
RUNTIMES = {
    "duplexlambda": lambda handler: [PY, "-m", "duplexlambda", "run", handler],
    "awslambdaric": lambda handler: [PY, "-m", "awslambdaric", handler],
    "floor": lambda handler: [PY, str(APPS / "bench_floor.py"), handler],
}


def start_runtime(
    procs: Procs,
    name: str,
    kind: str,
    handler: str,
    emulator: EmulatorProc,
    concurrency: int = 1,
) -> Child:
    argv = RUNTIMES[kind](handler)
    env = lambda_env(emulator.runtime_api, handler, concurrency)
    return procs.spawn(f"runtime-{name}", argv, env=env, cwd=APPS, group=True)


# --------------------------------------------------------------------------- clients


def connect(host: str, port: int, timeout: float = IO_TIMEOUT) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class HttpClient:
    """A keep-alive HTTP/1.1 client on one blocking socket: one request at a time."""

    def __init__(self, host: str, port: int, timeout: float = IO_TIMEOUT) -> None:
        self.host, self.port = host, port
        self.sock = connect(host, port, timeout)
        self._rest = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_head(self) -> ResponseHead:
        heads = HeadReader("response")
        data, self._rest = self._rest, b""
        head = heads.feed(data) if data else None
        while head is None:
            data = self.sock.recv(262144)
            if not data:
                raise BenchmarkError("connection closed before a response head")
            head = heads.feed(data)
        assert isinstance(head, ResponseHead)
        self._rest = heads.rest
        return head

    def exchange(self, request: bytes, method: bytes = b"POST") -> tuple[ResponseHead, bytes]:
        """Send a whole request; return the response head and body."""
        self.sock.sendall(request)
        head = self.read_head()
        body = body_reader(head, request_method=method)
        parts: list[bytes] = []
        data, self._rest = self._rest, b""
        while True:
            if data:
                parts += [bytes(piece) for piece in body.feed(data)]
            if body.done:
                self._rest = body.unused_data
                break
            data = self.sock.recv(262144)
            if not data:
                body.eof()
        return head, b"".join(parts)


def request_bytes(
    method: str, path: str, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers]
    explicit = any(k.lower() == "content-length" for k, _ in headers)
    if not explicit and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
