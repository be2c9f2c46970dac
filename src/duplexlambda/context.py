"""The invocation context, with awslambdaric's attribute names so existing libraries work.

Per-invocation state lives in contextvars, never in process globals: with
``AWS_LAMBDA_MAX_CONCURRENCY`` > 1 several invocations run at once in one process (the
problem Go fixed in aws-lambda-go #602 and Rust met in #1065).
"""

from __future__ import annotations

import contextvars
import os
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from duplexlambda.errors import DuplexLambdaError
from duplexlambda.protocol.runtime_api import InvocationHead

#: The current invocation's X-Ray trace header (``Root=…;Parent=…;Sampled=…``).
trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "duplexlambda_trace_id", default=None
)
#: The current invocation's request id (used by logging).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "duplexlambda_request_id", default=None
)


class LambdaContextUnmarshalError(DuplexLambdaError):
    """The client context or Cognito identity header is not valid JSON."""

    error_type = "Runtime.LambdaContextUnmarshalError"


@dataclass
class Client:
    """``context.client_context.client`` (mobile SDK clients)."""

    installation_id: str | None = None
    app_title: str | None = None
    app_version_name: str | None = None
    app_version_code: str | None = None
    app_package_name: str | None = None


@dataclass
class ClientContext:
    """``context.client_context`` as awslambdaric builds it."""

    client: Client | None = None
    custom: Any = None
    env: Any = None


@dataclass
class CognitoIdentity:
    """``context.identity``."""

    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


def _decode(raw: str | None, what: str) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise LambdaContextUnmarshalError(f"Unable to parse {what} JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LambdaContextUnmarshalError(f"{what} is not a JSON object")
    return value


def _client_context(raw: str | None) -> ClientContext | None:
    data = _decode(raw, "Client Context")
    if data is None:
        return None
    client = data.get("client")
    return ClientContext(
        client=Client(
            installation_id=client.get("installation_id"),
            app_title=client.get("app_title"),
            app_version_name=client.get("app_version_name"),
            app_version_code=client.get("app_version_code"),
            app_package_name=client.get("app_package_name"),
        )
        if isinstance(client, dict)
        else None,
        custom=data.get("custom"),
        env=data.get("env"),
    )


def _identity(raw: str | None) -> CognitoIdentity:
    data = _decode(raw, "Cognito Identity") or {}
    return CognitoIdentity(data.get("cognitoIdentityId"), data.get("cognitoIdentityPoolId"))


@dataclass
class LambdaContext:
    """What a handler gets as ``context`` (awslambdaric names) plus ``deadline``/``remaining``."""

    aws_request_id: str
    invoked_function_arn: str
    deadline_ms: int
    function_name: str
    function_version: str
    memory_limit_in_mb: str
    log_group_name: str
    log_stream_name: str
    client_context: ClientContext | None = None
    identity: CognitoIdentity = field(default_factory=CognitoIdentity)
    tenant_id: str | None = None
    trace_id: str | None = None

    @classmethod
    def from_invocation(
        cls, head: InvocationHead, environ: dict[str, str] | None = None
    ) -> LambdaContext:
        """Build the context of an invocation from its ``/next`` headers and the environment.

        Raises:
            LambdaContextUnmarshalError: client context or identity that is not JSON.
        """
        env = os.environ if environ is None else environ
        return cls(
            aws_request_id=head.request_id,
            invoked_function_arn=head.invoked_function_arn,
            deadline_ms=head.deadline_ms,
            function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            memory_limit_in_mb=env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", ""),
            log_group_name=env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            client_context=_client_context(head.client_context),
            identity=_identity(head.cognito_identity),
            tenant_id=head.tenant_id,
            trace_id=head.trace_id,
        )

    @property
    def deadline(self) -> float:
        """The invocation deadline as a Unix timestamp in seconds."""
        return self.deadline_ms / 1000.0

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        return self.deadline - time.time()

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the deadline, never negative (awslambdaric's method)."""
        return max(0, int(self.deadline_ms - time.time() * 1000))
