"""The blocking engine: buffered ``handler(event, context)`` at concurrency 1, no event loop.

A second I/O shell over the same sans-I/O core (as httpcore runs sync and async over h11):
one keep-alive socket, ``GET /next``, call the handler, ``POST /response``, again. It serves
what most functions are, a ``def handler(event, context)`` one invocation at a time, at a
fraction of the asyncio engine's CPU, and its cold start never imports asyncio, msgspec,
typing or dataclasses (docs/architecture.md#engines, measured in docs/benchmarks.md).
``runtime/start.py`` picks it; everything else (duplex and streaming handlers, bridges,
concurrency > 1) runs on ``runtime/loop.py``.

What it keeps from the asyncio engine: the same ``/next`` reading (``parse_next``), context,
marshalling (``runtime/marshal.py``), error reports and log lines; the deadline, by a
``SIGALRM`` timer that interrupts a handler 250 ms before it (``DUPLEXLAMBDA_DEADLINE_MARGIN_MS``)
as the asyncio engine cancels one; SIGTERM, which stops it after the invocation in flight.
An ``async def handler(event, context)`` runs on an event loop made once and driven only while
its invocation runs, as Lambda freezes the environment between invocations anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import time

from duplexlambda.context import LambdaContext, request_id, trace_id
from duplexlambda.errors import HandlerTimeoutError, LocalProtocolError, RemoteProtocolError
from duplexlambda.protocol.invocation_head import (
    USER_AGENT,
    InvocationHead,
    check_request_id,
    parse_next,
)
from duplexlambda.runtime.marshal import UnmarshalError, marshal

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from typing import Any

    from duplexlambda.handler import Lifecycle

log = logging.getLogger("duplexlambda")

#: Largest head the Runtime API may send us; its bodies are bounded by Lambda's payload cap.
MAX_HEAD = 64 * 1024
#: Largest error body the API may send back to us (its JSON errors are tiny).
MAX_API_BODY = 64 * 1024
#: How much of an error message the runtime's own log line repeats (as the asyncio engine).
LOGGED_MESSAGE = 4096
#: Pauses between attempts to connect to the Runtime API (both engines): exponential backoff,
#: 8 attempts in about 5 s, then the runtime exits non-zero.
CONNECT_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0)
#: What ``LambdaContext`` reads from the environment.
FUNCTION_ENV = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
)
#: Longest deadline timer armed, in seconds (Lambda's own limit is 15 minutes).
MAX_TIMER = 86400.0
REQUEST_STREAM = "application/vnd.duplexlambda.http-request-stream"
ACCEPT_NEXT = b"application/vnd.duplexlambda.http-request-stream, */*"


class RuntimeApiFatal(Exception):
    """The Runtime API answered 500, or cannot be reached: the runtime exits."""


class _Deadline(BaseException):
    """Raised into a blocking handler by the deadline timer.

    A ``BaseException``, like asyncio's ``CancelledError``, so that a handler's ``except
    Exception`` does not swallow it.
    """


class _Stop(BaseException):
    """SIGTERM while idle in ``/next``: leave the poll."""


class Fields:
    """A response's header fields: as received (``raw``, names lower-cased) and by name (the
    first of a repeated field, as ``protocol/http1.Headers`` reads them)."""

    __slots__ = ("by_name", "raw")

    def __init__(self) -> None:
        self.raw: list[tuple[bytes, bytes]] = []
        self.by_name: dict[bytes, bytes] = {}


class ApiConnection:
    """One keep-alive HTTP/1.1 connection to the Runtime API, on a blocking socket."""

    def __init__(self, host: str, port: int) -> None:
        # bytes: getaddrinfo encodes a str host with the idna codec, whose import (unicodedata,
        # stringprep) costs a millisecond or two of every cold start
        self._address: tuple[str | bytes, int] = (
            host.encode("ascii") if host.isascii() else host,
            port,
        )
        self._sock: socket.socket | None = None
        self._buf = b""
        self._shut = False
        #: set by ``watch_signals``: waits for an answer also watch signals (see there)
        self._wakeup: socket.socket | None = None
        self._poller: select.poll | None = None
        self._idle = False  # waiting for /next: the one wait a signal must be able to end

    def watch_signals(self) -> None:
        """Make the long poll of ``/next`` interruptible by SIGTERM, without a race.

        A signal that lands just before ``recv`` enters the kernel would not interrupt it (its
        Python handler runs only at the next bytecode), and an idle runtime would never see
        SIGTERM. With a wakeup fd the signal also makes a byte readable, so ``poll`` on the
        socket and that fd returns whenever it comes, and the handler then runs. Main thread
        only; one extra ``poll`` per wait.
        """
        import signal

        self._wakeup, writer = socket.socketpair()
        self._wakeup.setblocking(False)
        writer.setblocking(False)
        self._wakeup_writer = writer  # kept open for the life of the process
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def _wait_readable(self) -> None:
        assert self._sock is not None
        assert self._wakeup is not None
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self._sock, select.POLLIN)
            self._poller.register(self._wakeup, select.POLLIN)
        sock_fd = self._sock.fileno()
        while True:
            readable = False
            for fd, _ in self._poller.poll():  # EINTR: the signal handler runs (and may raise)
                if fd == sock_fd:
                    readable = True
                else:
                    with contextlib.suppress(BlockingIOError):
                        while self._wakeup.recv(512):
                            pass
            if readable:
                return

    def shut(self) -> None:
        """Wake a blocked ``recv`` and refuse further requests (the runtime is stopping)."""
        self._shut = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._poller = None  # it watched the old socket
        self._buf = b""

    def exchange(
        self, request: bytes, body: bytes = b"", *, idle: bool = False
    ) -> tuple[int, Fields, bytes]:
        """Send a request, return ``(status, fields, body)`` of its response.

        A kept-alive connection the API closed while we were away is opened again once.

        Raises:
            OSError: the API cannot be reached.
            RemoteProtocolError: an answer that is not HTTP/1.1 as we read it.
        """
        fresh = self._sock is None
        self._idle = idle
        try:
            self._send(request, body)
            return self._read_response()
        except (ConnectionError, _ClosedBeforeAnswer):
            self.close()
            if fresh:
                raise
        self._send(request, body)
        return self._read_response()

    def _send(self, request: bytes, body: bytes) -> None:
        if self._shut:
            raise _ClosedBeforeAnswer
        if self._sock is None:
            self._sock = self._connect()
        if body:
            self._sock.sendmsg([request, body])  # one segment, no copy of the body
        else:
            self._sock.sendall(request)

    def _connect(self) -> socket.socket:
        """A new connection; a refused or reset one is retried as the asyncio engine does."""
        for delay in (*CONNECT_RETRY_DELAYS, None):
            try:
                sock = socket.create_connection(self._address)  # type: ignore[arg-type]  # bytes host
            except OSError as exc:
                if delay is None:
                    raise
                log.warning("Runtime API unreachable (%s); retrying", exc)
                time.sleep(delay)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise AssertionError("unreachable")

    def _recv(self) -> bytes:
        assert self._sock is not None
        if self._idle and self._wakeup is not None:
            self._wait_readable()
        data = self._sock.recv(262144)
        if not data:
            self.close()
            raise _ClosedBeforeAnswer
        return data

    def _read_response(self) -> tuple[int, Fields, bytes]:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            if len(buf) > MAX_HEAD:
                raise RemoteProtocolError(f"Runtime API head larger than {MAX_HEAD} bytes")
            try:
                buf += self._recv()
            except _ClosedBeforeAnswer:
                if buf:
                    raise RemoteProtocolError(
                        "Runtime API closed the connection mid-head"
                    ) from None
                raise
            end = buf.find(b"\r\n\r\n")
        status, fields, keep_alive = _parse_head(buf[:end])
        self._buf = buf[end + 4 :]
        coding = fields.by_name.get(b"transfer-encoding")
        if coding is not None:
            body = self._read_chunked(coding)
        else:
            body = self._read_length(fields.by_name.get(b"content-length"))
        if not keep_alive:
            self.close()
        return status, fields, body

    def _read_length(self, raw: bytes | None) -> bytes:
        if raw is None:
            return b""
        if not raw.isdigit() or len(raw) > 18:
            raise RemoteProtocolError(f"invalid Content-Length {raw!r}")
        length = int(raw)
        buf = self._buf
        if len(buf) < length:
            parts = [buf]
            have = len(buf)
            while have < length:
                try:
                    piece = self._recv()
                except _ClosedBeforeAnswer:
                    raise RemoteProtocolError(
                        f"Runtime API body truncated: {length - have} bytes missing"
                    ) from None
                parts.append(piece)
                have += len(piece)
            buf = b"".join(parts)
        self._buf = buf[length:]
        return buf[:length]

    def _read_chunked(self, coding: bytes) -> bytes:
        # Only our emulator's live request stream is chunked: rare enough to load the codec
        # for it when it first comes.
        from duplexlambda.protocol.http1 import ChunkedReader

        if coding.strip().lower() != b"chunked":
            raise RemoteProtocolError("unsupported transfer-coding from the Runtime API")
        reader = ChunkedReader()
        parts: list[bytes] = [bytes(p) for p in reader.feed(self._buf)]
        while not reader.done:
            try:
                data = self._recv()
            except _ClosedBeforeAnswer:
                reader.eof()
                raise RemoteProtocolError("Runtime API body cut short") from None
            parts.extend(bytes(p) for p in reader.feed(data))
        self._buf = reader.unused_data
        return b"".join(parts)


class _ClosedBeforeAnswer(Exception):
    """The API closed the connection before any byte of its answer."""


def _parse_head(head: bytes) -> tuple[int, Fields, bool]:
    """Status, fields and keep-alive of a response head (CRLF lines, as the API sends).

    Minimal on purpose: the peer is the Lambda service (or an emulator), and this runs twice
    per invocation. Field names stay bytes, lower-cased in one call each.
    """
    fields = Fields()
    lines = head.split(b"\r\n")
    status_line = lines[0]
    code = status_line[9:12]
    if not status_line.startswith(b"HTTP/1.") or not code.isdigit():
        raise RemoteProtocolError(f"malformed status line from the Runtime API: {status_line!r}")
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in _SPACE:
            raise RemoteProtocolError(f"malformed header field from the Runtime API: {line!r}")
        field = (name.lower(), value.strip(b" \t"))
        fields.raw.append(field)
        fields.by_name.setdefault(*field)
    connection = fields.by_name.get(b"connection")
    keep_alive = True
    if connection is not None or status_line[7:8] != b"1":  # HTTP/1.0, or a Connection field
        connection = (connection or b"").lower()
        keep_alive = b"close" not in connection and (
            status_line[7:8] == b"1" or b"keep-alive" in connection
        )
    return int(code), fields, keep_alive


_SPACE = (b" ", b"\t")


class Address:
    """``AWS_LAMBDA_RUNTIME_API`` as the engine uses it."""

    __slots__ = ("host", "host_header", "port", "prefix")

    def __init__(self, host: str, port: int, prefix: str = "") -> None:
        self.host = host
        self.port = port
        self.prefix = prefix
        self.host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @classmethod
    def parse(cls, value: str) -> Address:
        """``host:port`` read here; any other form through ``RuntimeApiAddress.parse``.

        Raises:
            ValueError: a malformed address (one line naming the variable).
        """
        host, colon, port = value.partition(":")
        if (
            colon
            and _simple_host(host)
            and port.isdigit()
            and port.isascii()
            and port[0] != "0"
            and int(port) < 65536
        ):
            return cls(host.lower(), int(port))
        from duplexlambda.protocol.runtime_api import RuntimeApiAddress

        full = RuntimeApiAddress.parse(value)
        return cls(full.host, full.port, full.prefix)


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _simple_host(host: str) -> bool:
    return bool(host) and host[0] not in ".-" and all(c in _HOST_CHARS for c in host)


class BlockingRuntime:
    """Serves invocations to one buffered handler, one at a time, until SIGTERM."""

    def __init__(
        self,
        handler: Callable[..., Any],
        address: Address,
        *,
        is_async: bool,
        deadline_margin: float = 0.25,
        hooks: Lifecycle | None = None,
        use_uvloop: bool = True,
    ) -> None:
        self.handler = handler
        self.address = address
        self.deadline_margin = deadline_margin
        self.hooks = hooks
        self.conn = ApiConnection(address.host, address.port)
        self.exit_code = 0
        self._stopping = False
        self._idle = False
        self._timer = _DeadlineTimer(self, owned=False)  # installed by serve()
        self._loop = _new_loop(use_uvloop) if is_async or _has_hooks(hooks) else None
        self._is_async = is_async
        #: the function's own variables, read once: Lambda sets them before the process starts
        self._function_env = {name: os.environ[name] for name in FUNCTION_ENV if name in os.environ}
        base = f"Host: {address.host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
        root = f"{address.prefix}/2018-06-01/runtime"
        self._next_request = (
            f"GET {root}/invocation/next HTTP/1.1\r\n{base}".encode("latin-1")
            + b"Accept: "
            + ACCEPT_NEXT
            + b"\r\n\r\n"
        )
        self._post_start = f"POST {root}/invocation/".encode("latin-1")
        self._post_fields = f" HTTP/1.1\r\n{base}".encode("latin-1")

    # --- lifecycle ---------------------------------------------------------------------------

    def serve(self) -> int:
        """Run init hooks, serve until SIGTERM or a fatal API error, run shutdown hooks."""
        import signal
        import threading

        # Signals reach the main thread only; elsewhere (tests) stop() is the way out and
        # Lambda's own deadline the only one.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self.conn.watch_signals()
            self._timer = _DeadlineTimer.install(self)
        try:
            if not self._run_hooks("init"):
                return 1
            while not self._stopping:
                if not self._serve_next():
                    break
        finally:
            self._run_hooks("shutdown")
            self.conn.close()
            if self._loop is not None:
                self._loop.close()
        return self.exit_code

    def stop(self) -> None:
        """Stop after the invocation in flight (from another thread; SIGTERM does the same)."""
        self._stopping = True
        self.conn.shut()

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self._stopping = True
        if self._idle:
            raise _Stop

    def _run_hooks(self, which: str) -> bool:
        if self.hooks is None or self._loop is None:
            return True
        for hook in getattr(self.hooks, which):
            try:
                self._loop.run_until_complete(hook())
            except Exception as exc:
                if which == "init":
                    log.exception("init hook failed")
                    post_init_error(self.address, exc)
                    return False
                log.exception("shutdown hook %r failed", hook)
        return True

    # --- one invocation ----------------------------------------------------------------------

    def _serve_next(self) -> bool:
        """Poll ``/next`` and serve what it brings; False once the runtime must exit."""
        try:
            self._idle = True
            try:
                if self._stopping:  # SIGTERM came just before _idle was set
                    raise _Stop
                status, fields, payload = self.conn.exchange(self._next_request, idle=True)
            finally:
                self._idle = False
        except _Stop:
            return False
        except (OSError, _ClosedBeforeAnswer) as exc:
            if self._stopping:  # stop() shut the socket under the poll
                return False
            return self._fatal(f"Runtime API unreachable: {exc or 'connection closed'}")
        except RemoteProtocolError as exc:
            log.error("bad /next answer: %s", exc)
            self.conn.close()
            time.sleep(0.1)
            return True
        if status != 200:
            return self._bad_next(status, payload)
        try:
            head = parse_next(fields.raw, int(time.time() * 1000))
            check_request_id(head.request_id)  # it goes into the answer's request target
        except (RemoteProtocolError, LocalProtocolError) as exc:
            log.error("bad /next answer: %s", exc)
            time.sleep(0.1)
            return True
        try:
            self._serve_one(head, payload)
        except RuntimeApiFatal as exc:
            return self._fatal(str(exc))
        return True

    def _bad_next(self, status: int, body: bytes) -> bool:
        if status == 204:  # some emulators: "poll again"
            return True
        if status >= 500:
            return self._fatal(f"Runtime API answered {status}: {body[:500]!r}")
        log.error("bad /next answer: Runtime API answered %d: %r", status, body[:500])
        time.sleep(0.1)
        return True

    def _fatal(self, why: str) -> bool:
        log.error("%s: the runtime exits", why)
        self.exit_code = 1
        return False

    def _serve_one(self, head: InvocationHead, payload: bytes) -> None:
        rid_token = request_id.set(head.request_id)
        trace_token = trace_id.set(head.trace_id)
        # One invocation at a time: the variable is safe here (awslambdaric sets it too).
        if head.trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = head.trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            try:
                context = LambdaContext.from_invocation(head, self._function_env)
                event = _event(head.content_type, payload)
                result = self._call(event, context, head.deadline_ms)
                body, content_type = marshal(result)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # the handler's own BaseExceptions fail only it
                self._post_error(head.request_id, exc)
                return
            self._post_response(head.request_id, body, content_type)
        finally:
            request_id.reset(rid_token)
            trace_id.reset(trace_token)

    def _call(self, event: Any, context: LambdaContext, deadline_ms: int) -> Any:
        delay = deadline_ms / 1000 - time.time() - self.deadline_margin
        if self._is_async:
            return self._call_async(event, context, delay)
        self._timer.arm(delay)
        try:
            result = self.handler(event, context)
            self._timer.disarm()  # inside the try: an alarm just before it is still a timeout
            return result
        except _Deadline:
            raise self._timeout() from None
        finally:
            self._timer.disarm()

    def _call_async(self, event: Any, context: LambdaContext, delay: float) -> Any:
        import asyncio

        loop = self._loop
        assert loop is not None
        task = loop.create_task(self.handler(event, context))
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            task.cancel()

        timer = loop.call_later(max(delay, 0.0), expire)
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if expired:
                raise self._timeout() from None
            raise
        finally:
            timer.cancel()

    def _timeout(self) -> HandlerTimeoutError:
        return HandlerTimeoutError(
            f"Task timed out: cancelled {self.deadline_margin * 1000:.0f} ms "
            "before the invocation deadline"
        )

    # --- answers -----------------------------------------------------------------------------

    def _post(self, request: bytes, body: bytes, what: str) -> None:
        try:
            status, _, answer = self.conn.exchange(request, body)
        except (OSError, _ClosedBeforeAnswer) as exc:
            raise RuntimeApiFatal(f"Runtime API unreachable: {exc}") from None
        except RemoteProtocolError as exc:
            self.conn.close()
            log.error("%s: bad Runtime API answer: %s", what, exc)
            return
        if 200 <= status < 300:
            return
        if status >= 500:
            raise RuntimeApiFatal(f"Runtime API answered {status}: {answer[:500]!r}")
        # e.g. 413: Lambda reports the invocation itself; no /error (docs/runtime-api.md P6)
        log.error("%s: Runtime API answered %d: %r", what, status, answer[:500])

    def _post_response(self, rid: str, body: bytes, content_type: str) -> None:
        request = b"".join(
            (
                self._post_start,
                rid.encode("latin-1"),
                b"/response",
                self._post_fields,
                b"Content-Type: ",
                content_type.encode("latin-1"),
                b"\r\nContent-Length: ",
                str(len(body)).encode("ascii"),
                b"\r\n\r\n",
            )
        )
        self._post(request, body, f"invocation {rid}")

    def _post_error(self, rid: str, exc: BaseException) -> None:
        from duplexlambda.protocol import runtime_api as wire

        internal = internal_paths(self._is_async)
        payload = wire.error_payload(exc, rid, internal=internal)
        log.error(
            "invocation %s failed: %s: %s",
            rid,
            payload.errorType,
            payload.errorMessage[:LOGGED_MESSAGE],
            exc_info=exc,
        )
        body = wire.encode_error(payload)
        cause = wire.xray_cause(exc, os.getcwd(), internal)
        address = wire.RuntimeApiAddress(self.address.host, self.address.port, self.address.prefix)
        head = wire.error_request(address, rid, payload.errorType, len(body), cause)
        self._post(head, body, f"invocation {rid}")


class _DeadlineTimer:
    """``SIGALRM`` at the deadline, raising ``_Deadline`` into the handler.

    Only if SIGALRM is ours: a handler module that installed its own handler keeps it (and the
    invocation then runs until Lambda's own deadline, as under awslambdaric).
    """

    def __init__(self, owner: BlockingRuntime, owned: bool) -> None:
        self._owner = owner
        self._owned = owned
        self._armed = False

    @classmethod
    def install(cls, owner: BlockingRuntime) -> _DeadlineTimer:
        import signal

        owned = signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
        timer = cls(owner, owned)
        if owned:
            signal.signal(signal.SIGALRM, timer._fire)
        return timer

    def arm(self, delay: float) -> None:
        import _signal  # type: ignore[import-not-found]  # CPython's own, under signal
        import signal

        # A deadline days away (an emulator's "none") is no deadline: setitimer would overflow.
        # _signal.getsignal: signal.getsignal would try an enum lookup (and fail) every time.
        if delay < MAX_TIMER and self._owned and _signal.getsignal(signal.SIGALRM) == self._fire:
            self._armed = True
            signal.setitimer(signal.ITIMER_REAL, max(delay, 0.001))

    def disarm(self) -> None:
        if self._armed:
            import signal

            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _fire(self, signum: int, frame: object) -> None:
        if self._armed:
            self._armed = False
            raise _Deadline


def _event(content_type: str, payload: bytes) -> Any:
    """The event the handler gets: JSON decoded as awslambdaric does, else the bytes."""
    if content_type.startswith(REQUEST_STREAM):
        return _stream_event(payload)
    if not content_type.startswith("application/json"):
        return payload
    import json

    try:
        return json.loads(payload)
    except ValueError as exc:  # also a UnicodeDecodeError
        raise UnmarshalError(f"Unable to unmarshal input: {exc}") from None


def _stream_event(payload: bytes) -> Any:
    """Our emulator's live request stream, whole: the event with its body put back."""
    from duplexlambda.events.body import utf8_or_base64
    from duplexlambda.protocol.prelude import MAX_REQUEST_PRELUDE, PreludeDecoder

    decoder = PreludeDecoder(MAX_REQUEST_PRELUDE)
    pieces = decoder.feed(payload)
    decoder.eof()
    event = decoder.prelude
    assert isinstance(event, dict)
    event.update(utf8_or_base64(b"".join(pieces)))
    return event


def internal_paths(with_asyncio: bool) -> tuple[str, ...]:
    """Where the runtime's own frames live: error stack traces start after them."""
    # this file is duplexlambda/runtime/blocking.py: the package is two levels up
    paths = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep]
    if with_asyncio:
        import asyncio

        paths.append(os.path.dirname(asyncio.__file__ or "") + os.sep)
        paths.append("uvloop" + os.sep)  # run_until_complete's frame: "uvloop/loop.pyx"
    return tuple(paths)


def post_init_error(address: Address, exc: BaseException) -> None:
    """``POST /runtime/init/error`` on a connection of its own (the process exits after it)."""
    from duplexlambda.protocol import runtime_api as wire

    payload = wire.error_payload(exc, internal=internal_paths(False))
    body = wire.encode_error(payload)
    full = wire.RuntimeApiAddress(address.host, address.port, address.prefix)
    conn = ApiConnection(address.host, address.port)
    try:
        status, _, answer = conn.exchange(
            wire.error_request(full, None, payload.errorType, len(body)), body
        )
        if not 200 <= status < 300:
            log.error("could not report the init error: %d %r", status, answer[:500])
    except (OSError, RemoteProtocolError, _ClosedBeforeAnswer) as failed:
        log.error("could not report the init error: %s", failed)
    finally:
        conn.close()


def _has_hooks(hooks: Lifecycle | None) -> bool:
    return hooks is not None and bool(hooks.init or hooks.shutdown)


def _new_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    """The loop an async handler or hook runs on: uvloop's if asked and installed."""
    import asyncio

    loop: asyncio.AbstractEventLoop | None = None
    if use_uvloop:
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:
            pass
    if loop is None:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # handlers made at init may look for it
    return loop
