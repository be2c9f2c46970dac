"""Package-level contracts: layering, the CLI's info command, which codec is in use."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from duplexlambda.__main__ import main
from duplexlambda.protocol import chunked


def _run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
        timeout=60,
    )
    return result.stdout.strip()


def test_protocol_and_events_layers_never_import_asyncio() -> None:
    # docs/architecture.md (imports): protocol/ is sans-I/O; it must not pull in asyncio, sockets or
    # clocks.
    out = _run_python(
        "import sys, duplexlambda.protocol.chunked, duplexlambda.protocol.prelude,"
        " duplexlambda.protocol.http1, duplexlambda.protocol.runtime_api,"
        " duplexlambda.events.request, duplexlambda.events.answer,"
        " duplexlambda.events.build, duplexlambda.events.reply;"
        "print(sorted(m for m in ('asyncio', 'socket', 'selectors') if m in sys.modules))"
    )
    assert out == "[]"


def test_import_duplexlambda_is_lean() -> None:
    out = _run_python(
        "import sys, duplexlambda;"
        "print(sorted(m for m in ('asyncio', 'msgspec', 'cffi', 'duplexlambda.protocol') "
        "if m in sys.modules))"
    )
    assert out == "[]"


def test_no_extensions_switch_forces_python() -> None:
    out = _run_python(
        "from duplexlambda.protocol import chunked;"
        "print(chunked.IMPL, chunked.ChunkDecoder.__module__, chunked.IMPORT_ERROR)",
        DUPLEXLAMBDA_NO_EXTENSIONS="1",
    )
    impl, module, *why = out.split(" ", 2)
    assert (impl, module) == ("python", "duplexlambda.protocol._chunked_py")
    if chunked.CChunkDecoder is not None:
        assert why == ["disabled by DUPLEXLAMBDA_NO_EXTENSIONS=1"]


def test_bound_to_c_when_built() -> None:
    if os.environ.get("DUPLEXLAMBDA_NO_EXTENSIONS") == "1":
        pytest.skip("this run forces the Python twin")
    if chunked.CChunkDecoder is None:
        pytest.skip(f"C twin not built: {chunked.IMPORT_ERROR}")
    assert chunked.IMPL == "c"
    assert chunked.ChunkDecoder is chunked.CChunkDecoder
    assert chunked.ChunkEncoder is chunked.CChunkEncoder


def test_info_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("duplexlambda ")
    assert lines[1].startswith(f"codec IMPL: {chunked.IMPL}")
    assert lines[2].startswith("event loop: ")
    assert lines[3].startswith(
        f"python: {platform.python_implementation()} {platform.python_version()}"
    )


def test_info_via_python_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "duplexlambda", "info"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "codec IMPL: " in result.stdout


def test_run_skips_the_other_commands_imports() -> None:
    # Cold starts pay for every import before the first /next: `run` must not load argparse,
    # the emulator or the packager.
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "duplexlambda", "run", "app.handler"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2  # no AWS_LAMBDA_RUNTIME_API: a clear error, after parsing
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "duplexlambda.runtime" in imported
    assert not imported & {"argparse", "duplexlambda.emulator.cli", "duplexlambda.package"}


def test_run_help_still_uses_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--asgi" in out
    assert "--wsgi" in out
