"""``duplexlambda new``: the project it writes passes as generated, for every --style: its
tests run, its template has the shape of ours, ``serve`` streams it, ruff is happy."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from duplexlambda.__main__ import main
from duplexlambda.new import STYLES

from ..deploy import test_sam_templates as sam
from ..support.serve_process import Serve
from ..support.wire import request

FILES = {
    "app.py",
    "test_app.py",
    "template.yaml",
    "README.md",
    "requirements.txt",
    ".gitignore",
    "pyproject.toml",
}
RUFF = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")


@pytest.fixture(params=STYLES)
def project(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> tuple[str, pathlib.Path]:
    style: str = request.param
    assert main(["new", "my-func", "--dir", str(tmp_path), "--style", style]) == 0
    return style, tmp_path / "my-func"


def test_writes_the_files(project: tuple[str, pathlib.Path]) -> None:
    _, root = project
    assert {p.name for p in root.iterdir()} == FILES
    assert (root / "requirements.txt").read_text() == "duplexlambda\n"
    readme = (root / "README.md").read_text()
    for command in ("duplexlambda serve app.handler", "pytest", "duplexlambda package .", "sam"):
        assert command in readme


def test_generated_tests_pass(project: tuple[str, pathlib.Path]) -> None:
    _, root = project
    proc = subprocess.run(
        # (the lambda_client fixture comes from the plugin's pytest11 entry point)
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-W",
            "error",
            "-p",
            "no:cacheprovider",
            "test_app.py",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


def test_template_has_the_shape_of_ours(project: tuple[str, pathlib.Path]) -> None:
    _, root = project
    document = sam.load(root / "template.yaml")
    sam.test_common_shape(("new", document))
    props = sam.function(document)
    assert props["Runtime"] == "provided.al2023"
    assert props["Handler"] == "app.handler"
    assert props["CodeUri"] == "function.zip"
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in props.get("Environment", {}).get("Variables", {})
    assert props["Layers"] == [{"Ref": "PythonLayerArn"}]
    assert "PythonLayerArn" in document["Parameters"]
    # The package command it documents builds that zip for this Python and machine.
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    command = (
        f"duplexlambda package . -o function.zip --python-version {python}"
        f" --platform manylinux2014_{props['Architectures'][0]}"
    )
    assert command in (root / "template.yaml").read_text()
    assert command in (root / "README.md").read_text()


def test_generated_code_passes_ruff(project: tuple[str, pathlib.Path]) -> None:
    _, root = project
    assert RUFF, "ruff is not installed"
    for args in (["check"], ["format", "--check"]):
        proc = subprocess.run(
            [RUFF, *args, "--no-cache", "."], cwd=root, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


async def _pieces(sent: list[float], *parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        sent.append(time.monotonic())
        yield part
        await asyncio.sleep(0.3)


@pytest.mark.asyncio
async def test_serve_streams_it(project: tuple[str, pathlib.Path]) -> None:
    style, root = project
    serve = Serve("app.handler", "--task-root", str(root), "--port", "0", "--runtime-api-port", "0")
    sent: list[float] = []
    try:
        warm = await request(serve.url, "POST", "/", body=b"warm")  # the cold start, done
        reply = await request(
            serve.url, "POST", "/", body=_pieces(sent, b"one ", b"two ", b"three")
        )
    finally:
        assert serve.stop() == 0
    assert (warm.status, warm.body) == (200, b"WARM")
    assert reply.status == 200
    assert reply.body == b"ONE TWO THREE"
    if style == "buffered":  # answered once, after the upload ended
        assert len(reply.chunks) == 1
        assert reply.chunks[0][0] > sent[-1]
    else:  # one chunk per piece, the first back while the upload still goes on
        assert [data for _, data in reply.chunks] == [b"ONE ", b"TWO ", b"THREE"]
        assert reply.chunks[0][0] < sent[-1]


@pytest.mark.parametrize("name", ["1abc", "a b", "has.dot", "class", "", "x" * 65])
def test_refuses_a_bad_name(
    name: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", name, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "invalid project name" in err
    assert not any(tmp_path.iterdir())


def test_refuses_a_non_empty_directory(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "keep.txt").write_text("mine")
    assert main(["new", "app", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "already exists and is not empty" in err
    assert [p.name for p in (tmp_path / "app").iterdir()] == ["keep.txt"]


def test_an_empty_directory_is_used(tmp_path: pathlib.Path) -> None:
    (tmp_path / "app").mkdir()
    assert main(["new", "app", "--dir", str(tmp_path)]) == 0
    assert {p.name for p in (tmp_path / "app").iterdir()} == FILES


def test_package_leaves_the_duplexlambda_requirement_to_itself(tmp_path: pathlib.Path) -> None:
    # The generated requirements.txt names duplexlambda: `duplexlambda package .` puts its own
    # build in the zip, so pip is not asked for it (a relative -r still resolves).
    from duplexlambda.package import requirements_without_self

    src, work = tmp_path / "src", tmp_path / "work"
    src.mkdir()
    work.mkdir()
    plain = src / "plain.txt"
    plain.write_text("msgspec\n")
    assert requirements_without_self(plain, work) == plain
    named = src / "requirements.txt"
    named.write_text(
        "DuplexLambda[reload]>=0.1 ; python_version >= '3.11'\n"
        "duplexlambda-extras\n-r plain.txt\nhttptools\n"
    )
    filtered = requirements_without_self(named, work)
    assert filtered.parent == work
    assert filtered.read_text() == f"duplexlambda-extras\n-r {src / 'plain.txt'}\nhttptools\n"
