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
saying so, and nothing else in pytest is affected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from duplexlambda.testing import EmulatedFunction, LambdaClient

LambdaClientFactory = Callable[..., Awaitable["LambdaClient"]]
EmulatorFactory = Callable[..., Awaitable["EmulatedFunction"]]

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only where pytest-asyncio is missing
    pytest_asyncio = None  # type: ignore[assignment]

_NEEDS = "the duplexlambda fixtures need pytest-asyncio (pip install 'duplexlambda[test]')"


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def lambda_client() -> AsyncIterator[LambdaClientFactory]:
        """``await lambda_client(handler, **options)``: a started ``LambdaClient``."""
        from duplexlambda.testing import LambdaClient

        clients: list[LambdaClient] = []

        async def make(handler: Any, **options: Any) -> LambdaClient:
            client = LambdaClient(handler, **options)
            clients.append(client)
            await client.start()
            return client

        try:
            yield make
        finally:
            for client in reversed(clients):
                await client.aclose()

    @pytest_asyncio.fixture
    async def emulator() -> AsyncIterator[EmulatorFactory]:
        """``await emulator(handler, **options)``: a started ``EmulatedFunction``."""
        from duplexlambda.testing import EmulatedFunction

        functions: list[EmulatedFunction] = []

        async def make(handler: Any, **options: Any) -> EmulatedFunction:
            function = EmulatedFunction(handler, **options)
            functions.append(function)
            await function.start()
            return function

        try:
            yield make
        finally:
            for function in reversed(functions):
                await function.aclose()

else:  # pragma: no cover

    @pytest.fixture
    def lambda_client() -> Any:
        pytest.fail(_NEEDS, pytrace=False)

    @pytest.fixture
    def emulator() -> Any:
        pytest.fail(_NEEDS, pytrace=False)
