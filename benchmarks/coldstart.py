"""Cold start: process start to the first ``GET /next``, and what the imports cost.

Run as ``python -m benchmarks coldstart [--quick]``.

Method, and why:

* A tiny fake Runtime API in this process (a listening socket on 127.0.0.1) timestamps the
  moment the head of the first ``GET /2018-06-01/runtime/invocation/next`` has arrived;
  the clock starts just before ``subprocess.Popen``. So the time covers fork/exec, the
  interpreter, every import, loading the handler (``apps/bench_plain.py``, which imports
  nothing) and connecting: everything Lambda bills as init before the first invocation.
  The runtime's RSS is read at that moment (it is waiting for its first event), then the
  process is killed by its pid.
* Competitors: ``python -m duplexlambda run``, ``python -m awslambdaric``, and the floor
  (``python apps/bench_floor.py``: the interpreter, ``socket`` and a connect, nothing else).
  Each runs once untimed first (bytecode caches written, files in the page cache: this is
  a warm-disk cold start, as Lambda's is after the first one on a host), then the trials
  interleave the three.
* Import cost: ``import duplexlambda``, then ``import duplexlambda.runtime``, timed in fresh
  interpreters (median of the trials), against ``import awslambdaric`` then
  ``import awslambdaric.bootstrap``; and ``python -X importtime`` on the real start-up
  command (run against the fake API until ``/next``), whose largest top-level imports are
  listed by cumulative time.
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import time
from dataclasses import dataclass, field

from .common import (
    APPS,
    PY,
    BenchmarkError,
    Procs,
    Section,
    Table,
    fmt,
    lambda_env,
    median,
    memory,
    pct,
    progress,
)

NEXT = b"/2018-06-01/runtime/invocation/next"


@dataclass(frozen=True)
class Starter:
    key: str
    label: str
    argv: tuple[str, ...]
    imports: tuple[str, ...]  # timed one after the other in a fresh interpreter


STARTERS = (
    Starter(
        "duplexlambda",
        "duplexlambda",
        (PY, "-m", "duplexlambda", "run", "bench_plain.echo"),
        ("duplexlambda", "duplexlambda.runtime"),
    ),
    Starter(
        "awslambdaric",
        "awslambdaric",
        (PY, "-m", "awslambdaric", "bench_plain.echo"),
        ("awslambdaric", "awslambdaric.bootstrap"),
    ),
    Starter("floor", "floor (raw sockets)", (PY, "bench_floor.py", "echo"), ("socket",)),
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    name: str
    trials: int
    import_trials: int


FULL = Plan("full", trials=20, import_trials=20)
QUICK = Plan("quick", trials=3, import_trials=3)


class FakeApi:
    """A listening socket that notes when a ``GET /next`` head arrives, and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"

    def close(self) -> None:
        self.listener.close()

    def wait_next(self, timeout: float) -> tuple[float, list[socket.socket]]:
        """The monotonic time the first /next arrived, and the connections to close."""
        deadline = time.monotonic() + timeout
        conns: list[socket.socket] = []
        heads: dict[socket.socket, bytes] = {}
        with selectors.DefaultSelector() as sel:
            sel.register(self.listener, selectors.EVENT_READ)
            try:
                while (left := deadline - time.monotonic()) > 0:
                    for key, _ in sel.select(left):
                        if key.fileobj is self.listener:
                            conn, _addr = self.listener.accept()
                            conns.append(conn)
                            heads[conn] = b""
                            sel.register(conn, selectors.EVENT_READ)
                            continue
                        conn = key.fileobj  # type: ignore[assignment]
                        data = conn.recv(65536)
                        now = time.monotonic()
                        if not data:
                            sel.unregister(conn)
                            continue
                        heads[conn] += data
                        if b"\r\n\r\n" in heads[conn]:
                            line = heads[conn].split(b"\r\n", 1)[0]
                            if line.startswith(b"GET ") and NEXT in line:
                                return now, conns
                            raise BenchmarkError(f"unexpected first request {line!r}")
            except BaseException:
                for conn in conns:
                    conn.close()
                raise
        for conn in conns:
            conn.close()
        raise BenchmarkError("no GET /next within the time allowed")


@dataclass
class Trials:
    seconds: list[float] = field(default_factory=list)
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


def start_once(
    procs: Procs, api: FakeApi, starter: Starter, extra: tuple[str, ...] = ()
) -> tuple[float, int, str]:
    """Start one runtime; seconds to its first /next, its RSS then, and its output."""
    env = bytecode_env(procs, lambda_env(api.address, "bench_plain.echo"))
    argv = (starter.argv[0], *extra, *starter.argv[1:])
    started = time.monotonic()
    child = procs.spawn(f"cold-{starter.key}", argv, env=env, cwd=APPS, group=True)
    try:
        arrived, conns = api.wait_next(60)
        rss = memory(child.pid)["VmRSS"]
        for conn in conns:
            conn.close()
    except BenchmarkError as exc:
        raise BenchmarkError(f"{starter.label}: {exc}\n{child.output()}") from exc
    finally:
        procs.stop(child)
    return arrived - started, rss, child.output(1_000_000)


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


