"""What the browser test and ``screenshot.py`` share: a served streaming handler and
Debian's chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..support.serve_process import Serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Chunks the handler writes, ``GAP`` seconds apart.
CHUNKS = 8
GAP = 0.03

HANDLER = textwrap.dedent(
    f"""
    import asyncio


    async def handler(req, res):
        body = await req.read()
        print(f"got {{len(body)}} bytes, writing {CHUNKS} chunks", flush=True)
        for i in range({CHUNKS}):
            await res.write(b"chunk %d " % i + b"." * (64 * (i + 1)) + b"\\n")
            await asyncio.sleep({GAP})
        if body == b"fail":
            raise ValueError("boom after streaming")
        await res.end()
    """
)


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright)"
    return None


@contextlib.contextmanager
def served() -> Iterator[Serve]:
    """``duplexlambda serve`` of ``HANDLER`` on free ports."""
    with tempfile.TemporaryDirectory() as root:
        Path(root, "streamer.py").write_text(HANDLER)
        serve = Serve(
            "streamer.handler", "--task-root", root, "--port", "0", "--runtime-api-port", "0"
        )
        try:
            serve.wait_for(r"Inspector:", serve.out)
            yield serve
        finally:
            serve.stop()


def inspector_url(serve: Serve) -> str:
    return serve.wait_for(r"Inspector:\s+(http://\S+)", serve.out)[1]


def post(url: str, body: bytes) -> str:
    """POST ``body``; the request id (a cut response is read as far as it goes)."""
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        with contextlib.suppress(Exception):
            answer.read()
        return str(answer.headers["x-amzn-RequestId"])


@contextlib.contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh chromium page (a new user data dir each time)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="duplexlambda-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1200, "height": 900},
            )
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
