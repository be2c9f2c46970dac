"""Results to files: ``latest.json`` (every number), ``latest.md`` (the tables) and
``latest.png`` (one chart, the machine in its title; matplotlib with the Agg backend)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .common import GOALS, Section, Table, verdict

COLORS = {
    "duplexlambda": "#1f77b4",
    "duplexlambda-async": "#7fb8e6",
    "duplexlambda-duplex": "#1f77b4",
    "awslambdaric": "#ff7f0e",
    "awslambdaric-asyncio": "#ffbb78",
    "floor": "#8c8c8c",
    "floor-duplex": "#8c8c8c",
    "floor-duplex-keepalive": "#c7c7c7",
}


# --------------------------------------------------------------------------- markdown


def table_markdown(table: Table) -> list[str]:
    aligns = [":---" if i == 0 else "---:" for i in range(len(table.columns))]
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join(aligns) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return lines


def section_markdown(section: Section) -> str:
    lines = [f"## {section.title}", "", section.method, ""]
    for table in section.tables:
        lines += [*table_markdown(table), ""]
    if section.targets:
        lines += ["Targets:", ""]
        lines += [f"- {t.text}: {t.measured} -> **{verdict(t.met)}**" for t in section.targets]
        lines.append("")
    if section.notes:
        lines += ["Notes:", ""]
        lines += [f"- {note}" for note in section.notes]
        lines.append("")
    lines.append(f"_({section.name}: {section.seconds:.1f} s)_")
    return "\n".join(lines) + "\n"


def _get(section: Section | None, *path: str) -> float | None:
    value: Any = section.data if section is not None else None
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def _cell(*values: tuple[float | None, str], digits: int = 1) -> str:
    parts = []
    for value, suffix in values:
        if value is None or math.isnan(value):
            continue
        number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"
        parts.append(number + suffix)
    return " / ".join(parts) if parts else "—"


def _size(n: float) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def summary_table(sections: Sequence[Section]) -> Table | None:
    """One row per headline number, one column per runtime: what the README shows."""
    by = {s.name: s for s in sections}
    rows: list[list[str]] = []
    rt = by.get("roundtrip")
    if rt is not None:
        phases = list(rt.data["phases"])
        for phase, field, label, digits in (
            (phases[0], "p50_ms", "Via the emulator: round trip p50, 1 KiB echo, 1 client (ms)", 2),
            (phases[0], "p99_ms", "Via the emulator: round trip p99, 1 client (ms)", 2),
            (phases[-1], "per_s", "Via the emulator: invocations/s, 4 clients", 0),
            (phases[0], "runtime_cpu_us", "Via the emulator: runtime CPU per invocation (µs)", 0),
        ):
            rows.append(
                [
                    label,
                    _cell(
                        (_get(rt, "phases", phase, "duplexlambda", field), " (def)"),
                        (_get(rt, "phases", phase, "duplexlambda-async", field), " (async)"),
                        digits=digits,
                    ),
                    _cell((_get(rt, "phases", phase, "awslambdaric", field), ""), digits=digits),
                    _cell((_get(rt, "phases", phase, "floor", field), ""), digits=digits),
                ]
            )
    if rt is not None:
        phase = next(iter(rt.data["phases"]))
        rows.append(
            [
                "Via the emulator: emulator CPU per relayed invocation, 1 client (µs)",
                _cell(
                    (_get(rt, "phases", phase, "duplexlambda", "emulator_cpu_us"), " (def)"),
                    (_get(rt, "phases", phase, "duplexlambda-async", "emulator_cpu_us"),
                     " (async)"),
                    digits=0,
                ),
                _cell((_get(rt, "phases", phase, "awslambdaric", "emulator_cpu_us"), ""), digits=0),
                _cell((_get(rt, "phases", phase, "floor", "emulator_cpu_us"), ""), digits=0),
            ]
        )  # fmt: skip
    alone = by.get("runtime")
    if alone is not None:
        for phase, field, label in (
            (
                "concurrency 1",
                "runtime_cpu_us",
                "Runtime alone (fake API): CPU per invocation (µs)",
            ),
            ("concurrency 1", "p50_us", "Runtime alone (fake API): round trip p50 (µs)"),
            ("concurrency 4", "per_s", "Runtime alone (fake API): invocations/s, concurrency 4"),
        ):
            rows.append(
                [
                    label,
                    _cell(
                        (_get(alone, "phases", phase, "duplexlambda", field), " (def)"),
                        (_get(alone, "phases", phase, "duplexlambda-async", field), " (async)"),
                        digits=0,
                    ),
                    _cell(
                        (_get(alone, "phases", phase, "awslambdaric", field), " (def)"),
                        (_get(alone, "phases", phase, "awslambdaric-asyncio", field),
                         " (asyncio.run)"),
                        digits=0,
                    ),
                    _cell((_get(alone, "phases", phase, "floor", field), ""), digits=0),
                ]
            )  # fmt: skip
        rows.append(
            [
                "Duplex 1 KiB round trip (fake API): runtime CPU / p50 (µs)",
                _cell(
                    (_get(alone, "phases", "concurrency 1", "duplexlambda-duplex",
                          "runtime_cpu_us"), ""),
                    (_get(alone, "phases", "concurrency 1", "duplexlambda-duplex", "p50_us"), ""),
                    digits=0,
                ),
                "cannot stream",
                _cell(
                    (_get(alone, "phases", "concurrency 1", "floor-duplex", "runtime_cpu_us"), ""),
                    (_get(alone, "phases", "concurrency 1", "floor-duplex", "p50_us"), ""),
                    digits=0,
                ),
            ]
        )  # fmt: skip
    st = by.get("streaming")
    if st is not None:
        for case, label in (
            ("download 64 KiB", "response, 64 KiB writes (MB/s)"),
            ("download 1 KiB", "response, 1 KiB writes (MB/s)"),
            ("upload", "upload echoed while it arrives (MB/s each way)"),
        ):
            size = _get(st, "cases", case, "duplexlambda", "bytes") or 0
            rows.append(
                [
                    f"Streaming {_size(size)} {label}",
                    _cell((_get(st, "cases", case, "duplexlambda", "mb_s"), "")),
                    "cannot stream",
                    _cell((_get(st, "cases", case, "floor", "mb_s"), "")),
                ]
            )
    tt = by.get("ttfb")
    if tt is not None:
        rows.append(
            [
                "16 B every 10 ms: lag p50 / p99 (ms)",
                _cell(
                    (_get(tt, "runtimes", "duplexlambda", "lag_p50_ms"), ""),
                    (_get(tt, "runtimes", "duplexlambda", "lag_p99_ms"), ""),
                    digits=2,
                ),
                "cannot stream",
                _cell(
                    (_get(tt, "runtimes", "floor", "lag_p50_ms"), ""),
                    (_get(tt, "runtimes", "floor", "lag_p99_ms"), ""),
                    digits=2,
                ),
            ]
        )
    mem = by.get("memory")
    if mem is not None:
        size = _get(mem, "runtimes", "duplexlambda", "bytes") or 0
        rows.append(
            [
                f"Runtime RSS idle / peak, {_size(size)} up + down (MiB)",
                _cell(
                    (_get(mem, "runtimes", "duplexlambda", "runtime_idle_mib"), ""),
                    (_get(mem, "runtimes", "duplexlambda", "upload_echo_runtime_peak_mib"), ""),
                ),
                "—",
                _cell(
                    (_get(mem, "runtimes", "floor", "runtime_idle_mib"), ""),
                    (_get(mem, "runtimes", "floor", "upload_echo_runtime_peak_mib"), ""),
                ),
            ]
        )
    cs = by.get("coldstart")
    if cs is not None:
        for mode in ("with .pyc", "without .pyc"):
            rows.append(
                [
                    f"Cold start to the first response posted, {mode}, p50 (ms)",
                    _cell(
                        (_get(cs, "modes", mode, "duplexlambda", "to_response_p50_ms"), " (def)"),
                        (_get(cs, "modes", mode, "duplexlambda-async", "to_response_p50_ms"),
                         " (async)"),
                    ),
                    _cell(
                        (_get(cs, "modes", mode, "awslambdaric", "to_response_p50_ms"), " (def)"),
                        (_get(cs, "modes", mode, "awslambdaric-asyncio", "to_response_p50_ms"),
                         " (asyncio.run)"),
                    ),
                    _cell((_get(cs, "modes", mode, "floor", "to_response_p50_ms"), "")),
                ]
            )  # fmt: skip
        rows.append(
            [
                "Cold start: process start to first /next, with .pyc, p50 (ms)",
                *(
                    _cell((_get(cs, "modes", "with .pyc", key, "to_next_p50_ms"), ""))
                    for key in ("duplexlambda", "awslambdaric", "floor")
                ),
            ]
        )
    if not rows:
        return None
    return Table(
        "Summary (medians unless marked)",
        ["measure", "duplexlambda", "awslambdaric", "floor (raw sockets)"],
        rows,
    )


def goals_table(sections: Sequence[Section]) -> Table | None:
    """The target lines that measure issue #14's goals, goal by goal, in the issue's order."""
    rows = []
    for key, goal in GOALS.items():
        lines = [(s, t) for s in sections for t in s.targets if t.goal == key]
        if not lines:
            rows.append([goal, "(not run)", "", "not evaluated"])
        for i, (section, target) in enumerate(lines):
            rows.append(
                [
                    goal if i == 0 else "",
                    f"{section.name}: {target.text}",
                    target.measured,
                    f"**{verdict(target.met)}**" if target.met is False else verdict(target.met),
                ]
            )
    if not any(t.goal for s in sections for t in s.targets):
        return None
    return Table("Goals of issue #14", ["goal", "target line", "measured", "verdict"], rows)


