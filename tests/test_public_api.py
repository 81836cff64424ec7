"""The public API: every name in ``__all__`` resolves, and the notebooks use nothing else.

Public means: ``lrfit.__all__``, the submodules ``lrfit.analysis`` and ``lrfit.plotting``
(each with its own ``__all__``), and ``data_adapters.__all__``; what the small top-level API
leaves out is imported from its subpackage (``SUBPACKAGES``).
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = ("lrfit", "lrfit.analysis", "lrfit.fitting", "lrfit.plotting", "lrfit.runs", "lrfit.teachers",
                  "data_adapters")
#: Subpackages that keep what the small top-level API leaves out (examples may import any name they define).
SUBPACKAGES = ("lrfit.fitting.smoothed", "lrfit.cli")
EXAMPLES = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_name_in_all_resolves(module):
    mod = importlib.import_module(module)
    assert len(mod.__all__) == len(set(mod.__all__)), f"{module}.__all__ repeats a name"
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing, f"{module}.__all__ names {missing}, which do not resolve"


def test_lrfit_exports_what_users_need():
    import lrfit

    needed = {"TrialData", "load", "LowRankFit", "LowRankEnsembleFit", "LowRankRNN", "FullRankRNN", "train_teacher",
              "simulate_teacher", "compare_student_teacher", "load_config", "run_fit", "load_run", "LrfitError",
              "NotFittedError", "analysis", "plotting"}
    assert needed <= set(lrfit.__all__)
    assert len(set(lrfit.__all__) - {"__version__", "analysis", "fitting", "plotting", "runs", "teachers"}) <= 22, (
        "keep the top-level API small"
    )
    assert lrfit.TrialData is importlib.import_module("data_adapters").TrialData


def test_import_lrfit_is_light():
    """``import lrfit`` imports no torch (names load on first use)."""
    code = "import sys, lrfit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def example_sources(path: Path) -> list[str]:
    """The Python code of a notebook's code cells (IPython magics dropped), or of a script."""
    if path.suffix == ".py":
        return [path.read_text()]
    cells = json.loads(path.read_text())["cells"]
    sources = []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            sources.append("\n".join(line for line in lines if not line.lstrip().startswith(("%", "!"))))
    return sources


def imported_names(source: str) -> list[tuple[str, str | None]]:
    """``(module, name)`` for every import of lrfit or data_adapters (``name`` None for ``import module``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.module, alias.name) for alias in node.names]
    return [(module, name) for module, name in found if module.split(".")[0] in ("lrfit", "data_adapters")]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_import_only_public_names(path):
    bad = []
    for source in example_sources(path):
        for module, name in imported_names(source):
            if module in SUBPACKAGES:
                if name is not None and not hasattr(importlib.import_module(module), name):
                    bad.append(f"{module}.{name} (not defined there)")
            elif module not in PUBLIC_MODULES:
                bad.append(f"{module}" + (f".{name}" if name else ""))
            elif name is not None and name not in importlib.import_module(module).__all__:
                bad.append(f"{module}.{name} (not in {module}.__all__)")
    assert not bad, f"{path.name} imports non-public names: {bad}"
