"""The emulator's settings and what it records about each invocation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The streamed-response cap of lambda mode: 200 MB since 2025-07 (docs/runtime-api.md §8). The
#: docs say "MB"; we read it as MiB, like the 6 MiB buffered cap RIE uses.
LAMBDA_RESPONSE_LIMIT = 200 * 1024 * 1024

Mode = Literal["duplex", "lambda"]


@dataclass(frozen=True)
class EmulatorConfig:
    """Settings of one emulated function.

    Attributes:
        host: address both listeners bind (127.0.0.1 unless told otherwise).
        port: the function URL and Invoke API port (0: a free port).
        runtime_api_port: the Runtime API port (0: a free port).
        mode: ``"duplex"`` streams uploads to the runtime, uncapped; ``"lambda"`` is
            faithful to AWS (buffered 6 MB events).
        timeout: seconds an invocation may run (and wait for a runtime) before it fails
            with ``Sandbox.Timeout``.
        concurrency: ``AWS_LAMBDA_MAX_CONCURRENCY`` given to the runtime.
        response_limit: cap on a streamed response in bytes; None for the mode's default
            (200 MiB in lambda mode, none in duplex mode), 0 for no cap.
        throttle: AWS's streaming bandwidth limit (6 MiB burst, then 2 MiB/s).
    """

    host: str = "127.0.0.1"
    port: int = 9000
    runtime_api_port: int = 9001
    mode: Mode = "duplex"
    timeout: float = 300.0
    concurrency: int = 1
    response_limit: int | None = None
    throttle: bool = False
    function_name: str = "function"
    function_version: str = "$LATEST"
    memory_size: int = 3008
    region: str = "us-east-1"
    account_id: str = "123456789012"

    def __post_init__(self) -> None:
        if self.mode not in ("duplex", "lambda"):
            raise ValueError(f"mode must be 'duplex' or 'lambda', not {self.mode!r}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")

    @property
    def stream_limit(self) -> int | None:
        """The streamed-response cap in effect (None: no cap)."""
        if self.response_limit is None:
            return LAMBDA_RESPONSE_LIMIT if self.mode == "lambda" else None
        return self.response_limit or None

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"


@dataclass(frozen=True)
class InvocationRecord:
    """One finished invocation, as the caller saw it.

    Attributes:
        request_id: the invocation's request id.
        kind: ``"function-url"``, ``"invoke"`` or ``"invoke-stream"``.
        status: HTTP status sent to the caller (0 if none could be sent).
        error_type: e.g. ``Sandbox.Timeout`` or a runtime's error type; None on success.
        bytes_in: request body bytes received from the caller.
        bytes_out: response body bytes sent to the caller.
        duration_ms: from the request's arrival to the end of the response.
        ttfb_ms: from the request's arrival to the response head; None if never sent.
        truncated: the caller's response was cut (no terminating chunk).
    """

    request_id: str
    kind: str
    status: int
    error_type: str | None
    bytes_in: int
    bytes_out: int
    duration_ms: float
    ttfb_ms: float | None
    truncated: bool = False
