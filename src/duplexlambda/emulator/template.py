"""``duplexlambda serve --template template.yaml``: every ``AWS::Serverless::Function`` of a
SAM template, served locally without Docker.

``load_template`` reads what the emulator needs of each function (handler, code directory,
environment, timeout, memory, function URL, HttpApi and Api routes); ``TemplateFront`` is
the one front port they share: it routes each request by path to one function's
``Emulator`` (each with its own Runtime API and runtime child):

- ``/lambda-url/<LogicalId>/...``: the function's URL (its InvokeMode: streamed or buffered);
- ``/2015-03-31/functions/<LogicalId>/invocations``: the Invoke API;
- an HttpApi event's ``METHOD /path/{param}``: the HTTP API front (payload 2.0);
- ``/{stage}`` + an Api event's path: the REST API front (1.0 event, SAM's stage ``Prod``);
- anything else: 404 ``{"message":"Not Found"}``, as API Gateway answers.

PyYAML is needed (``pip install 'duplexlambda[template]'``); only ``serve --template``
imports it.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from duplexlambda.events.build import RouteMatch

if TYPE_CHECKING:
    from .app import Emulator
    from .config import FrontName
    from .front import Front
    from .server import Request, Response

log = logging.getLogger("duplexlambda.emulator")

#: SAM's stage for the implicit REST API (``ServerlessRestApi``).
SAM_STAGE = "Prod"
#: Lambda's defaults where neither the function nor ``Globals`` says.
DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY = 128
FUNCTION_TYPE = "AWS::Serverless::Function"
_NOT_FOUND = b'{"message":"Not Found"}'


class TemplateError(Exception):
    """The template cannot be served (the message says why)."""


@dataclass(frozen=True)
class Route:
    """One HttpApi or Api event of a function: ``METHOD path`` (``ANY``: every method)."""

    method: str
    path: str
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    @classmethod
    def of(cls, method: str, path: str) -> Route:
        return cls(method.upper(), path, _path_pattern(path))

    @property
    def key(self) -> str:
        """The HTTP API ``routeKey`` (``"GET /items/{id}"``; ``$default`` for the catch-all)."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def rank(self) -> tuple[int, int, int]:
        """Sort key: the most specific route first (as API Gateway picks), ``$default`` last."""
        if self.path == "$default":
            return (2, 0, 0)
        greedy = int("+}" in self.path)
        return (greedy, self.path.count("{"), -len(self.path))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if ``method path`` is this route's (``{}`` for none)."""
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