def render_markdown(
    machine: dict[str, str], meta: dict[str, Any], sections: Sequence[Section]
) -> str:
    kind = "QUICK (smoke-sized: not numbers to quote)" if meta["quick"] else "full"
    lines = [
        "# duplexlambda benchmarks",
        "",
        f"`{meta['command']}` — {kind} run of {meta['date']}, {meta['seconds']} s.",
        "How each number is measured: docs/benchmarks.md.",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    lines.append("")
    for name, why in meta.get("failed", {}).items():
        lines.append(f"**{name} FAILED**: {why}")
        lines.append("")
    summary = summary_table(sections)
    if summary is not None:
        lines += ["## Summary", "", *table_markdown(summary)[2:], ""]
    goals = goals_table(sections)
    if goals is not None:
        lines += [
            "## Goals of issue #14",
            "",
            "Each goal of the issue with the target lines of this run that measure it "
            "(method: docs/benchmarks.md).",
            "",
            *table_markdown(goals)[2:],
            "",
        ]
    targets = [(s, t) for s in sections for t in s.targets]
    if targets:
        lines += [
            "## Targets",
            "",
            "| benchmark | target | measured | verdict |",
            "|:---|:---|---:|:---|",
        ]
        lines += [f"| {s.name} | {t.text} | {t.measured} | {verdict(t.met)} |" for s, t in targets]
        lines.append("")
    if any(s.name in CHARTED for s in sections):
        lines += ["![benchmark chart](latest.png)", ""]
    lines += [section_markdown(s) for s in sections]
    return "\n".join(lines)


# --------------------------------------------------------------------------- chart

CHARTED = ("roundtrip", "runtime", "streaming", "ttfb", "memory", "coldstart", "codec")


def _bars(
    ax: Any,
    groups: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    ylabel: str,
    title: str,
    digits: int = 0,
) -> None:
    """Grouped bars: ``series`` are (key, label, one value per group)."""
    width = 0.8 / max(1, len(series))
    for i, (key, label, values) in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        clean = [0.0 if v is None or math.isnan(v) else v for v in values]
        bars = ax.bar(xs, clean, width, label=label, color=COLORS.get(key))
        for bar, value in zip(bars, clean, strict=True):
            text = f"{value:,.{digits}f}" if value else "n/a"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=6.5,
                xytext=(0, 1),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9.5)
    ax.tick_params(axis="y", labelsize=7)
    ax.margins(y=0.15)
    ax.legend(fontsize=7, frameon=False)