def run(quick: bool = False) -> Section:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    trials = {s.key: Trials() for s in STARTERS}
    imports: dict[str, list[list[float]]] = {s.key: [] for s in STARTERS}
    breakdown: dict[str, tuple[list[tuple[str, float, float]], float]] = {}
    api = FakeApi()
    try:
        with Procs() as procs:
            for starter in STARTERS:  # untimed: write bytecode caches, warm the page cache
                start_once(procs, api, starter)
            progress(f"coldstart: {plan.trials} trials each")
            for trial in range(plan.trials):
                shift = trial % len(STARTERS)
                for starter in STARTERS[shift:] + STARTERS[:shift]:
                    seconds, rss, _ = start_once(procs, api, starter)
                    trials[starter.key].seconds.append(seconds)
                    trials[starter.key].rss.append(rss)
            for starter in STARTERS:
                _, _, output = start_once(procs, api, starter, ("-X", "importtime"))
                breakdown[starter.key] = top_imports(output)
            progress("coldstart: import times")
            for starter in STARTERS:  # untimed, as above
                import_times(procs, starter)
            for _ in range(plan.import_trials):
                for starter in STARTERS:
                    imports[starter.key].append(import_times(procs, starter))
    finally:
        api.close()

    section = Section(
        name="coldstart",
        title="Cold start: process start to first GET /next",
        method=(
            f"A fake Runtime API timestamps the first /next; {plan.trials} interleaved trials "
            "per runtime after one untimed start each (warm disk cache). Import times: "
            f"median of {plan.import_trials} fresh interpreters."
        ),
    )
    rows = []
    data: dict[str, dict[str, object]] = {}
    floor_p50 = pct(trials["floor"].seconds, 0.5)
    for s in STARTERS:
        t = trials[s.key]
        each = [median(times[i] for times in imports[s.key]) for i in range(len(s.imports))]
        top, total = breakdown[s.key]
        data[s.key] = {
            "label": s.label,
            "to_next_p50_ms": pct(t.seconds, 0.5) * 1e3,
            "to_next_p99_ms": pct(t.seconds, 0.99) * 1e3,
            "to_next_min_ms": min(t.seconds) * 1e3,
            "rss_at_next_mib": median(t.rss) / 2**20,
            "imports_ms": {m: x * 1e3 for m, x in zip(s.imports, each, strict=True)},
            "importtime_total_ms": total,
            "importtime_top": [
                {"module": name, "cumulative_ms": cum, "self_ms": own} for name, cum, own in top
            ],
        }
        rows.append(
            [
                s.label,
                fmt(pct(t.seconds, 0.5) * 1e3, 1),
                fmt(pct(t.seconds, 0.99) * 1e3, 1),
                fmt(min(t.seconds) * 1e3, 1),
                f"+{fmt((pct(t.seconds, 0.5) - floor_p50) * 1e3, 1)}",
                fmt(median(t.rss) / 2**20, 1),
                "; ".join(
                    f"{'+' if i else ''}{m}: {fmt(x * 1e3, 1)}"
                    for i, (m, x) in enumerate(zip(s.imports, each, strict=True))
                ),
            ]
        )
    section.tables.append(
        Table(
            "Start to first /next (ms) and RSS then",
            ["runtime", "p50 ms", "p99 ms", "min ms", "over floor (p50)", "RSS MiB",
             "import ms (fresh interpreter)"],
            rows,
        )
    )  # fmt: skip
    for s in STARTERS[:2]:
        top, total = breakdown[s.key]
        section.tables.append(
            Table(
                f"{s.label}: `python -X importtime` top-level imports up to /next "
                f"(sum {fmt(total, 1)} ms)",
                ["module", "cumulative ms", "self ms"],
                [[name, fmt(cum, 1), fmt(own, 2)] for name, cum, own in top],
            )
        )
    section.notes += [
        "-X importtime slows imports down a little; its numbers rank the imports, the trials "
        "above give the real time.",
        "No targets in the issue for cold start: the numbers are for comparison.",
        "The floor's time is about the interpreter's own start-up plus a connect.",
        "Bytecode: every child reads .pyc files from one private PYTHONPYCACHEPREFIX that "
        "the untimed first start filled, so no competitor is compiled from source in a "
        "timed start (an editable install under PYTHONDONTWRITEBYTECODE would be).",
    ]
    section.data = {"plan": plan.name, "runtimes": data}
    section.seconds = time.monotonic() - started
    return section
