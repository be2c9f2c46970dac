"""Where a runtime's CPU goes: one competitor of ``benchmarks/runtime.py`` under cProfile.

Run as ``python -m benchmarks.profile_runtime KEY [--count N] [--sort tottime] [--top 30]
[--out FILE.prof]``, KEY one of the ``runtime`` benchmark's competitors (``duplexlambda``,
``duplexlambda-async``, ``awslambdaric``, ``awslambdaric-asyncio``, ``floor``,
``duplexlambda-duplex``, ``floor-duplex``, ``floor-duplex-keepalive``).

The runtime is started as the benchmark starts it, but under cProfile (its main thread, on
the thread's CPU clock by default, so that time spent blocked in ``recv`` or ``epoll`` does
not count; ``--clock wall`` for wall time), against its own fake Runtime API
(``benchmarks/fakeapi.py``), at concurrency 1; its first answer is checked, a warm-up runs,
then N invocations (the profile covers start-up too: compare with ``--count 0``). It is
then sent SIGINT, and one more invocation is let go so that a runtime blocked in C code gets
back to Python to see it; the profile is written on the way out, and the heaviest functions
are printed. Not part of ``all``: cProfile slows Python code several times over, so these
numbers rank functions, the benchmark gives the time. It is the profile that
``docs/benchmarks.md`` wants next to a missed goal. Threads other than the main one (a
``def`` handler's worker thread) are not profiled.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pstats
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .common import APPS, RUNTIMES, BenchmarkError, Procs, lambda_env, progress
from .fakeapi import FakeApi, FakeApiError
from .runtime import ALL, Setup

COMPETITORS = {comp.key: comp for comp in ALL}

#: Runs ``sys.argv[1:]`` (``-m module args`` or ``script args``) under cProfile, and writes the
#: profile to $PROFILE_OUT however it ends (return, SystemExit, KeyboardInterrupt).
WRAPPER = """
import cProfile, os, runpy, sys, time
clock = time.thread_time if os.environ.pop("PROFILE_CLOCK") == "cpu" else time.perf_counter
out = os.environ.pop("PROFILE_OUT")
args = sys.argv[1:]
profiler = cProfile.Profile(clock)
profiler.enable()
try:
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")
except (SystemExit, KeyboardInterrupt):
    pass
finally:
    profiler.disable()
    profiler.dump_stats(out)
"""


def profile(key: str, count: int, out: Path, clock: str = "cpu") -> Path:
    """Run competitor ``key`` under cProfile for ``count`` invocations; the profile's path."""
    comp = COMPETITORS[key]
    argv = RUNTIMES[comp.kind](comp.handler)
    profiled = [argv[0], "-c", WRAPPER, *argv[1:]]
    with Procs() as procs, FakeApi(comp.mode, procs.dir / "fakeapi.log") as api:
        env = lambda_env(api.address, comp.handler)
        env.update(PROFILE_OUT=str(out), PROFILE_CLOCK=clock)
        runtime = procs.spawn(f"profiled-{key}", profiled, env=env, cwd=APPS, group=True)
        setup = Setup(comp, api, runtime)
        setup.verify()
        if count:
            setup.batch(min(count, 200), None)
            progress(f"profile: {count} invocations of {comp.label}")
            setup.batch(count, None)
        runtime.proc.send_signal(signal.SIGINT)
        api.submit(1)  # a runtime waiting in C code returns to Python and sees the signal
        try:
            runtime.proc.wait(30)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(
                f"{comp.label} did not exit on SIGINT: no profile\n{runtime.output()}"
            ) from None
        with contextlib.suppress(FakeApiError):  # it may have exited before answering
            api.result(1)
        procs.stop(runtime)
    if not out.exists():
        raise BenchmarkError(f"{comp.label} exited without writing {out}")
    return out


def report(path: Path, sort: str, top: int) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_runtime", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("key", choices=list(COMPETITORS))
    parser.add_argument("--count", type=int, default=5000, help="timed invocations")
    parser.add_argument("--sort", default="tottime", help="a pstats sort key")
    parser.add_argument("--top", type=int, default=30, help="functions to print")
    parser.add_argument("--out", type=Path, help="keep the profile here")
    parser.add_argument(
        "--clock", choices=["cpu", "wall"], default="cpu", help="the main thread's CPU time"
    )
    args = parser.parse_args(argv)
    out = args.out or Path(f"/tmp/duplexlambda-profile-{args.key}-{int(time.time())}.prof")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    try:
        path = profile(args.key, args.count, out.resolve(), args.clock)
    except BenchmarkError as exc:
        print(f"profile failed: {exc}", file=sys.stderr)
        return 1
    print(report(path, args.sort, args.top))
    print(f"profile of {args.count} invocations in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
