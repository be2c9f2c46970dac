"""The options of ``duplexlambda invoke`` and ``duplexlambda event`` (registered by
``__main__.build_parser``); what they do is in ``invoke.py``, imported only when they run."""

from __future__ import annotations

import argparse
from typing import Any


def _cmd_invoke(args: argparse.Namespace) -> int:
    from duplexlambda.invoke import cmd_invoke

    return cmd_invoke(args)


def _cmd_event(args: argparse.Namespace) -> int:
    from duplexlambda.invoke import cmd_event

    return cmd_event(args)


def add_event_parser(sub: Any) -> None:
    """Register ``duplexlambda event``."""
    parser = sub.add_parser(
        "event",
        help="print an example event (function URL, API Gateway, ALB, S3, SQS, ...) to edit",
        description="Print an example event as JSON, shaped as AWS sends it, to edit and send"
        " with 'duplexlambda invoke --data-file'.",
        epilog="examples:\n"
        "  duplexlambda event --list\n"
        "  duplexlambda event s3 > s3.json\n"
        "  duplexlambda invoke --data-file s3.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="the example's name (--list)")
    parser.add_argument("--list", action="store_true", help="list the examples, one a line")
    parser.set_defaults(func=_cmd_event)


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return port


def add_invoke_parser(sub: Any) -> None:
    """Register ``duplexlambda invoke``."""
    parser = sub.add_parser(
        "invoke",
        help="send an event to a running emulator (duplexlambda serve) and print the answer",
        description="Invoke the function of a running 'duplexlambda serve' through its Invoke"
        " API, as 'aws lambda invoke' would. The response goes to stdout; a function error"
        " goes to stderr as 'errorType: errorMessage' and its stack trace, and exits 1.",
        epilog="examples:\n"
        '  duplexlambda invoke --data \'{"name": "Ada"}\'\n'
        "  duplexlambda invoke --example s3\n"
        "  duplexlambda event sqs | duplexlambda invoke --data-file -\n"
        "  duplexlambda invoke --stream --timing --data '{}'   # does it really stream?\n"
        "  duplexlambda invoke --log-type Tail --data '{}'\n"
        "exit status: 0 ok, 1 function error (or no emulator), 2 usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="the emulator's host (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=9000, help="the emulator's port (9000)")
    parser.add_argument(
        "--function", default="function", metavar="NAME", help="function name (function)"
    )
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="JSON", help="the event, as JSON text (default {})")
    data.add_argument("--data-file", metavar="PATH", help="read the event from a file ('-': stdin)")
    data.add_argument(
        "--example",
        metavar="NAME",
        help="send a built-in example event (duplexlambda event --list)",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="InvokeWithResponseStream: print each chunk as it arrives (stdout), with its"
        " time since the request and its size (stderr)",
    )
    parser.add_argument(
        "--timing",
        action="store_true",
        help="with --stream: a table of chunks (time, gap, size, first bytes) instead of the bytes",
    )
    parser.add_argument("--qualifier", help="version or alias (?Qualifier=)")
    parser.add_argument(
        "--client-context",
        metavar="JSON",
        help="client context as JSON (base64-encoded for you) or already base64",
    )
    parser.add_argument(
        "--log-type",
        choices=["None", "Tail"],
        help="Tail: print the function's last log lines (decoded) to stderr",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="give up after S seconds (none)"
    )
    parser.set_defaults(func=_cmd_invoke)
