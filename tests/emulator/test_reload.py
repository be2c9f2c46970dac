"""``duplexlambda serve --reload`` as a real subprocess: a saved edit is served on the next
request, a syntax error reaches the caller as Lambda's init error while the emulator stays up,
and a request in flight finishes on the old code across a save."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest

from ..support.serve_process import Serve

pytest.importorskip("watchfiles")

VERSION = """
def handler(event, context):
    return {{"version": {version}}}
"""

STREAMING = """
import asyncio

async def handler(req, res):
    for i in range(4):
        await res.write(b"v{version}-%d\\n" % i)
        await asyncio.sleep({pause})
"""


def invoke(url: str) -> tuple[str | None, object]:
    """(X-Amz-Function-Error, the decoded answer) of a buffered Invoke."""
    request = urllib.request.Request(
        url + "2015-03-31/functions/function/invocations", data=b"{}", method="POST"
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.headers.get("X-Amz-Function-Error"), msgspec.json.decode(response.read())


def read(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=20) as response:
        body: bytes = response.read()
    return body


def serve_reload(root: pathlib.Path) -> Serve:
    return Serve(
        "app.handler",
        "--port", "0",
        "--runtime-api-port", "0",
        "--task-root", str(root),
        "--reload",
    )  # fmt: skip


def save(root: pathlib.Path, serve: Serve, source: str) -> int:
    """Write app.py and wait until the runtime was started again; the lines of stderr seen
    before (a request made now is queued for the new runtime, which polls once it has
    imported the code)."""
    seen = len(serve.err)
    (root / "app.py").write_text(source)
    serve.wait_for(r"reload: app\.py changed; restarting the runtime", serve.err, after=seen)
    serve.wait_for(r"runtime started \(pid \d+\)", serve.err, after=seen)
    return seen


def test_a_saved_edit_is_served_on_the_next_request(tmp_path: pathlib.Path) -> None:
    (tmp_path / "app.py").write_text(VERSION.format(version=1))
    (tmp_path / "__pycache__").mkdir()
    serve = serve_reload(tmp_path)
    try:
        url = serve.url
        serve.wait_for(r"reload: watching ", serve.err)
        assert invoke(url) == (None, {"version": 1})

        # Ignored: caches, hidden files and folders.
        (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
        (tmp_path / ".hidden").write_text("x")

        saved = time.monotonic()
        save(tmp_path, serve, VERSION.format(version=2))
        assert invoke(url) == (None, {"version": 2})
        latency = time.monotonic() - saved
        print(f"reload latency (save -> new code served): {latency * 1000:.0f} ms")
        assert latency < 10
        restarts = [line for line in serve.err if "restarting the runtime" in line]
        assert len(restarts) == 1, restarts  # the ignored files did not count

        # A burst of saves (an editor's write, then its formatter's) is one restart.
        seen = len(serve.err)
        for version in (3, 4):
            (tmp_path / "app.py").write_text(VERSION.format(version=version))
        save(tmp_path, serve, VERSION.format(version=5))
        assert invoke(url) == (None, {"version": 5})
        restarts = [line for line in serve.err[seen:] if "restarting the runtime" in line]
        assert len(restarts) == 1, restarts
    finally:
        assert serve.stop() == 0


def test_a_syntax_error_is_the_callers_init_error_until_the_next_save(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "app.py").write_text(VERSION.format(version=1))
    serve = serve_reload(tmp_path)
    try:
        url = serve.url
        serve.wait_for(r"reload: watching ", serve.err)
        assert invoke(url) == (None, {"version": 1})

        save(tmp_path, serve, "def handler(event, context:\n    return 1\n")
        error, body = invoke(url)
        assert error == "Unhandled"
        assert isinstance(body, dict)
        assert body["errorType"] == "Runtime.UserCodeSyntaxError"
        assert "app" in body["errorMessage"]
        # The emulator stays up: the function URL answers with the same init error.
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(url, timeout=20)
        failed.value.close()
        assert failed.value.code == 502

        save(tmp_path, serve, VERSION.format(version=3))
        assert invoke(url) == (None, {"version": 3})
    finally:
        assert serve.stop() == 0


def test_a_request_in_flight_finishes_on_the_old_code_across_a_save(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "app.py").write_text(STREAMING.format(version=1, pause=0.4))
    serve = serve_reload(tmp_path)
    try:
        url = serve.url
        serve.wait_for(r"reload: watching ", serve.err)
        with ThreadPoolExecutor(1) as pool, urllib.request.urlopen(url, timeout=20) as response:
            first = response.readline()
            assert first == b"v1-0\n"
            seen = len(serve.err)
            (tmp_path / "app.py").write_text(STREAMING.format(version=2, pause=0))
            serve.wait_for(r"reload: app\.py changed", serve.err, after=seen)
            # A request made during the grace waits for the new code.
            later = pool.submit(read, url)
            rest = response.read()
            assert later.result(20) == b"v2-0\nv2-1\nv2-2\nv2-3\n"
        assert first + rest == b"v1-0\nv1-1\nv1-2\nv1-3\n"
        serve.wait_for(r"runtime started \(pid \d+\)", serve.err, after=seen)
        assert read(url) == b"v2-0\nv2-1\nv2-2\nv2-3\n"
    finally:
        assert serve.stop() == 0


def test_serve_without_reload_does_not_import_the_watcher() -> None:
    code = (
        "import sys\n"
        "from duplexlambda.__main__ import build_parser\n"
        "import duplexlambda.emulator.cli, duplexlambda.emulator.supervisor\n"
        "args = build_parser().parse_args(['serve', 'app.handler'])\n"
        "assert args.reload is False\n"
        "assert 'watchfiles' not in sys.modules, 'imported without --reload'\n"
        "assert 'duplexlambda.emulator.reload' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
