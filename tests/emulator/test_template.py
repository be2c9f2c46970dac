"""``duplexlambda serve --template``: every function of a SAM template, served locally.

Two functions in two code directories: one behind a RESPONSE_STREAM function URL (it
streams, and sees the Globals environment merged with its own), one behind an HttpApi route
``GET /items/{id}`` (payload 2.0: its ``routeKey`` and ``pathParameters``); the Invoke API
reaches each by its logical id; an unmatched path is API Gateway's 404."""

from __future__ import annotations

import http.client
import json
import pathlib
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest

from ..support.serve_process import Serve

pytest.importorskip("yaml")

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: test
Globals:
  Function:
    Runtime: python3.12
    Timeout: 20
    Environment:
      Variables:
        SHARED: from-globals
        WHO: globals
Resources:
  StreamFn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: stream/
      Handler: app.handler
      Environment:
        Variables:
          WHO: stream
          STAGE: !Ref Stage
          TABLE: !GetAtt Table.Arn
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: RESPONSE_STREAM
  ItemsFn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: items
      Handler: items.handler
      MemorySize: 256
      Events:
        Get:
          Type: HttpApi
          Properties:
            Path: /items/{id}
            Method: GET
"""

STREAM_APP = """\
import asyncio
import os

from duplexlambda.streams import Request, Response


async def handler(req: Request, res: Response) -> None:
    res.content_type = "text/plain"
    env = ",".join(os.environ.get(k, "-") for k in ("SHARED", "WHO", "STAGE", "TABLE"))
    await res.write(f"env={env}\\n".encode())
    await asyncio.sleep(0.6)
    await res.write(b"second\\n")
"""

ITEMS_APP = """\
import json
import os


def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "routeKey": event.get("routeKey"),
                "pathParameters": event.get("pathParameters"),
                "who": os.environ.get("WHO"),
                "memory": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
                "name": context.function_name,
            }
        ),
    }
"""


def write_template(tmp_path: pathlib.Path, text: str = TEMPLATE) -> pathlib.Path:
    (tmp_path / "stream").mkdir()
    (tmp_path / "stream" / "app.py").write_text(STREAM_APP)
    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "items.py").write_text(ITEMS_APP)
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def served(tmp_path: pathlib.Path) -> Iterator[Serve]:
    path = write_template(tmp_path)
    serve = Serve("--template", str(path), "--port", "0")
    yield serve
    assert serve.stop() == 0


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def test_url_function_streams_with_its_environment(served: Serve) -> None:
    url = served.wait_for(r"Function URL: (http://\S+/lambda-url/StreamFn/)", served.out)[1]
    served.wait_for(r"HTTP API:\s+GET http://\S+/items/\{id\}", served.out)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=20)
    conn.request("GET", parts.path)
    resp = conn.getresponse()
    assert resp.status == 200
    first = resp.read1()
    seen = time.monotonic()
    rest = resp.read()
    # The second write comes 0.6 s after the first: the first arrived on its own.
    assert time.monotonic() - seen > 0.3
    assert first == b"env=from-globals,stream,test,!GetAtt Table.Arn\n"
    assert rest == b"second\n"
    conn.close()


def test_http_api_route_and_404(served: Serve) -> None:
    url = served.wait_for(r"HTTP API:\s+GET (http://\S+)/items/\{id\}", served.out)[1]
    status, body = get(f"{url}/items/a%20b")
    assert status == 200
    answer = json.loads(body)
    assert answer == {
        "routeKey": "GET /items/{id}",
        "pathParameters": {"id": "a b"},
        "who": "globals",
        "memory": "256",
        "name": "ItemsFn",
    }
    assert get(f"{url}/items") == (404, b'{"message":"Not Found"}')
    assert get(f"{url}/other/1")[0] == 404
    assert get(f"{url}/lambda-url/ItemsFn/")[0] == 404  # no FunctionUrlConfig


def test_invoke_api_reaches_each_function(served: Serve) -> None:
    base = served.wait_for(
        r"Invoke API:\s+(http://\S+)/2015-03-31/functions/StreamFn/", served.out
    )[1]
    event = {"routeKey": "direct", "pathParameters": {"id": "7"}}
    request = urllib.request.Request(
        f"{base}/2015-03-31/functions/ItemsFn/invocations", data=json.dumps(event).encode()
    )
    with urllib.request.urlopen(request, timeout=20) as resp:
        answer = json.loads(json.loads(resp.read())["body"])
    assert answer["routeKey"] == "direct"
    assert answer["name"] == "ItemsFn"
    arn = "arn:aws:lambda:us-east-1:123456789012:function:ItemsFn:$LATEST"
    request = urllib.request.Request(
        f"{base}/2015-03-31/functions/{quote(arn, safe='')}/invocations", data=b"{}"
    )
    with urllib.request.urlopen(request, timeout=20) as resp:
        assert json.loads(json.loads(resp.read())["body"])["name"] == "ItemsFn"
    url_event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": "/"}},
        "isBase64Encoded": False,
    }
    request = urllib.request.Request(
        f"{base}/2015-03-31/functions/StreamFn/invocations", data=json.dumps(url_event).encode()
    )
    with urllib.request.urlopen(request, timeout=20) as resp:
        assert b"env=from-globals,stream" in resp.read()
    missing = urllib.request.Request(f"{base}/2015-03-31/functions/Nope/invocations", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(missing, timeout=20)
    with info.value as error:
        assert error.code == 404
        assert error.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Resources:\n  Img:\n    Type: AWS::Serverless::Function\n"
            "    Properties:\n      PackageType: Image\n      ImageUri: x:latest\n",
            "Img: an image function: serve it with --image",
        ),
        ("Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n", "has no AWS::Serverless::Function"),
    ],
)
def test_unservable_template_is_a_clear_error(
    tmp_path: pathlib.Path, text: str, message: str
) -> None:
    path = write_template(tmp_path, text)
    serve = Serve("--template", str(path), "--port", "0")
    code = serve.proc.wait(timeout=20)
    serve.stop()
    assert code == 2
    assert message in "\n".join(serve.err)


REST_TEMPLATE = """\
Parameters:
  Name:
    Type: String
    Default: world
