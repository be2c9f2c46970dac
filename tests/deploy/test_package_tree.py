"""``duplexlambda package`` reading SRC_DIR: symbolic links, special files, sizes.

A zip holds no links: a link inside SRC_DIR is followed (a file's bytes, a directory's
files), one that leaves SRC_DIR is refused unless ``--allow-external-links`` says otherwise,
and whatever cannot be read as a file (a dangling link, a FIFO, a link cycle) is refused
with one line, exit 2. Past Lambda's 250 MB unzipped the build stops. Files stream into the
zip: a 300 MB sparse file costs no more memory than a small one.

The refusals happen before pip runs, so the command-line tests need no network; the builds
run in process with pip and duplexlambda's own wheel replaced by stand-ins (``offline``).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from duplexlambda import package
from duplexlambda.package import PackageError, PackageResult, build_zip

from .lambda_env import ROOT

MB_300 = 300 * 1024 * 1024
LIMIT = 262_144_000  # Lambda: 250 MB unzipped, layers included

Build = Callable[..., PackageResult]


def cli(src: pathlib.Path, out: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duplexlambda", "package", str(src), "-o", str(out), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str], out: pathlib.Path) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("duplexlambda package: ")
    assert not out.exists()
    assert not out.with_name(out.name + ".partial").exists()
    return lines[0]


def sparse(path: pathlib.Path, size: int) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)  # a hole: no disk, no time
    return path


@pytest.fixture
def src(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "src"
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text("def handler(event, context):\n    return 'app'\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("VALUE = 'mod'\n")
    return root


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Build:
    """``build_zip`` with pip and duplexlambda's wheel replaced: ``deps`` are written into
    pip's ``--target`` as sparse files of the given sizes."""

    def build(
        src: pathlib.Path, out: pathlib.Path, deps: dict[str, int] | None = None, **kwargs: Any
    ) -> PackageResult:
        def fake_pip(args: list[str], what: str) -> None:
            target = pathlib.Path(args[args.index("--target") + 1])
            for name, size in (deps or {}).items():
                sparse(target / name, size)

        def fake_own(work: pathlib.Path, staging: pathlib.Path) -> None:
            (staging / "duplexlambda").mkdir()
            (staging / "duplexlambda" / "__init__.py").write_text("")

        monkeypatch.setattr(package, "_run_pip", fake_pip)
        monkeypatch.setattr(package, "_install_own_package", fake_own)
        return build_zip(src, out, say=lambda _message: None, **kwargs)

    return build


