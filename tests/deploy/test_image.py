"""The container image, built (``bash .ci/image``) and run as Lambda runs a function's
container, against ``duplexlambda serve --no-runtime`` (tests/deploy/containers.py says
how): a streamed example, a full-duplex upload, bytecode compiled at build time, an ASGI
app's image, SIGTERM inside the container, and ``serve --image``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ..support.emulated import cut, paced
from ..support.serve_process import Serve
from ..support.wire import request
from .containers import ASGI_IMAGE, IMAGE, Container, engine_env, leftover_containers, podman
from .containers import require_image as _require_image
from .lambda_env import ROOT


@pytest.fixture(scope="module")
def image() -> str:
    return _require_image(IMAGE)


@pytest.fixture(scope="module")
def asgi_image() -> str:
    return _require_image(ASGI_IMAGE)


@pytest.fixture
def emulator() -> Iterator[Serve]:
    serve = Serve("--no-runtime", "--port", "0", "--runtime-api-port", "0")
    try:
        yield serve
    finally:
        assert serve.stop() == 0


@pytest.fixture
def containers() -> Iterator[list[Container]]:
    """Containers a test starts: every one is removed at teardown, whatever happened."""
    started: list[Container] = []
    try:
        yield started
    finally:
        for container in started:
            container.stop()


def csv_upload(rows: int) -> bytes:
    return b"city,temp\n" + b"".join(b"c%d,%d\n" % (i % 3, i) for i in range(rows))


def test_the_image_is_what_lambda_runs(image: str) -> None:
    """ENTRYPOINT + CMD as the Dockerfile says, the C codec in use, and nothing written at
    run time: the file system is read-only, /tmp writable, the user not root."""
    inspected = podman("image", "inspect", "--format", "{{json .Config}}", image)
    config = json.loads(inspected.stdout)
    assert config["Entrypoint"] == ["python", "-m", "duplexlambda", "run"]
    assert config["Cmd"] == ["csv_stats.handler"]
    assert config["WorkingDir"] == "/var/task"
    assert "LAMBDA_TASK_ROOT=/var/task" in config["Env"]
    probe = (
        "import os, pathlib, duplexlambda.runtime\n"
        "from duplexlambda.protocol import chunked\n"
        "print(chunked.IMPL, os.getuid())\n"
        "pathlib.Path('/tmp/x').write_text('ok')\n"
        "try:\n"
        "    pathlib.Path('/var/task/x').write_text('no')\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)\n"
    )
    result = podman(
        "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--user", "993:993",
        "--entrypoint", "python", image, "-c", probe,
    )  # fmt: skip
    assert result.stdout.split("\n")[:2] == ["c 993", "Read-only file system"], result


def test_bytecode_was_compiled_at_build_time(
    image: str, emulator: Serve, containers: list[Container]
) -> None:
    """As root on a writable file system, Python writes any .pyc it lacks or finds stale:
    after a cold start and an invocation, ``podman diff`` shows that it wrote none."""
    container = Container(image, emulator.runtime_api, read_only=False, user=None)
    containers.append(container)
    reply = asyncio.run(request(emulator.url, "POST", "/", body=csv_upload(10)))
    assert reply.status == 200
    diff = podman("diff", container.name)
    assert diff.returncode == 0, diff.stderr
    written = [line for line in diff.stdout.splitlines() if ".pyc" in line or "__pycache__" in line]
    assert not written, diff.stdout


def test_a_streamed_example_writes_arrive_one_by_one(
    image: str, emulator: Serve, containers: list[Container]
) -> None:
    from examples.sse_tokens import reply as answer

    container = Container(image, emulator.runtime_api, "sse_tokens.handler")
    containers.append(container)
    reply = asyncio.run(request(emulator.url, path="/?prompt=hi&delay=0.05"))
    assert reply.status == 200
    assert reply.header("content-type") == "text/event-stream"
    tokens = [
        json_line for json_line in reply.body.decode().split("\n\n") if "event: token" in json_line
    ]
    assert len(tokens) == len(answer("hi").split())
    # One chunk per token, each as it is made (0.05 s apart), not all at the end.
    assert len(reply.chunks) >= len(tokens)
    gaps = [b[0] - a[0] for a, b in zip(reply.chunks, reply.chunks[1:], strict=False)]
    assert sum(gap > 0.02 for gap in gaps) >= len(tokens) // 2, gaps
    assert reply.chunks[-1][0] - reply.chunks[0][0] > 0.05 * len(tokens) / 2
    container.wait_for("handler sse_tokens.handler (duplex), codec c")


def test_a_full_duplex_upload(image: str, emulator: Serve, containers: list[Container]) -> None:
    """csv_stats (the image's CMD): progress lines come back while the upload still goes."""
    containers.append(Container(image, emulator.runtime_api))
    data = csv_upload(6000)
    pieces = cut(data, len(data) // 12 + 1)  # 12 pieces 0.1 s apart
    reply = asyncio.run(request(emulator.url, "POST", "/?every=1000", body=paced(pieces, 0.1)))
    lines = [json.loads(line) for line in reply.body.splitlines()]
    assert [line["type"] for line in lines] == ["progress"] * 6 + ["total"]
    assert lines[-1]["groups"]["c0"]["count"] == 2000
    upload_time = 0.1 * (len(pieces) - 1)
    assert reply.chunks[0][0] - reply.started < upload_time / 2
    assert reply.chunks[-1][0] - reply.chunks[0][0] > upload_time / 2


def test_sigterm_lets_the_invocation_in_flight_finish(
    image: str, emulator: Serve, containers: list[Container]
) -> None:
    """SIGTERM to the container (what Lambda sends at shutdown) reaches the runtime, its
    process 1: the stream under way completes, then it exits 0 (not killed)."""
    container = Container(image, emulator.runtime_api, "sse_tokens.handler")
    containers.append(container)

    async def scenario() -> tuple[bytes, bool]:
        task = asyncio.create_task(request(emulator.url, path="/?prompt=hi&delay=0.1"))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(container.kill, "TERM")
        reply = await task
        return reply.body, reply.complete

    body, complete = asyncio.run(scenario())
    assert complete
    assert b"event: done" in body
    assert container.wait(timeout=20) == 0, container.output


def test_an_asgi_app_image(asgi_image: str, emulator: Serve, containers: list[Container]) -> None:
    """A Starlette app on the examples image (tests/deploy/asgi_image), CMD ``app:app
    --asgi``: its lifespan runs at init and at SIGTERM, its routes answer, and an upload
    streams back while it arrives."""
    container = Container(asgi_image, emulator.runtime_api)
    containers.append(container)
    info = asyncio.run(request(emulator.url, path="/info"))
    assert json.loads(info.body) == {"path": "/info", "uid": 993, "task_root": "/var/task"}
    container.wait_for("lifespan startup")
    pieces = [b"piece %d " % i for i in range(10)]
    reply = asyncio.run(request(emulator.url, "POST", "/shout", body=paced(pieces, 0.1)))
    assert reply.body == b"".join(pieces).upper()
    assert reply.chunks[0][0] - reply.started < 0.5  # the first piece, not the whole upload
    container.kill("TERM")
    assert container.wait(timeout=20) == 0, container.output
    assert "lifespan shutdown" in container.output


def test_serve_image(image: str) -> None:
    """``serve --image IMAGE HANDLER``: the emulator runs the image itself, streams both
    ways through it, recycles it after a timeout, and leaves no container behind."""
    serve = Serve(
        "--image", image, "echo.handler", "--port", "0", "--runtime-api-port", "0",
        "--timeout", "2", env={**engine_env(), "DUPLEXLAMBDA_CONTAINER_ENGINE": "podman"},
    )  # fmt: skip
    prefix = f"duplexlambda-{serve.proc.pid}-"
    try:
        serve.wait_for(r"handler echo\.handler \(duplex\), codec c", serve.err, timeout=60)
        pieces = [b"chunk %d;" % i for i in range(8)]
        reply = asyncio.run(request(serve.url, "POST", "/", body=paced(pieces, 0.1)))
        assert reply.body == b"".join(pieces).upper()
        assert reply.chunks[-1][0] - reply.chunks[0][0] > 0.3  # echoed as it arrived
        # A runtime that hangs (stopped): the invocation times out, and as Lambda recycles
        # the environment, serve kills that container and starts a new one.
        first = serve.wait_for(r"runtime started .* --name (\S+)", serve.err)[1]
        assert podman("kill", "--signal", "STOP", first).returncode == 0
        hung = asyncio.run(request(serve.url, "POST", "/", body=b"hello"))
        assert hung.status != 200
        serve.wait_for("recycling the runtime", serve.err)
        serve.wait_for(r"runtime started .* --name " + prefix + "2-", serve.err, timeout=30)
        again = asyncio.run(request(serve.url, "POST", "/", body=b"again"))
        assert again.body == b"AGAIN"
    finally:
        assert serve.stop() == 0
    deadline = time.monotonic() + 10
    while (left := leftover_containers(prefix)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left


def test_serve_image_runs_the_cmd_and_stops_it_with_sigterm(asgi_image: str) -> None:
    """No HANDLER: the image's CMD runs (``app:app --asgi``); stopping ``serve`` sends
    SIGTERM into the container, which reaches the app's lifespan shutdown."""
    serve = Serve(
        "--image", asgi_image, "--port", "0", "--runtime-api-port", "0",
        env={**engine_env(), "DUPLEXLAMBDA_CONTAINER_ENGINE": "podman"},
    )  # fmt: skip
    try:
        serve.wait_for("lifespan startup", serve.err, timeout=60)
        info = asyncio.run(request(serve.url, path="/info"))
        assert json.loads(info.body)["uid"] == 993
    finally:
        assert serve.stop() == 0
    assert any("lifespan shutdown" in line for line in serve.err), serve.err
    assert not any("kill --signal KILL" in line for line in serve.err)


def deploy_blocks() -> list[list[str]]:
    """The README's deploy section: each bash block's commands (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Deploying\n", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        lines = [line.split(" #")[0].rstrip() for line in block.splitlines()]
        blocks.append([line for line in lines if line and not line.startswith("#")])
    return blocks


@pytest.fixture
def readme_tag(image: str) -> Iterator[str]:
    """The README's tag (what ``podman build -t duplexlambda-examples`` makes) on the image
    built here, for the time of the test."""
    tag = "localhost/duplexlambda-examples:latest"
    assert podman("tag", image, tag).returncode == 0
    try:
        yield tag
    finally:
        podman("untag", image, tag)


def test_the_readme_image_commands_work_as_written(readme_tag: str) -> None:
    """Step 2 of the README (``serve --image duplexlambda-examples csv_stats.handler`` and
    its curl), and the commands for machines like this one, run as written (the ports
    swapped for free ones); ``bash .ci/image`` itself is what made the image."""
    steps, here = deploy_blocks()
    assert steps[:2] == [
        "docker build -f examples/Dockerfile -t duplexlambda-examples .",
        "podman build -f examples/Dockerfile -t duplexlambda-examples .",
    ]
    assert here[0] == "bash .ci/image"
    export = here[1].removeprefix("export ").replace("$PWD", str(ROOT))
    name, _, value = export.partition("=")
    env = {**engine_env(), name: value}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env["PATH"]])
    curl = next(line for line in steps if "curl" in line)
    for line in (next(line for line in steps if "serve --image" in line), here[2]):
        argv = shlex.split(line)
        assert argv[0].endswith("duplexlambda")
        assert argv[1] == "serve"
        serve = Serve(*argv[2:], "--port", "0", "--runtime-api-port", "0", cwd=str(ROOT), env=env)
        try:
            command = curl.replace("http://127.0.0.1:9000/", serve.url)
            done = subprocess.run(
                ["bash", "-c", f"set -o pipefail; {command}"], cwd=ROOT, env=env,
                capture_output=True, timeout=120, check=False,
            )  # fmt: skip
        finally:
            assert serve.stop() == 0
        assert done.returncode == 0, done.stderr
        lines = [json.loads(text) for text in done.stdout.splitlines()]
        assert [line["type"] for line in lines] == ["progress"] * 6 + ["total"], line
        assert lines[-1]["rows"] == 300000
