"""HTTP-shaped events of each front, in their smallest useful form.

Written from the shapes AWS documents for function URLs, HTTP API payload formats 2.0 and 1.0,
REST API proxy integrations and ALB Lambda targets; the tests add the fields they are about.
"""

from __future__ import annotations

from typing import Any

URL_DOMAIN = "a1b2c3.lambda-url.eu-west-1.on.aws"
API_DOMAIN = "k9x8y7.execute-api.eu-west-1.amazonaws.com"


def v2(domain: str = URL_DOMAIN, **fields: Any) -> dict[str, Any]:
    """A payload-2.0 event: what function URLs and HTTP APIs (format 2.0) send."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/items/7",
        "rawQueryString": "",
        "headers": {"host": domain, "user-agent": "test"},
        "requestContext": {
            "domainName": domain,
            "stage": "$default",
            "http": {"method": "GET", "path": "/items/7", "sourceIp": "192.0.2.10"},
        },
        "isBase64Encoded": False,
    }
    event.update(fields)
    return event


def v1(*, rest: bool, **fields: Any) -> dict[str, Any]:
    """A payload-1.0 event: REST APIs send it without ``version``, HTTP APIs with "1.0"."""
    event: dict[str, Any] = {
        "resource": "/{proxy+}",
        "path": "/items/7",
        "httpMethod": "GET",
        "headers": {"Host": API_DOMAIN},
        "multiValueHeaders": {"Host": [API_DOMAIN]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "httpMethod": "GET",
            "path": "/items/7",
            "stage": "$default",
            "domainName": API_DOMAIN,
            "identity": {"sourceIp": "198.51.100.7"},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    if rest:
        event["requestContext"].update(resourceId="abc123", resourcePath="/{proxy+}")
    else:
        event["version"] = "1.0"
    event.update(fields)
    return event


def alb(*, multi: bool, **fields: Any) -> dict[str, Any]:
    """An ALB target group's event; multi-value mode has only the multiValue* maps."""
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:tg"}},
        "httpMethod": "GET",
        "path": "/items/7",
        "body": "",
        "isBase64Encoded": False,
    }
    if multi:
        event["multiValueHeaders"] = {"host": ["lb.example.com"]}
        event["multiValueQueryStringParameters"] = {}
    else:
        event["headers"] = {"host": "lb.example.com"}
        event["queryStringParameters"] = {}
    event.update(fields)
    return event
