"""``duplexlambda invoke`` against a real ``duplexlambda serve`` (one per module): the event
round trip from ``--data``, ``--data-file`` (and stdin) and every ``--example``; ``--stream``
showing chunks as they arrive; function errors, the log tail, qualifiers and client context;
no emulator; usage errors."""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from duplexlambda.example_events import EXAMPLES, example

from ..support.serve_process import Serve

HANDLER = """
import asyncio
import json


async def handler(event, res, context):
    if isinstance(event, dict) and "fail" in event:
        raise ValueError(event["fail"])
    if isinstance(event, dict) and "pieces" in event:
        for i in range(event["pieces"]):
            if i:
                await asyncio.sleep(0.3)
            await res.write(f"piece {i}\\n".encode())
        return
    print("marker-for-the-log-tail")
    custom = context.client_context.custom if context.client_context else None
    await res.write(json.dumps({
        "keys": sorted(event) if isinstance(event, dict) else None,
        "event": event,
        "arn": context.invoked_function_arn,
        "custom": custom,
    }).encode())
"""

CHUNK_LINE = re.compile(r"^\[\+(\d+\.\d+)s\] chunk (\d+): (\d+) B$")


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("invoke")
    (root / "app.py").write_text(HANDLER)
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_MAX_CONCURRENCY"}
    env["DUPLEXLAMBDA_RESPONSE"] = "raw"  # HTTP example events answered as plain bytes too
    serve = Serve(
        "app.handler", "--port", "0", "--runtime-api-port", "0", "--task-root", str(root), env=env
    )
    try:
        url = serve.url
        serve.wait_for(r"runtime started", serve.err)
        yield int(url.rstrip("/").rsplit(":", 1)[1])
    finally:
        serve.stop()


def invoke(
    port: int, *args: str, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duplexlambda", "invoke", "--port", str(port), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def answer(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


def test_invoke_data_round_trip(port: int) -> None:
    got = answer(invoke(port, "--data", '{"name": "Ada", "n": [1, 2]}'))
    assert got["event"] == {"name": "Ada", "n": [1, 2]}
    assert str(got["arn"]).endswith(":function:function")


def test_invoke_without_data_sends_an_empty_object(port: int) -> None:
    assert answer(invoke(port))["event"] == {}


def test_invoke_data_file_and_stdin(port: int, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "event.json"
    path.write_text('{"from": "file"}')
    assert answer(invoke(port, "--data-file", str(path)))["event"] == {"from": "file"}
    got = answer(invoke(port, "--data-file", "-", stdin='{"from": "stdin"}'))
    assert got["event"] == {"from": "stdin"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_reaches_the_handler(port: int, name: str) -> None:
    got = answer(invoke(port, "--example", name))
    assert got["keys"] == sorted(example(name))
    assert got["event"] == example(name)


def test_event_output_piped_into_invoke(port: int) -> None:
    event = subprocess.run(
        [sys.executable, "-m", "duplexlambda", "event", "sqs"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    got = answer(invoke(port, "--data-file", "-", stdin=event))
    assert got["event"] == example("sqs")


def test_qualifier_and_client_context_reach_the_context(port: int) -> None:
    got = answer(invoke(port, "--qualifier", "live", "--client-context", '{"custom": {"a": 1}}'))
    assert str(got["arn"]).endswith(":live")
    assert got["custom"] == {"a": 1}


def test_stream_prints_each_chunk_as_it_arrives(port: int) -> None:
    """The report lines are read as the child writes them: the first arrives well before the
    stream ends, and the times it prints show the handler's 0.3 s gaps."""
    command = [sys.executable, "-m", "duplexlambda", "invoke", "--port", str(port), "--stream"]
    seen: list[tuple[float, str]] = []
    with subprocess.Popen(
        [*command, "--data", '{"pieces": 3}'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        assert proc.stdout is not None
        stderr = proc.stderr

        def pump() -> None:
            for line in stderr:
                seen.append((time.monotonic(), line.rstrip("\n")))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        out = proc.stdout.read()
        assert proc.wait(30) == 0
        reader.join(10)
    assert out == "piece 0\npiece 1\npiece 2\n"
    chunks = [(t, CHUNK_LINE.match(line)) for t, line in seen if CHUNK_LINE.match(line)]
    assert len(chunks) == 3, seen
    printed = [float(m[1]) for _, m in chunks if m]
    assert [m[2] for _, m in chunks if m] == ["1", "2", "3"]
    assert [m[3] for _, m in chunks if m] == ["8", "8", "8"]
    gaps = [b - a for a, b in itertools.pairwise(printed)]
    assert all(0.2 < gap < 1.5 for gap in gaps), printed
    # ... and they reached us as they happened, not in one burst at the end.
    arrived = [t for t, _ in chunks]
    assert arrived[2] - arrived[0] > 0.4, seen
    assert "3 chunks, 24 B, complete at" in seen[-1][1]


def test_stream_timing_table(port: int) -> None:
    result = invoke(port, "--stream", "--timing", "--data", '{"pieces": 3}')
    assert result.returncode == 0, result.stderr
    header, *rows, summary = result.stdout.splitlines()
    assert header.split() == ["chunk", "at", "(s)", "gap", "(s)", "bytes", "data"]
    cells = [row.split() for row in rows]
    assert [c[0] for c in cells] == ["1", "2", "3"]
    assert [c[3] for c in cells] == ["8", "8", "8"]
    assert [c[4] for c in cells] == ["piece", "piece", "piece"]
    at = [float(c[1]) for c in cells]
    assert at == sorted(at)
    assert all(0.2 < float(c[2]) < 1.5 for c in cells[1:]), rows
    assert summary.startswith("3 chunks, 24 B, complete at +")


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "stream"])
def test_function_error_exits_1_with_the_error_shown(port: int, stream: bool) -> None:
    args = ["--stream"] if stream else []
    result = invoke(port, *args, "--data", '{"fail": "boom"}')
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "ValueError: boom" in lines
    after = lines[lines.index("ValueError: boom") + 1 :]
    assert any("app.py" in line and "in handler" in line for line in after), result.stderr
    assert any('raise ValueError(event["fail"])' in line for line in after)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "stream"])
def test_log_tail_is_decoded(port: int, stream: bool) -> None:
    args = ["--stream"] if stream else []
    result = invoke(port, *args, "--log-type", "Tail", "--data", "{}")
    assert result.returncode == 0, result.stderr
    assert "--- log tail ---" in result.stderr
    assert "marker-for-the-log-tail" in result.stderr


def test_api_error_is_one_line_and_exit_1(port: int) -> None:
    result = invoke(port, "--qualifier", "not valid")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert result.stderr.startswith("duplexlambda invoke: ValidationException: ")


def test_no_emulator_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    result = invoke(free, "--data", "{}")
    assert result.returncode == 1
    assert result.stderr == (
        f"no emulator on 127.0.0.1:{free}: start one with `duplexlambda serve HANDLER`\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{nope"], "--data is not JSON"),
        (["--data-file", "/no/such/file.json"], "--data-file: No such file or directory"),
        (["--example", "nope"], "no example 'nope'"),
        (["--client-context", "!!"], "--client-context is neither JSON nor base64"),
        (["--timing"], "--timing needs --stream"),
        (["--data", "{}", "--example", "s3"], "not allowed with argument"),
        (["--log-type", "Everything"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = invoke(9, *args)  # nothing is sent: no emulator needed
    assert result.returncode == 2
    assert message in result.stderr