def names(path: pathlib.Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


# --- symbolic links ------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["file", "directory"])
def test_link_leaving_src_is_refused(what: str, src: pathlib.Path, tmp_path: pathlib.Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    target = pathlib.Path("/etc/passwd") if what == "file" else outside
    (src / "pkg" / "leak").symlink_to(target)
    out = tmp_path / "function.zip"
    line = one_line_error(cli(src, out), out)
    assert (
        f"{src / 'pkg' / 'leak'} is a symbolic link to {target.resolve()}, outside SRC_DIR" in line
    )
    assert "--allow-external-links" in line


def test_link_leaving_src_is_included_when_asked_loudly(
    src: pathlib.Path, tmp_path: pathlib.Path, offline: Build
) -> None:
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "util.py").write_text("SHARED = 1\n")
    (src / "shared").symlink_to(outside)
    result = offline(src, tmp_path / "f.zip", allow_external_links=True)
    assert "shared/util.py" in names(result.path)
    loud = [w for w in result.warnings if "outside SRC_DIR" in w]
    assert len(loud) == 1
    assert f"{src / 'shared'} is a symbolic link to {outside}" in loud[0]
    assert "--allow-external-links" in loud[0]


def test_links_inside_src_are_followed(
    src: pathlib.Path, tmp_path: pathlib.Path, offline: Build
) -> None:
    (src / "linked").symlink_to("pkg", target_is_directory=True)  # relative, as git makes them
    (src / "alias.py").symlink_to(src / "app.py")
    (src / "pkg" / "again").symlink_to("../pkg/mod.py")  # a link to a file, through a dir
    result = offline(src, tmp_path / "f.zip")
    found = names(result.path)
    assert {"app.py", "alias.py", "pkg/mod.py", "linked/__init__.py", "linked/mod.py"} <= found
    assert "pkg/again" in found
    assert not [w for w in result.warnings if "link" in w]
    # The deployed import works: the zip's root on sys.path, as bootstrap puts it.
    root = tmp_path / "task"
    with zipfile.ZipFile(result.path) as archive:
        archive.extractall(root)
    imported = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path[:0] = [sys.argv[1]];"
         "import alias, linked.mod; print(alias.handler(None, None), linked.mod.VALUE)",
         str(root)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert imported.stdout.split() == ["app", "mod"], imported.stderr


@pytest.mark.parametrize("where", ["src", "parent", "self"])
def test_link_cycle_is_refused(where: str, src: pathlib.Path, tmp_path: pathlib.Path) -> None:
    target = {"src": src, "parent": pathlib.Path(".."), "self": pathlib.Path(".")}[where]
    (src / "pkg" / "loop").symlink_to(target, target_is_directory=True)
    out = tmp_path / "function.zip"
    line = one_line_error(cli(src, out), out)
    assert f"{src / 'pkg' / 'loop'} is a symbolic link to a directory that contains it" in line


# --- what cannot be read, sizes, memory ----------------------------------------------------


@pytest.mark.parametrize("kind", ["dangling", "link-loop", "fifo"])
def test_unreadable_entries_are_one_line_errors(
    kind: str, src: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    bad = src / "pkg" / "bad"
    if kind == "dangling":
        bad.symlink_to("no-such-file.py")
        expected = f"{bad} is a dangling symbolic link (to no-such-file.py)"
    elif kind == "link-loop":
        bad.symlink_to("other")
        (src / "pkg" / "other").symlink_to("bad")
        expected = "is a symbolic link loop"
    else:
        os.mkfifo(bad)
        expected = f"{bad} is a FIFO (named pipe): only files and directories go in a zip"
    out = tmp_path / "function.zip"
    assert expected in one_line_error(cli(src, out), out)


def test_src_over_the_unzipped_limit_is_refused_before_pip(
    src: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    sparse(src / "data" / "big.bin", MB_300)
    out = tmp_path / "function.zip"
    line = one_line_error(cli(src, out), out)
    total = MB_300 + sum(p.stat().st_size for p in src.rglob("*.py"))
    assert f"SRC_DIR alone is {total:,} bytes" in line
    assert f"over Lambda's 250 MB unzipped limit ({LIMIT:,} bytes, layers included)" in line
    assert "--allow-oversize" in line


def test_dependencies_past_the_limit_stop_the_build(
    src: pathlib.Path, tmp_path: pathlib.Path, offline: Build
) -> None:
    sparse(src / "model.bin", 200 * 1024 * 1024)  # under the limit on its own...
    out = tmp_path / "f.zip"
    with pytest.raises(PackageError) as info:  # ...not with the dependencies
        offline(src, out, deps={"torch/_C.so": 60 * 1024 * 1024})
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "the zip would hold" in message
    assert f"over Lambda's 250 MB unzipped limit ({LIMIT:,} bytes, layers included)" in message
    assert "--allow-oversize" in message
    assert not out.exists()


def test_files_stream_into_the_zip(
    src: pathlib.Path, tmp_path: pathlib.Path, offline: Build
) -> None:
    sparse(src / "data" / "big.bin", MB_300)
    tracemalloc.start()
    try:
        result = offline(src, tmp_path / "f.zip", allow_oversize=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Copied and zipped whole, it cost the file's size: 316 MB traced. Streamed: ~2.4 MB.
    assert peak < 16 * 1024 * 1024, f"{peak:,} bytes traced"
    with zipfile.ZipFile(result.path) as archive:
        assert archive.getinfo("data/big.bin").file_size == MB_300
    assert result.unzipped_bytes > MB_300
    assert any("over Lambda's 250 MB unzipped limit" in w for w in result.warnings)


def test_the_overrides_are_command_line_flags() -> None:
    from duplexlambda.__main__ import build_parser

    args = build_parser().parse_args(["package", "app"])
    assert (args.allow_external_links, args.allow_oversize) == (False, False)
    flags = ["package", "app", "--allow-external-links", "--allow-oversize"]
    args = build_parser().parse_args(flags)
    assert (args.allow_external_links, args.allow_oversize) == (True, True)
