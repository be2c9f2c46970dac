"""``DUPLEXLAMBDA_STREAMING``: which fronts get a streamed answer."""

from __future__ import annotations

import pytest

from duplexlambda.events import DEFAULT_STREAMING, Front, parse_streaming
from duplexlambda.events.settings import streaming_from_env
from duplexlambda.runtime import RuntimeConfig


@pytest.mark.parametrize(
    ("value", "fronts"),
    [
        (None, {Front.FUNCTION_URL}),
        ("", {Front.FUNCTION_URL}),
        ("  ", {Front.FUNCTION_URL}),
        ("function-url", {Front.FUNCTION_URL}),
        ("function-url,rest-api", {Front.FUNCTION_URL, Front.REST_API}),
        (" REST-API , function-url ,", {Front.FUNCTION_URL, Front.REST_API}),
        ("rest-api", {Front.REST_API}),
        ("none", set()),
        ("None", set()),
        ([], set()),
        (["rest-api", Front.FUNCTION_URL], {Front.FUNCTION_URL, Front.REST_API}),
    ],
)
def test_parse_streaming(value: str | list[str | Front] | None, fronts: set[Front]) -> None:
    assert parse_streaming(value) == fronts


def test_default() -> None:
    assert {Front.FUNCTION_URL} == DEFAULT_STREAMING
    assert streaming_from_env({}) == DEFAULT_STREAMING
    assert streaming_from_env({"DUPLEXLAMBDA_STREAMING": "none"}) == set()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("function-url,websocket", "unknown front 'websocket'"),
        ("http-api-v2", "http-api-v2 cannot stream"),
        ("alb", "alb cannot stream"),
        ("none,rest-api", "'none' stands alone"),
        ([Front.HTTP_API_V1], "http-api-v1 cannot stream"),
    ],
)
def test_bad_settings_are_errors(value: str | list[Front], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_streaming(value)


def test_the_setting_is_read_once_from_the_environment() -> None:
    env = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
    assert RuntimeConfig.from_env(env).streaming == {Front.FUNCTION_URL}
    env["DUPLEXLAMBDA_STREAMING"] = "function-url,rest-api"
    assert RuntimeConfig.from_env(env).streaming == {Front.FUNCTION_URL, Front.REST_API}
    env["DUPLEXLAMBDA_STREAMING"] = "alb"
    with pytest.raises(ValueError, match="alb cannot stream"):
        RuntimeConfig.from_env(env)
