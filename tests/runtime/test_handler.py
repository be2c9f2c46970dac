"""Handler strings, styles and init errors (awslambdaric's conventions)."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from duplexlambda import handler as h
from duplexlambda.handler import Style


@pytest.fixture
def task_root(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(
        "async def duplex(req, res): pass\n"
        "def classic(event, context): return 1\n"
        "async def streamer(event, res, context): pass\n"
        "class Holder:\n    async def method(self, req, res): pass\n"
        "holder = Holder()\n"
        "NOT_CALLABLE = 3\n"
    )
    (tmp_path / "broken_syntax.py").write_text("def oops(:\n")
    (tmp_path / "imports_missing.py").write_text("import no_such_dependency_xyz\n")
    yield tmp_path
    for name in list(sys.modules):
        if name.split(".")[0] in ("pkg", "broken_syntax", "imports_missing"):
            del sys.modules[name]
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app.handler", ("app", "handler")),
        ("pkg/mod.handler", ("pkg.mod", "handler")),
        ("pkg.mod.handler", ("pkg.mod", "handler")),
        ("pkg.mod:handler", ("pkg.mod", "handler")),
        ("pkg.mod:obj.method", ("pkg.mod", "obj.method")),
    ],
)
def test_split_handler(spec: str, expected: tuple[str, str]) -> None:
    assert h.split_handler(spec) == expected


@pytest.mark.parametrize("spec", ["handler", ".handler", "mod.", ":f", "m:"])
def test_malformed_handler(spec: str) -> None:
    with pytest.raises(h.MalformedHandlerName, match="Bad handler"):
        h.split_handler(spec)


@pytest.mark.parametrize(
    ("spec", "style"),
    [
        ("pkg.mod.duplex", Style.DUPLEX),
        ("pkg/mod.classic", Style.BUFFERED),
        ("pkg.mod:streamer", Style.STREAMING),
        ("pkg.mod:holder.method", Style.DUPLEX),
    ],
)
def test_load_and_style(task_root: pathlib.Path, spec: str, style: Style) -> None:
    func = h.load_handler(spec, str(task_root))
    assert sys.path[0] == str(task_root)
    assert h.style_of(func) is style


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("no_such_mod_abc.handler", h.ImportModuleError, "Unable to import module"),
        ("imports_missing.handler", h.ImportModuleError, "no_such_dependency_xyz"),
        ("broken_syntax.handler", h.UserCodeSyntaxError, "Syntax error"),
        ("pkg.mod.missing", h.HandlerNotFound, "Handler 'missing' missing on module 'pkg.mod'"),
        ("pkg.mod.NOT_CALLABLE", h.HandlerNotFound, "not callable"),
    ],
)
def test_init_errors(
    task_root: pathlib.Path, spec: str, error: type[h.HandlerInitError], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        h.load_handler(spec, str(task_root))
    assert info.value.error_type.startswith("Runtime.")


def test_marks_override_the_signature() -> None:
    @h.buffered
    async def buffered_async(event: Any, context: Any) -> Any:
        return event

    @h.streaming
    async def marked(event: Any, res: Any, context: Any) -> None:
        return None

    async def default_arg(req: Any, res: Any, extra: int = 1) -> None:
        return None

    assert h.style_of(buffered_async) is Style.BUFFERED
    assert h.style_of(marked) is Style.STREAMING
    assert h.style_of(default_arg) is Style.DUPLEX


@pytest.mark.parametrize(
    "func",
    [
        lambda: None,
        lambda a: None,
        lambda a, b, c: None,  # a sync 3-arg function is no known style
    ],
)
def test_bad_signatures(func: Any) -> None:
    with pytest.raises(h.BadHandlerSignature):
        h.style_of(func)
