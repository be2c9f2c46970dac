"""The invocation context, with awslambdaric's attribute names so existing libraries work.

Per-invocation state lives in contextvars, never in process globals: with
``AWS_LAMBDA_MAX_CONCURRENCY`` > 1 several invocations run at once in one process (the
problem Go fixed in aws-lambda-go #602 and Rust met in #1065).
"""

from __future__ import annotations

import contextvars
import os
import time

from duplexlambda.errors import DuplexLambdaError

# Plain classes, not dataclasses, and no typing/msgspec at import: this module is on every
# cold start's path, where ``dataclasses`` alone costs as much as the rest of the runtime.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from duplexlambda.protocol.runtime_api import InvocationHead

#: The current invocation's X-Ray trace header (``Root=…;Parent=…;Sampled=…``).
trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "duplexlambda_trace_id", default=None
)
#: The current invocation's request id (used by logging).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "duplexlambda_request_id", default=None
)


class _Record:
    """Value semantics (``==`` and ``repr`` over ``__slots__``) without ``dataclasses``."""

    __slots__: tuple[str, ...] = ()

    def _names(self) -> list[str]:
        return [name for name in self.__slots__ if name != "__dict__"]

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclasses were

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names())
        return f"{type(self).__name__}({fields})"


class LambdaContextUnmarshalError(DuplexLambdaError):
    """The client context or Cognito identity header is not valid JSON."""

    error_type = "Runtime.LambdaContextUnmarshalError"


class Client(_Record):
    """``context.client_context.client`` (mobile SDK clients)."""

    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    def __init__(
        self,
        installation_id: str | None = None,
        app_title: str | None = None,
        app_version_name: str | None = None,
        app_version_code: str | None = None,
        app_package_name: str | None = None,
    ) -> None:
        self.installation_id = installation_id
        self.app_title = app_title
        self.app_version_name = app_version_name
        self.app_version_code = app_version_code
        self.app_package_name = app_package_name


class ClientContext(_Record):
    """``context.client_context`` as awslambdaric builds it."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, client: Client | None = None, custom: Any = None, env: Any = None) -> None:
        self.client = client
        self.custom = custom
        self.env = env


class CognitoIdentity(_Record):
    """``context.identity``."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(
        self, cognito_identity_id: str | None = None, cognito_identity_pool_id: str | None = None
    ) -> None:
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id


def _decode(raw: str | None, what: str) -> dict[str, Any] | None:
    if not raw:
        return None
    import json  # only when a caller sends a client context or identity

    try:
        value = json.loads(raw)
    except ValueError as exc:
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


class LambdaContext(_Record):
    """What a handler gets as ``context`` (awslambdaric names) plus ``deadline``/``remaining``."""

    __slots__ = (
        "__dict__",  # libraries set attributes of their own on awslambdaric's context
        "aws_request_id",
        "client_context",
        "deadline_ms",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "tenant_id",
        "trace_id",
    )

    def __init__(
        self,
        aws_request_id: str,
        invoked_function_arn: str,
        deadline_ms: int,
        function_name: str,
        function_version: str,
        memory_limit_in_mb: str,
        log_group_name: str,
        log_stream_name: str,
        client_context: ClientContext | None = None,
        identity: CognitoIdentity | None = None,
        tenant_id: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.invoked_function_arn = invoked_function_arn
        self.deadline_ms = deadline_ms
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = memory_limit_in_mb
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.client_context = client_context
        self.identity = identity if identity is not None else CognitoIdentity()
        self.tenant_id = tenant_id
        self.trace_id = trace_id

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
