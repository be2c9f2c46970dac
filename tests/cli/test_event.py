"""``duplexlambda event``: the list, each example as valid JSON, the HTTP ones read by
``detect`` as their front."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from duplexlambda.__main__ import main
from duplexlambda.events.fronts import Front
from duplexlambda.events.request import detect, parse_request
from duplexlambda.example_events import EXAMPLES

HTTP_FRONTS = {
    "function-url": Front.FUNCTION_URL,
    "http-api": Front.HTTP_API_V2,
    "http-api-v1": Front.HTTP_API_V1,
    "rest": Front.REST_API,
    "alb": Front.ALB,
}
REQUIRED = {
    "function-url",
    "http-api",
    "http-api-v1",
    "rest",
    "alb",
    "s3",
    "sqs",
    "sns",
    "eventbridge",
    "dynamodb",
    "kinesis",
    "scheduled",
}


def test_event_list_names_every_example_with_a_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["event", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines}
    assert set(listed) == REQUIRED == set(EXAMPLES)
    assert all(description.strip() for description in listed.values())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_event_prints_valid_json(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["event", name]) == 0
    event = json.loads(capsys.readouterr().out)
    assert isinstance(event, dict)
    assert event


@pytest.mark.parametrize(("name", "front"), sorted(HTTP_FRONTS.items()))
def test_http_event_output_is_detected_as_its_front(
    name: str, front: Front, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["event", name]) == 0
    event = json.loads(capsys.readouterr().out)
    assert detect(event) is front
    request = parse_request(event)
    assert request is not None
    assert (request.method, request.path) == ("POST", "/orders/42")
    assert json.loads(request.body) == {"name": "Ada", "message": "hello"}


def test_non_http_events_are_no_front() -> None:
    for name in REQUIRED - set(HTTP_FRONTS):
        assert detect(EXAMPLES[name][1]()) is Front.NONE, name


def test_event_s3_through_the_real_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "duplexlambda", "event", "s3"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    [record] = json.loads(proc.stdout)["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"]


def test_unknown_or_missing_event_name_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["event", "nope"]) == 2
    assert "no example 'nope'" in capsys.readouterr().err
    assert main(["event"]) == 2
    assert "s3" in capsys.readouterr().err
