"""The SAM templates (examples/template-*.yaml): parsed as YAML (CloudFormation's short
tags included) and checked key by key against what they deploy — a function URL that
streams, a public URL that may invoke, and code that matches the Dockerfile / the zip."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest
import yaml

from duplexlambda.emulator.template import cfn_loader
from duplexlambda.handler import load_handler

from .lambda_env import EXAMPLES

TEMPLATES = {"image": EXAMPLES / "template-image.yaml", "zip": EXAMPLES / "template-zip.yaml"}


#: The loader ``serve --template`` reads templates with: CloudFormation's short tags
#: (``!Ref x`` as ``{"Ref": x}``, ``!GetAtt a.b`` as ``{"Fn::GetAtt": [a, b]}``).
CfnLoader = cfn_loader()


def load(path: pathlib.Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=CfnLoader)
    assert isinstance(document, dict)
    return document


@pytest.fixture(params=sorted(TEMPLATES))
def template(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, load(TEMPLATES[request.param])


def function(document: dict[str, Any]) -> dict[str, Any]:
    (props,) = [
        r["Properties"]
        for r in document["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    ]
    assert isinstance(props, dict)
    return props


def test_common_shape(template: tuple[str, dict[str, Any]]) -> None:
    _, document = template
    assert document["AWSTemplateFormatVersion"] == "2010-09-09"
    assert document["Transform"] == "AWS::Serverless-2016-10-31"
    props = function(document)
    assert props["FunctionUrlConfig"] == {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}
    assert props["Architectures"] == ["x86_64"]
    assert 1 <= props["Timeout"] <= 900
    # A public URL also needs lambda:InvokeFunction (since October 2025), through the URL only.
    permissions = [
        r["Properties"]
        for r in document["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission"
    ]
    assert {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Ref": "Function"},
        "Principal": "*",
        "InvokedViaFunctionUrl": True,
    } in permissions
    # SAM names the URL resource <function>Url.
    assert document["Outputs"]["FunctionUrl"]["Value"] == {
        "Fn::GetAtt": ["FunctionUrl", "FunctionUrl"]
    }


def test_image_template_builds_the_dockerfile() -> None:
    document = load(TEMPLATES["image"])
    props = function(document)
    assert props["PackageType"] == "Image"
    assert "Runtime" not in props
    assert "Handler" not in props
    (resource,) = [
        r for r in document["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]
    meta = resource["Metadata"]
    context = (TEMPLATES["image"].parent / meta["DockerContext"]).resolve()
    assert (context / meta["Dockerfile"]).resolve() == (EXAMPLES / "Dockerfile").resolve()
    assert props["ImageConfig"]["Command"] == [{"Ref": "Handler"}]
    handlers = document["Parameters"]["Handler"]["AllowedValues"]
    assert document["Parameters"]["Handler"]["Default"] in handlers
    for handler in handlers:
        load_handler(handler, str(EXAMPLES))


def test_zip_template_runs_the_bootstrap_on_the_matching_python() -> None:
    text = TEMPLATES["zip"].read_text()
    props = function(load(TEMPLATES["zip"]))
    assert props["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == "/var/task/bootstrap"
    load_handler(props["Handler"], str(EXAMPLES))
    assert props["CodeUri"] == "../function.zip"
    # The package command it documents targets the same Python and machine.
    runtime = re.fullmatch(r"python(3\.\d+)", props["Runtime"])
    assert runtime
    command = re.search(r"duplexlambda package examples -o function\.zip (.*)", text)
    assert command
    assert f"--python-version {runtime[1]}" in command[1]
    assert f"--platform manylinux2014_{props['Architectures'][0]}" in command[1]
    dockerfile = (EXAMPLES / "Dockerfile").read_text()
    assert re.search(rf"ARG PYTHON_VERSION={re.escape(runtime[1])}\.\d+", dockerfile)
