"""Command line: ``duplexlambda info | run | serve | package | invoke | event | new`` (also
``python -m duplexlambda``).

``run`` is what a Lambda ``bootstrap`` starts on every cold start, so its plain forms are
parsed without argparse and without loading the other commands (about 25 ms of imports).
"""

from __future__ import annotations

import sys

# No typing or collections.abc at run time: ``run`` is every cold start (docs/benchmarks.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any


def info_lines() -> list[str]:
    """What ``duplexlambda info`` prints: version, codec IMPL, event loop, Python."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from duplexlambda import __version__
    from duplexlambda.protocol import chunked

    try:
        loop = f"uvloop {version('uvloop')}"
    except PackageNotFoundError:
        loop = "asyncio"
    codec = chunked.IMPL
    if chunked.IMPORT_ERROR:
        codec += f" (C twin not in use: {chunked.IMPORT_ERROR})"
    return [
        f"duplexlambda {__version__}",
        f"codec IMPL: {codec}",
        f"event loop: {loop}",
        f"python: {platform.python_implementation()} {platform.python_version()}"
        f" ({sys.platform}, {platform.machine()})",
    ]


def _cmd_info(_args: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import os

    from duplexlambda.runtime import run

    spec = args.handler or os.environ.get("_HANDLER")
    if not spec:
        print("duplexlambda run: no handler given and _HANDLER is not set", file=sys.stderr)
        return 2
    # --asgi (or DUPLEXLAMBDA_ASGI=1) / --wsgi (or DUPLEXLAMBDA_WSGI=1): the named object is
    # an ASGI / WSGI app, served through its bridge; the loop itself knows nothing of them.
    # Imported lazily (cold start).
    as_asgi = args.asgi or os.environ.get("DUPLEXLAMBDA_ASGI", "") in ("1", "true")
    as_wsgi = args.wsgi or os.environ.get("DUPLEXLAMBDA_WSGI", "") in ("1", "true")
    if as_asgi and as_wsgi:
        print(
            "duplexlambda run: --asgi (DUPLEXLAMBDA_ASGI) and --wsgi (DUPLEXLAMBDA_WSGI)"
            " exclude each other",
            file=sys.stderr,
        )
        return 2
    wrap: Callable[[Any], Any] | None = None
    if as_asgi:
        from duplexlambda.asgi import asgi

        wrap = asgi
    elif as_wsgi:
        from duplexlambda.wsgi import wsgi

        wrap = wsgi
    return run(spec, use_uvloop=not args.no_uvloop, wrap=wrap)


def build_parser() -> argparse.ArgumentParser:
    """The full command line, with every command registered."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="duplexlambda",
        description="asyncio custom runtime for AWS Lambda, streamed both ways",
        epilog="examples:\n"
        "  duplexlambda serve examples.csv_stats.handler   # the local emulator + runtime\n"
        "  duplexlambda package examples -o function.zip   # a Lambda zip with a bootstrap\n"
        "  duplexlambda invoke --example s3                 # send an event to serve\n"
        "  duplexlambda info                                # version, codec, event loop\n"
        "  duplexlambda new my_function                     # a new project to start from\n"
        "run 'duplexlambda COMMAND --help' for each command's options and examples",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser(
        "info",
        help="print version, codec implementation, event loop and Python version",
        description="Print the version, the chunk codec in use (c, or python and why),"
        " the event loop and the Python version.",
        epilog="example: duplexlambda info",
    )
    info.set_defaults(func=_cmd_info)
    run = sub.add_parser(
        "run",
        help="run the custom runtime (the bootstrap of a Lambda function)",
        description="Poll the Lambda Runtime API (AWS_LAMBDA_RUNTIME_API) and serve HANDLER.",
        epilog="example: AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 "
        "python -m duplexlambda run examples.echo.handler",
    )
    run.add_argument(
        "handler", nargs="?", help="module.function or module:function (default: $_HANDLER)"
    )
    run.add_argument("--no-uvloop", action="store_true", help="use the stdlib asyncio loop")
    run.add_argument(
        "--asgi",
        action="store_true",
        help="HANDLER names an ASGI app (module:app), e.g. FastAPI or Starlette"
        " (also DUPLEXLAMBDA_ASGI=1)",
    )
    run.add_argument(
        "--wsgi",
        action="store_true",
        help="HANDLER names a WSGI app (module:app), e.g. Flask or Django"
        " (also DUPLEXLAMBDA_WSGI=1)",
    )
    run.set_defaults(func=_cmd_run)
    __import__("duplexlambda.emulator.cli", fromlist=["cli"]).add_serve_parser(sub)
    __import__("duplexlambda.package", fromlist=["package"]).add_package_parser(sub)
    invoke_cli = __import__("duplexlambda.invoke_cli", fromlist=["invoke_cli"])
    invoke_cli.add_invoke_parser(sub)
    invoke_cli.add_event_parser(sub)
    __import__("duplexlambda.new", fromlist=["new"]).add_new_parser(sub)
    return parser


_RUN_FLAGS = {"--no-uvloop": "no_uvloop", "--asgi": "asgi", "--wsgi": "wsgi"}


def _fast_run(argv: Sequence[str]) -> int | None:
    """``run [HANDLER] [--no-uvloop] [--asgi] [--wsgi]`` without argparse; None for anything
    else."""
    if not argv or argv[0] != "run":
        return None
    flags = {"no_uvloop": False, "asgi": False, "wsgi": False}
    handler = None
    for arg in argv[1:]:
        if arg in _RUN_FLAGS:
            flags[_RUN_FLAGS[arg]] = True
        elif arg.startswith("-") or handler is not None:
            return None  # --help, typos, extra words: argparse explains them
        else:
            handler = arg
    from types import SimpleNamespace

    return _cmd_run(SimpleNamespace(handler=handler, **flags))  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``duplexlambda`` and ``python -m duplexlambda``."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    fast = _fast_run(args_list)
    if fast is not None:
        return fast
    args = build_parser().parse_args(args_list)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
