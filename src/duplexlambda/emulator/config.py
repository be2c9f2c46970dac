"""The emulator's settings and what it records about each invocation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from duplexlambda.events.fronts import Front

#: The streamed-response cap of lambda mode: 200 MB since 2025-07 (docs/runtime-api.md §8). The
#: docs say "MB"; we read it as MiB, like the 6 MiB buffered cap RIE uses.
LAMBDA_RESPONSE_LIMIT = 200 * 1024 * 1024

Mode = Literal["duplex", "lambda"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class FrontSpec:
    """A service that invokes the function with an HTTP request, as ``serve --front`` serves it.

    Attributes:
        name: the ``--front`` name.
        kind: the event and answer shapes (``duplexlambda.events.Front``).
        label: what the banner calls its URL (at most 13 characters).
        title: one line for the banner.
        streaming: invoked with InvokeWithResponseStream (the answer streams through);
            otherwise with a buffered Invoke (the answer is read whole).
        streaming_env: the ``DUPLEXLAMBDA_STREAMING`` the runtime is given for it (the fronts
            whose answers it streams).
        request_limit: the request body cap in bytes before the event is built (API Gateway
            10 MB, an ALB's Lambda target 1 MB), None for none; the event is then held to
            Lambda's 6 MB payload cap either way.
        answer_limit: the cap on the function's whole answer the front reads (an ALB's
            Lambda target: 1 MB), None for Lambda's own.
        integration_timeout: seconds the front waits for the answer (the head, when it
            streams) by default; None for none but the function's own timeout.
    """

    name: str
    kind: Front
    label: str
    title: str
    streaming: bool
    streaming_env: str
    request_limit: int | None = None
    answer_limit: int | None = None
    integration_timeout: float | None = None

    @property
    def is_function_url(self) -> bool:
        return self.kind is Front.FUNCTION_URL


#: Every ``--front``. "MB" in AWS's limits is read as MiB, like the 6 MiB payload cap.
FRONTS: dict[str, FrontSpec] = {
    spec.name: spec
    for spec in (
        FrontSpec(
            "function-url", Front.FUNCTION_URL, "Function URL",
            "function URL, RESPONSE_STREAM", streaming=True, streaming_env="function-url",
        ),
        FrontSpec(
            "function-url-buffered", Front.FUNCTION_URL, "Function URL",
            "function URL, BUFFERED", streaming=False, streaming_env="none",
        ),
        FrontSpec(
            "http-api", Front.HTTP_API_V2, "HTTP API",
            "API Gateway HTTP API, payload 2.0", streaming=False, streaming_env="none",
            request_limit=10 * _MIB, integration_timeout=30.0,
        ),
        FrontSpec(
            "http-api-v1", Front.HTTP_API_V1, "HTTP API",
            "API Gateway HTTP API, payload 1.0", streaming=False, streaming_env="none",
            request_limit=10 * _MIB, integration_timeout=30.0,
        ),
        FrontSpec(
            "rest", Front.REST_API, "REST API",
            "API Gateway REST API, buffered", streaming=False, streaming_env="none",
            request_limit=10 * _MIB, integration_timeout=29.0,
        ),
        FrontSpec(
            "rest-stream", Front.REST_API, "REST API",
            "API Gateway REST API, responseTransferMode STREAM", streaming=True,
            streaming_env="rest-api", request_limit=10 * _MIB, integration_timeout=29.0,
        ),
        FrontSpec(
            "alb", Front.ALB, "ALB",
            "Application Load Balancer", streaming=False, streaming_env="none",
            request_limit=_MIB, answer_limit=_MIB,
        ),
        FrontSpec(
            "alb-multi", Front.ALB_MULTI, "ALB",
            "Application Load Balancer, multi-value headers", streaming=False,
            streaming_env="none", request_limit=_MIB, answer_limit=_MIB,
        ),
    )
}  # fmt: skip
FrontName = Literal[
    "function-url",
    "function-url-buffered",
    "http-api",
    "http-api-v1",
    "rest",
    "rest-stream",
    "alb",
    "alb-multi",
]
_STAGE = re.compile(r"[A-Za-z0-9_-]{1,128}")


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
        front: the service the main port plays (``FRONTS``): ``"function-url"`` (the
            default), ``"function-url-buffered"``, ``"http-api"``, ``"http-api-v1"``,
            ``"rest"``, ``"rest-stream"``, ``"alb"`` or ``"alb-multi"``.
        stage: the REST API's stage (the first segment of every path it serves).
        integration_timeout: seconds an API Gateway front waits for the function (None: the
            front's own, 30 s for HTTP APIs, 29 s for REST APIs).
        inspector: serve the inspector under ``/_duplexlambda/`` on the front port and
            record what it shows (``serve --no-inspector``: off, nothing recorded).
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
    front: FrontName = "function-url"
    stage: str = "prod"
    integration_timeout: float | None = None
    inspector: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("duplex", "lambda"):
            raise ValueError(f"mode must be 'duplex' or 'lambda', not {self.mode!r}")
        if self.front not in FRONTS:
            raise ValueError(f"front must be one of {', '.join(FRONTS)}, not {self.front!r}")
        if not _STAGE.fullmatch(self.stage):
            raise ValueError(f"stage must be 1-128 of A-Z a-z 0-9 _ -, not {self.stage!r}")
        if self.integration_timeout is not None and self.integration_timeout <= 0:
            raise ValueError("integration_timeout must be positive")
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
    def front_spec(self) -> FrontSpec:
        """The ``FrontSpec`` of ``front``."""
        return FRONTS[self.front]

    @property
    def front_timeout(self) -> float | None:
        """The integration timeout in effect (None: only the function's own; a function URL
        has none)."""
        if self.front_spec.is_function_url:
            return None
        if self.integration_timeout is not None:
            return self.integration_timeout
        return self.front_spec.integration_timeout

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"


@dataclass(frozen=True)
class InvocationRecord:
    """One finished invocation, as the caller saw it.

    Attributes:
        request_id: the invocation's request id.
        kind: ``"invoke"``, ``"invoke-stream"``, or the front's name (``"function-url"``,
            ``"http-api"``, ``"rest"``, ``"alb"``...).
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
