"""The package layout: layers import downwards only, and nothing imports in a circle.

Imports are read with :mod:`ast` from every module under ``lrfit/`` and
``data_adapters/`` (nothing is imported).  Module-level imports are the dependency
graph; imports inside functions (lazy loading) may go down the layers but not up, and
none may close a cycle inside ``data_adapters``.  ``if TYPE_CHECKING:`` blocks are
annotations, not dependencies.

The layer order, lowest first (a module may import its own component and any component
of a lower layer; components of one layer are independent of each other)::

    data_adapters                 never imports lrfit
    errors | seeding | threads | jsonable
    models | tasks
    fitting
    analysis                      pure functions on networks and data
    config                        lrfit.runs.config(_params): fit configs and the estimator's keys
    layout                        lrfit.runs.layout: run directories, their files and readers
    plotting | teachers           figures (draw what they are given); teacher networks (train, record)
    runs                          the rest of lrfit.runs: data, fit, metrics, sweep, run, analyze,
                                  inactivate, export, groups, compare, report
    commands                      the command line
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lrfit", "data_adapters")

#: Layers, lowest first: component name -> module prefixes.  ``lrfit`` itself (the lazy
#: facade of ``lrfit/__init__.py``) sits above every layer.
LAYERS: list[dict[str, tuple[str, ...]]] = [
    {"errors": ("lrfit.errors",), "seeding": ("lrfit.seeding",), "threads": ("lrfit.threads", "lrfit.pages"),
     "jsonable": ("lrfit.jsonable",)},
    {"models": ("lrfit.models",), "tasks": ("lrfit.tasks",)},
    {"fitting": ("lrfit.fitting",)},
    {"analysis": ("lrfit.analysis",)},
    {"config": ("lrfit.runs.config", "lrfit.runs.config_params")},
    {"layout": ("lrfit.runs.layout",)},
    {"plotting": ("lrfit.plotting",),
     "teachers": ("lrfit.teachers",)},
    # the rest of the run package: a run's data, the fit, metrics, sweeps, analyses, exports, comparison, report
    {"runs": ("lrfit.runs",)},
    {"commands": ("lrfit.commands", "lrfit.cli", "lrfit.__main__")},
]

def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _statements(body: list[ast.stmt], top: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every statement with whether it runs at import time (``top``); TYPE_CHECKING blocks skipped."""
    for node in body:
        if _is_type_checking(node):
            continue
        yield node, top
        inner_top = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for field in ("body", "orelse", "finalbody", "handlers"):
            for child in getattr(node, field, []) or []:
                if isinstance(child, ast.ExceptHandler):
                    yield from _statements(child.body, inner_top)
                elif isinstance(child, ast.stmt):
                    yield from _statements([child], inner_top)


def imports(module: str) -> list[tuple[str, bool]]:
    """``(imported module, at import time)`` for each import of lrfit/data_adapters in *module*."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node, top in _statements(ast.parse(path.read_text()).body, True):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # "from pkg import sub" imports the submodule pkg.sub
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        found += [(t, top) for t in targets if t.split(".")[0] in PACKAGES]
    return found


def component(module: str) -> tuple[int, str] | None:
    """``(layer index, component)`` of an lrfit module, None for data_adapters and the facade."""
    if module.split(".")[0] == "data_adapters" or module == "lrfit":
        return None
    for level, layer in enumerate(LAYERS):
        for name, prefixes in layer.items():
            if any(module == p or module.startswith(p + ".") for p in prefixes):
                return level, name
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py; add it to LAYERS")


def climbs(source: str, target: str) -> bool:
    """Whether importing *target* from *source* breaks the layer order."""
    if target.split(".")[0] == "data_adapters":  # the bottom layer, importable from anywhere
        return False
    if target == "lrfit":  # the facade: only the command line may go through it
        return component(source) is not None and component(source)[1] != "commands"
    src, dst = component(source), component(target)
    if src is None:
        return False
    return dst[1] != src[1] and dst[0] >= src[0]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of *graph* as a list of nodes (first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_every_module_is_in_a_layer():
    for module in MODULES:
        component(module)


def test_data_adapters_never_imports_lrfit():
    bad = [(m, t) for m in MODULES if m.startswith("data_adapters") for t, _ in imports(m) if t.startswith("lrfit")]
    assert not bad, f"data_adapters must not depend on lrfit: {bad}"


@pytest.mark.parametrize("lazy_too", [False, True], ids=["module-level", "with-lazy-imports"])
def test_no_import_cycle_in_data_adapters(lazy_too):
    graph = {m: {t for t, top in imports(m) if t.startswith("data_adapters") and (top or lazy_too)}
             for m in MODULES if m.startswith("data_adapters") and m != "data_adapters"}
    assert find_cycle(graph) is None, f"import cycle in data_adapters: {' -> '.join(find_cycle(graph))}"


def test_no_module_level_import_cycle():
    graph = {m: {t for t, top in imports(m) if top and t in MODULES and t != m} for m in MODULES}
    # a package's __init__ importing its own submodules is how a package is assembled, not a cycle
    graph = {m: {t for t in ts if not (MODULES[m].name == "__init__.py" and t.startswith(m + "."))}
             for m, ts in graph.items()}
    cycle = find_cycle(graph)
    assert cycle is None, f"module-level import cycle: {' -> '.join(cycle)}"


def test_module_level_imports_follow_the_layers():
    bad = [(m, t) for m in MODULES for t, top in imports(m) if top and climbs(m, t)]
    assert not bad, f"imports from a lower layer into a higher one (see LAYERS): {bad}"


def test_lazy_imports_do_not_climb_the_layers():
    bad = [(m, t) for m in MODULES for t, top in imports(m) if not top and climbs(m, t)]
    assert not bad, f"imports inside functions from a lower layer into a higher one (see LAYERS): {bad}"
