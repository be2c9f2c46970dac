"""The pytest plugin: its entry point, its fixtures, and their teardown."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from duplexlambda.streams import Request, Response
from duplexlambda.testing.plugin import EmulatorFactory, LambdaClientFactory

from ..support.wire import request


async def upper(req: Request, res: Response) -> None:
    async for chunk in req:
        await res.write(chunk.upper())


def test_registered_as_a_pytest_plugin(pytestconfig: pytest.Config) -> None:
    ep_values = [ep.value for ep in entry_points(group="pytest11")]
    assert "duplexlambda.testing.plugin" in ep_values
    assert pytestconfig.pluginmanager.has_plugin("duplexlambda")


def test_the_old_plugin_name_still_imports() -> None:
    from duplexlambda import pytest_plugin
    from duplexlambda.testing import plugin

    assert pytest_plugin.lambda_client is plugin.lambda_client
    assert pytest_plugin.emulator is plugin.emulator
    assert pytest_plugin.LambdaClientFactory is plugin.LambdaClientFactory


@pytest.mark.asyncio
async def test_lambda_client_fixture(lambda_client: LambdaClientFactory) -> None:
    one = await lambda_client(upper)
    two = await lambda_client(upper, mode="lambda")
    assert (await one.post("/", body=b"a")).body == b"A"
    assert (await two.post("/", body=b"b")).body == b"B"


@pytest.mark.asyncio
async def test_emulator_fixture(emulator: EmulatorFactory) -> None:
    fn = await emulator(upper, timeout=5.0)
    assert fn.url.startswith("http://127.0.0.1:")
    reply = await request(fn.url, "POST", "/", body=b"over http")
    assert (reply.status, reply.body) == (200, b"OVER HTTP")
    record = await asyncio.wait_for(fn.records.get(), 5)
    assert (record.kind, record.status, record.bytes_in) == ("function-url", 200, 9)


USER_TESTS = """
import asyncio, os, pathlib
import pytest
from duplexlambda.handler import Lifecycle

MARKS = pathlib.Path(os.environ["MARKS"])

async def shutdown():
    MARKS.joinpath("shutdown-" + os.environ.get("PYTEST_XDIST_WORKER", "x")).touch()

async def handler(req, res):
    await res.write(b"hi " + await req.read())

@pytest.mark.asyncio
async def test_in_process(lambda_client):
    client = await lambda_client(handler, lifecycle=Lifecycle(shutdown=[shutdown]))
    assert (await client.post("/", body=b"there")).text == "hi there"

@pytest.mark.asyncio
async def test_on_free_ports(emulator):
    fn = await emulator(handler)
    host, port = fn.url.split("//")[1].strip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\n\\r\\nyo")
    assert b"hi yo" in await reader.read(4096)
    writer.close()
    MARKS.joinpath("port").write_text(port)

def test_port_is_free_again():
    import socket
    port = int(MARKS.joinpath("port").read_text())
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # nobody listens there: stopped at teardown
"""


def test_fixtures_work_in_a_project_without_conftest(tmp_path: pathlib.Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path,
        env={**os.environ, "MARKS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
    assert (tmp_path / "shutdown-x").exists()  # the client was stopped at teardown