def _path_pattern(path: str) -> re.Pattern[str]:
    if path == "$default":
        return re.compile(r"/.*")
    parts = []
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{") and piece.endswith("+}"):
            parts.append(f"(?P<{_group(piece[1:-2])}>.+)")
        elif piece.startswith("{") and piece.endswith("}"):
            parts.append(f"(?P<{_group(piece[1:-1])}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


def _group(name: str) -> str:
    if not name.isidentifier():
        raise TemplateError(f"path parameter {{{name}}} is not supported here")
    return name


@dataclass
class TemplateFunction:
    """What ``serve --template`` needs of one ``AWS::Serverless::Function``."""

    logical_id: str
    handler: str
    code_dir: str
    runtime: str
    environment: dict[str, str]
    timeout: float
    memory_size: int
    #: the function URL's InvokeMode (``BUFFERED`` / ``RESPONSE_STREAM``); None: no URL
    url_mode: str | None
    http_routes: list[Route]
    rest_routes: list[Route]


@dataclass
class Template:
    """The servable functions of a template, and why others were skipped."""

    path: str
    functions: list[TemplateFunction]
    skipped: list[str]
    warnings: list[str]


def cfn_loader() -> Any:
    """A PyYAML loader that reads CloudFormation's short tags (also used by the tests)."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - the [template] extra
        raise TemplateError(
            "serve --template needs PyYAML: pip install 'duplexlambda[template]'"
        ) from exc

    class CfnLoader(yaml.SafeLoader):
        """``!Ref x`` as ``{"Ref": x}``, ``!GetAtt a.b`` as ``{"Fn::GetAtt": [a, b]}``,
        any other ``!Fn`` as ``{"Fn::Fn": ...}``."""

    def tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            assert isinstance(node, yaml.MappingNode)
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    CfnLoader.add_multi_constructor("!", tag)
    return CfnLoader


class _Resolver:
    """Intrinsics, resolved where simple: ``Ref`` to a parameter with a ``Default``, and
    ``Fn::Sub`` of such parameters; anything else is left as its literal text, with one
    warning for each."""

    def __init__(self, parameters: dict[str, Any], warnings: list[str]) -> None:
        self._defaults = {
            name: str(spec["Default"])
            for name, spec in parameters.items()
            if isinstance(spec, dict) and "Default" in spec
        }
        self._warnings = warnings

    def __call__(self, value: Any, where: str) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and isinstance(arg, str) and arg in self._defaults:
                return self._defaults[arg]
            if key == "Fn::Sub" and isinstance(arg, str):
                names = re.findall(r"\$\{([^}!]+)\}", arg)
                if all(name in self._defaults for name in names):
                    return re.sub(r"\$\{([^}!]+)\}", lambda m: self._defaults[m[1]], arg)
            if key == "Ref" or key.startswith("Fn::"):
                literal = f"!{key.removeprefix('Fn::')} {_text(arg)}"
                self.warn(f"{where}: {literal} left as is (not resolved locally)")
                return literal
        return value

    def warn(self, warning: str) -> None:
        """Log ``warning`` (once)."""
        if warning not in self._warnings:
            self._warnings.append(warning)
            log.warning("template: %s", warning)


def _text(arg: Any) -> str:
    if isinstance(arg, list):
        return ".".join(str(a) for a in arg)
    return str(arg)


def load_template(path: str) -> Template:
    """The functions of the SAM template at ``path`` that can be served here.

    Raises:
        TemplateError: unreadable, no functions at all, or none that can be served here.
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    loader = cfn_loader()  # first: a clear error without PyYAML
    import yaml

    try:
        document = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path} is not YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources")
    warnings: list[str] = []
    resolve = _Resolver(document.get("Parameters") or {}, warnings)
    globals_ = (document.get("Globals") or {}).get("Function") or {}
    base = os.path.dirname(os.path.abspath(path))
    functions, skipped = [], []
    for logical_id, resource in document["Resources"].items():
        if not isinstance(resource, dict) or resource.get("Type") != FUNCTION_TYPE:
            continue
        props = resource.get("Properties") or {}
        why = _unservable(props, globals_, resource)
        if why is None:
            function = _function(logical_id, props, globals_, base, resolve)
            if isinstance(function, str):
                why = function
            else:
                functions.append(function)
                continue
        skipped.append(f"{logical_id}: {why}")
        log.warning("template: skipping %s: %s", logical_id, why)
    if not functions:
        if not skipped:
            raise TemplateError(f"{path} has no {FUNCTION_TYPE}")
        raise TemplateError(f"no function of {path} can be served here: {'; '.join(skipped)}")
    return Template(path, functions, skipped, warnings)


def _unservable(props: dict[str, Any], globals_: dict[str, Any], resource: Any) -> str | None:
    if (
        props.get("PackageType") == "Image"
        or "ImageUri" in props
        or "ImageUri" in globals_
        or "Dockerfile" in (resource.get("Metadata") or {})
    ):
        return "an image function: serve it with --image IMAGE HANDLER"
    runtime = str(props.get("Runtime", globals_.get("Runtime", "")))
    if not (runtime.startswith(("provided", "python3")) or not runtime):
        return f"Runtime {runtime} is not served by this runtime (provided.* or python3.x)"
    return None