def _roundtrip_latency(ax: Any, s: Section) -> None:
    phases = s.data["phases"]
    names = list(phases)
    keys = list(next(iter(phases.values())))
    _bars(
        ax,
        [n.replace(" concurrent clients", " clients").replace(" (1 client)", "") for n in names],
        [(k, phases[names[0]][k]["label"], [phases[n][k]["p50_ms"] for n in names]) for k in keys],
        ylabel="ms (lower is better)",
        title="Round trip: p50 latency, 1 KiB echo",
        digits=2,
    )


def _roundtrip_rate(ax: Any, s: Section) -> None:
    phases = s.data["phases"]
    names = list(phases)
    keys = list(next(iter(phases.values())))
    _bars(
        ax,
        [n.replace(" concurrent clients", " clients").replace(" (1 client)", "") for n in names],
        [(k, phases[names[0]][k]["label"], [phases[n][k]["per_s"] for n in names]) for k in keys],
        ylabel="invocations/s (higher is better)",
        title="Round trip: throughput",
    )


def _runtime_cpu(ax: Any, s: Section) -> None:
    phases = s.data["phases"]
    names = list(phases)
    keys = [k for k in phases[names[-1]] if all(k in phases[n] for n in names)]
    _bars(
        ax,
        names,
        [(k, phases[names[0]][k]["label"], [phases[n][k]["runtime_cpu_us"] for n in names])
         for k in keys],
        ylabel="runtime CPU µs per invocation (lower is better)",
        title="Runtime alone (fake API): CPU, 1 KiB echo",
    )  # fmt: skip


