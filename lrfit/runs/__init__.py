"""Runs: what ``lrfit fit`` writes and every later command reads, in one package.

- :mod:`.config` — fit configs (defaults, YAML, ``--set``); :mod:`.config_params` — which key sets which
  estimator parameter;
- :mod:`.layout` — every run file name and layout, and :class:`~.layout.RunDir` (a run opened once);
- :mod:`.data` — a config's data splits and folds; :mod:`.fit` — ``lrfit fit`` end to end;
  :mod:`.metrics` — a run's metric names and verdicts; :mod:`.sweep` — grids of fits;
- :mod:`.run` — :class:`~.run.Run`, a run opened for analysis: the estimator, the analysed network, task,
  teacher, data splits and activity, each read once;
  :mod:`.analyze`, :mod:`.inactivate`, :mod:`.export`, :mod:`.groups` — ``lrfit analyze`` / ``inactivate`` /
  ``export``; :mod:`.compare` — a student against its teacher; :mod:`.report` — the HTML page.

Names are imported on first use, so that the lower modules (config, layout) load without the rest.

Examples
--------
>>> import lrfit.runs
>>> lrfit.runs.load_config(extra={"data": {"path": "recording.nwb"}})["model"]["target"]
'rates'
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> module it is defined in (imported on first use).
_EXPORTS: dict[str, str] = {
    "load_config": "lrfit.runs.config",
    "RunDir": "lrfit.runs.layout",
    "LATENTS_FILE": "lrfit.runs.layout",
    "LOADINGS_FILE": "lrfit.runs.layout",
    "prepare_data": "lrfit.runs.data",
    "prepare_folds": "lrfit.runs.data",
    "run_fit": "lrfit.runs.fit",
    "load_run": "lrfit.runs.fit",
    "run_sweep": "lrfit.runs.sweep",
    "load_sweep": "lrfit.runs.sweep",
    "Run": "lrfit.runs.run",
    "open_run": "lrfit.runs.run",
    "load_context": "lrfit.runs.run",
    "analyze_run": "lrfit.runs.analyze",
    "latent_conditions": "lrfit.runs.analyze",
    "inactivate_run": "lrfit.runs.inactivate",
    "export_run": "lrfit.runs.export",
    "compare_student_teacher": "lrfit.runs.compare",
    "build_report": "lrfit.runs.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name on first use and cache it in the package."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lrfit.runs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
