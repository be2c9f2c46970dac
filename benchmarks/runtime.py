"""The runtime alone: per-invocation CPU, latency and invocations/s through a lean fake API.

Run as ``python -m benchmarks runtime [--quick]``.

Method, and why:

* No emulator: each competitor gets its own ``benchmarks/fakeapi.py``, a fake Runtime API in
  a process of its own (standard library, one ``epoll`` loop, every answer precomputed). So
  the runtime's CPU is not shared with the server it talks to, the server is not what sets
  the pace, and what is measured is the runtime's own headroom. The fake API counts the
  invocations and times each one itself: from just before its ``/next`` answer is sent to
  the end of the response's body (round trip p50/p99). This process only drives it (``run
  N``) and reads the CPU time of the runtime's whole process group from ``/proc`` around
  each batch (``schedstat``, to the nanosecond; forked workers included).
* Buffered echo of a 1 KiB JSON event, competitors: duplexlambda with ``def handler(event,
  context)`` (``apps/bench_plain.echo``) and with ``async def handler(event, context)``
  (``apps/bench_async.echo``); awslambdaric 4.x with the same ``def`` handler and with a
  ``def`` handler that runs the same coroutine under ``asyncio.run``
  (``apps/bench_async.echo_asyncio_run``: what an awslambdaric user writes for async code);
  and the floor (``apps/bench_floor.py echo``, blocking sockets, no parsing).
* Concurrency 1 (one invocation at a time), then concurrency 4: every runtime gets
  ``AWS_LAMBDA_MAX_CONCURRENCY=4`` and the fake API answers up to 4 waiting polls at once
  (awslambdaric and the floor fork 4 workers, duplexlambda runs 4 loops in one process).
* Duplex 1 KiB round trip (concurrency 1): the fake API serves the invocation as duplexlambda's
  emulator serves a streamed function-URL request (request-stream content type, chunked:
  event JSON, 8 NULs, the 1 KiB upload) to ``apps/bench_duplex.echo_duplex``, an ``async def
  handler(req, res)`` that reads the upload, writes it back and ends; against the floor's
  duplex mode (``bench_floor.py duplex``: the same wire on blocking sockets, its response on
  a kept-alive second connection).
* Correctness first: each competitor's first response is captured whole and checked (the
  echoed event, or prelude + 8 NULs + the upload; no ``/error``); every timed batch must
  end with no error reported. Rounds rotate the order of the competitors, after a warm-up.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .common import (
    APPS,
    CHECK_TIMEOUT,
    IO_TIMEOUT,
    RUNTIMES,
    BenchmarkError,
    Child,
    Procs,
    Section,
    Table,
    Target,
    check,
    cpu_delta,
    fmt,
    group_cpu,
    lambda_env,
    pct,
    progress,
    ratio,
    task_cpu_seconds,
)
from .fakeapi import FakeApi, FakeApiError, make_event, make_upload


@dataclass(frozen=True)
class Competitor:
    key: str
    label: str
    kind: str  # a key of common.RUNTIMES
    handler: str
    mode: str = "buffered"  # the fake API's mode


DEF = Competitor("duplexlambda", "duplexlambda def", "duplexlambda", "bench_plain.echo")
ASYNC = Competitor(
    "duplexlambda-async", "duplexlambda async def", "duplexlambda", "bench_async.echo"
)
RIC = Competitor("awslambdaric", "awslambdaric def", "awslambdaric", "bench_plain.echo")
RIC_ASYNCIO = Competitor(
    "awslambdaric-asyncio", "awslambdaric + asyncio.run", "awslambdaric",
    "bench_async.echo_asyncio_run",
)  # fmt: skip
FLOOR = Competitor("floor", "floor (raw sockets)", "floor", "echo")
DUPLEX = Competitor(
    "duplexlambda-duplex", "duplexlambda async def (req, res)", "duplexlambda",
    "bench_duplex.echo_duplex", "duplex",
)  # fmt: skip
FLOOR_DUPLEX = Competitor("floor-duplex", "floor duplex (raw sockets)", "floor", "duplex", "duplex")
FLOOR_KEEPALIVE = Competitor(
    "floor-duplex-keepalive", "floor duplex, response connection kept alive", "floor",
    "duplex-keepalive", "duplex",
)  # fmt: skip

BUFFERED = (DEF, ASYNC, RIC, RIC_ASYNCIO, FLOOR)
DUPLEXED = (DUPLEX, FLOOR_DUPLEX, FLOOR_KEEPALIVE)
ALL = BUFFERED + DUPLEXED
C1, C4 = "concurrency 1", "concurrency 4"
PHASES = ((C1, 1, ALL), (C4, 4, BUFFERED))


@dataclass(frozen=True)
class Plan:
    name: str
    warmup: int  # untimed invocations per competitor and phase
    rounds: int
    batch: int  # timed invocations per competitor and round


FULL = Plan("full", warmup=500, rounds=5, batch=3000)
QUICK = Plan("quick", warmup=30, rounds=2, batch=150)


@dataclass
class Stats:
    latencies_us: list[int] = field(default_factory=list)
    wall: float = 0.0
    count: int = 0
    cpu: float = 0.0  # the runtime's process group, seconds
    user: float = 0.0  # the same, user time alone (10 ms ticks)
    system: float = 0.0  # the same, system time alone (10 ms ticks)
    switches: int = 0  # context switches of the runtime's threads
    api_cpu: float = 0.0  # the fake API's, seconds


def check_response(comp: Competitor, report: dict[str, Any]) -> None:
    """The first response, captured whole by the fake API, must be the right answer."""
    label = comp.label
    check(report["errors"] == 0, f"{label}: reported an error: {report['captured']}")
    check(bool(report["captured"]), f"{label}: nothing captured")
    got = report["captured"][0]
    head, body = got["head"].lower(), got["body"].encode("latin-1")
    check(got["target"].endswith("/response"), f"{label}: posted to {got['target']}")
    check(
        "\r\nlambda-runtime-function-error-type:" not in head,
        f"{label}: error trailer in {got['head']!r}",
    )
    if comp.mode == "buffered":
        decoded = msgspec.json.decode(body)
        check(decoded == msgspec.json.decode(make_event()), f"{label}: echo differs: {body!r}")
        return
    check(
        "\r\nlambda-runtime-function-response-mode: streaming" in head,
        f"{label}: not a streamed response: {got['head']!r}",
    )
    nul = body.find(b"\x00")
    check(nul > 0 and body[nul : nul + 8] == b"\x00" * 8, f"{label}: no prelude: {body[:200]!r}")
    prelude = msgspec.json.decode(body[:nul])
    check(prelude.get("statusCode", 200) == 200, f"{label}: prelude {prelude!r}")
    check(body[nul + 8 :] == make_upload(), f"{label}: the upload did not come back")


class Setup:
    """One competitor at one concurrency: its fake API and its runtime."""

    def __init__(self, comp: Competitor, api: FakeApi, runtime: Child) -> None:
        self.comp = comp
        self.api = api
        self.runtime = runtime

    def verify(self) -> None:
        try:
            report = self.api.run(1, capture=1, timeout=CHECK_TIMEOUT)
        except FakeApiError as exc:
            state = "running" if self.runtime.alive() else "exited"
            raise BenchmarkError(
                f"{self.comp.label}: {exc} (runtime {state})\n{self.runtime.output()}"
            ) from None
        check_response(self.comp, report)

    def batch(self, count: int, stats: Stats | None) -> None:
        before, api_before = group_cpu(self.runtime.pid), task_cpu_seconds(self.api.pid)
        try:
            report = self.api.run(count, timeout=IO_TIMEOUT)
        except FakeApiError as exc:
            state = "running" if self.runtime.alive() else "exited"
            raise BenchmarkError(
                f"{self.comp.label}: {exc} (runtime {state})\n{self.runtime.output()}"
            ) from None
        after, api_after = group_cpu(self.runtime.pid), task_cpu_seconds(self.api.pid)
        check(report["errors"] == 0, f"{self.comp.label}: {report['errors']} errors")
        check(report["done"] == count, f"{self.comp.label}: {report['done']} of {count}")
        if stats is not None:
            stats.cpu += cpu_delta(before, after)
            stats.user += after.user - before.user
            stats.system += after.system - before.system
            stats.switches += after.switches - before.switches
            stats.api_cpu += api_after - api_before
            stats.latencies_us += report["latencies_us"]
            stats.wall += report["wall"]
            stats.count += count


def run_phase(
    procs: Procs,
    apis: dict[str, FakeApi],
    concurrency: int,
    competitors: Sequence[Competitor],
    plan: Plan,
) -> dict[str, Stats]:
    setups: list[Setup] = []
    try:
        for comp in competitors:
            api = apis[comp.key]
            api.reset()
            argv = RUNTIMES[comp.kind](comp.handler)
            env = lambda_env(api.address, comp.handler, concurrency)
            runtime = procs.spawn(
                f"runtime-{comp.key}-c{concurrency}", argv, env=env, cwd=APPS, group=True
            )
            setups.append(Setup(comp, api, runtime))
        for setup in setups:
            setup.verify()
            setup.batch(plan.warmup, None)
        stats = {setup.comp.key: Stats() for setup in setups}
        for rnd in range(plan.rounds):
            shift = rnd % len(setups)
            for setup in setups[shift:] + setups[:shift]:
                setup.batch(plan.batch, stats[setup.comp.key])
        return stats
    finally:
        for setup in setups:
            procs.stop(setup.runtime)


def _x(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def _met(value: float, ok: bool) -> bool | None:
    return None if math.isnan(value) else ok


def summarize(stats: dict[str, dict[str, Stats]], plan: Plan) -> Section:
    section = Section(
        name="runtime",
        title="The runtime alone, through a lean fake Runtime API (1 KiB, buffered and duplex)",
        method=(
            "Each runtime talks to its own fake Runtime API (benchmarks/fakeapi.py, its own "
            "process, precomputed answers) which times each invocation from its /next "
            "answer to the end of the response; runtime CPU = schedstat of the runtime's "
            f"process group over the timed batches. {plan.rounds} rounds of {plan.batch} "
            "invocations per competitor, order rotated, after a checked warm-up. "
            "Concurrency 4: AWS_LAMBDA_MAX_CONCURRENCY=4 (awslambdaric and the floor fork "
            "4 workers; duplexlambda runs 4 loops in one process)."
        ),
    )
    data: dict[str, dict[str, dict[str, Any]]] = {}
    for phase, by_key in stats.items():
        data[phase] = {}
        for comp in ALL:
            s = by_key.get(comp.key)
            if s is None:
                continue
            data[phase][comp.key] = {
                "label": comp.label,
                "invocations": s.count,
                "runtime_cpu_us": ratio(s.cpu, s.count) * 1e6,
                "runtime_user_us": ratio(s.user, s.count) * 1e6,
                "runtime_system_us": ratio(s.system, s.count) * 1e6,
                "switches_per_inv": ratio(s.switches, s.count),
                "fakeapi_cpu_us": ratio(s.api_cpu, s.count) * 1e6,
                "p50_us": pct(s.latencies_us, 0.5),
                "p90_us": pct(s.latencies_us, 0.9),
                "p99_us": pct(s.latencies_us, 0.99),
                "max_us": max(s.latencies_us) if s.latencies_us else math.nan,
                "per_s": ratio(s.count, s.wall),
            }
    c1, c4 = data[C1], data.get(C4, {})

    def vs(d: dict[str, dict[str, Any]], key: str, other: str, name: str) -> float:
        if key not in d or other not in d:
            return math.nan
        return ratio(float(d[key][name]), float(d[other][name]))

    rows = []
    for comp in BUFFERED:
        d = c1[comp.key]
        rows.append(
            [
                comp.label,
                fmt(d["runtime_cpu_us"], 0),
                _x(vs(c1, comp.key, RIC.key, "runtime_cpu_us")),
                _x(vs(c1, comp.key, RIC_ASYNCIO.key, "runtime_cpu_us")),
                fmt(d["p50_us"], 0),
                fmt(d["p99_us"], 0),
                fmt(d["per_s"], 0),
                f"{fmt(d['runtime_user_us'], 0)} / {fmt(d['runtime_system_us'], 0)}",
                fmt(d["switches_per_inv"], 1),
                fmt(d["fakeapi_cpu_us"], 0),
            ]
        )
    section.tables.append(
        Table(
            f"Buffered echo, concurrency 1 ({c1[RIC.key]['invocations']} timed invocations each)",
            ["runtime", "runtime CPU µs/inv", "CPU vs awslambdaric def",
             "CPU vs awslambdaric + asyncio.run", "p50 µs", "p99 µs", "invocations/s",
             "user / system µs/inv", "context switches/inv", "fake API CPU µs/inv"],
            rows,
        )
    )  # fmt: skip
    if c4:
        rows = []
        for comp in BUFFERED:
            d = c4[comp.key]
            rows.append(
                [
                    comp.label,
                    fmt(d["per_s"], 0),
                    _x(vs(c4, comp.key, RIC.key, "per_s")),
                    _x(vs(c4, comp.key, RIC_ASYNCIO.key, "per_s")),
                    fmt(d["runtime_cpu_us"], 0),
                    fmt(d["p50_us"], 0),
                    fmt(d["p99_us"], 0),
                ]
            )
        section.tables.append(
            Table(
                f"Buffered echo, concurrency 4 ({c4[RIC.key]['invocations']} timed invocations "
                "each)",
                ["runtime", "invocations/s", "vs awslambdaric def",
                 "vs awslambdaric + asyncio.run", "runtime CPU µs/inv", "p50 µs", "p99 µs"],
                rows,
            )
        )  # fmt: skip
    rows = []
    for comp in DUPLEXED:
        d = c1[comp.key]
        rows.append(
            [
                comp.label,
                fmt(d["runtime_cpu_us"], 0),
                _x(vs(c1, comp.key, FLOOR_DUPLEX.key, "runtime_cpu_us")),
                fmt(d["p50_us"], 0),
                _x(vs(c1, comp.key, FLOOR_DUPLEX.key, "p50_us")),
                fmt(d["p99_us"], 0),
                fmt(d["per_s"], 0),
                f"{fmt(d['runtime_user_us'], 0)} / {fmt(d['runtime_system_us'], 0)}",
                fmt(d["switches_per_inv"], 1),
                fmt(d["fakeapi_cpu_us"], 0),
            ]
        )
    section.tables.append(
        Table(
            "Duplex round trip, 1 KiB upload echoed, concurrency 1",
            ["runtime", "runtime CPU µs/inv", "CPU vs floor", "p50 µs", "p50 vs floor",
             "p99 µs", "invocations/s", "user / system µs/inv", "context switches/inv",
             "fake API CPU µs/inv"],
            rows,
        )
    )  # fmt: skip

    def cpu_line(comp: Competitor) -> None:
        r = vs(c1, comp.key, RIC.key, "runtime_cpu_us")
        r2 = vs(c1, comp.key, RIC_ASYNCIO.key, "runtime_cpu_us")
        section.targets.append(
            Target(
                f"{C1}: {comp.label} runtime CPU/invocation <= 0.5x awslambdaric's (its def "
                "handler)",
                f"{_x(r)} ({fmt(c1[comp.key]['runtime_cpu_us'], 0)} vs "
                f"{fmt(c1[RIC.key]['runtime_cpu_us'], 0)} µs; vs awslambdaric + asyncio.run "
                f"{_x(r2)})",
                _met(r, r <= 0.5),
                "cpu-def" if comp is DEF else "cpu-async",
            )
        )

    cpu_line(DEF)
    cpu_line(ASYNC)
    for comp in (DEF, ASYNC):
        if not c4:
            break
        r = vs(c4, comp.key, RIC.key, "per_s")
        r2 = vs(c4, comp.key, RIC_ASYNCIO.key, "per_s")
        section.targets.append(
            Target(
                f"{C4}: {comp.label} invocations/s >= awslambdaric's (its def handler)",
                f"{_x(r)} ({fmt(c4[comp.key]['per_s'], 0)} vs {fmt(c4[RIC.key]['per_s'], 0)}/s;"
                f" vs awslambdaric + asyncio.run {_x(r2)})",
                _met(r, r >= 1.0),
                "rate-c4",
            )
        )
    for name, limit, what in (("runtime_cpu_us", "1.3", "runtime CPU"), ("p50_us", "1.10", "p50")):
        r = vs(c1, DUPLEX.key, FLOOR_DUPLEX.key, name)
        kept = vs(c1, DUPLEX.key, FLOOR_KEEPALIVE.key, name)
        section.targets.append(
            Target(
                f"duplex 1 KiB round trip: {what} <= {limit}x the floor's",
                f"{_x(r)} ({fmt(c1[DUPLEX.key][name], 0)} vs "
                f"{fmt(c1[FLOOR_DUPLEX.key][name], 0)} µs; vs the floor with its response "
                f"connection kept alive {_x(kept)})",
                _met(r, r <= float(limit)),
                "duplex-cpu" if name == "runtime_cpu_us" else "duplex-p50",
            )
        )
    section.data = {"plan": plan.name, "phases": data}
    section.notes += [
        "The fake API is a process of its own: its CPU (last column) is not counted in the "
        "runtime's, and at concurrency 1 each invocation waits for it once (its share of "
        "p50 is the same for every competitor).",
        "awslambdaric polls /next in its main thread here (AWS_EXECUTION_ENV is not set, so "
        "its thread-polling mode is off) and, with AWS_LAMBDA_MAX_CONCURRENCY, forks workers "
        "whose CPU is counted with the parent's.",
        "The async targets compare with awslambdaric's def handler (the issue's baseline); "
        "awslambdaric running the same coroutine under asyncio.run is shown beside it, since "
        "that is what its users write for async code.",
        "CPU per invocation is read from /proc/<pid>/task/*/schedstat (nanoseconds); if "
        "threads that ended during a batch used more than a few 10 ms ticks, the tick count "
        "of /proc/<pid>/stat is used instead.",
        "Where the CPU goes, roughly: user / system µs per invocation from /proc/<pid>/stat "
        "(10 ms ticks: meaningful in the full run), and context switches per invocation "
        "(voluntary and not, every thread of the runtime): each is a wake-up, a thread "
        "hand-off or a wait on the network, so more of them than the floor's 2 or so means "
        "more passes through the kernel.",
    ]
    return section


def run(quick: bool = False) -> Section:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    stats: dict[str, dict[str, Stats]] = {}
    with Procs() as procs, contextlib.ExitStack() as stack:
        apis = {
            comp.key: stack.enter_context(FakeApi(comp.mode, procs.dir / f"fakeapi-{comp.key}.log"))
            for comp in ALL
        }
        for phase, concurrency, competitors in PHASES:
            progress(f"runtime: {phase}")
            stats[phase] = run_phase(procs, apis, concurrency, competitors, plan)
    section = summarize(stats, plan)
    section.seconds = time.monotonic() - started
    return section
