"""Cold start: process start to the first response posted, with and without ``.pyc`` files.

Run as ``python -m benchmarks coldstart [--quick]``.

Method, and why:

* The lean fake Runtime API (``benchmarks/fakeapi.py``, its own process) is told to serve
  one invocation (the 1 KiB JSON event) before the runtime is started; the clock starts just
  before ``subprocess.Popen``. The fake API notes, on the machine's monotonic clock (one
  clock for every process), when the head of the first ``GET /next`` arrived and when the
  body of the first response has arrived whole. So "to first response" covers fork/exec,
  the interpreter, every import, loading the handler, connecting, the first invocation and
  whatever it imports lazily: Lambda's init phase plus the first invoke, what a caller of a
  cold function waits for. The runtime's RSS is read then, and the process group is stopped.
* Competitors: ``python -m duplexlambda run`` with the ``def`` handler
  (``apps/bench_plain.echo``, which imports nothing) and with the ``async def`` one
  (``apps/bench_async.echo``); ``python -m awslambdaric`` with the same ``def`` handler and
  with the same coroutine under ``asyncio.run`` (``apps/bench_async.echo_asyncio_run``, so
  it imports asyncio at init as a user's async code would); the floor (``python
  apps/bench_floor.py echo``: the interpreter, ``socket`` and a connect).
* With ``.pyc``: every child reads bytecode from one private ``PYTHONPYCACHEPREFIX`` filled
  by an untimed first start (stdlib included), so nobody is compiled in a timed start.
* Without ``.pyc``: the two runtimes' own packages, ``duplexlambda`` and ``awslambdaric``,
  are imported from a copy of their installed directories with no ``__pycache__``
  (``PYTHONPATH`` puts the copy first, ``PYTHONDONTWRITEBYTECODE=1`` keeps it without), so
  every start compiles each runtime's own sources, as from a zip or an editable install
  that ships none; the standard library and the dependencies (msgspec, uvloop; simplejson,
  and awslambdaric's C extension) keep the bytecode they were installed with. That is the
  same treatment for both runtimes: each pays for compiling exactly its own code.
* One untimed start of each competitor per mode, then interleaved trials (order rotated).
* Import cost: ``import duplexlambda``, then ``import duplexlambda.runtime``, timed in fresh
  interpreters (median), against ``import awslambdaric`` then ``import awslambdaric.bootstrap``;
  and ``python -X importtime`` on the real start-up command (with ``.pyc``, until the first
  response), whose heaviest imports are listed two levels deep by cumulative time.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from .common import (
    APPS,
    PY,
    BenchmarkError,
    Procs,
    Section,
    Table,
    Target,
    check,
    fmt,
    lambda_env,
    median,
    memory,
    pct,
    progress,
    ratio,
)
from .fakeapi import FakeApi, FakeApiError, make_event


@dataclass(frozen=True)
class Starter:
    key: str
    label: str
    argv: tuple[str, ...]
    handler: str
    imports: tuple[str, ...] = ()  # timed one after the other in a fresh interpreter


STARTERS = (
    Starter(
        "duplexlambda", "duplexlambda def",
        (PY, "-m", "duplexlambda", "run", "bench_plain.echo"), "bench_plain.echo",
        ("duplexlambda", "duplexlambda.runtime"),
    ),
    Starter(
        "awslambdaric", "awslambdaric def",
        (PY, "-m", "awslambdaric", "bench_plain.echo"), "bench_plain.echo",
        ("awslambdaric", "awslambdaric.bootstrap"),
    ),
    Starter(
        "duplexlambda-async", "duplexlambda async def",
        (PY, "-m", "duplexlambda", "run", "bench_async.echo"), "bench_async.echo",
    ),
    Starter(
        "awslambdaric-asyncio", "awslambdaric + asyncio.run",
        (PY, "-m", "awslambdaric", "bench_async.echo_asyncio_run"),
        "bench_async.echo_asyncio_run",
    ),
    Starter(
        "floor", "floor (raw sockets)", (PY, "bench_floor.py", "echo"), "echo", ("socket",),
    ),
)  # fmt: skip
BY_KEY = {s.key: s for s in STARTERS}
#: (competitor, what it is held against) for the targets.
PAIRS = (("duplexlambda", "awslambdaric"), ("duplexlambda-async", "awslambdaric-asyncio"))
#: The packages compiled from source in the "without .pyc" mode: each runtime's own.
OWN_PACKAGES = ("duplexlambda", "awslambdaric")
PYC, NO_PYC = "with .pyc", "without .pyc"
MODES = (PYC, NO_PYC)
#: The starts whose ``-X importtime`` is tabled.
IMPORTTIME = ("duplexlambda", "duplexlambda-async", "awslambdaric")


@dataclass(frozen=True)
class Plan:
    name: str
    trials: int
    import_trials: int


FULL = Plan("full", trials=20, import_trials=20)
QUICK = Plan("quick", trials=2, import_trials=2)


@dataclass
class Trials:
    to_next: list[float] = field(default_factory=list)
    to_response: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)


def bytecode_env(procs: Procs, env: dict[str, str]) -> dict[str, str]:
    """``env`` with bytecode caching on, into a cache of our own.

    With PYTHONDONTWRITEBYTECODE set (as on some CI hosts) a package installed in editable
    mode is compiled from source at every start while site-packages has its ``.pyc``
    files: that would compare compilers, not runtimes. Every child here reads and writes
    bytecode under one private PYTHONPYCACHEPREFIX instead (stdlib included), filled by
    the untimed first start, and the repository stays clean.
    """
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(procs.dir / "pycache")
    return env


def source_copy(procs: Procs) -> Path:
    """A copy of each runtime's own package directory, without any bytecode."""
    root = procs.dir / "no-pyc"
    for name in OWN_PACKAGES:
        spec = importlib.util.find_spec(name)
        check(
            spec is not None and bool(spec.submodule_search_locations),
            f"{name} is not an installed package",
        )
        assert spec is not None
        assert spec.submodule_search_locations is not None
        source = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def no_bytecode_env(root: Path, env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


def check_source_copy(root: Path, env: dict[str, str]) -> None:
    """The copy is what the children import, with the C codec, and it stays bytecode-free."""
    code = (
        "import duplexlambda, awslambdaric\n"
        "from duplexlambda.protocol import chunked\n"
        "print(duplexlambda.__file__, awslambdaric.__file__, chunked.IMPL)"
    )
    out = subprocess.run(
        [PY, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env
    ).stdout.split()
    for path in out[:2]:
        check(Path(path).is_relative_to(root), f"imported from {path}, not from the copy")
    check(out[2] == "c", f"the copied duplexlambda runs codec {out[2]}, not c")
    cached = sorted(str(p) for p in root.rglob("*.pyc"))
    check(not cached, f"bytecode was written into the copy: {cached[:3]}")


class Starts:
    """Starts runtimes against the fake API and times them."""

    def __init__(self, procs: Procs, api: FakeApi, no_pyc_root: Path) -> None:
        self.procs = procs
        self.api = api
        self.root = no_pyc_root

    def env(self, starter: Starter, mode: str) -> dict[str, str]:
        env = lambda_env(self.api.address, starter.handler)
        if mode == PYC:
            return bytecode_env(self.procs, env)
        return no_bytecode_env(self.root, env)

    def once(
        self, starter: Starter, mode: str, extra: tuple[str, ...] = ()
    ) -> tuple[float, float, int, str]:
        """Start one runtime: seconds to its first /next and to its first response posted,
        its RSS then, and its output."""
        env = self.env(starter, mode)
        argv = (starter.argv[0], *extra, *starter.argv[1:])
        self.api.reset()
        self.api.submit(1, capture=1)
        started = time.monotonic()
        child = self.procs.spawn(f"cold-{starter.key}", argv, env=env, cwd=APPS, group=True)
        try:
            report = self.api.result(60)
            rss = memory(child.pid)["VmRSS"]
        except (FakeApiError, BenchmarkError, OSError) as exc:
            raise BenchmarkError(f"{starter.label} ({mode}): {exc}\n{child.output()}") from None
        finally:
            self.procs.stop(child)
        check(report["errors"] == 0, f"{starter.label}: reported an error {report['captured']}")
        body = report["captured"][0]["body"].encode("latin-1")
        check(
            msgspec.json.decode(body) == msgspec.json.decode(make_event()),
            f"{starter.label}: echo differs: {body[:200]!r}",
        )
        return (
            report["first_next"] - started,
            report["first_end"] - started,
            rss,
            child.output(1_000_000),
        )


def import_times(procs: Procs, starter: Starter) -> list[float]:
    """Seconds for each of ``starter.imports``, one after the other, in a fresh interpreter."""
    code = ["import time", "t = [time.perf_counter()]"]
    for module in starter.imports:
        code += [f"import {module}", "t.append(time.perf_counter())"]
    code.append("print(*(b - a for a, b in zip(t, t[1:])))")
    out = subprocess.run(
        [PY, "-c", "\n".join(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=bytecode_env(procs, dict(os.environ)),
    ).stdout.split()
    return [float(x) for x in out]


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def top_imports(output: str, count: int = 10) -> tuple[list[tuple[str, float, float]], float]:
    """The heaviest imports by cumulative ms, at most two levels deep (a nested one is shown
    as ``parent > child``), as (name, cumulative, self); and the top level's total in ms."""
    entries: list[tuple[int, str, float, float]] = []
    for line in output.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            level = (len(match[3]) - 1) // 2
            entries.append((level, match[4], int(match[2]) / 1000, int(match[1]) / 1000))
    # -X importtime prints a module when it finishes: its parent comes after its children.
    picked: list[tuple[str, float, float]] = []
    pending: list[tuple[str, float, float]] = []
    total = 0.0
    for level, name, cumulative, own in entries:
        if level == 1:
            pending.append((name, cumulative, own))
        elif level == 0:
            total += cumulative
            picked.append((name, cumulative, own))
            picked += [(f"{name} > {child}", c, o) for child, c, o in pending]
            pending = []
    return sorted(picked, key=lambda item: -item[1])[:count], total


def _x(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}x"


def run(quick: bool = False) -> Section:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    trials = {mode: {s.key: Trials() for s in STARTERS} for mode in MODES}
    imports: dict[str, list[list[float]]] = {s.key: [] for s in STARTERS if s.imports}
    breakdown: dict[str, tuple[list[tuple[str, float, float]], float]] = {}
    with Procs() as procs, FakeApi("buffered", procs.dir / "fakeapi.log") as api:
        root = source_copy(procs)
        starts = Starts(procs, api, root)
        check_source_copy(root, starts.env(STARTERS[0], NO_PYC))
        for mode in MODES:  # untimed: bytecode caches written, files in the page cache
            for starter in STARTERS:
                starts.once(starter, mode)
        progress(f"coldstart: {plan.trials} trials each, with and without .pyc")
        for trial in range(plan.trials):
            shift = trial % len(STARTERS)
            for mode in MODES if trial % 2 == 0 else MODES[::-1]:
                for starter in STARTERS[shift:] + STARTERS[:shift]:
                    to_next, to_response, rss, _ = starts.once(starter, mode)
                    t = trials[mode][starter.key]
                    t.to_next.append(to_next)
                    t.to_response.append(to_response)
                    t.rss.append(rss)
        check_source_copy(root, starts.env(STARTERS[0], NO_PYC))
        for key in IMPORTTIME:
            *_, output = starts.once(BY_KEY[key], PYC, ("-X", "importtime"))
            breakdown[key] = top_imports(output)
        progress("coldstart: import times")
        for starter in STARTERS:  # untimed, as above
            if starter.imports:
                import_times(procs, starter)
        for _ in range(plan.import_trials):
            for starter in STARTERS:
                if starter.imports:
                    imports[starter.key].append(import_times(procs, starter))

    section = Section(
        name="coldstart",
        title="Cold start: process start to the first response posted",
        method=(
            "The fake Runtime API (own process) serves one 1 KiB invocation and notes when the "
            "first /next and the end of the first response arrive; the clock starts before "
            f"Popen. {plan.trials} interleaved trials per runtime and mode after one untimed "
            "start each (warm disk cache). With .pyc: one private PYTHONPYCACHEPREFIX, filled "
            "by the untimed start. Without .pyc: duplexlambda and awslambdaric imported from a "
            "copy with no __pycache__ (PYTHONDONTWRITEBYTECODE=1), stdlib and dependencies as "
            f"installed. Import times: median of {plan.import_trials} fresh interpreters."
        ),
    )
    data: dict[str, dict[str, dict[str, float | str]]] = {}
    for mode in MODES:
        data[mode] = {}
        for s in STARTERS:
            t = trials[mode][s.key]
            data[mode][s.key] = {
                "label": s.label,
                "to_response_p50_ms": pct(t.to_response, 0.5) * 1e3,
                "to_response_p90_ms": pct(t.to_response, 0.9) * 1e3,
                "to_response_min_ms": min(t.to_response) * 1e3,
                "to_next_p50_ms": pct(t.to_next, 0.5) * 1e3,
                "rss_at_response_mib": median(t.rss) / 2**20,
            }
    for mode in MODES:
        d = data[mode]
        floor = float(d["floor"]["to_response_p50_ms"])

        def vs(key: str, other: str, d: dict[str, dict[str, float | str]] = d) -> float:
            return ratio(float(d[key]["to_response_p50_ms"]), float(d[other]["to_response_p50_ms"]))

        rows = []
        for s in STARTERS:
            row = d[s.key]
            p50 = float(row["to_response_p50_ms"])
            rows.append(
                [
                    s.label,
                    fmt(float(row["to_next_p50_ms"]), 1),
                    fmt(p50, 1),
                    fmt(float(row["to_response_p90_ms"]), 1),
                    fmt(float(row["to_response_min_ms"]), 1),
                    _x(vs(s.key, "awslambdaric")),
                    _x(vs(s.key, "awslambdaric-asyncio")),
                    f"+{fmt(p50 - floor, 1)}",
                    fmt(float(row["rss_at_response_mib"]), 1),
                ]
            )
        section.tables.append(
            Table(
                f"{mode}: start to first /next and to first response posted (ms)",
                ["runtime", "to /next p50", "to response p50", "p90", "min",
                 "vs awslambdaric def", "vs awslambdaric + asyncio.run", "over floor (p50)",
                 "RSS MiB then"],
                rows,
            )
        )  # fmt: skip
        for key, other in PAIRS:
            r = vs(key, other)
            section.targets.append(
                Target(
                    f"{mode}: {BY_KEY[key].label} to first response <= 1.0x {BY_KEY[other].label}",
                    f"{_x(r)} ({fmt(float(d[key]['to_response_p50_ms']), 1)} vs "
                    f"{fmt(float(d[other]['to_response_p50_ms']), 1)} ms, p50)",
                    None if r != r else r <= 1.0,
                    "cold-def" if key == "duplexlambda" else "cold-async",
                )
            )
    runtimes: dict[str, dict[str, object]] = {}
    rows = []
    for s in STARTERS:
        if not s.imports:
            continue
        each = [median(times[i] for times in imports[s.key]) for i in range(len(s.imports))]
        runtimes[s.key] = {
            "label": s.label,
            "imports_ms": {m: x * 1e3 for m, x in zip(s.imports, each, strict=True)},
        }
        rows.append(
            [
                s.label,
                "; ".join(
                    f"{'+' if i else ''}{m}: {fmt(x * 1e3, 1)}"
                    for i, (m, x) in enumerate(zip(s.imports, each, strict=True))
                ),
            ]
        )
    section.tables.append(
        Table("Import cost in a fresh interpreter (ms, with .pyc)", ["runtime", "imports"], rows)
    )
    for key in IMPORTTIME:
        top, total = breakdown[key]
        runtimes.setdefault(key, {"label": BY_KEY[key].label})
        runtimes[key]["importtime_total_ms"] = total
        runtimes[key]["importtime_top"] = [
            {"module": name, "cumulative_ms": cum, "self_ms": own} for name, cum, own in top
        ]
        section.tables.append(
            Table(
                f"{BY_KEY[key].label}: `python -X importtime` top-level imports up to the first "
                f"response (sum {fmt(total, 1)} ms)",
                ["module", "cumulative ms", "self ms"],
                [[name, fmt(cum, 1), fmt(own, 2)] for name, cum, own in top],
            )
        )
    section.notes += [
        "-X importtime slows imports down a little; its numbers rank the imports, the trials "
        "give the real time.",
        "The floor's time is about the interpreter's own start-up, a connect and one invocation.",
        "Without .pyc, each runtime compiles its own package (a copy of its installed "
        "directory without __pycache__) at every start; the standard library and the "
        "dependencies keep their installed bytecode, for both.",
        "The async pair: duplexlambda runs the async def handler itself; awslambdaric can "
        "only call a def handler, which runs the same coroutine with asyncio.run (asyncio is "
        "imported when the handler module is).",
    ]
    section.data = {"plan": plan.name, "modes": data, "runtimes": runtimes}
    section.seconds = time.monotonic() - started
    return section
