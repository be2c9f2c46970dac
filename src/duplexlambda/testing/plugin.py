"""pytest fixtures for duplexlambda handlers (registered through the ``pytest11`` entry point).

``lambda_client``: a factory of started ``LambdaClient`` objects (in-process, no sockets)::

    async def test_hello(lambda_client):
        client = await lambda_client(handler)
        assert (await client.get("/hello")).text == "hello"

``emulator``: a factory of started ``EmulatedFunction`` objects (the emulator on free
127.0.0.1 ports with the handler served by this process's runtime), for tests with a real
HTTP client or boto3::

    async def test_over_http(emulator):
        fn = await emulator(handler)
        ...  # fn.url, fn.invoke_url, fn.records

Both are async fixtures (pytest-asyncio) on the test's event loop; whatever they started is
stopped at teardown, as SIGTERM would stop it. Without pytest-asyncio they fail with a message
saying so, and nothing else in pytest is affected (nor slowed: the runtime and the emulator
are imported only when a fixture is used).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from .client import LambdaClient
    from .function import EmulatedFunction
    from .runner import RuntimeHost

LambdaClientFactory = Callable[..., Awaitable["LambdaClient"]]
EmulatorFactory = Callable[..., Awaitable["EmulatedFunction"]]
_Host = TypeVar("_Host", bound="RuntimeHost")

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only where pytest-asyncio is missing
    pytest_asyncio = None  # type: ignore[assignment]

_NEEDS = "the duplexlambda fixtures need pytest-asyncio (pip install 'duplexlambda[test]')"


@contextlib.asynccontextmanager
async def _factory(kind: Callable[..., _Host]) -> AsyncIterator[Callable[..., Awaitable[_Host]]]:
    """``make(handler, **options)`` builds and starts a ``kind``; all are closed on exit."""
    made: list[_Host] = []

    async def make(handler: Any, **options: Any) -> _Host:
        host = kind(handler, **options)
        made.append(host)
        await host.start()
        return host

    try:
        yield make
    finally:
        for host in reversed(made):
            await host.aclose()


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def lambda_client() -> AsyncIterator[LambdaClientFactory]:
        """``await lambda_client(handler, **options)``: a started ``LambdaClient``."""
        from .client import LambdaClient

        async with _factory(LambdaClient) as make:
            yield make

    @pytest_asyncio.fixture
    async def emulator() -> AsyncIterator[EmulatorFactory]:
        """``await emulator(handler, **options)``: a started ``EmulatedFunction``."""
        from .function import EmulatedFunction

        async with _factory(EmulatedFunction) as make:
            yield make

else:  # pragma: no cover

    @pytest.fixture
    def lambda_client() -> Any:
        pytest.fail(_NEEDS, pytrace=False)

    @pytest.fixture
    def emulator() -> Any:
        pytest.fail(_NEEDS, pytrace=False)
