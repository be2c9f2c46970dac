"""``duplexlambda package``: build the zip for this machine, unzip it, and run its
``bootstrap`` with Lambda's environment and a Python that has none of the dependencies
(``-I -S``: no site-packages at all) against ``duplexlambda serve --no-runtime`` — both
as a ``provided.al2023`` entry point and as a managed runtime's ``AWS_LAMBDA_EXEC_WRAPPER``.
The only network use is pip's (PyPI); without it these tests skip and say why."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator

import pytest

from duplexlambda.package import (
    NETWORK_ERRORS,
    PackageError,
    PackageResult,
    bootstrap_script,
    build_zip,
    codec_problem,
    host_machine,
    platform_parts,
    required_glibc,
)

from ..support.serve_process import Serve
from ..support.wire import request
from .lambda_env import EXAMPLES, ROOT, bare_python, lambda_env, write_script

VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
DEPENDENCIES = ["msgspec", "httptools", "uvloop", "cffi", "_cffi_backend", "duplexlambda"]

needs_sh = pytest.mark.skipif(shutil.which("sh") is None, reason="bootstrap is a sh script")


def build(src: pathlib.Path, out: pathlib.Path, **kwargs: str) -> PackageResult:
    try:
        return build_zip(src, out, say=lambda _message: None, **kwargs)  # type: ignore[arg-type]
    except PackageError as exc:
        if exc.network:
            pytest.skip(f"PyPI is unreachable, so pip cannot fetch the wheels: {exc}")
        raise


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    out = tmp_path_factory.mktemp("package") / "function.zip"
    return build(EXAMPLES, out, python_version=VERSION, platform=f"manylinux2014_{host_machine()}")


@pytest.fixture(scope="module")
def task_root(built: PackageResult, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The zip unpacked as Lambda unpacks it into /var/task (file modes kept)."""
    root = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(built.path) as archive:
        for info in archive.infolist():
            archive.extract(info, root)
            if mode := (info.external_attr >> 16) & 0o777:
                (root / info.filename).chmod(mode)
    return root


