"""Streaming throughput, client to client through the emulator's function URL.

Run as ``python -m benchmarks streaming [--quick]``.

Cases (1 GiB each in the full run):

* ``download 64 KiB``: ``GET /bytes``, the handler answers in 64 KiB writes;
* ``download 1 KiB``: the same in 1 KiB writes (per-write overhead dominates);
* ``upload echo``: ``POST /upload`` with a Content-Length body; the handler echoes every
  piece while the upload is still arriving, so 1 GiB goes up while 1 GiB comes down.

Method, and why:

* Path: client (this process, blocking sockets) -> emulator (``serve --no-runtime``, duplex
  mode) -> runtime -> emulator -> client. Each runtime has its own emulator; cases and
  rounds interleave the two runtimes, order rotated per round.
* duplexlambda runs ``apps/bench_duplex.http`` (``async def http(req, res)``). The floor,
  ``apps/bench_floor.py http``, is the same function on blocking sockets: pre-framed chunks,
  one ``sendall`` per write, the upload decoded by the C chunk decoder and re-framed with
  ``sendmsg`` (no copy). Over the same sockets and the same emulator, with the same chunk
  sizes on every hop, it is the most a Python runtime could get through: the floor.
* The client decodes the chunked response with the C decoder and counts bytes (the count
  must be exact). Before any timing, each case runs once small with every byte checked
  (CRC-32 against the expected stream).
* Reported: MB/s (10^6 bytes of payload one way per second, wall clock from the request to
  the last byte), and CPU seconds per GiB of the runtime process and of the emulator
  (``/proc/<pid>/stat`` utime + stime deltas), median over rounds.
"""

from __future__ import annotations

import random
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field

from duplexlambda.protocol.chunked import ChunkDecoder

from .common import (
    CHECK_TIMEOUT,
    IO_TIMEOUT,
    MB,
    BenchmarkError,
    Child,
    EmulatorProc,
    GiB,
    HttpClient,
    KiB,
    MiB,
    Procs,
    Section,
    Table,
    Target,
    check,
    cpu_seconds,
    fmt,
    median,
    progress,
    ratio,
    request_bytes,
    start_emulator,
    start_runtime,
)

UPLOAD_BLOCK = 256 * KiB


@dataclass(frozen=True)
class Streamer:
    key: str
    label: str
    kind: str
    handler: str


STREAMERS = (
    Streamer("duplexlambda", "duplexlambda", "duplexlambda", "bench_duplex.http"),
    Streamer("floor", "floor (raw sockets)", "floor", "http"),
)


@dataclass
class Stack:
    """One runtime and its emulator."""

    streamer: Streamer
    emulator: EmulatorProc
    runtime: Child


def start_stacks(procs: Procs, prefix: str) -> list[Stack]:
    stacks = []
    for s in STREAMERS:
        emulator = start_emulator(procs, f"{prefix}-{s.key}")
        runtime = start_runtime(procs, f"{prefix}-{s.key}", s.kind, s.handler, emulator)
        stacks.append(Stack(s, emulator, runtime))
    return stacks


def block(size: int) -> bytes:
    """The same bytes as ``bench_duplex.block`` / the floor's frames."""
    return random.Random(size).randbytes(size)


