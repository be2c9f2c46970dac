"""The client's plain values and argument checks."""

from __future__ import annotations

import pytest

from duplexlambda.testing import HeaderMap, InvocationError, LambdaClient


def test_header_map() -> None:
    headers = HeaderMap([("Set-Cookie", "a=1"), ("X-A", "1"), ("set-cookie", "b=2")])
    assert headers["set-cookie"] == "a=1, b=2"
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert list(headers) == ["set-cookie", "x-a"]
    assert len(headers) == 2
    assert "x-a" in headers
    assert headers.get("missing") is None


def test_bad_handler_fails_at_construction() -> None:
    def wrong(a: int) -> None: ...

    with pytest.raises(Exception, match="must be"):
        LambdaClient(wrong)
    with pytest.raises(ValueError, match="mode"):
        LambdaClient("tests.testing.handlers.shout", mode="fast")  # type: ignore[arg-type]


def test_invocation_error_from_payload() -> None:
    error = InvocationError.from_payload(
        "KeyError", b'{"errorMessage": "k", "errorType": "KeyError", "stackTrace": ["a", "b"]}'
    )
    assert (error.error_type, error.message, error.trace) == ("KeyError", "k", ["a", "b"])
    assert str(error) == "KeyError: k"
    odd = InvocationError.from_payload("Sandbox.Timeout", b"not json")
    assert (odd.message, odd.trace, odd.payload) == ("", [], b"not json")
