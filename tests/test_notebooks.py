"""Every notebook in notebooks/ runs top to bottom in quick mode (LRFIT_QUICK=1).

The code cells are executed in order in one namespace, as a kernel would, without
needing Jupyter; figures go to the Agg backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

#: Per notebook: what its quick run must still show (the science it is about).
CHECKS = {
    "01_validation": {
        "held-out activity reproduced": lambda ns: ns["comparison"]["r2_activity"] > 0.95,
        "column space of M recovered": lambda ns: min(ns["comparison"]["m_cosines"]) > 0.9,
    },
}

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def code_cells(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(path, monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.setenv("LRFIT_QUICK", "1")
    monkeypatch.chdir(tmp_path)
    notebook = json.loads(path.read_text())
    assert all(not cell.get("outputs") for cell in notebook["cells"] if cell["cell_type"] == "code"), \
        f"{path.name} is stored with outputs; clear them before committing"
    namespace: dict = {"__name__": "__main__"}
    for index, source in enumerate(code_cells(path)):
        try:
            exec(compile(source, f"{path.name}[cell {index}]", "exec"), namespace)
        except Exception as error:  # pragma: no cover - the message is the test's output
            raise AssertionError(f"{path.name}: code cell {index} failed: {error!r}") from error
    import matplotlib.pyplot as plt

    plt.close("all")
    for name, check in CHECKS.get(path.stem, {}).items():
        assert check(namespace), f"{path.name}: quick run fails the check '{name}'"
