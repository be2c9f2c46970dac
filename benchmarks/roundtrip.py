"""Invocation round trip: a buffered echo of a 1 KiB JSON event through the emulator.

Run as ``python -m benchmarks roundtrip [--quick]``.

Method, and why:

* Each runtime under test gets its own emulator (``duplexlambda serve --no-runtime``, its own
  process) and is started by us against it, as Lambda would start it (same environment, the
  task root ``benchmarks/apps``). All emulators run side by side; a runtime with no work
  blocks in ``/next`` and costs nothing, so the rounds can interleave the competitors.
* The client is this process: ``POST /2015-03-31/functions/function/invocations`` (the
  Invoke API) on keep-alive blocking sockets, one per client, with TCP_NODELAY. Latency is
  from before ``sendall`` of the request to the last byte of the response body; throughput
  is invocations over the wall time of a batch. With 4 clients, 4 threads (barrier start)
  each keep one request in flight.
* Competitors: duplexlambda with the usual ``def handler(event, context)`` (called as the
  runtime chooses), duplexlambda with ``@buffered async def`` (no thread), awslambdaric 4.x
  (``python -m awslambdaric``), and the floor: ``apps/bench_floor.py``, a blocking-socket
  loop that finds the request id by byte search and posts the event's bytes straight back.
  With 4 clients every runtime gets ``AWS_LAMBDA_MAX_CONCURRENCY=4``, which is what a user
  sets: awslambdaric then forks 4 worker processes, the floor forks 4 too, duplexlambda runs
  4 polling loops in its one process.
* Correctness first: each competitor's first answer must decode to the event that was
  sent, with status 200 and no function error; every timed answer must then be byte-for-byte
  that first answer.
* Rounds rotate the order of the competitors; percentiles are over every timed invocation
  of a competitor (nearest rank), invocations/s over the sum of its batches.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import msgspec

from .common import (
    CHECK_TIMEOUT,
    INVOKE_PATH,
    IO_TIMEOUT,
    BenchmarkError,
    Child,
    EmulatorProc,
    HttpClient,
    Procs,
    Section,
    Table,
    Target,
    check,
    cpu_delta,
    fmt,
    group_cpu,
    pct,
    process_cpu,
    progress,
    ratio,
    request_bytes,
    start_emulator,
    start_runtime,
)

EVENT_SIZE = 1024


@dataclass(frozen=True)
class Plan:
    name: str
    warmup: int  # untimed invocations per competitor and phase (all clients together)
    rounds: int
    batch: int  # timed invocations per competitor and round (all clients together)
    clients: tuple[int, ...] = (1, 4)


FULL = Plan("full", warmup=300, rounds=5, batch=2000)
QUICK = Plan("quick", warmup=30, rounds=2, batch=120)


@dataclass(frozen=True)
class Competitor:
    key: str
    label: str
    kind: str  # a key of common.RUNTIMES
    handler: str


COMPETITORS = (
    Competitor("duplexlambda", "duplexlambda (def handler)", "duplexlambda", "bench_plain.echo"),
    Competitor(
        "duplexlambda-async", "duplexlambda (async @buffered)", "duplexlambda",
        "bench_duplex.echo_async",
    ),
    Competitor("awslambdaric", "awslambdaric", "awslambdaric", "bench_plain.echo"),
    Competitor("floor", "floor (raw sockets)", "floor", "echo"),
)  # fmt: skip
PRIMARY = ("duplexlambda", "duplexlambda-async")


def make_event(size: int = EVENT_SIZE) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    head, tail = b'{"id":"bench","data":"', b'"}'
    event = head + b"x" * (size - len(head) - len(tail)) + tail
    check(len(event) == size, "event size")
    return event


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds
    wall: float = 0.0
    count: int = 0
    cpu: float = 0.0  # runtime CPU seconds during the timed batches
    emulator_cpu: float = 0.0  # the emulator's, during the same batches


class Setup:
    """One competitor at one concurrency: its emulator, runtime and client connections."""

    def __init__(
        self, comp: Competitor, emulator: EmulatorProc, runtime: Child, clients: int
    ) -> None:
        self.comp = comp
        self.emulator = emulator
        self.runtime = runtime
        self.conns = [HttpClient(emulator.host, emulator.port) for _ in range(clients)]
        self.request = request_bytes(
            "POST", INVOKE_PATH, make_event(), [("Content-Type", "application/json")]
        )
        self.expected = b""

    def close(self) -> None:
        for conn in self.conns:
            conn.close()

    def invoke(self, conn: HttpClient) -> tuple[int, bytes, bytes | None]:
        head, body = conn.exchange(self.request)
        return head.status, body, head.headers.get("x-amz-function-error")

    def verify(self) -> None:
        """The first answer must be the event; later ones must repeat it byte for byte."""
        conn = self.conns[0]
        conn.sock.settimeout(CHECK_TIMEOUT)
        try:
            status, body, error = self.invoke(conn)
        except TimeoutError:
            state = "running" if self.runtime.alive() else "exited"
            raise BenchmarkError(
                f"{self.comp.label}: no answer within {CHECK_TIMEOUT:g} s (runtime {state})"
            ) from None
        finally:
            conn.sock.settimeout(IO_TIMEOUT)
        check(status == 200 and error is None, f"{self.comp.label}: {status} {error!r} {body!r}")
        sent = msgspec.json.decode(make_event())
        check(msgspec.json.decode(body) == sent, f"{self.comp.label}: echo differs: {body!r}")
        self.expected = body

    def batch(self, total: int, stats: Stats | None) -> None:
        """``total`` invocations spread over the connections, all in flight together."""
        per = max(1, total // len(self.conns))
        results: list[list[float]] = [[] for _ in self.conns]
        failures: list[BaseException] = []

        def client(index: int, barrier: threading.Barrier | None) -> None:
            conn, times = self.conns[index], results[index]
            request, expected, sock = self.request, self.expected, conn.sock
            try:
                if barrier is not None:
                    barrier.wait()
                for _ in range(per):
                    start = time.perf_counter()
                    head, body = conn.exchange(request)
                    times.append(time.perf_counter() - start)
                    if head.status != 200 or body != expected:
                        raise BenchmarkError(f"{self.comp.label}: {head.status} {body[:200]!r}")
            except BaseException as exc:
                failures.append(exc)
                sock.close()

        cpu_before = group_cpu(self.runtime.pid) if stats else None
        emulator_before = process_cpu(self.emulator.pid) if stats else None
        if len(self.conns) == 1:
            started = time.perf_counter()
            client(0, None)
        else:
            barrier = threading.Barrier(len(self.conns) + 1)
            threads = [
                threading.Thread(target=client, args=(i, barrier), daemon=True)
                for i in range(len(self.conns))
            ]
            for thread in threads:
                thread.start()
            barrier.wait()
            started = time.perf_counter()
            for thread in threads:
                thread.join(600)
        wall = time.perf_counter() - started
        if failures:
            raise failures[0]
        if stats is not None:
            assert cpu_before is not None
            assert emulator_before is not None
            stats.cpu += cpu_delta(cpu_before, group_cpu(self.runtime.pid))
            stats.emulator_cpu += cpu_delta(emulator_before, process_cpu(self.emulator.pid))
            for times in results:
                stats.latencies += times
            stats.wall += wall
            stats.count += per * len(self.conns)


def run_phase(
    procs: Procs,
    emulators: dict[str, EmulatorProc],
    clients: int,
    plan: Plan,
) -> dict[str, Stats]:
    setups: list[Setup] = []
    runtimes: list[Child] = []
    try:
        for comp in COMPETITORS:
            runtimes.append(
                start_runtime(
                    procs, f"{comp.key}-c{clients}", comp.kind, comp.handler,
                    emulators[comp.key], clients,
                )
            )  # fmt: skip
        for comp, runtime in zip(COMPETITORS, runtimes, strict=True):
            setup = Setup(comp, emulators[comp.key], runtime, clients)
            setups.append(setup)
            try:
                setup.verify()
            except (OSError, BenchmarkError) as exc:
                raise BenchmarkError(
                    f"{comp.label} failed its check: {exc}\n{runtime.output()}"
                ) from exc
            setup.batch(plan.warmup, None)
        stats = {comp.key: Stats() for comp in COMPETITORS}
        for rnd in range(plan.rounds):
            shift = rnd % len(setups)
            for setup in setups[shift:] + setups[:shift]:
                setup.batch(plan.batch, stats[setup.comp.key])
        return stats
    finally:
        for setup in setups:
            setup.close()
        for runtime in runtimes:
            procs.stop(runtime)


def summarize(stats: dict[str, dict[str, Stats]], plan: Plan) -> Section:
    section = Section(
        name="roundtrip",
        title="Invocation round trip (buffered echo, 1 KiB event, Invoke API)",
        method=(
            "Client: this process, keep-alive blocking sockets to the emulator's Invoke API "
            "(POST /2015-03-31/functions/function/invocations); latency = request sent to "
            "last response byte. Each runtime has its own `duplexlambda serve --no-runtime` "
            f"emulator. {plan.rounds} rounds of {plan.batch} invocations per competitor, "
            "order rotated each round, after a checked warm-up. 4 clients: "
            "AWS_LAMBDA_MAX_CONCURRENCY=4 for every runtime (awslambdaric and the floor fork "
            "4 workers; duplexlambda runs 4 loops in one process)."
        ),
    )
    data: dict[str, dict[str, dict[str, float]]] = {}
    for phase, by_comp in stats.items():
        floor, ric = by_comp["floor"], by_comp["awslambdaric"]
        floor_p50 = pct(floor.latencies, 0.5)
        ric_ips = ratio(ric.count, ric.wall)
        rows = []
        data[phase] = {}
        for comp in COMPETITORS:
            s = by_comp[comp.key]
            p50, p99 = pct(s.latencies, 0.5), pct(s.latencies, 0.99)
            ips = ratio(s.count, s.wall)
            cpu_us = ratio(s.cpu, s.count) * 1e6
            emulator_us = ratio(s.emulator_cpu, s.count) * 1e6
            data[phase][comp.key] = {
                "label": comp.label,  # type: ignore[dict-item]
                "invocations": s.count,
                "p50_ms": p50 * 1e3,
                "p90_ms": pct(s.latencies, 0.9) * 1e3,
                "p99_ms": p99 * 1e3,
                "max_ms": max(s.latencies) * 1e3,
                "mean_ms": sum(s.latencies) / len(s.latencies) * 1e3,
                "per_s": ips,
                "runtime_cpu_us": cpu_us,
                "emulator_cpu_us": emulator_us,
                "p50_vs_floor": ratio(p50, floor_p50),
                "per_s_vs_awslambdaric": ratio(ips, ric_ips),
            }
            rows.append(
                [
                    comp.label,
                    fmt(p50 * 1e3, 3),
                    fmt(p99 * 1e3, 3),
                    fmt(ips),
                    fmt(cpu_us, 0),
                    fmt(emulator_us, 0),
                    f"{ratio(p50, floor_p50):.2f}x",
                    f"{ratio(ips, ric_ips):.2f}x",
                ]
            )
        section.tables.append(
            Table(
                f"{phase} ({by_comp['floor'].count} timed invocations each)",
                [
                    "runtime", "p50 ms", "p99 ms", "invocations/s", "runtime CPU µs/inv",
                    "emulator CPU µs/inv", "p50 vs floor", "inv/s vs awslambdaric",
                ],
                rows,
            )
        )  # fmt: skip
        for key in PRIMARY:
            d = data[phase][key]
            label = d["label"]
            section.targets.append(
                Target(
                    f"{phase}: {label} p50 <= 1.10x the floor",
                    f"{d['p50_vs_floor']:.2f}x",
                    None if math.isnan(d["p50_vs_floor"]) else d["p50_vs_floor"] <= 1.10,
                )
            )
            section.targets.append(
                Target(
                    f"{phase}: {label} >= 2x awslambdaric invocations/s",
                    f"{d['per_s_vs_awslambdaric']:.2f}x",
                    None
                    if math.isnan(d["per_s_vs_awslambdaric"])
                    else d["per_s_vs_awslambdaric"] >= 2.0,
                )
            )
            emulator_share = ratio(d["emulator_cpu_us"], d["runtime_cpu_us"])
            d["emulator_vs_runtime_cpu"] = emulator_share
            section.targets.append(
                Target(
                    f"{phase}: emulator CPU per relayed invocation <= 2x the runtime's ({label})",
                    f"{emulator_share:.2f}x ({d['emulator_cpu_us']:.0f} vs "
                    f"{d['runtime_cpu_us']:.0f} µs)",
                    None if math.isnan(emulator_share) else emulator_share <= 2.0,
                    "emulator-cpu",
                )
            )
    section.data = {"plan": plan.name, "phases": data}
    section.notes += [
        "Everything runs on one machine: client, emulator and runtime share its cores, so "
        "the emulator's own cost is part of every number (floor included).",
        "Runtime CPU µs/inv: CPU time of the runtime's process group over the timed "
        "batches, per invocation (awslambdaric's and the floor's forked workers included; "
        "/proc/<pid>/task/*/schedstat, in ns); emulator CPU µs/inv: the same for the "
        "emulator serving that runtime.",
        "How duplexlambda calls the def handler (in a worker thread, or inline when nothing "
        "else can run) is the runtime's choice; the rows measure whichever it makes.",
    ]
    return section


def run(quick: bool = False) -> Section:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    stats: dict[str, dict[str, Stats]] = {}
    with Procs() as procs:
        emulators = {comp.key: start_emulator(procs, comp.key) for comp in COMPETITORS}
        for clients in plan.clients:
            phase = "sequential (1 client)" if clients == 1 else f"{clients} concurrent clients"
            progress(f"roundtrip: {phase}")
            stats[phase] = run_phase(procs, emulators, clients, plan)
    section = summarize(stats, plan)
    section.seconds = time.monotonic() - started
    return section