Globals:
  Function:
    MemorySize: 512
    Environment:
      Variables:
        A: "1"
        FLAG: true
Resources:
  Rest:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: items
      Handler: items.handler
      Runtime: provided.al2023
      Environment:
        Variables:
          GREETING: !Sub "hello ${Name}"
          ARN: !GetAtt Table.Arn
          ARN2: !GetAtt Table.Arn
      FunctionUrlConfig:
        InvokeMode: BUFFERED
      Events:
        One:
          Type: Api
          Properties:
            Path: /things/{id}
            Method: get
        All:
          Type: Api
          Properties:
            Path: /{proxy+}
            Method: ANY
        Static:
          Type: HttpApi
          Properties:
            Path: /things/new
            Method: POST
  Zipped:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: missing.zip
      Handler: app.handler
      Runtime: python3.12
  Node:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: items
      Handler: index.handler
      Runtime: nodejs20.x
"""


def test_load_template_reads_each_function(tmp_path: pathlib.Path) -> None:
    from duplexlambda.emulator.template import load_template

    template = load_template(str(write_template(tmp_path, REST_TEMPLATE)))
    (function,) = template.functions
    assert function.logical_id == "Rest"
    assert function.code_dir == str(tmp_path / "items")
    assert function.environment == {
        "A": "1",
        "FLAG": "true",
        "GREETING": "hello world",
        "ARN": "!GetAtt Table.Arn",
        "ARN2": "!GetAtt Table.Arn",
    }
    assert (function.timeout, function.memory_size, function.url_mode) == (3.0, 512, "BUFFERED")
    assert [r.key for r in function.rest_routes] == ["GET /things/{id}", "ANY /{proxy+}"]
    assert [r.key for r in function.http_routes] == ["POST /things/new"]
    # Each unresolved intrinsic is warned about once per place it appears.
    assert len(template.warnings) == 2
    assert [s.split(":")[0] for s in template.skipped] == ["Zipped", "Node"]


def test_routes_match_the_most_specific_first() -> None:
    from duplexlambda.emulator.template import Route

    routes = sorted(
        [Route.of("ANY", "/{proxy+}"), Route.of("GET", "/a/{id}"), Route.of("GET", "/a/b")],
        key=lambda r: r.rank,
    )
    assert [r.path for r in routes] == ["/a/b", "/a/{id}", "/{proxy+}"]
    assert routes[1].match("GET", "/a/x%2Fy") == {"id": "x/y"}
    assert routes[1].match("POST", "/a/x") is None
    assert routes[1].match("GET", "/a/x/y") is None
    assert routes[2].match("DELETE", "/a/x/y") == {"proxy": "a/x/y"}


def test_a_zip_code_uri_is_extracted(tmp_path: pathlib.Path) -> None:
    import zipfile

    from duplexlambda.emulator.template import load_template

    path = write_template(tmp_path, REST_TEMPLATE.replace("CodeUri: items", "CodeUri: f.zip"))
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as bundle:
        bundle.writestr("items.py", ITEMS_APP)
    (function,) = load_template(str(path)).functions
    assert (pathlib.Path(function.code_dir) / "items.py").read_text() == ITEMS_APP


def test_rest_route_event_has_resource_and_path_parameters(tmp_path: pathlib.Path) -> None:
    path = write_template(tmp_path, REST_TEMPLATE)
    serve = Serve("--template", str(path), "--port", "0")
    try:
        base = serve.wait_for(r"REST API:\s+GET (http://\S+)/Prod/things/\{id\}", serve.out)[1]
        serve.wait_for(r"skipped Node: Runtime nodejs20.x", serve.out)
        request = urllib.request.Request(f"{base}/Prod/things/42", method="GET")
        with urllib.request.urlopen(request, timeout=20) as resp:
            assert resp.status == 200
            answer = json.loads(resp.read())
        assert answer["pathParameters"] == {"id": "42"}
        assert answer["name"] == "Rest"
        status, body = get(f"{base}/Prod/else/where")
        assert status == 200
        assert json.loads(body)["pathParameters"] == {"proxy": "else/where"}
        assert get(f"{base}/things/42")[0] == 404  # no stage
        status, body = get(f"{base}/lambda-url/Rest/x")
        assert status == 200  # a BUFFERED URL
        assert json.loads(body)["name"] == "Rest"
    finally:
        assert serve.stop() == 0
