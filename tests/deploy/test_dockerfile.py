"""examples/Dockerfile, checked without a Docker engine: its instructions parsed (base image
pinned, ENTRYPOINT and CMD exactly as Lambda needs them, every COPY source present), and
its entry command run as the image would run it, against ``serve --no-runtime``."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass

import pytest

from duplexlambda.handler import load_handler

from ..support.serve_process import Serve
from ..support.wire import request
from .lambda_env import EXAMPLES, ROOT, lambda_env

DOCKERFILE = EXAMPLES / "Dockerfile"


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int  #: index of the FROM it belongs to (-1 before the first)

    def json(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} must be in exec (JSON) form"
        assert all(isinstance(v, str) for v in value)
        return value


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    assert not pending, "the file ends inside a continued line"
    return instructions


INSTRUCTIONS = parse(DOCKERFILE.read_text())
FINAL = max(i.stage for i in INSTRUCTIONS)


def final(keyword: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.keyword == keyword and i.stage == FINAL]


def resolved_bases() -> list[str]:
    args = {}
    for ins in INSTRUCTIONS:
        if ins.keyword == "ARG" and ins.stage == -1:
            name, _, default = ins.args.partition("=")
            args[name] = default
    bases = []
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            image = ins.args.split()[0]
            while "$" in image:  # a default may name an earlier ARG (BUILD_BASE=${BASE})
                image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], image)
            bases.append(image)
    return bases


OFFICIAL = ("python", "public.ecr.aws/docker/library/python", "public.ecr.aws/lambda/python")


def pinned_official(base: str) -> bool:
    """An official Python image at a full X.Y.Z version or a digest (never ``3.12``,
    ``latest`` or no tag: those move under you)."""
    name, _, tag = base.partition("@")[0].partition(":")
    return name in OFFICIAL and ("@sha256:" in base or bool(re.match(r"3\.\d+\.\d+", tag)))


def test_base_images_are_official_python_and_pinned() -> None:
    bases = resolved_bases()
    assert bases == ["python:3.12.8-slim-bookworm"] * 2  # build and run on the same Python
    assert all(pinned_official(base) for base in bases)


def test_entrypoint_and_cmd_are_exact() -> None:
    (entrypoint,) = final("ENTRYPOINT")
    (cmd,) = final("CMD")
    assert entrypoint.json() == ["python", "-m", "duplexlambda", "run"]
    (handler,) = cmd.json()
    assert handler == "csv_stats.handler"
    load_handler(handler, str(EXAMPLES))  # the examples are copied to the task root


def test_copy_sources_exist_and_the_codec_is_checked() -> None:
    for ins in INSTRUCTIONS:
        if ins.keyword == "COPY" and not ins.args.startswith("--from"):
            *sources, _dest = shlex.split(ins.args)
            for source in sources:
                assert (ROOT / source).exists(), source
    assert any("chunked.IMPL == 'c'" in i.args for i in final("RUN"))
    env = " ".join(i.args for i in final("ENV"))
    assert "LAMBDA_TASK_ROOT=/var/task" in env
    assert [i.args for i in final("WORKDIR")] == ["/var/task"]
    assert (EXAMPLES / "Dockerfile.dockerignore").is_file()


def test_the_entry_command_serves_against_the_emulator() -> None:
    """ENTRYPOINT + CMD, run as the container would (the task root is examples/)."""
    (entrypoint,) = final("ENTRYPOINT")
    (cmd,) = final("CMD")
    argv = [sys.executable if a == "python" else a for a in entrypoint.json() + cmd.json()]
    serve = Serve("--no-runtime", "--port", "0", "--runtime-api-port", "0")
    runtime = None
    try:
        env = lambda_env(serve.runtime_api, cmd.json()[0], EXAMPLES, PYTHONUNBUFFERED="1")
        runtime = subprocess.Popen(
            argv, cwd=EXAMPLES, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        upload = b"city,temp\n" + b"".join(b"c%d,%d\n" % (i % 3, i) for i in range(3000))
        reply = asyncio.run(request(serve.url, "POST", "/?every=1000", body=upload))
        lines = [json.loads(line) for line in reply.body.splitlines()]
        assert [line["type"] for line in lines] == ["progress"] * 3 + ["total"]
        assert lines[-1]["groups"]["c0"]["count"] == 1000
    finally:
        output = ""
        if runtime is not None:
            runtime.terminate()
            output, _ = runtime.communicate(timeout=20)
        assert serve.stop() == 0
    assert runtime.returncode == 0, output
    assert "handler csv_stats.handler (duplex), codec c" in output


@pytest.mark.parametrize(
    ("base", "ok"),
    [
        ("python:3.12.8-slim-bookworm", True),
        ("public.ecr.aws/lambda/python:3.12.2025.01.01", True),
        ("python:3.12-slim@sha256:" + "0" * 64, True),
        ("python:3.12-slim", False),
        ("python:latest", False),
        ("python", False),
        ("someone/python:3.12.8", False),
    ],
)
def test_the_pin_check(base: str, ok: bool) -> None:
    assert pinned_official(base) is ok