def _function(
    logical_id: str,
    props: dict[str, Any],
    globals_: dict[str, Any],
    base: str,
    resolve: _Resolver,
) -> TemplateFunction | str:
    """The function, or why it cannot be served."""

    def prop(name: str, default: Any = None) -> Any:
        value = props.get(name, globals_.get(name, default))
        return resolve(value, f"{logical_id}.{name}")

    handler = prop("Handler")
    if not isinstance(handler, str) or not handler:
        return "no Handler"
    code_uri = prop("CodeUri", ".")
    if not isinstance(code_uri, str):
        return f"CodeUri {code_uri!r} is not a local directory"
    code_dir = os.path.normpath(os.path.join(base, code_uri))
    if os.path.isfile(code_dir) and zipfile.is_zipfile(code_dir):
        code_dir = _unzipped(code_dir)
    elif not os.path.isdir(code_dir):
        return f"CodeUri {code_uri} is neither a directory nor a zip file here"
    environment: dict[str, str] = {}
    for source in (globals_, props):
        variables = ((source.get("Environment") or {}).get("Variables")) or {}
        for name, value in variables.items():
            resolved = resolve(value, f"{logical_id}.Environment.{name}")
            environment[str(name)] = _scalar(resolved)
    url = props.get("FunctionUrlConfig", globals_.get("FunctionUrlConfig"))
    url_mode = None
    if isinstance(url, dict):
        url_mode = str(url.get("InvokeMode", "BUFFERED")).upper()
    http_routes, rest_routes = [], []
    for event in (props.get("Events") or {}).values():
        if not isinstance(event, dict):
            continue
        kind = event.get("Type")
        params = event.get("Properties") or {}
        if kind == "HttpApi":
            version = str(params.get("PayloadFormatVersion", "2.0"))
            if version != "2.0":
                resolve.warn(
                    f"{logical_id}: HttpApi PayloadFormatVersion {version} is served as 2.0"
                )
            if "Path" in params or "Method" in params:
                route = Route.of(str(params.get("Method", "ANY")), str(params.get("Path", "/")))
            else:
                route = Route.of("ANY", "$default")
            http_routes.append(route)
        elif kind == "Api":
            rest_routes.append(
                Route.of(str(params.get("Method", "ANY")), str(params.get("Path", "/")))
            )
    return TemplateFunction(
        logical_id=logical_id,
        handler=handler,
        code_dir=code_dir,
        runtime=str(prop("Runtime", "")),
        environment=environment,
        timeout=float(prop("Timeout", DEFAULT_TIMEOUT)),
        memory_size=int(prop("MemorySize", DEFAULT_MEMORY)),
        url_mode=url_mode,
        http_routes=http_routes,
        rest_routes=rest_routes,
    )


def _unzipped(archive: str) -> str:
    """A zip ``CodeUri`` (``duplexlambda package``'s function.zip), extracted as Lambda
    does, into a directory removed when the process exits."""
    target = tempfile.mkdtemp(prefix="duplexlambda-code-")
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(target)
    return target


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Served:
    """One function being served: its template entry, its emulator and its fronts."""

    function: TemplateFunction
    emulator: Emulator
    url: Front | None
    http_api: Front
    rest: Front


