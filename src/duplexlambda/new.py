"""``duplexlambda new NAME``: a new function project that serves, tests, packages and deploys
as generated.

``NAME/`` gets ``app.py`` (a handler that upper-cases the upload; ``--style`` picks duplex,
ASGI, WSGI or buffered), ``test_app.py`` (tests with the ``lambda_client`` fixture),
``template.yaml`` (SAM: ``provided.al2023``, the zip ``duplexlambda package`` builds, a
streaming function URL), ``README.md``, ``requirements.txt``, ``.gitignore`` and a
``pyproject.toml`` with the pytest (pytest-asyncio) and ruff settings the tests and code pass.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from typing import Any

__all__ = ["STYLES", "NewError", "add_new_parser", "project_files", "write_project"]

STYLES = ("duplex", "asgi", "wsgi", "buffered")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class NewError(Exception):
    """The project could not be written (exit 2: a bad name or a directory in the way)."""


def check_name(name: str) -> None:
    """NAME: a letter, then letters, digits, ``_`` or ``-`` (64 at most), not a keyword."""
    if not _NAME.fullmatch(name) or keyword.iskeyword(name.replace("-", "_")):
        raise NewError(
            f"invalid project name {name!r}: use a letter, then letters, digits, '_' or '-'"
            " (at most 64), like my_function"
        )


# --- app.py, one per style -------------------------------------------------------------------

_APPS = {
    "duplex": '''"""@NAME@: a duplex handler, streamed both ways (serve it: app.handler)."""

from duplexlambda.streams import Request, Response


async def handler(req: Request, res: Response) -> None:
    # Headers can change only until the first byte goes out, so set them first.
    res.content_type = "text/plain; charset=utf-8"
    # Each piece of the upload comes out of `req` as soon as it arrives, not once it has ended.
    async for chunk in req:
        # Each write is sent at once as its own chunk: the caller reads it mid-upload.
        await res.write(chunk.upper())
    # Returning ends the response (the runtime calls res.end() for us).
''',
    "asgi": '''"""@NAME@: an ASGI app on the duplexlambda runtime (serve it: app.handler)."""

from typing import Any

from duplexlambda.asgi import asgi


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # A plain ASGI app (no framework needed); FastAPI or Starlette plug in the same way.
    if scope["type"] == "lifespan":
        # Startup runs once per execution environment, shutdown at SIGTERM: just say ok.
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    # Status and headers go out before the body, so the caller sees them at once.
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    more = True
    # Each http.request message is one piece of the upload, given to us as it arrives.
    while more:
        message = await receive()
        # The caller hung up: stop instead of writing to nobody.
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
        # Each non-empty body message is sent at once as its own chunk.
        if body := message.get("body", b""):
            await send({"type": "http.response.body", "body": body.upper(), "more_body": True})
    # The final, empty message ends the response.
    await send({"type": "http.response.body", "body": b"", "more_body": False})


# The runtime serves `handler`: the bridge maps each Lambda invocation to an ASGI request.
handler = asgi(app)
''',
    "wsgi": '''"""@NAME@: a WSGI app on the duplexlambda runtime (serve it: app.handler)."""

from collections.abc import Callable, Iterator
from typing import Any

from duplexlambda.wsgi import wsgi


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    # A plain WSGI app (no framework needed); Flask or Django plug in the same way.
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    # Returning a generator streams the response: each item is sent before the next is made.
    return upper_pieces(environ["wsgi.input"])


def upper_pieces(body: Any) -> Iterator[bytes]:
    # read1 returns what one piece of the upload brings, as soon as it arrives.
    while piece := body.read1(65536):
        # Each yielded item goes out at once as its own chunk.
        yield piece.upper()


# The runtime serves `handler`: each request runs in a worker thread, off the event loop.
handler = wsgi(app)
''',
    "buffered": '''"""@NAME@: a buffered handler, awslambdaric style (serve it: app.handler)."""

import base64
from typing import Any


def handler(event: dict[str, Any], context: Any) -> Any:
    # A buffered handler gets the whole request at once: the upload has ended by now.
    body = event.get("body")
    # A plain invocation (no HTTP front) has no body: answer its event upper-cased.
    if body is None:
        return {key.upper(): value for key, value in event.items()}
    # Binary uploads come base64-encoded, as Lambda sends them.
    data = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    # The proxy response format: the runtime turns it into status, headers and one body.
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": data.upper().decode("utf-8", "replace"),
    }
''',
}

# --- test_app.py ----------------------------------------------------------------------------

_TEST_HEAD = '''"""Tests for app.py, run through the real runtime in-process (no sockets, no AWS).

