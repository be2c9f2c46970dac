"""The function's settings on ``duplexlambda serve``: ``--env``, ``--env-file`` (dotenv and
SAM's ``--env-vars`` JSON), ``--memory``, ``--function-name``, and ``--asgi`` / ``--wsgi``,
as the handler sees them (a real subprocess), plus the env-file parsers."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import urllib.request

import msgspec
import pytest

from duplexlambda.emulator.cli import parse_dotenv, parse_env_file

from ..support.serve_process import Serve

ECHO = """
import os

def handler(event, context):
    return {
        "env": {key: os.environ.get(key) for key in event["keys"]},
        "memory": context.memory_limit_in_mb,
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "log_group": context.log_group_name,
    }
"""


def invoke(url: str, name: str, event: object) -> dict[str, object]:
    request = urllib.request.Request(
        f"{url}2015-03-31/functions/{name}/invocations",
        data=msgspec.json.encode(event),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.headers.get("X-Amz-Function-Error") is None
        body = msgspec.json.decode(response.read())
    assert isinstance(body, dict)
    return body


def serve(root: pathlib.Path, handler: str, *flags: str) -> Serve:
    return Serve(
        handler, "--port", "0", "--runtime-api-port", "0", "--task-root", str(root), *flags
    )


def test_env_env_file_and_memory_reach_the_handler(tmp_path: pathlib.Path) -> None:
    (tmp_path / "app.py").write_text(ECHO)
    (tmp_path / "local.env").write_text(
        "# the function's settings\n"
        "TABLE=items\n"
        "export STAGE='dev # not a comment'\n"
        'GREETING="hello\\nworld"\n'
        "LEVEL=debug  # a comment\n"
        "OVERRIDDEN=from-file\n"
    )
    server = serve(
        tmp_path, "app.handler",
        "--env-file", str(tmp_path / "local.env"),
        "--env", "OVERRIDDEN=from-flag",
        "--env", "EQUATION=a=b",
        "--memory", "512",
    )  # fmt: skip
    try:
        keys = ["TABLE", "STAGE", "GREETING", "LEVEL", "OVERRIDDEN", "EQUATION"]
        body = invoke(server.url, "function", {"keys": keys})
        assert body["env"] == {
            "TABLE": "items",
            "STAGE": "dev # not a comment",
            "GREETING": "hello\nworld",
            "LEVEL": "debug",
            "OVERRIDDEN": "from-flag",
            "EQUATION": "a=b",
        }
        assert body["memory"] == "512"
        assert body["name"] == "function"
    finally:
        assert server.stop() == 0


def test_sam_env_vars_and_function_name_reach_the_handler(tmp_path: pathlib.Path) -> None:
    (tmp_path / "app.py").write_text(ECHO)
    (tmp_path / "env.json").write_text(
        json.dumps(
            {
                "Parameters": {"SHARED": "all", "WHO": "parameters"},
                "orders": {"WHO": "orders", "RETRIES": 3, "DEBUG": True},
                "other": {"WHO": "other", "ONLY_OTHER": "x"},
            }
        )
    )
    server = serve(
        tmp_path, "app.handler",
        "--env-file", str(tmp_path / "env.json"),
        "--function-name", "orders",
    )  # fmt: skip
    try:
        out = server.wait_for(r"Invoke API: +(\S+)", server.out)[1]
        assert "/functions/orders/invocations" in out
        keys = ["SHARED", "WHO", "RETRIES", "DEBUG", "ONLY_OTHER", "AWS_LAMBDA_FUNCTION_NAME"]
        body = invoke(server.url, "orders", {"keys": keys})
        assert body["env"] == {
            "SHARED": "all",
            "WHO": "orders",
            "RETRIES": "3",
            "DEBUG": "true",
            "ONLY_OTHER": None,
            "AWS_LAMBDA_FUNCTION_NAME": "orders",
        }
        assert body["name"] == "orders"
        assert body["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:orders"
        assert body["log_group"] == "/aws/lambda/orders"
        assert body["memory"] == "3008"
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "AWS_REGION=eu-west-1"], "AWS_REGION: reserved by Lambda"),
        (["--env", "_HANDLER=x.y"], "_HANDLER: reserved by Lambda"),
        (["--env", "NOEQUALS"], "expected KEY=VALUE"),
        (["--memory", "64"], "128-10240"),
        (["--env-file", "/nonexistent/.env"], "--env-file"),
        (["--asgi", "--wsgi"], "not allowed with"),
    ],
)
def test_bad_settings_are_refused_before_anything_starts(
    tmp_path: pathlib.Path, flags: list[str], message: str
) -> None:
    (tmp_path / "app.py").write_text(ECHO)
    serve_args = ["app.handler", "--task-root", str(tmp_path), "--port", "0", *flags]
    result = subprocess.run(
        [sys.executable, "-m", "duplexlambda", "serve", *serve_args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


STARLETTE_APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def hello(request):
    return PlainTextResponse("starlette says " + request.path_params["name"])

app = Starlette(routes=[Route("/hello/{name}", hello)])
"""

FLASK_APP = """
from flask import Flask

app = Flask(__name__)

@app.get("/hello/<name>")
def hello(name):
    return "flask says " + name
"""


@pytest.mark.parametrize(
    ("flag", "source", "expected"),
    [
        ("--asgi", STARLETTE_APP, b"starlette says you"),
        ("--wsgi", FLASK_APP, b"flask says you"),
    ],
)
def test_asgi_and_wsgi_apps_are_served(
    tmp_path: pathlib.Path, flag: str, source: str, expected: bytes
) -> None:
    pytest.importorskip("starlette" if flag == "--asgi" else "flask")
    (tmp_path / "webapp.py").write_text(source)
    server = serve(tmp_path, "webapp:app", flag)
    try:
        with urllib.request.urlopen(server.url + "hello/you", timeout=20) as response:
            assert response.status == 200
            assert response.read() == expected
    finally:
        assert server.stop() == 0


def test_dotenv_parsing() -> None:
    text = (
        "\n# comment\nA=1\nexport B = two \nC='single # kept'\n"
        'D="double \\"quoted\\" \\\\ end"\nE=x # trailing\nF=\nG=a#b\n'
    )
    assert parse_dotenv(text) == {
        "A": "1",
        "B": "two",
        "C": "single # kept",
        "D": 'double "quoted" \\ end',
        "E": "x",
        "F": "",
        "G": "a#b",
    }
    with pytest.raises(ValueError, match="line 1"):
        parse_dotenv("not a pair")
    with pytest.raises(ValueError, match="line 2"):
        parse_dotenv("A=1\nBAD KEY=2")


def test_sam_env_vars_parsing() -> None:
    text = json.dumps({"Parameters": {"A": "1", "B": 2.5}, "fn": {"A": "fn"}, "g": {"A": "g"}})
    assert parse_env_file(text, "fn") == {"A": "fn", "B": "2.5"}
    assert parse_env_file(text, "other") == {"A": "1", "B": "2.5"}
    assert parse_env_file('{"fn": {"X": false}}', "fn") == {"X": "false"}
    with pytest.raises(ValueError, match="must be an object"):
        parse_env_file('{"Parameters": []}', "fn")
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_env_file("{nope", "fn")
