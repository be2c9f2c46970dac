"""``duplexlambda serve HANDLER``: the emulator and a supervised runtime, from the shell.

Only argparse is imported up front: ``duplexlambda run`` builds the same parser, and a
runtime's cold start must not load the emulator.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from .app import Emulator
    from .config import EmulatorConfig
    from .supervisor import ContainerImage

log = logging.getLogger("duplexlambda.emulator")


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _memory(text: str) -> int:
    value = int(text)
    if not 128 <= value <= 10240:
        raise argparse.ArgumentTypeError("must be 128-10240 (MB), as Lambda allows")
    return value


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines: blank lines and ``#`` comments skipped, an ``export `` prefix
    allowed, values in single quotes kept as they are, in double quotes with ``\\n``,
    ``\\"`` and ``\\\\`` unescaped, unquoted ones cut at `` #``."""
    variables: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise ValueError(f"line {number}: expected KEY=VALUE, not {raw!r}")
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = (
                value[1:-1]
                .replace("\\\\", "\0")
                .replace("\\n", "\n")
                .replace('\\"', '"')
                .replace("\0", "\\")
            )
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        variables[key] = value
    return variables


def parse_env_file(text: str, function_name: str) -> dict[str, str]:
    """The variables in an ``--env-file``: SAM's ``--env-vars`` JSON (its ``Parameters`` for
    every function, then the block of ``function_name``) when it starts with ``{``, else dotenv.
    ValueError says what is wrong."""
    if not text.lstrip().startswith("{"):
        return parse_dotenv(text)
    import json

    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc
    variables: dict[str, str] = {}
    for block in ("Parameters", function_name):
        values = document.get(block, {}) if isinstance(document, dict) else None
        if not isinstance(values, dict):
            raise ValueError(f"{block!r} must be an object of variables")
        for key, value in values.items():
            if isinstance(value, (dict, list)) or value is None:
                raise ValueError(f"{block}.{key} must be a string, a number or a boolean")
            variables[key] = json.dumps(value) if isinstance(value, bool) else str(value)
    return variables


def function_environment(args: argparse.Namespace) -> dict[str, str]:
    """The function's own variables from ``--env-file``, ``--env`` and ``--asgi``/``--wsgi``.
    ValueError for a bad file or a reserved name (Lambda refuses those too)."""
    from .supervisor import RESERVED_VARIABLES

    variables: dict[str, str] = {}
    if args.env_file:
        try:
            with open(args.env_file, encoding="utf-8") as file:
                text = file.read()
        except OSError as exc:
            raise ValueError(f"--env-file: {exc}") from exc
        try:
            variables.update(parse_env_file(text, args.function_name))
        except ValueError as exc:
            raise ValueError(f"--env-file {args.env_file}: {exc}") from exc
    variables.update(dict(args.env))
    reserved = sorted(key for key in variables if key in RESERVED_VARIABLES)
    if reserved:
        raise ValueError(
            f"{', '.join(reserved)}: reserved by Lambda, which sets it itself and refuses it"
            " in a function's environment (use --function-name, --memory, --task-root)"
        )
    if args.asgi or args.wsgi:  # the flag wins over either variable set in our shell
        variables["DUPLEXLAMBDA_ASGI"] = "1" if args.asgi else "0"
        variables["DUPLEXLAMBDA_WSGI"] = "1" if args.wsgi else "0"
    return variables


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0-65535")
    return value