@pytest.fixture(scope="module")
def plain_python(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A ``python3`` with nothing installed: the bare interpreter with no site-packages."""
    path = write_script(
        tmp_path_factory.mktemp("plain-bin") / "python3", f'exec {bare_python()} -I -S "$@"'
    )
    for module in DEPENDENCIES:
        probe = subprocess.run(
            [str(path), "-c", f"import {module}"], capture_output=True, text=True, timeout=30
        )
        assert probe.returncode == 1, f"{module} is importable without the zip"
        assert "ModuleNotFoundError" in probe.stderr
    return path


def test_zip_contents(built: PackageResult) -> None:
    assert built.codec == "c"
    assert built.warnings == []
    assert built.zip_bytes == built.path.stat().st_size
    assert built.zip_bytes < 50 * 1024 * 1024  # Lambda's direct-upload limit
    with zipfile.ZipFile(built.path) as archive:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        assert archive.testzip() is None
    names = set(modes)
    assert modes["bootstrap"] == 0o755
    assert {"csv_stats.py", "digest.py", "sse_tokens.py", "classic.py"} <= names  # at the root
    assert "duplexlambda/pipeline.py" in names
    assert any(n.startswith("duplexlambda/_chunked_cffi") and n.endswith(".so") for n in names)
    for top in ("msgspec/", "httptools/", "uvloop/", "cffi/"):
        assert any(n.startswith(top) for n in names), top
    assert not any(n.startswith("bin/") for n in names)  # scripts for the build machine
    # Bytecode for every module, built for this Python as unchecked-hash .pyc (the source's
    # own stale __pycache__ is never copied: only files compiled from the zip's sources).
    tag = sys.implementation.cache_tag
    for module in ("csv_stats", "duplexlambda/runtime/blocking", "msgspec/__init__"):
        folder, _, name = module.rpartition("/")
        pyc = f"{folder + '/' if folder else ''}__pycache__/{name}.{tag}.pyc"
        assert pyc in names, pyc
    cached = {n for n in names if "__pycache__/" in n}
    assert all(n.endswith(f".{tag}.pyc") for n in cached), cached
    with zipfile.ZipFile(built.path) as archive:
        flags = int.from_bytes(archive.read(f"__pycache__/csv_stats.{tag}.pyc")[4:8], "little")
    assert flags == 0b01  # hash-based, unchecked (PEP 552)


@needs_sh
@pytest.mark.parametrize("how", ["provided-al2023", "exec-wrapper"])
def test_bootstrap_serves_with_nothing_installed(
    how: str, task_root: pathlib.Path, plain_python: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    serve = Serve("--no-runtime", "--port", "0", "--runtime-api-port", "0")
    runtime = None
    try:
        env = lambda_env(serve.runtime_api, "digest.handler", task_root)
        if how == "provided-al2023":  # Lambda runs bootstrap; python3 comes from PATH
            env["PATH"] = f"{plain_python.parent}:{env['PATH']}"
            argv = [str(task_root / "bootstrap")]
        else:  # the managed runtime runs the wrapper with its own command line
            decoy = write_script(tmp_path / "decoy" / "python3", "echo wrong python >&2; exit 99")
            env["PATH"] = f"{decoy.parent}:{env['PATH']}"  # must not be used
            env["AWS_LAMBDA_EXEC_WRAPPER"] = str(task_root / "bootstrap")
            argv = [str(task_root / "bootstrap"), str(plain_python), "/var/runtime/bootstrap.py"]
        runtime = subprocess.Popen(
            argv,
            cwd=task_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        data = random.Random(7).randbytes(512 * 1024)  # gzipped on the wire
        wire = gzip.compress(data)
        pieces = [wire[i : i + 8192] for i in range(0, len(wire), 8192)]

        async def upload() -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece
                await asyncio.sleep(0.01)

        reply = asyncio.run(
            request(
                serve.url,
                "POST",
                "/?every=65536",
                headers=[("Content-Encoding", "gzip")],
                body=upload(),
            )
        )
        assert reply.status == 200, reply.body
        lines = [json.loads(line) for line in reply.body.splitlines()]
        assert lines[-1] == {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "encoding": "gzip",
        }
        assert len(lines) >= 5  # progress lines...
        assert reply.chunks[0][0] - reply.started < 0.01 * len(pieces) / 2  # ...while uploading
    finally:
        output = ""
        if runtime is not None:
            runtime.send_signal(signal.SIGTERM)  # Lambda's shutdown: finish, then exit 0
            output, _ = runtime.communicate(timeout=20)
        assert serve.stop() == 0
    assert runtime.returncode == 0, output
    # The zip's own compiled dependencies were used: the C codec and uvloop.
    assert "handler digest.handler (duplex), codec c, loop uvloop" in output, output


@needs_sh
def test_bootstrap_says_what_is_wrong(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "bootstrap"
    script.write_text(bootstrap_script("3.99"))
    script.chmod(0o755)
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    missing = subprocess.run(
        [str(script)], env={"PATH": "/usr/bin:/bin", "DUPLEXLAMBDA_PYTHON": "no-such-python"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert missing.returncode == 127
    assert "no Python interpreter 'no-such-python'" in missing.stderr
    wrong = subprocess.run(
        [str(script), bare_python()], env={"PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert f"built for Python 3.99, not {VERSION}" in wrong.stderr
    assert f"--python-version {VERSION}" in wrong.stderr


def test_cross_build_falls_back_to_the_python_codec_loudly(tmp_path: pathlib.Path) -> None:
    other = "aarch64" if host_machine() != "aarch64" else "x86_64"
    out = tmp_path / "cross.zip"
    result = subprocess.run(
        [
            sys.executable, "-m", "duplexlambda", "package", str(EXAMPLES), "-o", str(out),
            "--python-version", "3.12", "--platform", f"manylinux2014_{other}",
        ],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    if result.returncode != 0 and NETWORK_ERRORS.search(result.stderr):
        pytest.skip(f"PyPI is unreachable, so pip cannot fetch the wheels: {result.stderr}")
    assert result.returncode == 0, result.stderr
    assert "WARNING: the C codec cannot be cross-built" in result.stderr
    assert "pure-Python chunk codec" in result.stderr
    assert result.stdout.rstrip().endswith(
        f"for CPython 3.12 on manylinux2014_{other}, codec python"
    )
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert not any("_chunked_cffi" in n for n in names)  # nothing built for the wrong machine
    assert any(n.startswith("msgspec/_core.cpython-312-") and other in n for n in names)


def test_codec_checks() -> None:
    elf = b"\x7fELF...memcpy\0GLIBC_2.14\0GLIBC_2.2.5\0"
    assert required_glibc(elf) == (2, 14)
    assert required_glibc(b"") == (0, 0)
    assert platform_parts("manylinux2014_aarch64") == ((2, 17), "aarch64")
    assert platform_parts("manylinux_2_28_x86_64") == ((2, 28), "x86_64")
    assert codec_problem("manylinux2014_x86_64", elf, machine="x86_64") is None
    assert "cross-built for aarch64" in str(codec_problem("manylinux2014_aarch64", elf, "x86_64"))
    new = b"GLIBC_2.34"
    assert "needs glibc 2.34" in str(codec_problem("manylinux2014_x86_64", new, "x86_64"))
    assert codec_problem("manylinux_2_34_x86_64", new, "x86_64") is None
    with pytest.raises(ValueError, match="manylinux"):
        platform_parts("win_amd64")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-dir"], "no-such-dir is not a directory"),
        ([str(EXAMPLES), "--python-version", "3.9"], "must be 3.11 or newer"),
        ([str(EXAMPLES), "--platform", "win_amd64"], "not a manylinux platform tag"),
    ],
)
def test_package_errors_are_one_line(args: list[str], message: str, tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "duplexlambda", "package", *args, "-o", str(tmp_path / "x.zip")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "x.zip")
