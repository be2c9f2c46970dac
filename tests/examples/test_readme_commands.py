"""Every command in examples/README.md, run as written against a real ``duplexlambda
serve`` child process (its port swapped in), and its output checked. Also checks the
per-invocation log line ``serve`` prints (bytes in/out, duration, time to first byte)."""

from __future__ import annotations

import functools
import hashlib
import json
import pathlib
import random
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from examples.gen_data import csv_lines, ndjson_lines

from ..pipeline.sse_client import parse
from ..support.serve_process import Serve

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "examples" / "README.md"

#: rows of the CSV the README's commands upload
ROWS = 300000
#: curl's exit status for a body cut short (no terminating chunk)
CURL_PARTIAL_FILE = 18

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("gzip") and shutil.which("bash")),
    reason="the README commands need curl, gzip and bash",
)


def sections() -> dict[str, list[str]]:
    """``{example: [serve command, command, ...]}`` from the README's bash blocks."""
    text = README.read_text()
    found: dict[str, list[str]] = {}
    for name, block in re.findall(r"^## (\w+)\.py\n.*?```bash\n(.*?)```", text, re.M | re.S):
        found[name] = [line for line in block.splitlines() if line.strip()]
    return found


SECTIONS = sections()


def test_every_example_has_a_section() -> None:
    handlers = {p.stem for p in (ROOT / "examples").glob("*.py")} - {"__init__", "gen_data"}
    assert set(SECTIONS) == handlers
    for name, lines in SECTIONS.items():
        assert lines[0] == f"duplexlambda serve examples.{name}.handler"
        assert len(lines) >= 2


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Serve]]:
    """One ``serve`` per example, started side by side."""
    running: dict[str, Serve] = {}
    try:
        for name, lines in SECTIONS.items():
            args = shlex.split(lines[0])[2:]
            running[name] = Serve(*args, "--port", "0", "--runtime-api-port", "0", cwd=str(ROOT))
        for serve in running.values():
            serve.wait_for(r"duplexlambda runtime: handler", serve.err)
        yield running
    finally:
        codes = {name: serve.stop() for name, serve in running.items()}
        assert codes == dict.fromkeys(running, 0)


def run_command(command: str, url: str) -> tuple[int, str]:
    command = command.replace("http://127.0.0.1:9000/", url)
    command = re.sub(r"^python ", shlex.quote(sys.executable) + " ", command)
    assert url in command
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, CURL_PARTIAL_FILE), result.stderr.decode()
    return result.returncode, result.stdout.decode()


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


@functools.cache
def csv_data(rows: int) -> bytes:
    return "".join(csv_lines(rows, random.Random(42))).encode()


def check_csv_stats(outputs: list[str]) -> None:
    lines = json_lines(outputs[0])
    assert [line["type"] for line in lines] == ["progress"] * 6 + ["total"]
    assert lines[-1]["rows"] == ROWS
    groups = lines[-1]["groups"]
    assert isinstance(groups, dict)
    assert sum(g["count"] for g in groups.values()) == ROWS - ROWS // 1000  # 1 in 1000 blank


def check_digest(outputs: list[str]) -> None:
    *progress, total = json_lines(outputs[0])
    data = csv_data(ROWS)
    assert total == {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "encoding": "gzip",
    }
    assert len(progress) == len(data) >> 20  # one per MiB (inflated in 64 KiB pieces)


def check_ndjson_filter(outputs: list[str]) -> None:
    matches = json_lines(outputs[0])
    every = [json.loads(line) for line in ndjson_lines(100000, random.Random(42))]
    expected = [r for r in every if r["level"] == "error" and r["service"] == "auth"]
    assert matches == expected
    assert 1000 < len(matches) < 10000


def check_sse_tokens(outputs: list[str]) -> None:
    capped = parse(outputs[0].encode()).events
    assert [e.event for e in capped] == ["token"] * 12 + ["done"]
    assert "".join(e.data for e in capped[:4]) == "You asked: Tell me"
    failed = parse(outputs[1].encode()).events
    assert [e.event for e in failed] == ["token", "token", "token", "error"]
    assert json.loads(failed[-1].data)["message"] == "the model stopped after 3 tokens"


def check_html_stream(outputs: list[str]) -> None:
    found = re.fullmatch(r"TTFB ([\d.]+)s, total ([\d.]+)s\n", outputs[0])
    assert found, outputs[0]
    ttfb, total = float(found[1]), float(found[2])
    assert ttfb < 0.5, ttfb  # the shell, at once
    assert total >= 1.0  # the slow section, a second later


def check_classic(outputs: list[str]) -> None:
    body = json.loads(outputs[0])
    assert (body["hello"], body["method"], body["path"]) == ("Ada", "GET", "/hello")


def check_echo(outputs: list[str]) -> None:
    sent = "".join(ndjson_lines(1000, random.Random(42)))
    assert outputs[0] == sent.upper()


CHECKS: dict[str, Callable[[list[str]], None]] = {
    "csv_stats": check_csv_stats,
    "digest": check_digest,
    "ndjson_filter": check_ndjson_filter,
    "sse_tokens": check_sse_tokens,
    "html_stream": check_html_stream,
    "classic": check_classic,
    "echo": check_echo,
}


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_readme_commands(name: str, servers: dict[str, Serve]) -> None:
    serve = servers[name]
    results = [run_command(command, serve.url) for command in SECTIONS[name][1:]]
    outputs = [out for _, out in results]
    # Only the stream that failed on purpose was cut short (curl tells: exit 18).
    failing = [i for i, command in enumerate(SECTIONS[name][1:]) if "fail_after" in command]
    assert [code for code, _ in results] == [
        CURL_PARTIAL_FILE if i in failing else 0 for i in range(len(results))
    ]
    CHECKS[name](outputs)
    # serve logged one line per invocation: status, bytes in/out, duration, TTFB.
    line = serve.wait_for(
        r"function-url \S+ status=(\d+) error=(\S+) in=(\d+)B out=(\d+)B "
        r"duration=([\d.]+)ms ttfb=([\d.]+)ms",
        serve.err,
    )
    assert int(line[1]) == 200
    assert int(line[4]) == len(outputs[0].encode()) or name == "html_stream"
    if name == "csv_stats":
        assert int(line[3]) == len(csv_data(ROWS))  # every byte of the upload, counted
        assert float(line[6]) < float(line[5])  # the head went out long before the end
