"""Draw docs/inspector.png: the inspector showing a streamed invocation and its timeline.

.venv/bin/python -m tests.inspector.screenshot [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

from .browser import browser_page, inspector_url, missing, post, served

DEFAULT = Path(__file__).resolve().parents[2] / "docs" / "inspector.png"


def main(out: Path = DEFAULT) -> None:
    if (why := missing()) is not None:
        raise SystemExit(why)
    with served() as serve, browser_page() as page:
        page.goto(inspector_url(serve))
        page.wait_for_selector("#status[data-state='live']", timeout=10_000)
        post(serve.url + "fail", b"fail")
        post(serve.url + "upload", b"x" * 100)
        request_id = post(serve.url + "stream?n=8", b"hello")
        row = page.locator(f"#rows tr[data-request-id='{request_id}']")
        row.wait_for(timeout=10_000)
        row.click()
        page.wait_for_selector(f"#detail[data-request-id='{request_id}']", timeout=10_000)
        page.screenshot(path=str(out))
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