class TemplateFront:
    """The shared front port's app: routes each request to one function (module doc)."""

    def __init__(self, served: list[Served], stage: str = SAM_STAGE) -> None:
        self._by_id = {s.function.logical_id: s for s in served}
        self._stage = stage
        self._http = sorted(
            ((route, s) for s in served for route in s.function.http_routes),
            key=lambda pair: pair[0].rank,
        )
        self._rest = sorted(
            ((route, s) for s in served for route in s.function.rest_routes),
            key=lambda pair: pair[0].rank,
        )

    async def __call__(self, request: Request, response: Response) -> None:
        from . import invoke_api
        from .inspection import PREFIX

        if request.path.startswith(PREFIX) or request.path == PREFIX[:-1]:
            # Reserved, never a function's; the inspector does not serve --template yet.
            await response.send(404, [("Content-Type", "text/plain")], b"Not Found\n")
            return
        if (call := invoke_api.match(request.path)) is not None:
            served = self._by_id.get(function_id(call.function_name))
            if served is None:
                await invoke_api._aws_error(
                    response,
                    404,
                    "ResourceNotFoundException",
                    f"Function not found: {call.function_name}",
                )
                return
            await invoke_api.handle(served.emulator.hub, call, request, response)
            return
        if found := re.fullmatch(r"/lambda-url/([^/]+)(/.*)?", request.path):
            served = self._by_id.get(found[1])
            if served is not None and served.url is not None:
                request.path = found[2] or "/"
                await served.url.function_url(request, response)
                return
        for route, served in self._http:
            parameters = route.match(request.method, request.path)
            if parameters is not None:
                match = RouteMatch(route.key, route.path, parameters or None)
                await served.http_api.proxy(request, response, match)
                return
        prefix = f"/{self._stage}"
        if request.path == prefix or request.path.startswith(prefix + "/"):
            below = request.path[len(prefix) :] or "/"
            for route, served in self._rest:
                parameters = route.match(request.method, below)
                if parameters is not None:
                    match = RouteMatch(route.key, route.path, parameters or None)
                    await served.rest.proxy(request, response, match)
                    return
        await request.body.discard(1024 * 1024)
        await response.send(404, [("Content-Type", "application/json")], _NOT_FOUND)


def function_id(name: str) -> str:
    """The logical id an Invoke API call names: ``StreamFn``, ``StreamFn:$LATEST`` or
    ``arn:aws:lambda:REGION:ACCOUNT:function:StreamFn[:QUALIFIER]``."""
    name = unquote(name)
    if name.startswith("arn:"):
        parts = name.split(":")
        return parts[6] if len(parts) > 6 else name
    return name.partition(":")[0]


def front_name(function: TemplateFunction) -> FrontName:
    """The ``EmulatorConfig.front`` of a function: what its runtime is told to stream
    (``DUPLEXLAMBDA_STREAMING``): a streaming URL's answers, else none."""
    if function.url_mode == "RESPONSE_STREAM":
        return "function-url"
    return "function-url-buffered"


def banner(template: Template, served: list[Served], base_url: str, mode: str) -> str:
    """What ``serve --template`` prints once it listens: each function, its URL and routes."""
    count = len(served)
    lines = [
        f"duplexlambda emulator: template {template.path}, {count} function"
        f"{'s' if count != 1 else ''}, mode {mode}"
    ]
    root = base_url.rstrip("/")
    for s in served:
        fn = s.function
        lines.append(
            f"  {fn.logical_id}: {fn.handler} in {fn.code_dir}"
            f" (timeout {fn.timeout:g} s, {fn.memory_size} MB)"
        )
        if fn.url_mode is not None:
            lines.append(f"    Function URL: {root}/lambda-url/{fn.logical_id}/  ({fn.url_mode})")
        for route in fn.http_routes:
            where = f"{root}/ (any path)" if route.path == "$default" else f"{root}{route.path}"
            lines.append(f"    HTTP API:     {route.method} {where}")
        for route in fn.rest_routes:
            lines.append(f"    REST API:     {route.method} {root}/{SAM_STAGE}{route.path}")
        lines.append(f"    Invoke API:   {root}/2015-03-31/functions/{fn.logical_id}/invocations")
        lines.append(f"    Runtime API:  AWS_LAMBDA_RUNTIME_API={s.emulator.runtime_api}")
    for skipped in template.skipped:
        lines.append(f"  skipped {skipped}")
    return "\n".join(lines)


__all__ = [
    "Route",
    "Template",
    "TemplateError",
    "TemplateFront",
    "TemplateFunction",
    "load_template",
]
