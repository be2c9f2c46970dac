"""The inspector page in a real browser: Debian's chromium driven by Playwright.

Skipped when /usr/bin/chromium or playwright is missing, unless ``CI=true`` (CI installs both,
so there it fails instead).
"""

from __future__ import annotations

import os

import pytest

from .browser import CHUNKS, browser_page, inspector_url, missing, post, served


def test_inspector_lists_live_and_shows_timeline_and_trailer_error() -> None:
    if (why := missing()) is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, and the browser test cannot run: {why}")
        pytest.skip(why)
    with served() as serve, browser_page() as page:
        url = inspector_url(serve)
        function_url = serve.url
        page.goto(url)
        page.wait_for_selector("#status[data-state='live']", timeout=10_000)
        assert page.title() == "duplexlambda inspector"
        assert page.locator("#rows tr").count() == 0

        ok_id = post(function_url + "stream", b"hello")
        row = page.locator(f"#rows tr[data-request-id='{ok_id}']")
        row.wait_for(timeout=10_000)  # arrived by server-sent events: no reload
        assert "POST /stream" in row.inner_text()
        row.click()
        page.wait_for_selector(f"#detail[data-request-id='{ok_id}']", timeout=10_000)
        assert page.locator("#timeline [data-mark='out']").count() == CHUNKS
        assert page.locator("#timeline [data-mark='in']").count() == 1
        assert "chunk 0" in page.locator("#res-body").inner_text()
        assert page.locator("#error-box").is_hidden()
        assert f"writing {CHUNKS} chunks" in page.locator("#logs").inner_text()

        failed_id = post(function_url + "fail", b"fail")
        failed = page.locator(f"#rows tr[data-request-id='{failed_id}']")
        failed.wait_for(timeout=10_000)
        # newest first
        assert page.locator("#rows tr").first.get_attribute("data-request-id") == failed_id
        failed.click()
        page.wait_for_selector(f"#detail[data-request-id='{failed_id}']", timeout=10_000)
        assert page.locator("#timeline [data-mark='out']").count() == CHUNKS
        error = page.locator("#error-box [data-error-type]")
        assert error.get_attribute("data-error-type") == "ValueError"
        assert "boom after streaming" in page.locator("#error-box").inner_text()
        assert "boom after streaming" in page.locator("#logs").inner_text()  # the runtime's log
