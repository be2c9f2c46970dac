"""The SAM templates for the fronts other than a function URL (examples/template-http-api.yaml,
template-rest-stream.yaml, template-alb.yaml), checked key by key as test_sam_templates.py
checks the function-URL ones: what invokes the function, how, and that the runtime is told
whether to stream to it as ``serve --front`` tells it."""

from __future__ import annotations

import re
from typing import Any

from duplexlambda.emulator.config import FRONTS
from duplexlambda.handler import Style, load_handler, style_of

from .lambda_env import EXAMPLES
from .test_sam_templates import function, load

HTTP_API = EXAMPLES / "template-http-api.yaml"
REST_STREAM = EXAMPLES / "template-rest-stream.yaml"
ALB = EXAMPLES / "template-alb.yaml"


def resources(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in document["Resources"].values() if r["Type"] == kind]


def check_zip_function(path: Any, front: str, task_root: Any) -> dict[str, Any]:
    """The function: the zip on the managed Python with our bootstrap, its handler present
    in what the documented package command zips, and the streaming setting of ``front``."""
    document = load(path)
    assert document["Transform"] == "AWS::Serverless-2016-10-31"
    props = function(document)
    variables = props["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/var/task/bootstrap"
    assert variables["DUPLEXLAMBDA_STREAMING"] == FRONTS[front].streaming_env
    assert props["CodeUri"] == "../function.zip"
    assert "FunctionUrlConfig" not in props
    command = re.search(r"duplexlambda package (\S+) -o function\.zip", path.read_text())
    assert command
    assert (EXAMPLES.parent / command[1]).resolve() == task_root.resolve()
    if isinstance(props["Handler"], str):
        load_handler(props["Handler"], str(task_root))
    return document


def test_http_api_template() -> None:
    document = check_zip_function(HTTP_API, "http-api", EXAMPLES / "fronts")
    props = function(document)
    (event,) = props["Events"].values()
    assert event["Type"] == "HttpApi"
    assert event["Properties"]["PayloadFormatVersion"] == "2.0"
    assert event["Properties"]["TimeoutInMillis"] <= 30000  # an HTTP API's ceiling
    # the function's own timeout cannot outlast the integration's usefully
    assert props["Timeout"] <= 30
    assert "ServerlessHttpApi" in document["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    handler = load_handler(props["Handler"], str(EXAMPLES / "fronts"))
    assert style_of(handler) is Style.DUPLEX  # an ASGI app, bridged


def test_rest_stream_template() -> None:
    document = check_zip_function(REST_STREAM, "rest-stream", EXAMPLES)
    handlers = document["Parameters"]["Handler"]["AllowedValues"]
    assert document["Parameters"]["Handler"]["Default"] in handlers
    for name in handlers:
        assert style_of(load_handler(name, str(EXAMPLES))) is not Style.BUFFERED
    (api,) = resources(document, "AWS::Serverless::Api")
    stage = api["Properties"]["StageName"]
    body = api["Properties"]["DefinitionBody"]
    assert set(body["paths"]) == {"/", "/{proxy+}"}
    for path in body["paths"].values():
        integration = path["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert integration["httpMethod"] == "POST"  # Lambda's API, whatever the client's
        assert integration["responseTransferMode"] == "STREAM"
        assert integration["timeoutInMillis"] <= 15 * 60 * 1000
        uri = integration["uri"]["Fn::Sub"]
        assert uri.endswith("/2021-11-15/functions/${Function.Arn}/response-streaming-invocations")
    (permission,) = resources(document, "AWS::Lambda::Permission")
    assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    assert f"/{stage}/" in document["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]


def test_alb_template() -> None:
    document = check_zip_function(ALB, "alb-multi", EXAMPLES / "fronts")
    (group,) = resources(document, "AWS::ElasticLoadBalancingV2::TargetGroup")
    props = group["Properties"]
    assert props["TargetType"] == "lambda"
    assert props["Targets"] == [{"Id": {"Fn::GetAtt": ["Function", "Arn"]}}]
    assert {"Key": "lambda.multi_value_headers.enabled", "Value": "true"} in props[
        "TargetGroupAttributes"
    ]
    (permission,) = resources(document, "AWS::Lambda::Permission")
    assert permission["Properties"]["Principal"] == "elasticloadbalancing.amazonaws.com"
    # the target can be registered only once the load balancer may invoke the function
    permission_name = next(
        name for name, r in document["Resources"].items() if r["Type"] == "AWS::Lambda::Permission"
    )
    assert group["DependsOn"] == permission_name
    (listener,) = resources(document, "AWS::ElasticLoadBalancingV2::Listener")
    action = listener["Properties"]["DefaultActions"][0]
    assert action == {"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}