def _runtime_rate(ax: Any, s: Section) -> None:
    phases = s.data["phases"]
    names = list(phases)
    keys = [k for k in phases[names[-1]] if all(k in phases[n] for n in names)]
    _bars(
        ax,
        names,
        [(k, phases[names[0]][k]["label"], [phases[n][k]["per_s"] for n in names]) for k in keys],
        ylabel="invocations/s (higher is better)",
        title="Runtime alone (fake API): throughput",
    )


def _runtime_duplex(ax: Any, s: Section) -> None:
    phase = next(iter(s.data["phases"].values()))
    keys = [k for k in ("duplexlambda-duplex", "floor-duplex", "floor-duplex-keepalive")
            if k in phase]  # fmt: skip
    _bars(
        ax,
        ["runtime CPU µs/inv", "round trip p50 µs"],
        [(k, phase[k]["label"], [phase[k]["runtime_cpu_us"], phase[k]["p50_us"]]) for k in keys],
        ylabel="µs (lower is better)",
        title="Duplex 1 KiB round trip (fake API)",
    )


def _streaming(ax: Any, s: Section) -> None:
    cases = s.data["cases"]
    names = list(cases)
    keys = list(next(iter(cases.values())))
    _bars(
        ax,
        [n.replace("download ", "down ").replace("upload", "upload echo") for n in names],
        [(k, cases[names[0]][k]["label"], [cases[n][k]["mb_s"] for n in names]) for k in keys],
        ylabel="MB/s one way (higher is better)",
        title="Streaming through the emulator",
    )


def _ttfb(ax: Any, s: Section) -> None:
    top = 1.2
    for key, samples in s.data["samples"].items():
        if not samples:
            continue
        ys = [(i + 1) / len(samples) for i in range(len(samples))]
        runtime = s.data["runtimes"][key]
        label = f"{runtime['label']} (max {runtime['lag_max_ms']:.1f} ms)"
        ax.step(samples, ys, where="post", label=label, color=COLORS.get(key), linewidth=1.2)
        top = max(top, samples[min(len(samples) - 1, int(len(samples) * 0.995))] * 1.15)
    ax.axvline(1.0, color="#d62728", linestyle=":", linewidth=1, label="target: p99 <= 1 ms")
    ax.axhline(0.99, color="#bbbbbb", linestyle="--", linewidth=0.8)
    ax.set_xlim(0, top)
    ax.set_xlabel("lag = client arrival - scheduled write (ms)", fontsize=8)
    ax.set_ylabel("fraction of 16 B writes", fontsize=8)
    ax.set_title("Time to first byte: 16 B every 10 ms (CDF)", fontsize=9.5)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False, loc="lower right")


