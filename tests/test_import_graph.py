"""The package's import graph, read from the source with ``ast``: layers import downwards only,
and nothing inside ``optimizer/`` or ``solvers/`` imports in a circle (module level or inside a
function). Imports under ``if TYPE_CHECKING:`` are annotations only and never run, so they are
left out; imports through ``importlib`` by name (the lazy registries) are not edges either."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "marginopt"

# Lowest first: a module may import its own layer and those below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("marginopt.errors", "marginopt.typing", "marginopt.json_values", "marginopt.lazy"),
    ("marginopt.models", "marginopt.formats", "marginopt.presets"),
    ("marginopt.solvers",),
    ("marginopt.health",),  # equity, market moves and distances: below the optimizer, whose stress-safe plans use them
    ("marginopt.optimizer",),
    ("marginopt.history",),  # the run history stores what the layers below computed (their JSON), for the ones above
    ("marginopt.reports", "marginopt.batch", "marginopt.service", "marginopt.cli", "marginopt.__main__", "marginopt"),
)
# Inside optimizer/: lower to upper (the backends read the description, the API runs the backends).
OPTIMIZER_LAYERS: tuple[tuple[str, ...], ...] = (
    ("choice", "objectives", "description", "safety", "verify", "executability", "result", "attribution"),
    ("backends.base",),
    ("backends.cvxpy_program", "backends.direct_lp", "backends.scenario_route", "backends.lot_search", "backends.in_program",
     "backends.lot_dive"),
    ("backends.generation", "backends.integer_route", "backends.ticket_cap"),
    ("backends",),
    ("problem",),
    ("api",),
    ("",),  # the package's __init__
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("marginopt"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.startswith("marginopt"):
                for a in node.names:
                    full = f"{base}.{a.name}"
                    out.add(full if full in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(name)
    return out


GRAPH = {name: _imports(name, path, set(_modules())) for name, path in _modules().items()}


def _layer(name: str, layers: tuple[tuple[str, ...], ...], prefix: str = "") -> int | None:
    best: tuple[int, int] | None = None  # (length of the matching prefix, layer)
    for k, group in enumerate(layers):
        for entry in group:
            full = f"{prefix}{entry}".rstrip(".")
            if name == full or name.startswith(full + ".") or (full == "marginopt" and name == "marginopt"):
                if best is None or len(full) > best[0]:
                    best = (len(full), k)
    return None if best is None else best[1]


def test_every_module_has_a_layer() -> None:
    assert [m for m in GRAPH if _layer(m, LAYERS) is None] == []


@pytest.mark.parametrize(("layers", "prefix"), [(LAYERS, ""), (OPTIMIZER_LAYERS, "marginopt.optimizer.")])
def test_no_import_from_a_lower_layer_up(layers: tuple[tuple[str, ...], ...], prefix: str) -> None:
    upward = []
    for module, targets in GRAPH.items():
        if not module.startswith(prefix.rstrip(".")):
            continue
        mine = _layer(module, layers, prefix)
        for target in targets:
            theirs = _layer(target, layers, prefix)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} -> {target}")
    assert upward == []


def _cycles(nodes: set[str]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in nodes:
                continue
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            connect(v)
    return out


@pytest.mark.parametrize("package", ["marginopt.optimizer", "marginopt.solvers"])
def test_no_import_circle(package: str) -> None:
    assert _cycles({m for m in GRAPH if m == package or m.startswith(package + ".")}) == []


def test_the_graph_is_read() -> None:
    """The reader sees real edges (a test that found nothing would pass on an empty graph)."""
    assert "marginopt.optimizer.description" in GRAPH["marginopt.optimizer.backends.cvxpy_program"]
    assert "marginopt.solvers.run" in GRAPH["marginopt.optimizer.backends.cvxpy_program"]
    assert "marginopt.optimizer.backends.base" not in GRAPH["marginopt.optimizer.description"]
