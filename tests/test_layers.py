"""Which way imports go (docs/architecture.md#imports), checked on the source of every module.

Every ``import`` counts, module-level or inside a function: a lazy import still couples the
layers. ``tests/test_package.py`` checks the other half (what a fresh interpreter loads).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "duplexlambda"

#: layer -> prefixes of the package's own modules it may import (besides itself)
ALLOWED: dict[str, tuple[str, ...]] = {
    "duplexlambda.protocol": ("duplexlambda.errors", "duplexlambda._chunked_cffi", "duplexlambda"),
    "duplexlambda.events": ("duplexlambda.errors", "duplexlambda.protocol"),
    "duplexlambda.runtime": (
        "duplexlambda.events",
        "duplexlambda.protocol",
        "duplexlambda.errors",
        "duplexlambda.context",
        "duplexlambda.handler",
    ),
    "duplexlambda.emulator": (
        "duplexlambda.events",
        "duplexlambda.protocol",
        "duplexlambda.errors",
        "duplexlambda.handler",  # `serve` checks the handler string before starting a runtime
    ),
    "duplexlambda.asgi": (
        "duplexlambda.events",
        "duplexlambda.runtime.request",
        "duplexlambda.runtime.response",
        "duplexlambda.streams",
        "duplexlambda.handler",
        "duplexlambda.context",
        "duplexlambda.errors",
    ),
    "duplexlambda.wsgi": (
        "duplexlambda.events",
        "duplexlambda.runtime.request",
        "duplexlambda.runtime.response",
        "duplexlambda.streams",
        "duplexlambda.asgi",
        "duplexlambda.handler",
        "duplexlambda.context",
        "duplexlambda.errors",
    ),
    "duplexlambda.pipeline": (
        "duplexlambda.errors",
        "duplexlambda.sse",
        "duplexlambda.streams",
        "duplexlambda.protocol._types",
    ),
    "duplexlambda.sse": ("duplexlambda.errors",),
    "duplexlambda.handler": ("duplexlambda.errors",),
    "duplexlambda.context": ("duplexlambda.errors", "duplexlambda.protocol"),
    "duplexlambda.errors": (),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """The package's own modules that ``path`` imports, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
    return {m for m in found if m == "duplexlambda" or m.startswith("duplexlambda.")}


def layer_of(module: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_follow_the_layers(path: Path) -> None:
    module = module_name(path)
    layer = layer_of(module)
    if layer is None:  # testing/, __main__, package.py, streams.py: may import anything
        return
    allowed = (layer, *ALLOWED[layer])
    wrong = sorted(
        m
        for m in imported(path)
        # ``duplexlambda`` itself (for __version__) is allowed only where listed
        if not any(within(m, p) if p != "duplexlambda" else m == p for p in allowed)
    )
    assert not wrong, f"{module} imports {wrong}: see docs/architecture.md#imports"


def test_the_layers_exist() -> None:
    """A rename must update the table above, not silently escape it."""
    names = {module_name(p) for p in MODULES}
    for layer in ALLOWED:
        assert layer in names, layer
    for package in ("runtime", "emulator", "protocol"):
        assert (PACKAGE / package / "__init__.py").exists()


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    source = PACKAGE / "protocol" / "http1.py"
    assert "duplexlambda.errors" in imported(source)
    assert "duplexlambda.protocol.chunked" in imported(source)  # a relative import
    start = PACKAGE / "runtime" / "start.py"
    assert "duplexlambda.runtime.logs" in imported(start)  # imported inside run()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_only_testing_and_the_cli_join_runtime_and_emulator(path: Path) -> None:
    module = module_name(path)
    if within(module, "duplexlambda.testing") or module in (
        "duplexlambda.__main__",
        "duplexlambda.pytest_plugin",
    ):
        return
    mods = imported(path)
    both = any(within(m, "duplexlambda.runtime") for m in mods) and any(
        within(m, "duplexlambda.emulator") for m in mods
    )
    assert not both, f"{module} imports both runtime/ and emulator/"
