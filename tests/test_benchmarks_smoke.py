"""``python -m benchmarks all --quick``: it runs, writes its three files, they parse and hold
every benchmark's numbers, and no process it started outlives it.

The numbers themselves are not judged (a benchmark is not a test): only that each
benchmark measured something plausible and said whether it met its targets.
"""

from __future__ import annotations

import json
import os
import pathlib
import struct
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from benchmarks.common import GOALS

REPO = pathlib.Path(__file__).resolve().parents[1]
SECTIONS = ["roundtrip", "runtime", "streaming", "ttfb", "memory", "coldstart", "codec"]
#: Every goal of issue #14 must come out of the run as a target line with a verdict.
ISSUE_14_GOALS = [
    ("runtime", "concurrency 1: duplexlambda def runtime CPU/invocation <= 0.5x awslambdaric"),
    ("runtime", "concurrency 1: duplexlambda async def runtime CPU/invocation <= 0.5x"),
    ("runtime", "concurrency 4: duplexlambda def invocations/s >= awslambdaric"),
    ("runtime", "concurrency 4: duplexlambda async def invocations/s >= awslambdaric"),
    ("runtime", "duplex 1 KiB round trip: runtime CPU <= 1.3x the floor"),
    ("runtime", "duplex 1 KiB round trip: p50 <= 1.10x the floor"),
    ("coldstart", "with .pyc: duplexlambda def to first response <= 1.0x awslambdaric def"),
    ("coldstart", "with .pyc: duplexlambda async def to first response <= 1.0x awslambdaric +"),
    ("coldstart", "without .pyc: duplexlambda def to first response <= 1.0x awslambdaric def"),
    ("coldstart", "without .pyc: duplexlambda async def to first response <= 1.0x awslambdaric"),
    ("roundtrip", "emulator CPU per relayed invocation <= 2x the runtime's"),
    ("streaming", "download 64 KiB: streaming through the emulator >= 2 GB/s"),
]
#: --quick is meant to take well under a minute; a run this long means it stopped being quick.
QUICK_LIMIT = 120.0

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _png_size(path: pathlib.Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _tagged_pids(tag: str) -> list[int]:
    """Live processes whose environment carries ``tag`` (our run's children inherit it)."""
    found = []
    needle = f"DUPLEXLAMBDA_BENCH_SMOKE={tag}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = pathlib.Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, str, float]:
    pytest.importorskip("awslambdaric")
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("bench")
    tag = uuid.uuid4().hex
    env = dict(os.environ, DUPLEXLAMBDA_BENCH_SMOKE=tag)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "all", "--quick", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr}"
    leftovers = _tagged_pids(tag)
    assert not leftovers, f"processes left running by the benchmarks: {leftovers}"
    return out, proc.stdout, elapsed


def test_quick_run_is_quick(quick_run: tuple[pathlib.Path, str, float]) -> None:
    _, _, elapsed = quick_run
    assert elapsed < QUICK_LIMIT, f"--quick took {elapsed:.0f} s"


def test_files_exist_and_parse(quick_run: tuple[pathlib.Path, str, float]) -> None:
    out, stdout, _ = quick_run
    doc = _strict_json((out / "latest.json").read_text())
    assert doc["meta"]["quick"] is True
    assert list(doc["sections"]) == SECTIONS
    for key in ("cpu", "cores", "python", "loop"):
        assert doc["machine"][key]
    for name, section in doc["sections"].items():
        assert section["tables"], name
        for table in section["tables"]:
            assert table["rows"], (name, table["title"])
            assert all(len(row) == len(table["columns"]) for row in table["rows"])
        for target in section["targets"]:
            assert target["text"]
            assert target["met"] in (True, False, None)

    markdown = (out / "latest.md").read_text()
    assert markdown.startswith("# duplexlambda benchmarks")
    assert "## Summary" in markdown
    assert "## Targets" in markdown
    assert "![benchmark chart](latest.png)" in markdown
    for section in doc["sections"].values():
        assert f"## {section['title']}" in markdown
        assert f"## {section['title']}" in stdout  # printed as it finishes, too

    width, height = _png_size(out / "latest.png")
    assert width >= 800
    assert height >= 400