def _memory(ax: Any, s: Section) -> None:
    runtimes = s.data["runtimes"]
    keys = list(runtimes)
    groups = [
        "runtime idle",
        "runtime peak\n(down)",
        "runtime peak\n(echo)",
        "emulator peak\n(echo)",
    ]
    fields = [
        "runtime_idle_mib",
        "download_runtime_peak_mib",
        "upload_echo_runtime_peak_mib",
        "upload_echo_emulator_peak_mib",
    ]
    _bars(
        ax,
        groups,
        [(k, runtimes[k]["label"], [runtimes[k][f] for f in fields]) for k in keys],
        ylabel="MiB RSS (lower is better)",
        title=f"Memory while streaming {runtimes[keys[0]]['bytes'] // 2**20} MiB",
        digits=1,
    )


def _coldstart(ax: Any, s: Section) -> None:
    modes = s.data["modes"]
    names = list(modes)
    keys = list(modes[names[0]])
    _bars(
        ax,
        names,
        [(k, modes[names[0]][k]["label"], [modes[n][k]["to_response_p50_ms"] for n in names])
         for k in keys],
        ylabel="ms to the first response, p50 (lower is better)",
        title="Cold start to the first response posted",
        digits=1,
    )  # fmt: skip


CODEC_COLORS = {
    "duplexlambda C": COLORS["duplexlambda"],
    "duplexlambda Python": COLORS["duplexlambda-async"],
    "memcpy baseline": COLORS["floor"],
}


def _codec(ax: Any, s: Section) -> None:
    rows = [r for r in s.data["rows"] if r["op"] == "decode"]
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    others = iter(["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"])
    for impl in impls:
        mine = sorted((r["chunk_size"], r["mb_per_s"]) for r in rows if r["impl"] == impl)
        ours = impl == "duplexlambda C"
        ax.plot(
            [c for c, _ in mine],
            [v for _, v in mine],
            "-" if ours else "--",
            marker="o",
            markersize=3,
            label=impl,
            color=CODEC_COLORS.get(impl) or next(others, None),
            linewidth=2 if ours else 1,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("chunk size (bytes, 64 KiB reads)", fontsize=8)
    ax.set_ylabel("MB/s decoded (log, higher is better)", fontsize=8)
    ax.set_title("Chunked decode (benchmarks/codec.py)", fontsize=9.5)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)


PANELS = {
    "roundtrip": (_roundtrip_latency, _roundtrip_rate),
    "runtime": (_runtime_cpu, _runtime_rate, _runtime_duplex),
    "streaming": (_streaming,),
    "ttfb": (_ttfb,),
    "memory": (_memory,),
    "coldstart": (_coldstart,),
    "codec": (_codec,),
}


def draw_chart(
    path: Path, machine: dict[str, str], meta: dict[str, Any], sections: Sequence[Section]
) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(draw, s) for s in sections for draw in PANELS.get(s.name, ())]
    if not panels:
        return False
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows + 0.9), squeeze=False)
    for ax, (draw, section) in zip(axes.flat, panels, strict=False):
        draw(ax, section)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    kind = "QUICK smoke run, not numbers to quote" if meta["quick"] else "full run"
    fig.suptitle(
        f"duplexlambda vs awslambdaric vs a raw-socket floor — {kind}, {meta['date']}\n"
        f"{machine['cpu']}, {machine['cores']} cores, {machine['python']}, "
        f"{machine['loop']}, {machine['os']}; load {machine['load average at start']}"
        " at start",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- files


def write_results(
    out: Path,
    machine: dict[str, str],
    meta: dict[str, Any],
    sections: Sequence[Section],
    *,
    chart: bool = True,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine,
        "meta": meta,
        "sections": {s.name: asdict(s) for s in sections},
    }
    paths = [out / "latest.json", out / "latest.md"]
    paths[0].write_text(json.dumps(_clean(document), indent=1, allow_nan=False) + "\n")
    paths[1].write_text(render_markdown(machine, meta, sections))
    if chart and draw_chart(out / "latest.png", machine, meta, sections):
        paths.append(out / "latest.png")
    return paths


def _clean(value: Any) -> Any:
    """NaN and infinities (a ratio with nothing to divide by) as null: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