def expected_crc(total: int, size: int) -> int:
    data, crc = block(size), 0
    for _ in range(total // size):
        crc = zlib.crc32(data, crc)
    return crc


@dataclass
class Transfer:
    seconds: float
    received: int
    crc: int | None
    runtime_cpu: float
    emulator_cpu: float
    first_byte: float = 0.0  # seconds from the request to the response head


def receive(sock: socket.socket, rest: bytes, crc: bool) -> tuple[int, int | None]:
    """Decode a chunked body; its byte count (and CRC-32 when asked)."""
    recv = sock.recv
    decoder = ChunkDecoder()
    got, value = 0, 0
    data = rest
    while True:
        if data:
            for piece in decoder.feed(data):
                got += len(piece)
                if crc:
                    value = zlib.crc32(piece, value)
        if decoder.done:
            return got, (value if crc else None)
        data = recv(1 << 20)
        if not data:
            decoder.eof()  # raises: the body was cut short


def transfer(
    stack: Stack, case: str, total: int, *, verify: bool = False, timeout: float = IO_TIMEOUT
) -> Transfer:
    """One request through ``stack``; the client side of every case."""
    emu = stack.emulator
    sender: threading.Thread | None = None
    failures: list[BaseException] = []
    cpu0, emu0 = cpu_seconds(stack.runtime.pid), cpu_seconds(emu.pid)
    client = HttpClient(emu.host, emu.port, timeout)
    sock = client.sock
    try:
        started = time.perf_counter()
        if case == "upload":
            data = block(UPLOAD_BLOCK)
            head = request_bytes(
                "POST",
                "/upload",
                headers=[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", str(total)),
                ],
            )

            def upload() -> None:
                try:
                    sock.sendall(head)
                    for _ in range(total // UPLOAD_BLOCK):
                        sock.sendall(data)
                except BaseException as exc:
                    failures.append(exc)

            sender = threading.Thread(target=upload, daemon=True)
            sender.start()
        else:
            size = {"download 64 KiB": 64 * KiB, "download 1 KiB": KiB}[case]
            sock.sendall(request_bytes("GET", f"/bytes?total={total}&write={size}"))
        response = client.read_head()
        first_byte = time.perf_counter() - started
        check(response.status == 200, f"{stack.streamer.label} {case}: status {response.status}")
        check(
            response.headers.get("transfer-encoding") == b"chunked",
            f"{stack.streamer.label} {case}: not streamed",
        )
        got, crc = receive(sock, client._rest, verify)
        seconds = time.perf_counter() - started
        if sender is not None:
            sender.join(60)
    finally:
        client.close()
    if failures:
        raise BenchmarkError(f"{stack.streamer.label} {case}: upload failed: {failures[0]}")
    check(got == total, f"{stack.streamer.label} {case}: {got} bytes back, {total} expected")
    return Transfer(
        seconds,
        got,
        crc,
        cpu_seconds(stack.runtime.pid) - cpu0,
        cpu_seconds(emu.pid) - emu0,
        first_byte,
    )


@dataclass(frozen=True)
class Plan:
    name: str
    totals: dict[str, int]
    check_total: int
    rounds: int


CASES = ("download 64 KiB", "download 1 KiB", "upload")
FULL = Plan(
    "full", {"download 64 KiB": GiB, "download 1 KiB": GiB, "upload": GiB}, 8 * MiB, rounds=3
)
QUICK = Plan(
    "quick",
    {"download 64 KiB": 32 * MiB, "download 1 KiB": 2 * MiB, "upload": 32 * MiB},
    MiB,
    rounds=2,
)


def verify(stack: Stack, case: str, total: int) -> None:
    try:
        result = transfer(stack, case, total, verify=True, timeout=CHECK_TIMEOUT)
    except TimeoutError:
        state = "running" if stack.runtime.alive() else "exited"
        raise BenchmarkError(f"no answer within {CHECK_TIMEOUT:g} s (runtime {state})") from None
    size = UPLOAD_BLOCK if case == "upload" else (64 * KiB if "64" in case else KiB)
    check(
        result.crc == expected_crc(total, size),
        f"{stack.streamer.label} {case}: the bytes that came back are not the bytes expected",
    )


@dataclass
class CaseStats:
    runs: list[Transfer] = field(default_factory=list)

    def mb_s(self) -> float:
        return median(t.received / t.seconds / MB for t in self.runs)

    def cpu_per_gib(self) -> float:
        return median(t.runtime_cpu / (t.received / GiB) for t in self.runs)

    def emulator_per_gib(self) -> float:
        return median(t.emulator_cpu / (t.received / GiB) for t in self.runs)


def run(quick: bool = False) -> Section:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    stats: dict[str, dict[str, CaseStats]] = {
        c: {s.key: CaseStats() for s in STREAMERS} for c in CASES
    }
    with Procs() as procs:
        stacks = start_stacks(procs, "stream")
        for stack in stacks:
            for case in CASES:
                try:
                    verify(stack, case, min(plan.check_total, plan.totals[case]))
                except (OSError, BenchmarkError) as exc:
                    raise BenchmarkError(
                        f"{stack.streamer.label} failed its {case} check: {exc}\n"
                        f"{stack.runtime.output()}"
                    ) from exc
        for rnd in range(plan.rounds):
            for case in CASES:
                progress(f"streaming: round {rnd + 1}/{plan.rounds}, {case}")
                order = stacks[rnd % 2 :] + stacks[: rnd % 2]
                for stack in order:
                    result = transfer(stack, case, plan.totals[case])
                    stats[case][stack.streamer.key].runs.append(result)
    section = Section(
        name="streaming",
        title="Streaming throughput through the emulator (function URL, duplex mode)",
        method=(
            "Client (this process, blocking sockets) -> emulator -> runtime -> emulator -> "
            "client, each runtime with its own `duplexlambda serve --no-runtime`. "
            f"{plan.rounds} rounds, competitors interleaved, medians reported; byte counts "
            "exact, content CRC-checked in an untimed run first. MB/s = 10^6 payload bytes "
            "per second one way; CPU s/GiB from /proc/<pid>/stat."
        ),
    )
    rows = []
    data: dict[str, dict[str, dict[str, float]]] = {}
    for case in CASES:
        floor = stats[case]["floor"]
        data[case] = {}
        for s in STREAMERS:
            cs = stats[case][s.key]
            mbs = cs.mb_s()
            data[case][s.key] = {
                "label": s.label,  # type: ignore[dict-item]
                "bytes": plan.totals[case],
                "mb_s": mbs,
                "runtime_cpu_s_per_gib": cs.cpu_per_gib(),
                "emulator_cpu_s_per_gib": cs.emulator_per_gib(),
                "vs_floor": ratio(mbs, floor.mb_s()),
                "mb_s_runs": [t.received / t.seconds / MB for t in cs.runs],  # type: ignore[dict-item]
            }
            rows.append(
                [
                    "upload echo (up + down)" if case == "upload" else case,
                    s.label,
                    size_label(plan.totals[case]),
                    fmt(mbs, 1),
                    fmt(cs.cpu_per_gib()),
                    fmt(cs.emulator_per_gib()),
                    f"{ratio(mbs, floor.mb_s()):.2f}x",
                ]
            )
        d = data[case]["duplexlambda"]
        section.targets.append(
            Target(
                f"{case}: duplexlambda >= 0.95x the floor's MB/s",
                f"{d['vs_floor']:.2f}x",
                d["vs_floor"] >= 0.95,
                "no-regression",
            )
        )
        if case == "download 64 KiB":
            section.targets.append(
                Target(
                    f"{case}: streaming through the emulator >= 2 GB/s "
                    f"(2,000 MB/s = {2e9 / GiB:.2f} GiB/s; duplexlambda runtime)",
                    f"{d['mb_s']:,.0f} MB/s ({d['mb_s'] * MB / GiB:.2f} GiB/s)",
                    d["mb_s"] >= 2000,
                    "emulator-stream",
                )
            )
    section.tables.append(
        Table(
            "Throughput (median of rounds)",
            ["case", "runtime", "size", "MB/s", "runtime CPU s/GiB", "emulator CPU s/GiB",
             "vs floor"],
            rows,
        )
    )  # fmt: skip
    section.data = {"plan": plan.name, "cases": data}
    section.notes += [
        "The emulator relays every runtime chunk as one client chunk and is Python too: at "
        "1 KiB writes it, not the runtime, sets the pace, for the floor as for duplexlambda; "
        "its CPU per GiB is shown so that this can be seen.",
        "Client, emulator and runtime share the machine's cores; on a 2-core machine the "
        "three processes compete, so MB/s depends on how busy the machine is.",
        "awslambdaric is absent: it cannot stream a response (buffered, 6 MB at most).",
    ]
    section.seconds = time.monotonic() - started
    return section


def size_label(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= MiB:
        return f"{n / MiB:g} MiB"
    return f"{n / KiB:g} KiB"