def test_every_benchmark_measured_something(quick_run: tuple[pathlib.Path, str, float]) -> None:
    out, _, _ = quick_run
    sections = _strict_json((out / "latest.json").read_text())["sections"]

    phases = sections["roundtrip"]["data"]["phases"]
    assert len(phases) == 2
    for phase in phases.values():
        assert set(phase) == {"duplexlambda", "duplexlambda-async", "awslambdaric", "floor"}
        for row in phase.values():
            assert row["invocations"] > 0
            assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
            assert row["per_s"] > 0

    cases = sections["streaming"]["data"]["cases"]
    assert set(cases) == {"download 64 KiB", "download 1 KiB", "upload"}
    for case in cases.values():
        assert set(case) == {"duplexlambda", "floor"}
        for row in case.values():
            assert row["mb_s"] > 0
            assert row["bytes"] > 0

    ttfb = sections["ttfb"]["data"]
    for key, row in ttfb["runtimes"].items():
        assert row["ticks"] > 0
        assert len(ttfb["samples"][key]) == row["ticks"]
        assert row["merged_framing"] >= 0

    for row in sections["memory"]["data"]["runtimes"].values():
        assert 0 < row["runtime_idle_mib"] <= row["upload_echo_runtime_peak_mib"] + 1
        assert row["upload_echo_emulator_peak_mib"] > 0

    alone = sections["runtime"]["data"]["phases"]
    assert set(alone) == {"concurrency 1", "concurrency 4"}
    buffered = {
        "duplexlambda", "duplexlambda-async", "awslambdaric", "awslambdaric-asyncio", "floor",
    }  # fmt: skip
    duplex = {"duplexlambda-duplex", "floor-duplex", "floor-duplex-keepalive"}
    assert set(alone["concurrency 1"]) == buffered | duplex
    assert set(alone["concurrency 4"]) == buffered
    for phase in alone.values():
        for row in phase.values():
            assert row["invocations"] > 0
            assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"]
            assert row["per_s"] > 0
            assert row["runtime_cpu_us"] > 0
            assert row["fakeapi_cpu_us"] > 0

    cold = sections["coldstart"]["data"]
    assert set(cold["modes"]) == {"with .pyc", "without .pyc"}
    for mode in cold["modes"].values():
        assert set(mode) == buffered
        for row in mode.values():
            assert 0 < row["to_next_p50_ms"] <= row["to_response_p50_ms"] < 10_000
            assert row["rss_at_response_mib"] > 0
    assert cold["runtimes"]["duplexlambda"]["importtime_top"]
    assert cold["runtimes"]["awslambdaric"]["importtime_top"]

    codec = sections["codec"]["data"]["rows"]
    assert {row["op"] for row in codec} == {"decode", "encode"}
    assert all(row["mb_per_s"] > 0 for row in codec)


def test_every_goal_of_issue_14_has_a_verdict(quick_run: tuple[pathlib.Path, str, float]) -> None:
    out, _, _ = quick_run
    sections = _strict_json((out / "latest.json").read_text())["sections"]
    markdown = (out / "latest.md").read_text()
    for name, start in ISSUE_14_GOALS:
        found = [t for t in sections[name]["targets"] if start in t["text"]]
        assert found, (name, start)
        for target in found:
            assert target["met"] in (True, False), target  # measured, not skipped
            assert target["measured"]
            assert target["goal"], target
            assert target["text"] in markdown
    goals = markdown.split("## Goals of issue #14", 1)[1].split("\n## ", 1)[0]
    tagged = {t["goal"] for s in sections.values() for t in s["targets"] if t.get("goal")}
    assert tagged == set(GOALS)  # every goal measured by at least one line
    for goal in GOALS.values():
        assert goal in goals
    assert "not evaluated" not in goals
