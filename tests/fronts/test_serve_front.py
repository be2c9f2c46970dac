"""``duplexlambda serve --front NAME`` as a real subprocess with our runtime: the banner says
which front is served, the client meets that front, and the runtime is told through
``DUPLEXLAMBDA_STREAMING`` which fronts it may stream to."""

from __future__ import annotations

import json
import os
import pathlib
import typing
import urllib.error
import urllib.request

import pytest

from duplexlambda.emulator.cli import FRONT_NAMES
from duplexlambda.emulator.config import FRONTS, EmulatorConfig, FrontName

from ..support.serve_process import Serve

HANDLER = """
import json, os

def handler(event, context):
    if (event.get("rawPath") or event.get("path")) == "/bad":
        return "not a proxy response"
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {"content-type": ["application/json"]},
        "body": json.dumps({
            "streaming": os.environ.get("DUPLEXLAMBDA_STREAMING"),
            "event": event,
        }),
    }
"""


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def serve(tmp_path: pathlib.Path, *args: str, env: dict[str, str] | None = None) -> Serve:
    (tmp_path / "app.py").write_text(HANDLER)
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUPLEXLAMBDA_")}
        env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
    return Serve(
        "app.handler", "--port", "0", "--runtime-api-port", "0",
        "--task-root", str(tmp_path), *args, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("front", "streaming", "kind"),
    [
        ("rest", "none", "rest"),
        ("rest-stream", "rest-api", "rest"),
        ("http-api-v1", "none", "http"),
        ("alb-multi", "none", "alb"),
        ("function-url-buffered", "none", "url"),
    ],
)
def test_serve_front(tmp_path: pathlib.Path, front: str, streaming: str, kind: str) -> None:
    server = serve(tmp_path, "--front", front, "--stage", "v1")
    try:
        server.wait_for(rf"front {front} \(", server.out)
        url = server.front_url
        if kind == "rest":
            assert url.endswith("/v1/")
        status, _, body = fetch(url + "items?x=1")
        if front == "rest-stream":
            # a buffered handler writes no metadata + NULs: the stream cannot be read
            assert status == 502
            assert json.loads(body) == {"message": "Internal server error"}
            return
        assert status == 200, body
        answer = json.loads(body)
        assert answer["streaming"] == streaming
        event = answer["event"]
        if kind == "rest":
            assert event["requestContext"]["stage"] == "v1"
            assert event["path"] == "/items"
        elif kind == "http":
            assert event["version"] == "1.0"
        elif kind == "alb":
            assert event["multiValueQueryStringParameters"] == {"x": ["1"]}
        else:
            assert event["requestContext"]["accountId"] == "anonymous"  # a function URL's
        bad_status, _, _ = fetch(url + "bad")
        assert bad_status == {"rest": 502, "http": 500, "alb": 502, "url": 200}[kind]
    finally:
        assert server.stop() == 0


def test_user_setting_of_streaming_wins(tmp_path: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_MAX_CONCURRENCY"}
    env["DUPLEXLAMBDA_STREAMING"] = "function-url,rest-api"
    server = serve(tmp_path, "--front", "http-api", env=env)
    try:
        server.wait_for(r"integration timeout 30 s", server.out)
        status, headers, body = fetch(server.front_url)
        assert status == 200
        assert headers.get("apigw-requestid")
        assert json.loads(body)["streaming"] == "function-url,rest-api"
    finally:
        assert server.stop() == 0


def test_default_front_banner_is_unchanged(tmp_path: pathlib.Path) -> None:
    server = serve(tmp_path)
    try:
        server.wait_for(r"^duplexlambda emulator: mode duplex", server.out)
        status, _, body = fetch(server.url)
        assert status == 200
        assert json.loads(body)["streaming"] == "function-url"
    finally:
        assert server.stop() == 0


def test_bad_front_and_stage_are_refused(tmp_path: pathlib.Path) -> None:
    for args, why in [
        (("--front", "soap"), r"invalid choice: 'soap'"),
        (("--front", "rest", "--stage", "a/b"), r"stage must be"),
        (("--front", "rest", "--integration-timeout", "0"), r"must be positive"),
    ]:
        server = serve(tmp_path, *args)
        assert server.proc.wait(timeout=20) == 2
        server.wait_for(why, server.err)
        server.stop()


def test_front_names_agree() -> None:
    assert FRONT_NAMES == tuple(FRONTS) == typing.get_args(FrontName)
    for name in typing.get_args(FrontName):
        config = EmulatorConfig(front=name)
        assert len(config.front_spec.label) <= 13  # the banner's column
    # a function URL has no integration timeout; API Gateway's are 30 s / 29 s unless set
    assert EmulatorConfig(front="function-url", integration_timeout=5).front_timeout is None
    assert EmulatorConfig(front="http-api").front_timeout == 30
    assert EmulatorConfig(front="rest", integration_timeout=60).front_timeout == 60
    assert EmulatorConfig(front="alb").front_timeout is None
