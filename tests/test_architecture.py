"""The package's import structure, read from its source: no import cycle, no private name used
outside its module, and every public name with one import path (the module that defines it, or
the two lazy facades ``napari_srcnn`` and ``napari_srcnn.engine``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = ROOT / "napari_srcnn"
FACADES = {"napari_srcnn", "napari_srcnn.engine"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _defined(module: str) -> set[str]:
    """Names a module binds at its top level by definition (not by import)."""
    names: set[str] = set()
    for node in TREES[module].body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _facade_names(module: str) -> set[str]:
    """The names a facade serves lazily: the keys of its ``_LAZY`` table."""
    for node in TREES[module].body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets):
                value = ast.literal_eval(node.value)
                return set(value)
    return set()


def _imports(module: str):
    """(line, target module, imported name or None) for every import of the package's own
    modules, at any depth (function-level and TYPE_CHECKING imports included)."""
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "napari_srcnn":
                    yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, node)
            if target.split(".")[0] != "napari_srcnn":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    yield node.lineno, sub, None
                else:
                    yield node.lineno, target, alias.name


def _graph() -> dict[str, set[str]]:
    return {
        m: {t for _, t, _ in _imports(m) if t in MODULES and t != m and t not in FACADES}
        for m in MODULES
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_the_whole_package():
    """A check that finds nothing because it reads nothing would pass: it reads every module,
    and the known edges are there."""
    assert len(MODULES) > 40 and "napari_srcnn.engine.training" in MODULES
    graph = _graph()
    assert "napari_srcnn.engine.model" in graph["napari_srcnn.engine.training"]
    assert "napari_srcnn.engine.inference" in graph["napari_srcnn.cli.upscale"]


def test_no_import_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_private_name_is_imported_from_another_module():
    private = [
        f"{m}:{line} imports {name} from {target}"
        for m in MODULES
        for line, target, name in _imports(m)
        if name is not None and name.startswith("_") and not name.startswith("__")
    ]
    assert private == []


def test_every_import_names_the_module_that_defines_the_name():
    """One import path per public name: ``from X import name`` only where X defines name (or is a
    facade serving it), so no module re-exports what it imports."""
    wrong = []
    for m in MODULES:
        for line, target, name in _imports(m):
            if name is None or target not in MODULES:
                continue
            served = _facade_names(target) if target in FACADES else set()
            if name not in _defined(target) and name not in served:
                wrong.append(f"{m}:{line} takes {name} from {target}")
    assert wrong == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in FACADES))
def test_all_lists_only_names_the_module_defines(module):
    names = []
    for node in TREES[module].body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names = ast.literal_eval(node.value)
    assert sorted(set(names) - _defined(module)) == []


def _lazy_table(module: str) -> dict[str, str]:
    for node in TREES[module].body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets):
                return ast.literal_eval(node.value)
    return {}


def test_the_engine_api_points_at_the_defining_modules():
    """``napari_srcnn.engine`` serves each public name from the module that defines it, and the
    root package serves its names from ``napari_srcnn.engine``."""
    table = _lazy_table("napari_srcnn.engine")
    assert {"upscale", "Upscaler", "UpscaleOptions", "train", "TrainConfig", "load_model"} <= set(
        table
    )
    assert {n: m for n, m in table.items() if n not in _defined(m)} == {}
    root = _lazy_table("napari_srcnn")
    assert set(root.values()) == {"napari_srcnn.engine"} and set(root) <= set(table)


def test_the_engine_api_resolves_and_stays_lazy():
    """Every name of the API resolves to the defining module's object; importing the package
    (and the root) imports no torch until a name is used."""
    import subprocess
    import sys

    code = (
        "import sys, napari_srcnn, napari_srcnn.engine as e; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "import importlib; "
        "bad = [n for n, m in e._LAZY.items() "
        "if getattr(e, n) is not getattr(importlib.import_module(m), n)]; "
        "assert not bad, bad; "
        "assert napari_srcnn.upscale is e.upscale; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
