"""Memory: peak RSS of the runtime and of the emulator while 1 GiB streams through.

Run as ``python -m benchmarks memory [--quick]``.

Method, and why:

* Fresh processes: an emulator and a runtime for duplexlambda, the same for the floor
  (``apps/bench_floor.py``), each runtime a process of its own so that its RSS is its own.
* After a small warm-up transfer (imports done, buffers allocated), the idle RSS
  (``VmRSS``) of both is read; then the peak (``VmHWM``) is reset with Linux's
  ``/proc/<pid>/clear_refs`` (``5``) and read again after each case, so each case's peak is
  its own. Where ``clear_refs`` is refused, the peak since start is shown (an upper bound).
* Cases: ``download``: 1 GiB answered in 64 KiB writes; ``upload echo``: 1 GiB uploaded
  and echoed back while it arrives (1 GiB up and 1 GiB down at once). Byte counts exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .common import (
    CHECK_TIMEOUT,
    GiB,
    MiB,
    Procs,
    Section,
    Table,
    Target,
    fmt,
    memory,
    progress,
    reset_peak,
)
from .streaming import STREAMERS, start_stacks, transfer

CASES = (("download", "download 64 KiB"), ("upload echo", "upload"))


@dataclass(frozen=True)
class Plan:
    name: str
    total: int


FULL = Plan("full", GiB)
QUICK = Plan("quick", 64 * MiB)


def run(quick: bool = False) -> Section:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    rows = []
    data: dict[str, dict[str, object]] = {}
    resets_ok = True
    with Procs() as procs:
        stacks = start_stacks(procs, "memory")
        for stack in stacks:
            key = stack.streamer.key
            for _, case in CASES:  # warm-up: imports, first buffers
                transfer(stack, case, 4 * MiB, verify=True, timeout=CHECK_TIMEOUT)
            time.sleep(0.2)
            idle = {
                "runtime": memory(stack.runtime.pid)["VmRSS"],
                "emulator": memory(stack.emulator.pid)["VmRSS"],
            }
            entry: dict[str, object] = {
                "label": stack.streamer.label,
                "bytes": plan.total,
                "runtime_idle_mib": idle["runtime"] / MiB,
                "emulator_idle_mib": idle["emulator"] / MiB,
            }
            for name, case in CASES:
                progress(f"memory: {stack.streamer.label}, {name}")
                for pid in (stack.runtime.pid, stack.emulator.pid):
                    resets_ok = reset_peak(pid) and resets_ok
                result = transfer(stack, case, plan.total)
                runtime_peak = memory(stack.runtime.pid)["VmHWM"]
                emulator_peak = memory(stack.emulator.pid)["VmHWM"]
                slug = name.replace(" ", "_")
                entry[f"{slug}_runtime_peak_mib"] = runtime_peak / MiB
                entry[f"{slug}_emulator_peak_mib"] = emulator_peak / MiB
                entry[f"{slug}_seconds"] = result.seconds
                rows.append(
                    [
                        stack.streamer.label,
                        f"{name} {plan.total // MiB} MiB",
                        fmt(idle["runtime"] / MiB, 1),
                        fmt(runtime_peak / MiB, 1),
                        fmt(idle["emulator"] / MiB, 1),
                        fmt(emulator_peak / MiB, 1),
                    ]
                )
            data[key] = entry
    section = Section(
        name="memory",
        title="Memory while streaming (peak RSS, VmHWM)",
        method=(
            "Fresh emulator + runtime per competitor; idle RSS after a warm-up, then the peak "
            "(VmHWM, reset per case with /proc/<pid>/clear_refs) while "
            f"{plan.total // MiB} MiB goes down (64 KiB writes) and while {plan.total // MiB} "
            "MiB goes up and is echoed down at the same time."
        ),
    )
    section.tables.append(
        Table(
            "RSS (MiB)",
            ["runtime", "case", "runtime idle", "runtime peak", "emulator idle",
             "emulator peak"],
            rows,
        )
    )  # fmt: skip
    worst = max(
        float(data["duplexlambda"][f"{name.replace(' ', '_')}_runtime_peak_mib"])  # type: ignore[arg-type]
        for name, _ in CASES
    )
    section.targets.append(
        Target(
            "duplexlambda runtime peak RSS <= 64 MiB",
            f"{worst:.1f} MiB",
            worst <= 64,
            "no-regression",
        )
    )
    if not resets_ok:
        section.notes.append(
            "clear_refs was refused: peaks are since each process started (upper bounds)."
        )
    section.notes.append(
        "The floor is the interpreter, a blocking socket loop and the C chunk decoder: "
        "the difference to it is what the runtime itself holds."
    )
    section.data = {"plan": plan.name, "runtimes": data, "keys": [k.key for k in STREAMERS]}
    section.seconds = time.monotonic() - started
    return section
