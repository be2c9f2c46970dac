"""``duplexlambda package SRC_DIR -o function.zip``: a Lambda zip that runs our runtime.

The zip holds, at its root:

* the handler code (``SRC_DIR``'s files);
* the dependencies, installed for the target by ``pip install --target`` with
  ``--platform``, ``--python-version`` and ``--only-binary=:all:`` (binary wheels only: no
  compiler runs for the target, and nothing is built from an sdist for the wrong machine);
* duplexlambda itself, built here as a wheel; its C chunk codec is an ``abi3`` extension,
  good for every CPython >= 3.11 on the machine it was compiled for. Compiling for another
  machine (aarch64 from x86_64) is not possible here: the zip then carries the pure-Python
  codec twin and a loud warning says so (the runtime logs ``codec python`` too). A
  compiled codec that needs a newer glibc than the target platform promises is dropped the
  same way;
* ``bootstrap``, an executable ``sh`` script that starts our runtime with this zip's folder
  first on ``sys.path``, so the function needs nothing installed but a Python.

``bootstrap`` serves both ways Lambda can run a Python custom runtime: as the function's
entry point on ``provided.al2023`` (with a Python layer: ``python3`` from ``PATH``), or as
``AWS_LAMBDA_EXEC_WRAPPER`` on a managed Python runtime (the interpreter is then its first
argument).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the rest is imported when a zip is built: `duplexlambda run` builds
    # this command's parser too, and a runtime's cold start must not pay for zipfile & co.
    from collections.abc import Callable, Collection
    from pathlib import Path

__all__ = [
    "BOOTSTRAP",
    "NETWORK_ERRORS",
    "PLATFORMS",
    "PackageError",
    "PackageResult",
    "SourceFile",
    "add_package_parser",
    "bootstrap_script",
    "build_zip",
    "codec_problem",
    "source_files",
    "write_zip",
]

#: The target platforms Lambda runs (x86_64 and arm64 functions).
PLATFORMS = ("manylinux2014_x86_64", "manylinux2014_aarch64")
#: Lambda's limits on a zip package (deployment package quotas): 50 MB zipped for a direct
#: upload, and "250 MB unzipped, including layers" (262,144,000 bytes) whatever the upload.
ZIP_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024

# Every zip entry gets this date, so the same inputs make the same zip.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {
    "__pycache__",
    ".git",
    ".hg",
    ".venv",
    "venv",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "node_modules",
}
_SKIP_SUFFIXES = (".pyc", ".pyo")
#: pip's messages when it cannot reach its index.
NETWORK_ERRORS = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Could not fetch URL|ConnectTimeout|ReadTimeout|"
    r"Network is unreachable|No route to host|SSLError",
)


class PackageError(Exception):
    """The zip could not be built; ``network`` is True when pip could not reach its index.

    ``exit_code`` is what the command exits with: 2 for what is wrong in ``SRC_DIR`` (a link,
    a special file, its size), 1 otherwise.
    """

    def __init__(self, message: str, *, network: bool = False, exit_code: int = 1) -> None:
        super().__init__(message)
        self.network = network
        self.exit_code = exit_code


@dataclass
class PackageResult:
    """What ``build_zip`` made."""

    path: Path
    zip_bytes: int
    unzipped_bytes: int
    files: int
    python_version: str
    platform: str
    codec: str  #: "c" or "python"
    warnings: list[str] = field(default_factory=list)


# --- bootstrap ------------------------------------------------------------------------------

BOOTSTRAP = r"""#!/bin/sh
# Lambda bootstrap written by `duplexlambda package` for Python @VERSION@.
#
# Lambda starts it in one of two ways:
#  * provided.al2023 (with a Python @VERSION@ layer): as the function's entry point, with no
#    arguments; the interpreter is python3 from PATH (or $DUPLEXLAMBDA_PYTHON).
#  * a managed Python @VERSION@ runtime with AWS_LAMBDA_EXEC_WRAPPER=/var/task/bootstrap:
#    with the runtime's own command line, whose first argument is the interpreter; the
#    rest (the managed runtime's client) is not used.
# Either way it runs duplexlambda's runtime with this folder first on sys.path, so the
# dependencies in this zip are the ones imported and nothing needs to be installed.
# Only /bin/sh builtins are used here.
set -eu
case $0 in
    */*) here=${0%/*} ;;
    *) here=. ;;
esac
here=$(cd -- "$here" && pwd -P)
if [ "$#" -gt 0 ]; then
    python=$1
else
    python=${DUPLEXLAMBDA_PYTHON:-python3}
fi
if ! command -v "$python" >/dev/null 2>&1; then
    echo "bootstrap: no Python interpreter '$python': use a Python @VERSION@ layer on" \
        "provided.al2023 (python3 on PATH), or the managed Python @VERSION@ runtime" \
        "with AWS_LAMBDA_EXEC_WRAPPER=$here/bootstrap" >&2
    exit 127
fi
exec "$python" -c '
import sys
sys.path[:0] = [sys.argv.pop(1)]
if sys.version_info[:2] != (@MAJOR@, @MINOR@):
    sys.exit("bootstrap: this zip was built for Python @VERSION@, not %d.%d: rebuild it with"
             " duplexlambda package --python-version %d.%d" % (sys.version_info[:2] * 2))
from duplexlambda.__main__ import main
sys.exit(main(["run"]))
' "$here"
"""


def bootstrap_script(python_version: str) -> str:
    """The ``bootstrap`` for a zip built for ``python_version`` (``"3.12"``)."""
    major, minor = python_version.split(".")
    return (
        BOOTSTRAP.replace("@VERSION@", python_version)
        .replace("@MAJOR@", major)
        .replace("@MINOR@", minor)
    )


# --- the C codec for the target -------------------------------------------------------------

_GLIBC_OF_PLATFORM = re.compile(r"^manylinux_(\d+)_(\d+)_(\w+)$")
_LEGACY = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}


def platform_parts(platform: str) -> tuple[tuple[int, int], str]:
    """``"manylinux2014_aarch64"`` -> ``((2, 17), "aarch64")``.

    Raises:
        ValueError: not a manylinux platform tag.
    """
    found = _GLIBC_OF_PLATFORM.match(platform)
    if found:
        return (int(found[1]), int(found[2])), found[3]
    legacy, _, machine = platform.partition("_")
    if legacy in _LEGACY and machine:
        return _LEGACY[legacy], machine
    raise ValueError(f"not a manylinux platform tag: {platform!r} (e.g. {PLATFORMS[0]})")


def host_machine() -> str:
    """This machine as wheel tags name it (``x86_64``, ``aarch64``)."""
    import platform as platform_mod

    machine = platform_mod.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def required_glibc(shared_object: bytes) -> tuple[int, int]:
    """The newest ``GLIBC_x.y`` symbol version an ELF shared object asks for ((0, 0): none)."""
    versions = [(int(a), int(b)) for a, b in re.findall(rb"GLIBC_(\d+)\.(\d+)", shared_object)]
    return max(versions, default=(0, 0))


def codec_problem(platform: str, shared_object: bytes, machine: str | None = None) -> str | None:
    """Why the compiled codec cannot go into a zip for ``platform`` (None: it can).

    Args:
        platform: the target platform tag.
        shared_object: the bytes of the compiled extension (built on this machine).
        machine: the machine it was built on (default: this one).
    """
    glibc, target = platform_parts(platform)
    built_on = machine or host_machine()
    if target != built_on:
        return (
            f"the C codec cannot be cross-built for {target} on this {built_on} machine "
            "(no cross compiler)"
        )
    needs = required_glibc(shared_object)
    if needs > glibc:
        return (
            f"the C codec built here needs glibc {needs[0]}.{needs[1]}, newer than "
            f"{platform} promises ({glibc[0]}.{glibc[1]})"
        )
    return None


# --- building ------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _runtime_requirements() -> list[str]:
    """duplexlambda's own dependencies (no extras), markers kept for pip."""
    import importlib.metadata

    found = importlib.metadata.requires("duplexlambda") or []
    return [r for r in found if "extra" not in r.partition(";")[2]]


_SELF_REQUIREMENT = re.compile(r"\s*duplexlambda(?![\w.-])", re.IGNORECASE)
_INCLUDE = re.compile(r"(\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=))(\S+)(.*)", re.DOTALL)


def requirements_without_self(requirements: Path, work: Path) -> Path:
    """``requirements`` without a ``duplexlambda`` line (the zip gets this duplexlambda,
    built here; pip would look for it on the index): the file itself when it has none, else a
    copy in ``work`` with its relative ``-r`` / ``-c`` paths made absolute."""
    lines = requirements.read_text().splitlines(keepends=True)
    if not any(_SELF_REQUIREMENT.match(line) for line in lines):
        return requirements
    kept = []
    for line in lines:
        if _SELF_REQUIREMENT.match(line):
            continue
        include = _INCLUDE.fullmatch(line)
        if include:
            path = requirements.parent / include[2]  # an absolute one stays as it is
            line = f"{include[1]}{path}{include[3]}"
        kept.append(line)
    filtered = work / "requirements.txt"
    filtered.write_text("".join(kept))
    return filtered


def _project_root() -> Path | None:
    """The source tree this duplexlambda was installed from (editable installs), if any."""
    from pathlib import Path

    here = Path(__file__).resolve().parent  # .../src/duplexlambda
    root = here.parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and re.search(
        r'^name\s*=\s*"duplexlambda"', pyproject.read_text(), re.M
    ):
        return root
    return None


def _run_pip(args: list[str], what: str) -> None:
    import subprocess

    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        tail = "\n".join(output.splitlines()[-12:])
        raise PackageError(
            f"{what} failed (pip exit {result.returncode}):\n{tail}",
            network=bool(NETWORK_ERRORS.search(output)),
        )


def _shown(path: Path | str) -> str:
    """A path for a one-line message (quoted if it holds a newline or other control)."""
    text = str(path)
    return text if text.isprintable() else repr(text)


_SPECIAL = {
    "S_ISFIFO": "a FIFO (named pipe)",
    "S_ISSOCK": "a socket",
    "S_ISCHR": "a character device",
    "S_ISBLK": "a block device",
}


@dataclass
class SourceFile:
    """One file of ``SRC_DIR`` to zip: where it is read from, its name in the zip, its size."""

    path: Path
    name: str
    size: int


def source_files(
    src: Path, skip: Collection[Path] = (), *, allow_external_links: bool = False
) -> tuple[list[SourceFile], list[str]]:
    """The files of ``src`` that go into the zip, and warnings.

    A zip holds no symbolic links, so links are followed: a link to a file gives the
    file's bytes under the link's name, a link to a directory its files. A link that
    resolves outside ``src`` is refused unless ``allow_external_links`` (then it is
    followed and a warning names it). ``__pycache__``, VCS folders, virtualenvs and
    ``.pyc`` files are skipped, as is anything in ``skip`` (the zip being written).

    Raises:
        PackageError: (exit code 2) a link leaving ``src``, a dangling link, a link loop, a
            link to a directory that contains it (a cycle), a FIFO, socket or device, or an
            entry that cannot be read.
    """
    import errno
    import stat
    from pathlib import Path

    root = src.resolve()
    skipped = {p.resolve() for p in skip}
    files: list[SourceFile] = []
    warnings: list[str] = []

    def refuse(message: str) -> PackageError:
        return PackageError(message, exit_code=2)

    def status(path: Path) -> os.stat_result:
        try:
            return os.stat(path)  # follows links
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise refuse(f"{_shown(path)} is a symbolic link loop") from None
            if exc.errno == errno.ENOENT and path.is_symlink():
                target = _shown(os.readlink(path))
                raise refuse(f"{_shown(path)} is a dangling symbolic link (to {target})") from None
            raise refuse(f"cannot read {_shown(path)}: {exc.strerror}") from None

    def visit(directory: Path, prefix: str, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            with os.scandir(directory) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            raise refuse(f"cannot read {_shown(directory)}: {exc.strerror}") from None
        for name in names:
            if name in _SKIP_DIRS or name.endswith(_SKIP_SUFFIXES):
                continue
            path = directory / name
            info = status(path)
            is_dir = stat.S_ISDIR(info.st_mode)
            if path.is_symlink():
                real = Path(os.path.realpath(path))
                if not real.is_relative_to(root):
                    what = "directory" if is_dir else "file"
                    told = f"{_shown(path)} is a symbolic link to {_shown(real)}, outside SRC_DIR"
                    if not allow_external_links:
                        raise refuse(
                            f"{told}: the zip would carry that {what}'s contents; copy what "
                            "the function needs into SRC_DIR, or pass --allow-external-links"
                            " to include it"
                        )
                    warnings.append(
                        f"{told}: that {what}'s contents are in the zip (--allow-external-links)"
                    )
            if is_dir:
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    raise refuse(
                        f"{_shown(path)} is a symbolic link to a directory that contains it"
                        " (a cycle): remove it"
                    )
                visit(path, f"{prefix}{name}/", ancestors | {key})
            elif stat.S_ISREG(info.st_mode):
                if path.resolve() not in skipped:
                    files.append(SourceFile(path, f"{prefix}{name}", info.st_size))
            else:
                kind = next(
                    (kind for test, kind in _SPECIAL.items() if getattr(stat, test)(info.st_mode)),
                    "not a regular file",
                )
                raise refuse(
                    f"{_shown(path)} is {kind}: only files and directories go in a zip;"
                    " move it out of SRC_DIR"
                )

    top = status(src)
    visit(src, "", frozenset({(top.st_dev, top.st_ino)}))
    return files, warnings


def _copy_files(files: list[SourceFile], dest: Path) -> None:
    import shutil

    for file in files:
        target = dest / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(file.path, target)  # streamed (sendfile on Linux): memory stays flat
        except OSError as exc:
            raise PackageError(
                f"cannot read {_shown(file.path)}: {exc.strerror or exc}", exit_code=2
            ) from None


def _build_own_wheel(work: Path) -> Path:
    """Build duplexlambda's wheel (with its C codec) from its source tree, in ``work``."""
    import importlib.util
    import shutil

    root = _project_root()
    if root is None:
        raise PackageError("duplexlambda's source tree is not available to build its wheel")
    source = work / "source"
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        if (root / name).exists():
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, source / name)
    for folder in ("src", "csrc"):
        shutil.copytree(
            root / folder,
            source / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info", "*.pyc"),
        )
    wheels = work / "wheel"
    isolated = not all(importlib.util.find_spec(m) for m in ("setuptools", "cffi"))
    _run_pip(
        [
            "wheel",
            "--quiet",
            "--no-deps",
            *([] if isolated else ["--no-build-isolation"]),
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        "building duplexlambda's wheel",
    )
    (wheel,) = wheels.glob("duplexlambda-*.whl")
    return wheel


def _install_own_package(work: Path, staging: Path) -> None:
    """duplexlambda into ``staging``: its wheel's files (the dist-info kept, scripts not)."""
    import shutil
    import zipfile
    from pathlib import Path

    try:
        wheel = _build_own_wheel(work)
    except PackageError as exc:
        if exc.network:
            raise
        # Installed from a wheel (no source here): take the installed package as it is.
        installed = Path(__file__).resolve().parent
        _say(f"note: {exc}; copying the installed package from {installed}")
        shutil.copytree(
            installed,
            staging / "duplexlambda",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        return
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if ".data/" not in name:
                archive.extract(name, staging)


def _check_codec(staging: Path, platform: str, warnings: list[str]) -> str:
    """Keep the compiled codec if it runs on the target; else drop it, loudly."""
    compiled = sorted((staging / "duplexlambda").glob("_chunked_cffi*.so"))
    if not compiled:
        warnings.append(
            "the C codec was not built (no compiler?): the zip uses the pure-Python codec"
        )
        return "python"
    problems = {codec_problem(platform, so.read_bytes()) for so in compiled}
    problem = next((p for p in problems if p), None)
    if problem is None:
        return "c"
    for so in compiled:
        so.unlink()
    warnings.append(
        f"{problem}: the zip uses the pure-Python chunk codec (correct, slower). To ship "
        f"the C codec, run `duplexlambda package` on an {platform_parts(platform)[1]} "
        "machine, or deploy the container image (it is compiled in the image build)."
    )
    return "python"


def _compile_bytecode(staging: Path) -> None:
    """Compile every ``.py`` in the zip into ``__pycache__``, as unchecked-hash ``.pyc``.

    Lambda cannot write bytecode into the read-only ``/var/task``, so a zip without it
    compiles our runtime and the dependencies on every cold start (docs/benchmarks.md).
    pip's own ``.pyc`` are no help: they are checked against the sources' mtimes, and every
    zip entry gets one fixed date. Unchecked-hash bytecode is used as it is: the zip's
    sources never change under it.
    """
    import compileall
    import py_compile

    ok = compileall.compile_dir(
        staging,
        quiet=2,
        force=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        # A file that is not valid Python (a template, a test fixture) keeps its source;
        # the handler's own syntax errors are reported at init, as without bytecode.
        _say("some files did not compile to bytecode; they are shipped as source only")


def _executable(path: Path) -> bool:
    import stat

    return bool(path.stat().st_mode & stat.S_IXUSR)


def _staged_bytes(staging: Path) -> int:
    return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())


def write_zip(staging: Path, output: Path) -> tuple[int, int]:
    """Zip ``staging`` into ``output``; returns (files, unzipped bytes).

    Each file is streamed into its entry in 1 MiB pieces, so memory stays flat whatever
    the size of a file. Entries get a fixed date and 0644 or 0755, so the same inputs make
    the same zip; the zip is written to ``output.partial`` and renamed when complete.
    """
    import shutil
    import stat
    import zipfile

    files = unzipped = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(staging).as_posix(), _ZIP_DATE)
            mode = 0o755 if _executable(path) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = 9  # type: ignore[attr-defined]  # compress_level in 3.13
            with path.open("rb") as source:
                info.file_size = os.fstat(source.fileno()).st_size  # picks zip64 if it must
                with archive.open(info, "w") as entry:
                    shutil.copyfileobj(source, entry, 1024 * 1024)
            files += 1
            unzipped += info.file_size
    partial.replace(output)
    return files, unzipped


def _oversize(what: str, size: int) -> str:
    return (
        f"{what} {size:,} bytes ({_mib(size)}), over Lambda's 250 MB unzipped limit "
        f"({UNZIPPED_LIMIT:,} bytes, layers included)"
    )


def build_zip(
    src: Path,
    output: Path,
    *,
    python_version: str | None = None,
    platform: str | None = None,
    requirements: Path | None = None,
    say: Callable[[str], None] | None = None,
    allow_external_links: bool = False,
    allow_oversize: bool = False,
) -> PackageResult:
    """Build the deployment zip (see the module docstring).

    Args:
        src: the handler code; its files go to the zip's root.
        output: where to write the zip.
        python_version: the target Python, ``"3.12"`` (default: this interpreter's).
        platform: the target platform tag (default: ``manylinux2014_`` + this machine).
        requirements: extra requirements to install (default: ``src/requirements.txt`` if
            there is one).
        say: where progress and warnings are printed.
        allow_external_links: follow symbolic links that leave ``src`` (with a warning for
            each) instead of refusing them.
        allow_oversize: build a zip past Lambda's 250 MB unzipped limit (with a warning)
            instead of stopping.

    Returns:
        What was built, with its sizes.

    Raises:
        PackageError: a bad argument, something in ``src`` that cannot be zipped (see
            ``source_files``), more than Lambda's 250 MB unzipped, or pip failed
            (``network`` tells when it could not reach its index).
    """
    import shutil
    import tempfile
    from pathlib import Path

    say = say or _say
    if not src.is_dir():
        raise PackageError(f"{src} is not a directory")
    version = python_version or f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not re.fullmatch(r"3\.\d+", version) or int(version.split(".")[1]) < 11:
        raise PackageError(f"--python-version must be 3.11 or newer, like 3.12 (not {version})")
    target = platform or f"manylinux2014_{host_machine()}"
    try:
        platform_parts(target)
    except ValueError as exc:
        raise PackageError(str(exc)) from None
    if requirements is None and (src / "requirements.txt").is_file():
        requirements = src / "requirements.txt"
    same_python = version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    partial = output.with_name(output.name + ".partial")
    sources, warnings = source_files(
        src, {output, partial}, allow_external_links=allow_external_links
    )
    src_bytes = sum(file.size for file in sources)
    fix = "make it smaller, or pass --allow-oversize to build the zip anyway"
    if src_bytes > UNZIPPED_LIMIT and not allow_oversize:  # before pip spends a minute
        raise PackageError(f"{_oversize('SRC_DIR alone is', src_bytes)}: {fix}", exit_code=2)
    with tempfile.TemporaryDirectory(prefix="duplexlambda-package-") as tmp:
        work = Path(tmp)
        staging = work / "zip"
        staging.mkdir()
        say(f"copying {src}")
        _copy_files(sources, staging)
        say(f"installing dependencies for CPython {version} on {target} (binary wheels only)")
        _run_pip(
            [
                "install",
                "--quiet",
                "--target",
                str(staging),
                "--platform",
                target,
                "--python-version",
                version,
                "--implementation",
                "cp",
                "--only-binary=:all:",
                "--upgrade",
                # .pyc files speed up cold starts, but only for the Python that made them.
                *([] if same_python else ["--no-compile"]),
                *_runtime_requirements(),
                *(
                    ["--requirement", str(requirements_without_self(requirements, work))]
                    if requirements
                    else []
                ),
            ],
            "installing the dependencies",
        )
        shutil.rmtree(staging / "bin", ignore_errors=True)  # scripts for this machine's Python
        say("building duplexlambda (with its C codec)")
        _install_own_package(work, staging)
        codec = _check_codec(staging, target, warnings)
        if same_python:
            say("compiling bytecode (unchecked-hash .pyc: /var/task is read-only)")
            _compile_bytecode(staging)
        else:
            warnings.append(
                f"no .pyc in the zip: this Python is {sys.version_info[0]}."
                f"{sys.version_info[1]}, the target {version} (every cold start compiles the"
                " sources; build with the target's Python to ship bytecode)"
            )
        bootstrap = staging / "bootstrap"
        bootstrap.write_text(bootstrap_script(version))
        bootstrap.chmod(0o755)
        total = _staged_bytes(staging)
        if total > UNZIPPED_LIMIT:
            told = _oversize("the zip would hold", total) + f" ({src_bytes:,} from SRC_DIR)"
            if not allow_oversize:
                raise PackageError(f"{told}: {fix}", exit_code=2)
            warnings.append(f"{told}: Lambda will refuse it (built because of --allow-oversize)")
        files, unzipped = write_zip(staging, output)
    size = output.stat().st_size
    if size > ZIP_LIMIT:
        warnings.append(
            f"the zip is {_mib(size)}, over Lambda's 50 MB direct upload limit: upload it"
            " to S3 and point the function at it"
        )
    return PackageResult(output, size, unzipped, files, version, target, codec, warnings)


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


# --- command line ---------------------------------------------------------------------------

EPILOG = """examples:
  duplexlambda package examples -o function.zip
  duplexlambda package app/ -o function.zip --python-version 3.12 --platform manylinux2014_aarch64

then deploy function.zip with either
  runtime python3.12 + AWS_LAMBDA_EXEC_WRAPPER=/var/task/bootstrap, handler csv_stats.handler
  runtime provided.al2023 + a Python 3.12 layer, handler csv_stats.handler
(examples/template-zip.yaml is a SAM template for the first)."""


def add_package_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``package`` to ``subparsers`` (from ``add_subparsers()``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "package",
        help="build a Lambda zip: handler code, dependencies for the target, a bootstrap",
        description="Build a deployment zip: SRC_DIR's files, the dependencies installed for"
        " the target (binary wheels only), duplexlambda with its C codec, and an executable"
        " bootstrap that runs the runtime with nothing installed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", metavar="SRC_DIR", help="the handler code")
    parser.add_argument("-o", "--output", default="function.zip", help="(function.zip)")
    parser.add_argument(
        "--python-version",
        metavar="X.Y",
        default=None,
        help="the target Python (default: this one's, "
        f"{sys.version_info[0]}.{sys.version_info[1]})",
    )
    parser.add_argument(
        "--platform",
        default=None,
        help=f"the target: {' or '.join(PLATFORMS)} (default: this machine's)",
    )
    parser.add_argument(
        "-r",
        "--requirement",
        default=None,
        help="extra requirements (default: SRC_DIR/requirements.txt when present)",
    )
    parser.add_argument(
        "--allow-external-links",
        action="store_true",
        help="follow symbolic links that leave SRC_DIR (each is named in a WARNING);"
        " without it they are refused",
    )
    parser.add_argument(
        "--allow-oversize",
        action="store_true",
        help=f"build the zip even past Lambda's 250 MB unzipped limit ({UNZIPPED_LIMIT:,}"
        " bytes, layers included); without it the build stops there",
    )
    parser.set_defaults(func=_cmd_package)
    return parser


def _cmd_package(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        result = build_zip(
            Path(args.src),
            Path(args.output),
            python_version=args.python_version,
            platform=args.platform,
            requirements=Path(args.requirement) if args.requirement else None,
            allow_external_links=args.allow_external_links,
            allow_oversize=args.allow_oversize,
        )
    except PackageError as exc:
        print(f"duplexlambda package: {exc}", file=sys.stderr)
        return exc.exit_code
    for warning in result.warnings:
        _say(f"\nWARNING: {warning}\n")
    print(
        f"{result.path}: {_mib(result.zip_bytes)} ({result.zip_bytes} bytes; "
        f"{_mib(result.unzipped_bytes)} unzipped, {result.files} files) "
        f"for CPython {result.python_version} on {result.platform}, codec {result.codec}"
    )
    return 0
