"""One request in flight, and how its answer reaches the test: through the emulator's relay.

The runtime's answer arrives as the invocation's result events. A function-URL request
hands them to the emulator's own ``UrlRelay`` (prelude -> status, headers and cookies; a
buffered result object unpacked; a failure before the first byte -> 502, 504 for
``Sandbox.Timeout``; after it, a cut body), a direct invocation to ``InvokeRelay`` (the
payload as sent). Either writes to a ``MemoryResponse``, which the result objects read.
"""

from __future__ import annotations

import asyncio

from duplexlambda.emulator.config import FrontSpec
from duplexlambda.emulator.front import INVALID_RESPONSE, ProxyRelay, UrlRelay
from duplexlambda.emulator.invocations import (
    Chunk,
    End,
    Failure,
    Head,
    Invocation,
    Rejected,
    ResultEvent,
    error_payload,
)
from duplexlambda.errors import PreludeError

from .memory import MemoryResponse, MemoryUpload
from .results import InvocationError

_JSON = "application/json"


class InvokeRelay:
    """A direct invocation's result events as the Invoke API gives them, into memory.

    The payload goes as the runtime sent it, one runtime chunk per write, an
    http-integration prelude included (passed through, as ``InvokeWithResponseStream``
    does). A failure before the payload makes the error JSON the payload (as ``Invoke``
    does); after it, the stream is cut.
    """

    invalid: PreludeError | None = None  #: never set: the payload is not parsed
    deadline: float | None = None  #: the Invoke API waits as long as the function runs

    def __init__(self, response: MemoryResponse) -> None:
        self._resp = response
        self._collected: list[bytes] | None = None
        self._content_type = _JSON

    async def handle(self, event: ResultEvent) -> None:
        """Act on one result event."""
        if isinstance(event, Head):
            self._content_type = event.content_type
            if event.streaming:
                self._resp.start(200, [("Content-Type", event.content_type)])
            else:
                self._collected = []
        elif isinstance(event, Chunk):
            if self._collected is not None:
                self._collected.append(event.data)
            else:
                await self._resp.write(event.data)
        elif isinstance(event, End):
            if self._collected is not None:
                await self._send(200, self._content_type, b"".join(self._collected))
            else:
                await self._resp.end()
        elif isinstance(event, Failure):
            if self._resp.started:
                self._resp.abort()  # mid-stream: what arrived stays, the body is cut short
            else:
                await self._send(200, _JSON, event.payload)
        else:
            await self._send(event.status, _JSON, error_payload(event.error_type, event.message))

    async def expire(self) -> None:
        """Never called: no deadline."""

    def close(self) -> None:
        """After the last event: a stream still open (the caller left) is cut."""
        if self._resp.started and not self._resp.ended:
            self._resp.abort()

    async def _send(self, status: int, content_type: str, body: bytes) -> None:
        self._resp.start(status, [("Content-Type", content_type)], length=len(body))
        await self._resp.write(body)
        await self._resp.end()


class Call:
    """One request in flight: its invocation, its upload, and its answer as the caller gets it.

    Result events are pulled one at a time, only when the reader wants more, so that a slow
    reader holds the runtime back through the invocation's bounded result channel.
    """

    def __init__(
        self,
        invocation: Invocation,
        upload: MemoryUpload | None,
        *,
        http: bool,
        duplex: bool,
        buffered: bool = False,
        front: FrontSpec | None = None,
        front_id: str = "",
        timeout: float | None = None,
    ) -> None:
        self.invocation = invocation
        self.upload = upload
        self.response = MemoryResponse()
        self.relay: UrlRelay | ProxyRelay | InvokeRelay
        if not http:
            self.relay = InvokeRelay(self.response)
        elif front is not None and not front.is_function_url:
            self.relay = ProxyRelay(
                invocation, self.response, front, duplex=duplex, front_id=front_id, timeout=timeout
            )
        else:
            self.relay = UrlRelay(invocation, self.response, duplex, buffered=buffered)
        self.content_type: str | None = None  #: the runtime's, from its response head
        self.error: InvocationError | None = None
        self.finished = False  #: no more events will come

    @property
    def complete(self) -> bool:
        """The response ended normally (or as a whole error reply) and all of it was read."""
        return self.response.ended and self.finished and not self.response.chunks

    async def head(self) -> None:
        """Wait until the status and headers are known (or nothing more comes)."""
        while not self.response.started and await self._pull():
            pass

    async def next_chunk(self) -> bytes | None:
        """The next piece of body, None at its end."""
        while not self.response.chunks:
            if not await self._pull():
                return None
        return self.response.chunks.popleft()

    async def close(self) -> None:
        """Done with it; if its answer is still coming, hang up (as an HTTP client would)."""
        if not self.finished and not self.invocation.settled:
            self.invocation.cancel()
        elif not self.finished:
            self.invocation.results.close()
        if self.upload is not None:
            await self.upload.aclose()

    async def _pull(self) -> bool:
        """Relay one more event; False once there are none."""
        if self.finished:
            return False
        deadline = self.relay.deadline
        try:
            if deadline is None:
                event = await anext(self.invocation.results)
            else:
                async with asyncio.timeout_at(deadline):
                    event = await anext(self.invocation.results)
        except StopAsyncIteration:
            self.finished = True
            self.relay.close()
            return False
        except TimeoutError:  # the front's integration timeout: it answers, the function runs on
            await self.relay.expire()
            self.invocation.results.close()
            return True
        await self.relay.handle(event)
        self._note(event)
        return True

    def _note(self, event: ResultEvent) -> None:
        """Keep the content type and the first reason the invocation failed."""
        if isinstance(event, Head):
            self.content_type = event.content_type
        if self.error is not None:
            return
        if self.relay.invalid is not None:
            self.error = InvocationError(INVALID_RESPONSE, str(self.relay.invalid))
        elif isinstance(event, Failure):
            self.error = InvocationError.from_payload(event.error_type, event.payload)
        elif isinstance(event, Rejected):
            self.error = InvocationError(event.error_type, event.message)
