"""What a test gets back: responses, direct-invocation results, and failures as values."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from .call import Call


class InvocationError(Exception):
    """A failed invocation, as the caller is told: Lambda's error type, message and trace.

    Attributes:
        error_type: e.g. ``"ValueError"``, ``"Function.Timeout"``, ``"Sandbox.Timeout"``.
        message: ``errorMessage``.
        trace: ``stackTrace`` lines (as awslambdaric formats them).
        payload: the error JSON as sent.
    """

    def __init__(
        self, error_type: str, message: str, trace: list[str] | None = None, payload: bytes = b""
    ) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.trace = trace or []
        self.payload = payload

    @classmethod
    def from_payload(cls, error_type: str, payload: bytes) -> InvocationError:
        """Parse the standard error JSON (``errorMessage``, ``errorType``, ``stackTrace``)."""
        try:
            data = msgspec.json.decode(payload) if payload else {}
        except msgspec.DecodeError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        trace = data.get("stackTrace")
        return cls(
            error_type,
            str(data.get("errorMessage", "")),
            [str(line) for line in trace] if isinstance(trace, list) else [],
            payload,
        )


class InitError(InvocationError):
    """The runtime could not start: the handler's init hooks (or lifespan startup) failed."""


class HeaderMap(Mapping[str, str]):
    """Response headers: lookups ignore case; a repeated field reads as its values joined
    with ``", "`` (``get_all`` gives them one by one, e.g. every ``Set-Cookie``)."""

    def __init__(self, pairs: list[tuple[str, str]] | None = None) -> None:
        self.pairs: list[tuple[str, str]] = list(pairs or [])

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        key = name.lower()
        return [value for field, value in self.pairs if field.lower() == key]

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for field, _ in self.pairs:
            seen.setdefault(field.lower(), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({field.lower() for field, _ in self.pairs})

    def __repr__(self) -> str:
        return f"HeaderMap({self.pairs!r})"


class _Received:
    """Body chunks as they arrive; iterate (``async for chunk in resp``) or ``aread()``."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.request_id = call.invocation.request_id
        #: the body, one item per chunk the handler wrote, and each one's arrival time
        self.chunks: list[bytes] = []
        self.arrivals: list[float] = []

    @property
    def body(self) -> bytes:
        """What has arrived of the body so far (all of it after ``aread()``)."""
        return b"".join(self.chunks)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body as JSON."""
        return msgspec.json.decode(self.body)

    @property
    def error(self) -> InvocationError | None:
        """Why the invocation failed (None if it did not)."""
        return self._call.error

    @property
    def complete(self) -> bool:
        """True when the body ended normally: False if it was cut short, or not read yet."""
        return self._call.complete

    @property
    def upload_finished_at(self) -> float | None:
        """``time.monotonic()`` when the runtime took the last byte of the request body."""
        upload = self._call.upload
        return upload.finished_at if upload is not None else None

    def raise_for_error(self) -> None:
        """Raise the ``InvocationError`` if the invocation failed."""
        if self._call.error is not None:
            raise self._call.error

    def __aiter__(self) -> _Received:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._call.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        self.chunks.append(chunk)
        self.arrivals.append(time.monotonic())
        return chunk

    async def aread(self) -> bytes:
        """Read the rest of the body; return all of it."""
        async for _ in self:
            pass
        return self.body


class HttpResponse(_Received):
    """A function-URL response: status, headers (with ``Set-Cookie`` for each cookie), body."""

    @property
    def status(self) -> int:
        return self._call.response.status

    @property
    def headers(self) -> HeaderMap:
        return HeaderMap(self._call.response.headers)

    @property
    def cookies(self) -> list[str]:
        """The ``Set-Cookie`` values."""
        return self.headers.get_all("set-cookie")

    def __repr__(self) -> str:
        error = f" error={self.error}" if self.error else ""
        return f"<HttpResponse {self.status} {self.body[:80]!r}{error}>"


class InvokeResult(_Received):
    """A direct invocation's result (the Invoke API's view): the payload bytes as sent."""

    @property
    def content_type(self) -> str | None:
        return self._call.content_type

    @property
    def payload(self) -> bytes:
        return self.body

    def __repr__(self) -> str:
        error = f" error={self.error}" if self.error else ""
        return f"<InvokeResult {self.body[:80]!r}{error}>"
