"""Example events for ``duplexlambda event NAME`` and ``duplexlambda invoke --example NAME``.

Each is shaped as the AWS documentation describes that source's event, with made-up ids,
plausible bodies and fixed timestamps (2026-01-15 12:00:00 UTC), written for this project.
The HTTP ones are read by ``duplexlambda.events.request.detect`` as their front.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]

_ACCOUNT = "123456789012"
_REGION = "us-east-1"
_ISO = "2026-01-15T12:00:00Z"
_ISO_MS = "2026-01-15T12:00:00.000Z"
_EPOCH_MS = 1768478400000
_EPOCH = 1768478400
_CLF = "15/Jan/2026:12:00:00 +0000"
_BODY = json.dumps({"name": "Ada", "message": "hello"})
_UA = "curl/8.5.0"
_SOURCE_IP = "198.51.100.7"


def _function_url() -> Event:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/orders/42",
        "rawQueryString": "expand=items&lang=en",
        "cookies": ["session=s3cr3t", "theme=dark"],
        "headers": {
            "host": "f3xampleurlid7abc.lambda-url.us-east-1.on.aws",
            "content-type": "application/json",
            "user-agent": _UA,
            "x-forwarded-proto": "https",
            "x-forwarded-for": _SOURCE_IP,
        },
        "queryStringParameters": {"expand": "items", "lang": "en"},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "f3xampleurlid7abc",
            "domainName": "f3xampleurlid7abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "f3xampleurlid7abc",
            "http": {
                "method": "POST",
                "path": "/orders/42",
                "protocol": "HTTP/1.1",
                "sourceIp": _SOURCE_IP,
                "userAgent": _UA,
            },
            "requestId": "6f1c1d4e-8a4b-4c7e-9f43-2d6a1b0e7c11",
            "routeKey": "$default",
            "stage": "$default",
            "time": _CLF,
            "timeEpoch": _EPOCH_MS,
        },
        "body": _BODY,
        "isBase64Encoded": False,
    }


def _http_api_v1() -> Event:
    return _payload_1_0(version=True)


def _rest() -> Event:
    return _payload_1_0(version=False)


def _http_api() -> Event:
    event = _function_url()
    domain = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    event["routeKey"] = "POST /orders/{id}"
    event["headers"]["host"] = domain
    event["pathParameters"] = {"id": "42"}
    event["stageVariables"] = {"table": "orders"}
    event["requestContext"].update(
        {
            "accountId": _ACCOUNT,
            "apiId": "a1b2c3d4e5",
            "domainName": domain,
            "domainPrefix": "a1b2c3d4e5",
            "requestId": "Yx3kPh2VIAMEbXw=",
            "routeKey": "POST /orders/{id}",
        }
    )
    return event


def _identity() -> Event:
    return {
        "accessKey": None,
        "accountId": None,
        "caller": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "sourceIp": _SOURCE_IP,
        "user": None,
        "userAgent": _UA,
        "userArn": None,
    }


def _payload_1_0(*, version: bool) -> Event:
    headers = {
        "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "Content-Type": "application/json",
        "User-Agent": _UA,
        "X-Forwarded-For": _SOURCE_IP,
        "X-Forwarded-Proto": "https",
    }
    stage = "$default" if version else "prod"
    event: Event = {
        "resource": "/orders/{id}",
        "path": "/orders/42",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {"lang": "en"},
        "multiValueQueryStringParameters": {"lang": ["en"]},
        "pathParameters": {"id": "42"},
        "stageVariables": None,
        "requestContext": {
            "accountId": _ACCOUNT,
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "httpMethod": "POST",
            "identity": _identity(),
            "path": "/orders/42" if version else "/prod/orders/42",
            "protocol": "HTTP/1.1",
            "requestId": "c4a7d1e2-5b3f-4e8a-9d6c-0f1e2d3c4b5a",
            "requestTime": _CLF,
            "requestTimeEpoch": _EPOCH_MS,
            "resourceId": "POST /orders/{id}" if version else "x1y2z3",
            "resourcePath": "/orders/{id}",
            "stage": stage,
        },
        "body": _BODY,
        "isBase64Encoded": False,
    }
    if version:
        event = {"version": "1.0", **event}
    return event


def _alb() -> Event:
    return {
        "requestContext": {
            "elb": {
                "targetGroupArn": f"arn:aws:elasticloadbalancing:{_REGION}:{_ACCOUNT}:"
                "targetgroup/orders-tg/73e2d6bc24d8a067"
            }
        },
        "httpMethod": "POST",
        "path": "/orders/42",
        "queryStringParameters": {"lang": "en"},
        "headers": {
            "host": "orders-alb-1234567890.us-east-1.elb.amazonaws.com",
            "content-type": "application/json",
            "user-agent": _UA,
            "x-amzn-trace-id": "Root=1-6788a3c0-0a1b2c3d4e5f60718293a4b5",
            "x-forwarded-for": _SOURCE_IP,
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "body": _BODY,
        "isBase64Encoded": False,
    }


def _s3() -> Event:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": _REGION,
                "eventTime": _ISO_MS,
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUSERID01"},
                "requestParameters": {"sourceIPAddress": _SOURCE_IP},
                "responseElements": {
                    "x-amz-request-id": "8C2F1A7B3D4E5F60",
                    "x-amz-id-2": "q1W2e3R4t5Y6u7I8o9P0aSdFgHjKlZxCvBnM/example=",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "on-upload",
                    "bucket": {
                        "name": "example-uploads",
                        "ownerIdentity": {"principalId": "A3EXAMPLEOWNER"},
                        "arn": "arn:aws:s3:::example-uploads",
                    },
                    "object": {
                        "key": "reports/2026/january.csv",
                        "size": 20480,
                        "eTag": "9b2cf535f27731c974343645a3985328",
                        "sequencer": "0067889A3C0B1D2E3F",
                    },
                },
            }
        ]
    }


def _sqs() -> Event:
    return {
        "Records": [
            {
                "messageId": "e5b6f3a2-1c4d-4b7e-8f90-a1b2c3d4e5f6",
                "receiptHandle": "AQEBexampleReceiptHandle+wJq3n2Q==",
                "body": json.dumps({"orderId": 42, "status": "paid"}),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(_EPOCH_MS),
                    "SenderId": "AIDAEXAMPLESENDER01",
                    "ApproximateFirstReceiveTimestamp": str(_EPOCH_MS + 12),
                },
                "messageAttributes": {
                    "tenant": {
                        "stringValue": "acme",
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "String",
                    }
                },
                "md5OfBody": "3c1f0cde5a8b4e9d7f6a2b1c0d9e8f7a",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{_REGION}:{_ACCOUNT}:orders-queue",
                "awsRegion": _REGION,
            }
        ]
    }


def _sns() -> Event:
    topic = f"arn:aws:sns:{_REGION}:{_ACCOUNT}:order-events"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "7d3e9a1b-2c4f-5e6d-8a7b-9c0d1e2f3a4b",
                    "TopicArn": topic,
                    "Subject": "Order shipped",
                    "Message": json.dumps({"orderId": 42, "carrier": "ups"}),
                    "Timestamp": _ISO_MS,
                    "SignatureVersion": "1",
                    "Signature": "ZXhhbXBsZSBzaWduYXR1cmUsIG5vdCBhIHJlYWwgb25l",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/"
                    "SimpleNotificationService-example.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/"
                    f"?Action=Unsubscribe&SubscriptionArn={topic}:0b1c2d3e",
                    "MessageAttributes": {"priority": {"Type": "String", "Value": "high"}},
                },
            }
        ]
    }


def _eventbridge() -> Event:
    return {
        "version": "0",
        "id": "3f9a2b1c-4d5e-6f70-8192-a3b4c5d6e7f8",
        "detail-type": "Order Placed",
        "source": "com.example.orders",
        "account": _ACCOUNT,
        "time": _ISO,
        "region": _REGION,
        "resources": [],
        "detail": {"orderId": 42, "total": 19.99, "currency": "EUR"},
    }


def _scheduled() -> Event:
    return {
        "version": "0",
        "id": "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9c0d",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": _ACCOUNT,
        "time": _ISO,
        "region": _REGION,
        "resources": [f"arn:aws:events:{_REGION}:{_ACCOUNT}:rule/nightly-report"],
        "detail": {},
    }


def _dynamodb() -> Event:
    arn = f"arn:aws:dynamodb:{_REGION}:{_ACCOUNT}:table/Orders/stream/2026-01-01T00:00:00.000"
    keys = {"pk": {"S": "order#42"}}
    return {
        "Records": [
            {
                "eventID": "c81e728d9d4c2f636f067f89cc14862c",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": _REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": _EPOCH,
                    "Keys": keys,
                    "NewImage": {**keys, "status": {"S": "paid"}, "total": {"N": "19.99"}},
                    "SequenceNumber": "111100000000004242424242",
                    "SizeBytes": 58,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": arn,
            },
            {
                "eventID": "eccbc87e4b5ce2fe28308fd9f2a7baf3",
                "eventName": "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": _REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": _EPOCH + 5,
                    "Keys": keys,
                    "OldImage": {**keys, "status": {"S": "paid"}, "total": {"N": "19.99"}},
                    "NewImage": {**keys, "status": {"S": "shipped"}, "total": {"N": "19.99"}},
                    "SequenceNumber": "111100000000004242424243",
                    "SizeBytes": 91,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": arn,
            },
        ]
    }


def _kinesis() -> Event:
    data = base64.b64encode(json.dumps({"sensor": "t-7", "celsius": 21.5}).encode()).decode()
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "t-7",
                    "sequenceNumber": "49650000000000000000000000000000000000000000000000000042",
                    "data": data,
                    "approximateArrivalTimestamp": _EPOCH + 0.25,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": "shardId-000000000000:4965000000000000000000000000000000000000000042",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{_ACCOUNT}:role/orders-function-role",
                "awsRegion": _REGION,
                "eventSourceARN": f"arn:aws:kinesis:{_REGION}:{_ACCOUNT}:stream/sensor-readings",
            }
        ]
    }


#: name -> (one-line description, builder); each call builds a fresh dict to edit.
EXAMPLES: dict[str, tuple[str, Callable[[], Event]]] = {
    "function-url": ("Lambda function URL request (payload 2.0, POST, JSON body)", _function_url),
    "http-api": ("API Gateway HTTP API request, payload format 2.0", _http_api),
    "http-api-v1": ("API Gateway HTTP API request, payload format 1.0", _http_api_v1),
    "rest": ("API Gateway REST API proxy request (stage prod)", _rest),
    "alb": ("Application Load Balancer target group request", _alb),
    "s3": ("S3 ObjectCreated:Put notification", _s3),
    "sqs": ("SQS message batch (one message)", _sqs),
    "sns": ("SNS notification", _sns),
    "eventbridge": ("EventBridge custom event (detail-type Order Placed)", _eventbridge),
    "dynamodb": ("DynamoDB stream records (INSERT, MODIFY)", _dynamodb),
    "kinesis": ("Kinesis data stream record (base64 data)", _kinesis),
    "scheduled": ("EventBridge scheduled rule / CloudWatch Events schedule", _scheduled),
}


def names() -> list[str]:
    return list(EXAMPLES)


def example(name: str) -> Event:
    """A fresh copy of the example event ``name`` (KeyError for an unknown name)."""
    return EXAMPLES[name][1]()