The lambda_client fixture comes from duplexlambda's pytest plugin (registered on install).
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from app import handler


async def pieces(*parts: bytes, gap: float = 0.05) -> AsyncIterator[bytes]:
    """An upload sent in pieces, a pause between them (as a slow client sends it)."""
    for part in parts:
        yield part
        await asyncio.sleep(gap)

'''

_TEST_STREAMING = """
@pytest.mark.asyncio
async def test_streamed_upload_comes_back_chunk_by_chunk(lambda_client):
    client = await lambda_client(handler)
    async with client.stream("POST", "/", body=pieces(b"hello ", b"streaming ", b"world")) as resp:
        assert resp.status == 200
        chunks = [chunk async for chunk in resp]
    # Each piece was answered as it arrived, as its own chunk, not all at the end.
    assert chunks == [b"HELLO ", b"STREAMING ", b"WORLD"]


@pytest.mark.asyncio
async def test_plain_request(lambda_client):
    client = await lambda_client(handler)
    resp = await client.post("/", body=b"all at once")
    assert (resp.status, resp.text) == (200, "ALL AT ONCE")
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
"""

_HTTP_INVOKE = """

@pytest.mark.asyncio
async def test_plain_invoke(lambda_client):
    client = await lambda_client(handler)
    # A direct invocation with an API Gateway HTTP API event (a buffered front): the app's
    # answer comes back as one proxy response JSON.
    from duplexlambda.example_events import example

    result = await client.invoke(example("http-api"))
    assert result.error is None
    assert result.json()["statusCode"] == 200
    assert result.json()["body"] == '{"NAME": "ADA", "MESSAGE": "HELLO"}'
"""

_TEST_INVOKE = {
    "duplex": """

@pytest.mark.asyncio
async def test_plain_invoke(lambda_client):
    client = await lambda_client(handler)
    # A direct invocation (not through HTTP): the event's JSON is the body.
    result = await client.invoke({"hello": "world"})
    assert result.error is None
    assert result.body == b'{"HELLO":"WORLD"}'
""",
    "asgi": _HTTP_INVOKE,
    "wsgi": _HTTP_INVOKE,
}

_TEST_BUFFERED = """
@pytest.mark.asyncio
async def test_streamed_upload_is_answered_once_it_has_ended(lambda_client):
    client = await lambda_client(handler)
    async with client.stream("POST", "/", body=pieces(b"hello ", b"buffered ", b"world")) as resp:
        assert resp.status == 200
        chunks = [chunk async for chunk in resp]
    # A buffered handler sees the whole upload and answers in one piece.
    assert chunks == [b"HELLO BUFFERED WORLD"]


@pytest.mark.asyncio
async def test_plain_request(lambda_client):
    client = await lambda_client(handler)
    resp = await client.post("/", body=b"all at once")
    assert (resp.status, resp.text) == (200, "ALL AT ONCE")
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.asyncio
async def test_plain_invoke(lambda_client):
    client = await lambda_client(handler)
    # A direct invocation (not through HTTP): the return value comes back as JSON.
    result = await client.invoke({"hello": "world"})
    assert result.error is None
    assert result.json() == {"HELLO": "world"}
"""


def _tests(style: str) -> str:
    if style == "buffered":
        return _TEST_HEAD + _TEST_BUFFERED
    return _TEST_HEAD + _TEST_STREAMING + _TEST_INVOKE[style]


# --- template.yaml, README.md, the rest ---------------------------------------------------------

_TEMPLATE = """# SAM: @NAME@ as a zip on provided.al2023, behind a function URL that streams.
#
#   @PACKAGE@
#   sam deploy -t template.yaml --guided
#
# The zip's `bootstrap` (written by duplexlambda package) is the entry point: it runs
# duplexlambda's runtime with python3 from PATH, which a Python @PY@ layer provides
# (PythonLayerArn).
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: @NAME@ (duplexlambda, zip on provided.al2023) with a streaming function URL

Parameters:
  PythonLayerArn:
    Type: String
    Description: a Lambda layer that puts a Python @PY@ python3 on PATH (x86_64)

Resources:
  Function:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: function.zip
      Runtime: provided.al2023
      Handler: app.handler
      Layers:
        - !Ref PythonLayerArn
      Architectures:
        - x86_64
      MemorySize: 512
      Timeout: 60
      LoggingConfig:
        LogFormat: JSON
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: RESPONSE_STREAM

  # Since October 2025 a public (AuthType NONE) function URL also needs lambda:InvokeFunction,
  # limited to calls that come through the URL.
  UrlInvokePermission:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref Function
      Principal: "*"
      InvokedViaFunctionUrl: true

Outputs:
  FunctionUrl:
    Description: the streaming function URL
    Value: !GetAtt FunctionUrl.FunctionUrl
"""

_README = """# @NAME@

A Lambda function on [duplexlambda](https://pypi.org/project/duplexlambda/) (@STYLE@ style):
`app.py` upper-cases what you upload@STREAMS@.

## Set up

```sh
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt pytest pytest-asyncio
```

## Serve it locally

```sh
.venv/bin/duplexlambda serve app.handler --reload
# in another terminal: type lines, each comes back upper-cased@AS_YOU_TYPE@
curl -sN -T - http://127.0.0.1:9000/
```

## Test it

```sh
.venv/bin/python -m pytest test_app.py
```

## Package and deploy it

```sh
.venv/bin/@PACKAGE@
sam deploy -t template.yaml --guided    # asks for PythonLayerArn: a Python @PY@ layer
```

`template.yaml` runs the zip on `provided.al2023` (its `bootstrap` starts the runtime with
`python3` from the layer) behind a function URL with `InvokeMode: RESPONSE_STREAM`; the
deploy prints the URL (`FunctionUrl`).
"""

_PYPROJECT = """# The settings of the tools (pytest, ruff); the function itself is app.py.
[tool.pytest.ini_options]
addopts = ["--strict-markers"]
filterwarnings = ["error"]
asyncio_mode = "strict"
asyncio_default_fixture_loop_scope = "function"

[tool.ruff]
line-length = 100
src = ["."]

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP", "SIM", "RUF", "PT", "ASYNC", "C4", "RET"]
"""

_GITIGNORE = """.venv/
__pycache__/
*.pyc
.pytest_cache/
.ruff_cache/
.mypy_cache/
.aws-sam/
function.zip
function.zip.partial
"""


def project_files(name: str, style: str = "duplex") -> dict[str, str]:
    """The files of a new project, by name (relative to its directory)."""
    check_name(name)
    if style not in STYLES:
        raise NewError(f"unknown style {style!r}: one of {', '.join(STYLES)}")
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    streams = style != "buffered"
    package = (
        f"duplexlambda package . -o function.zip --python-version {python}"
        " --platform manylinux2014_x86_64"
    )

    def fill(text: str) -> str:
        return (
            text.replace("@NAME@", name)
            .replace("@STYLE@", style)
            .replace("@PACKAGE@", package)
            .replace("@PY@", python)
            .replace("@STREAMS@", " and streams it back as it arrives" if streams else "")
            .replace("@AS_YOU_TYPE@", " as you type" if streams else " when you press ^D")
        )

    return {
        "app.py": fill(_APPS[style]),
        "test_app.py": _tests(style),
        "template.yaml": fill(_TEMPLATE),
        "README.md": fill(_README),
        "requirements.txt": "duplexlambda\n",
        "pyproject.toml": _PYPROJECT,
        ".gitignore": _GITIGNORE,
    }


def write_project(name: str, parent: Any = ".", style: str = "duplex") -> Any:
    """Write ``parent/name/``; return its path. Refuses a non-empty directory (or a file)."""
    from pathlib import Path

    files = project_files(name, style)
    root = Path(parent) / name
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise NewError(f"{root} already exists and is not empty: choose another NAME or --dir")
    root.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        (root / relative).write_text(text, encoding="utf-8")
    return root


def _cmd_new(args: argparse.Namespace) -> int:
    try:
        root = write_project(args.name, args.dir, args.style)
    except NewError as exc:
        print(f"duplexlambda new: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"duplexlambda new: cannot write the project: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {root}/ ({args.style}): app.py test_app.py template.yaml README.md")
    print(f"next: cd {root} && duplexlambda serve app.handler")
    return 0


def add_new_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``new`` to ``subparsers`` (from ``add_subparsers()``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "new",
        help="write a new function project: handler, tests, SAM template, README",
        description="Write NAME/ with app.py (a handler that streams the upload back"
        " upper-cased), test_app.py (pytest, lambda_client fixture), template.yaml (SAM:"
        " provided.al2023, a streaming function URL), README.md, requirements.txt and"
        " .gitignore, pyproject.toml (pytest and ruff settings). An existing non-empty NAME/"
        " is refused.",
        epilog="examples:\n  duplexlambda new orders\n"
        "  duplexlambda new orders --dir ~/src --style asgi",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", metavar="NAME", help="the project (and directory) name")
    parser.add_argument("--dir", default=".", metavar="PATH", help="where NAME/ goes (.)")
    parser.add_argument(
        "--style", choices=STYLES, default="duplex", help="the handler's style (duplex)"
    )
    parser.set_defaults(func=_cmd_new)
    return parser
