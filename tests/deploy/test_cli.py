"""The command line: ``--help`` with examples for every command, and one-line errors (no
traceback) for a wrong handler string, a missing module and a port in use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from duplexlambda.__main__ import build_parser

from .lambda_env import ROOT

COMMANDS = ["info", "run", "serve", "package", "invoke", "event", "new"]


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duplexlambda", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: duplexlambda {command}" in text
    assert "example" in text
    assert f"duplexlambda {command}" in text.split("example", 1)[1]  # a command line to copy


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert command in text
    assert "duplexlambda serve examples.csv_stats.handler" in text


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("nodots", "bad handler 'nodots': expected module.function"),
        ("no_such_module.handler", "no module 'no_such_module' in"),
        ("examples.no_such_example.handler", "no module 'examples.no_such_example'"),
        ("no_such_package.mod.handler", "no module 'no_such_package.mod'"),
    ],
)
def test_serve_refuses_a_handler_it_cannot_find(handler: str, message: str) -> None:
    result = cli("serve", handler, "--port", "0", "--runtime-api-port", "0")
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"duplexlambda serve: {message}")


@pytest.mark.parametrize("option", ["--port", "--runtime-api-port"])
def test_serve_port_in_use(option: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        other = "--runtime-api-port" if option == "--port" else "--port"
        result = cli("serve", "examples.echo.handler", option, port, other, "0")
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith("duplexlambda serve: cannot listen on 127.0.0.1:")
    assert f"{port}" in line
    assert "address already in use" in line
    assert "--port / --runtime-api-port" in line


def test_building_the_parser_stays_lean() -> None:
    # `duplexlambda run` builds every command's parser: packaging must not cost it imports.
    code = (
        "import sys; from duplexlambda.__main__ import build_parser; build_parser();"
        "print(sorted(m for m in ('zipfile', 'subprocess', 'tempfile', 'duplexlambda.emulator.app',"
        " 'http.client', 'duplexlambda.invoke', 'duplexlambda.example_events')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("http://127.0.0.1:9/a b", "has a space or a control character"),
        ("127.0.0.1", "has no port"),
        ("garbage", "has no port"),
        ("!!!", "bad host"),
        ("https://127.0.0.1:9001", "scheme 'https' is not supported"),
        ("", "AWS_LAMBDA_RUNTIME_API is empty"),
        (None, "AWS_LAMBDA_RUNTIME_API is not set"),
    ],
)
def test_run_refuses_a_bad_runtime_api_address(value: str | None, why: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    if value is not None:
        env["AWS_LAMBDA_RUNTIME_API"] = value
    result = subprocess.run(
        [sys.executable, "-m", "duplexlambda", "run", "examples.echo.handler"],
        capture_output=True, text=True, timeout=30, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert line.startswith("duplexlambda run: AWS_LAMBDA_RUNTIME_API ")
    assert why in line
    assert result.stdout == ""
