"""Server-side rendered HTML streamed in sections: the shell first, the slow part later.

    duplexlambda serve examples.html_stream.handler
    curl -sN -o /dev/null -w 'TTFB %{time_starttransfer}s, total %{time_total}s\n' 'http://127.0.0.1:9000/?delay=1'

The browser gets the ``<head>`` (styles, so it can lay the page out) and the page's frame at
once and paints them while the slow section (``delay`` seconds of a pretend database query)
is still being made. With ``?gzip=1`` and ``Accept-Encoding: gzip`` the page is gzipped with
a sync flush per section, so compression does not hold the shell back. Gzip is opt-in:
behind a function URL, compress at CloudFront instead.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator

from duplexlambda.pipeline import gzip_compress, pipeline
from duplexlambda.streams import Request, Response

SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Orders</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
.loading {{ color: #888; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: .25rem .75rem; border-bottom: 1px solid #ddd; }}
</style>
</head>
<body>
<header><h1>Orders for {user}</h1><nav>Home · Orders · Account</nav></header>
<main>
<p class="loading" id="loading">Loading your orders…</p>
"""

FOOTER = """<style>#loading {{ display: none; }}</style>
</main>
<footer>Rendered in {ms:.0f} ms, streamed in 3 sections.</footer>
</body>
</html>
"""


async def slow_query(delay: float) -> list[tuple[str, str, float]]:
    """Stands in for a database call."""
    await asyncio.sleep(delay)
    return [("A-1001", "Teapot", 24.5), ("A-1002", "Kettle", 39.0), ("A-1003", "Cups", 12.25)]


async def page(user: str, delay: float) -> AsyncIterator[str]:
    """The page, one section per item."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    yield SHELL.format(user=html.escape(user))
    rows = await slow_query(delay)
    cells = "\n".join(
        f"<tr><td>{html.escape(ref)}</td><td>{html.escape(item)}</td><td>{price:.2f}</td></tr>"
        for ref, item, price in rows
    )
    yield f"<table>\n<tr><th>Order</th><th>Item</th><th>Price</th></tr>\n{cells}\n</table>\n"
    yield FOOTER.format(ms=(loop.time() - started) * 1000)


async def handler(req: Request, res: Response) -> None:
    res.content_type = "text/html; charset=utf-8"
    try:
        delay = min(max(float(req.query.get("delay", "1.5")), 0.0), 30.0)
    except ValueError:
        delay = 1.5
    sections = page(req.query.get("user", "Ada"), delay)
    if req.query.get("gzip") == "1" and "gzip" in req.headers.get("accept-encoding", ""):
        res.headers["Content-Encoding"] = "gzip"
        res.headers["Vary"] = "Accept-Encoding"
        await pipeline(sections, gzip_compress(), sink=res)
    else:
        await pipeline(sections, sink=res)
