"""Echo an upload back in upper case, chunk by chunk, while it is still arriving.

duplexlambda serve examples.echo.handler
curl -sN -T big.txt http://127.0.0.1:9000/
"""

from __future__ import annotations

from duplexlambda.streams import Request, Response


async def handler(req: Request, res: Response) -> None:
    res.content_type = "text/plain; charset=utf-8"
    async for chunk in req:
        await res.write(chunk.upper())