SERVE_EXAMPLES = """examples:
  duplexlambda serve examples.csv_stats.handler
      then: python examples/gen_data.py csv 500000 | curl -sN -T - http://127.0.0.1:9000/
  duplexlambda serve app.handler --task-root ./src --port 0 --runtime-api-port 0
  duplexlambda serve app.handler --mode lambda --throttle   # as AWS: 6 MB bodies, 2 MiB/s
  duplexlambda serve --no-runtime                          # bring your own runtime:
      AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 python -m duplexlambda run app.handler
  duplexlambda serve --image duplexlambda-examples csv_stats.handler
      the runtime is the image you deploy, run as Lambda runs it (docker or podman)
  duplexlambda serve app:app --asgi --reload --env-file .env --function-name orders
      restart the runtime on each save; the function's variables and name
  duplexlambda serve app.handler --front rest           # as behind API Gateway (REST):
      curl http://127.0.0.1:9000/prod/items              # its event, its 502s, its 29 s
  duplexlambda serve --template template.yaml          # every function of a SAM template:
      curl -N http://127.0.0.1:9000/lambda-url/MyFunction/   (routes: see the banner)

Each invocation is logged with its status, bytes in/out, duration and time to first byte."""


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` command to ``subparsers`` (from ``add_subparsers()``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the local Lambda emulator (function URL, Invoke API, Runtime API)",
        description="Serve a function URL and the Invoke API on --port, the Runtime API on"
        " --runtime-api-port, and run HANDLER in a runtime child process (or, with --image,"
        " in a container of that image).",
        epilog=SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("handler", metavar="HANDLER", nargs="?", help="e.g. app.handler")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=9000, help="function URL port (9000)")
    parser.add_argument(
        "--runtime-api-port", type=_port, default=9001, help="Runtime API port (9001)"
    )
    parser.add_argument("--task-root", default=".", help="the function's code directory (.)")
    parser.add_argument(
        "--mode",
        choices=["duplex", "lambda"],
        default="duplex",
        help="duplex: stream uploads to the runtime (default); lambda: as AWS does",
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=300.0, help="seconds per invocation (300)"
    )
    parser.add_argument(
        "--concurrency", type=_positive_int, default=1, help="AWS_LAMBDA_MAX_CONCURRENCY (1)"
    )
    parser.add_argument(
        "--no-runtime", action="store_true", help="start no runtime; any runtime may connect"
    )
    parser.add_argument(
        "--image",
        metavar="IMAGE",
        help="run the runtime from this container image, as Lambda does (read-only, /tmp"
        " writable, a non-root user, the host's network); HANDLER, if given, replaces its CMD",
    )
    parser.add_argument(
        "--engine",
        metavar="CMD",
        default=None,
        help=f"the container engine for --image (${ENGINE_ENV}, else docker, else podman)",
    )
    parser.add_argument(
        "--response-limit",
        type=int,
        default=None,
        metavar="BYTES",
        help="cap on a streamed response (lambda mode: 200 MiB; 0: none)",
    )
    parser.add_argument(
        "--throttle", action="store_true", help="6 MiB burst then 2 MiB/s, as AWS streams"
    )
    parser.add_argument(
        "--no-inspector",
        dest="inspector",
        action="store_false",
        help="do not serve the inspector (/_duplexlambda/) nor record what it shows",
    )
    parser.add_argument(
        "--front",
        choices=list(FRONT_NAMES),
        default="function-url",
        help="the service that invokes the function: its event, its reading of the answer,"
        " its errors and limits (function-url)",
    )
    parser.add_argument(
        "--stage", default="prod", help="the REST API's stage, first in every path (prod)"
    )
    parser.add_argument(
        "--integration-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="how long API Gateway waits for the function (HTTP API 30, REST 29)",
    )
    settings = parser.add_argument_group("the function's settings")
    settings.add_argument(
        "--function-name",
        default="function",
        metavar="NAME",
        help="AWS_LAMBDA_FUNCTION_NAME, its ARN and log group, the Invoke API's path (function)",
    )
    settings.add_argument(
        "--memory",
        type=_memory,
        default=3008,
        metavar="MB",
        help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE and context.memory_limit_in_mb (3008)",
    )
    settings.add_argument(
        "--env",
        action="append",
        default=[],
        type=_env_pair,
        metavar="KEY=VALUE",
        help="a variable of the function (repeatable; wins over --env-file)",
    )
    settings.add_argument(
        "--env-file",
        metavar="PATH",
        help="the function's variables: a dotenv file (KEY=VALUE lines), or SAM's --env-vars"
        ' JSON ({"Parameters": {...}, "FUNCTION_NAME": {...}})',
    )
    kind = settings.add_mutually_exclusive_group()
    kind.add_argument(
        "--asgi", action="store_true", help="HANDLER names an ASGI app (DUPLEXLAMBDA_ASGI=1)"
    )
    kind.add_argument(
        "--wsgi", action="store_true", help="HANDLER names a WSGI app (DUPLEXLAMBDA_WSGI=1)"
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart the runtime when a file under --task-root changes (needs watchfiles)",
    )
    parser.add_argument(
        "--template",
        metavar="FILE",
        help="serve every AWS::Serverless::Function of this SAM template (no HANDLER): each"
        " its runtime child, URL under /lambda-url/<LogicalId>/, its HttpApi and Api routes",
    )
    # Internal: the runtime's command line (tests point it at awslambdaric).
    parser.add_argument("--runtime-cmd", default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run_serve)
    return parser


#: ``--front`` choices (``EmulatorConfig.front``; config.py is not imported up front).
FRONT_NAMES = (
    "function-url",
    "function-url-buffered",
    "http-api",
    "http-api-v1",
    "rest",
    "rest-stream",
    "alb",
    "alb-multi",
)

#: The container engine for ``serve --image`` (a command: ``podman --runtime runc``).
ENGINE_ENV = "DUPLEXLAMBDA_CONTAINER_ENGINE"


def _configure_logging() -> None:
    """One line per record on stderr, unless the embedding program set logging up itself.

    The emulator logs a line per invocation. With our own format, which names no source
    line, thread or process, logging need not look them up for each record: the Logging
    HOWTO's "Optimization" switches. (Not when an embedder configured logging: its
    handlers may want them.)
    """
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging._srcfile = None  # (no findCaller stack walk per record)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def run_serve(args: argparse.Namespace) -> int:
    """Entry point of ``duplexlambda serve``; returns the exit status."""
    if args.template:
        return run_template(args)
    if args.image and args.no_runtime:
        print("duplexlambda serve: --image and --no-runtime exclude each other", file=sys.stderr)
        return 2
    if not args.handler and not args.no_runtime and not args.image:
        print("duplexlambda serve: HANDLER is required unless --no-runtime", file=sys.stderr)
        return 2
    _configure_logging()
    from .config import EmulatorConfig

    try:
        config = EmulatorConfig(
            host=args.host,
            port=args.port,
            runtime_api_port=args.runtime_api_port,
            mode=args.mode,
            timeout=args.timeout,
            concurrency=args.concurrency,
            response_limit=args.response_limit,
            throttle=args.throttle,
            inspector=args.inspector,
            front=args.front,
            stage=args.stage,
            integration_timeout=args.integration_timeout,
            function_name=args.function_name,
            memory_size=args.memory,
        )
        args.function_env = function_environment(args)
    except ValueError as exc:
        print(f"duplexlambda serve: {exc}", file=sys.stderr)
        return 2
    args.task_root = os.path.abspath(args.task_root)
    args.container = None
    if args.image:
        try:
            args.container, args.handler = container_image(args.image, args.handler, args.engine)
        except LookupError as exc:
            print(f"duplexlambda serve: {exc}", file=sys.stderr)
            return 2
    elif not args.no_runtime and (problem := handler_problem(args.handler, args.task_root)):
        print(f"duplexlambda serve: {problem}", file=sys.stderr)
        return 2
    if args.reload:
        from .reload import missing_watcher

        if args.no_runtime or args.image:
            print("duplexlambda serve: --reload needs a runtime child (not with --no-runtime"
                  " or --image)", file=sys.stderr)  # fmt: skip
            return 2
        if problem := missing_watcher():
            print(f"duplexlambda serve: {problem}", file=sys.stderr)
            return 2
    return _run(_serve(config, args))


def container_image(
    image: str, handler: str | None, engine: str | None
) -> tuple[ContainerImage, str]:
    """The ``ContainerImage`` for ``serve --image``, and the handler it will run (``handler``,
    else the image's CMD). The engine is ``engine`` (or $DUPLEXLAMBDA_CONTAINER_ENGINE), else
    the first of docker and podman that has the image. LookupError says why there is none."""
    import json
    import shlex
    import shutil

    from .supervisor import ContainerImage

    command = engine or os.environ.get(ENGINE_ENV)
    if command:
        engines = [tuple(shlex.split(command))]
    else:
        engines = [(name,) for name in ("docker", "podman") if shutil.which(name)]
        if not engines:
            raise LookupError(
                "--image needs a container engine: install Docker or podman, or name one"
                f" with --engine (or ${ENGINE_ENV})"
            )
    why = []
    for argv in engines:
        found, out = _inspect(argv, image)
        if found:
            cmd = json.loads(out or "null") or []
            if handler is None and not cmd:
                raise LookupError(f"image {image!r} has no CMD: give the HANDLER to run")
            return ContainerImage(argv, image, handler), handler or cmd[0]
        why.append(f"{shlex.join(argv)}: {out}")
    raise LookupError(
        f"no image {image!r} here ({'; '.join(why)}); build it first, e.g."
        f" {engines[0][0]} build -f examples/Dockerfile -t {image} ."
    )


def _inspect(engine: tuple[str, ...], image: str) -> tuple[bool, str]:
    """(True, the image's CMD as JSON), or (False, why not in one line)."""
    import subprocess

    argv = [*engine, "image", "inspect", "--format", "{{json .Config.Cmd}}", image]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if result.returncode != 0:
        return False, (result.stderr.strip().splitlines() or ["(no output)"])[-1]
    return True, result.stdout.strip()


def handler_problem(spec: str, task_root: str) -> str | None:
    """Why ``spec`` cannot be served from ``task_root``, found before anything starts (the
    runtime would only fail its init, again and again); None when its module is there.
    The module is located, not imported: user code runs in the runtime, not here."""
    import importlib.util

    from duplexlambda.handler import HandlerInitError, split_handler

    try:
        module, _ = split_handler(spec)
    except HandlerInitError:
        return f"bad handler {spec!r}: expected module.function, e.g. examples.echo.handler"
    sys.path.insert(0, task_root)
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent package is missing or broken
        found = None
    finally:
        sys.path.remove(task_root)
    if found is None:
        return f"no module {module!r} in {task_root} (the --task-root) for handler {spec!r}"
    return None


def _run(main: Coroutine[Any, Any, int]) -> int:
    import asyncio

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def banner(emulator: Emulator, supervised: bool) -> str:
    """What ``serve`` prints once it listens: where everything is, and how to try it."""
    config = emulator.config
    spec = config.front_spec
    invoke = f"{emulator.url}2015-03-31/functions/{config.function_name}/invocations"
    runtime_note = "" if supervised else "  (start your runtime with this)"
    front = ""
    if config.front != "function-url":
        front = f"front {config.front} ({spec.title}), "
        if config.front_timeout is not None:
            front += f"integration timeout {config.front_timeout:g} s, "
    url = emulator.front_url
    label = f"{spec.label}:".ljust(14)
    inspector = [f"  Inspector:    {emulator.inspector_url}"] if config.inspector else []
    return "\n".join(
        [
            f"duplexlambda emulator: {front}mode {config.mode}, timeout {config.timeout:g} s",
            f"  {label}{url}",
            f"  Invoke API:   {invoke}",
            f"  Runtime API:  AWS_LAMBDA_RUNTIME_API={emulator.runtime_api}{runtime_note}",
            *inspector,
            "Try:",
            f"  curl -N --data-binary 'hello' {url}",
            f"  curl -d '{{}}' {invoke}",
        ]
    )


async def _serve(config: EmulatorConfig, args: argparse.Namespace) -> int:
    from .app import Emulator
    from .supervisor import Supervisor, runtime_command

    emulator = Emulator(config)
    try:
        await emulator.start()
    except OSError as exc:
        print(
            f"duplexlambda serve: cannot listen on {config.host}: {exc} (choose other ports"
            " with --port / --runtime-api-port, or 0 for free ones)",
            file=sys.stderr,
        )
        return 1
    import asyncio

    supervisor = None
    watcher: asyncio.Task[None] | None = None
    # Before the banner: whoever reads it may send SIGTERM at once, and must get a clean
    # stop (the runtime child, in its own session, stopped too), not the default death.
    stop = _stop_on_signal()
    try:
        if getattr(args, "container", None) is not None:
            supervisor = Supervisor(
                emulator,
                args.handler,
                [],
                args.task_root,
                image=args.container,
                function_env=args.function_env,
            )
        elif not args.no_runtime:
            command = runtime_command(args.handler, args.runtime_cmd)
            supervisor = Supervisor(
                emulator, args.handler, command, args.task_root, function_env=args.function_env
            )
        print(banner(emulator, supervisor is not None), flush=True)
        if supervisor is not None:
            await supervisor.start()
            if args.reload:
                from .reload import watch

                watcher = asyncio.get_running_loop().create_task(
                    watch(args.task_root, supervisor, stop)
                )
        await stop.wait()
        log.info("stopping")
    finally:
        _restore_signals()
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if supervisor is not None:
            await supervisor.stop()
        await emulator.close()
    return 0


def run_template(args: argparse.Namespace) -> int:
    """``duplexlambda serve --template FILE``: each function of a SAM template served."""
    if args.handler or args.image or args.no_runtime:
        print(
            "duplexlambda serve: --template takes no HANDLER, --image or --no-runtime",
            file=sys.stderr,
        )
        return 2
    _configure_logging()
    from .config import EmulatorConfig
    from .template import SAM_STAGE, TemplateError, front_name, load_template

    try:
        template = load_template(args.template)
        configs = []
        for function in template.functions:
            if problem := handler_problem(function.handler, function.code_dir):
                raise TemplateError(f"{function.logical_id}: {problem}")
            configs.append(
                EmulatorConfig(
                    host=args.host,
                    port=0,
                    runtime_api_port=0,
                    mode=args.mode,
                    timeout=function.timeout,
                    concurrency=args.concurrency,
                    response_limit=args.response_limit,
                    throttle=args.throttle,
                    function_name=function.logical_id,
                    memory_size=function.memory_size,
                    front=front_name(function),
                    stage=SAM_STAGE,
                    integration_timeout=args.integration_timeout,
                )
            )
    except (TemplateError, ValueError) as exc:
        print(f"duplexlambda serve: {exc}", file=sys.stderr)
        return 2
    return _run(_serve_template(template, configs, args))


async def _serve_template(
    template: Any, configs: list[EmulatorConfig], args: argparse.Namespace
) -> int:
    from .app import Emulator
    from .config import FRONTS
    from .front import Front
    from .server import HttpServer
    from .supervisor import Supervisor, runtime_command
    from .template import Served, TemplateFront, banner

    served = []
    for function, config in zip(template.functions, configs, strict=True):
        emulator = Emulator(config, front=False)
        url = None
        if function.url_mode is not None:
            url = Front(emulator.hub, FRONTS[config.front])
        served.append(
            Served(
                function,
                emulator,
                url,
                Front(emulator.hub, FRONTS["http-api"]),
                Front(emulator.hub, FRONTS["rest"]),
            )
        )
    server = HttpServer(TemplateFront(served), "template front", half_close=True)
    started: list[Emulator] = []
    supervisors: list[Supervisor] = []
    stop = _stop_on_signal()
    try:
        try:
            for s in served:
                await s.emulator.start()
                started.append(s.emulator)
            await server.start(args.host, args.port)
        except OSError as exc:
            print(
                f"duplexlambda serve: cannot listen on {args.host}: {exc} (choose another"
                " --port, or 0 for a free one)",
                file=sys.stderr,
            )
            return 1
        host, port = server.address
        host = f"[{host}]" if ":" in host else host
        for s in served:
            fn = s.function
            command = runtime_command(fn.handler, args.runtime_cmd)
            supervisors.append(
                Supervisor(
                    s.emulator, fn.handler, command, fn.code_dir, function_env=fn.environment
                )
            )
        print(banner(template, served, f"http://{host}:{port}/", args.mode), flush=True)
        for supervisor in supervisors:
            await supervisor.start()
        await stop.wait()
        log.info("stopping")
    finally:
        _restore_signals()
        for supervisor in supervisors:
            await supervisor.stop()
        await server.close()
        for emulator in started:
            await emulator.close()
    return 0


def _stop_on_signal() -> asyncio.Event:
    """An event set by SIGINT (Ctrl-C) or SIGTERM."""
    import asyncio

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _restore_signals() -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


__all__ = ["add_serve_parser", "banner", "run_serve"]
