"""lrfit: fit low-rank recurrent neural networks to recorded neural activity.

The public API is what :data:`__all__` names, plus the submodules :mod:`lrfit.analysis`,
:mod:`lrfit.plotting`, :mod:`lrfit.fitting` (observation models, baselines, spike counts, ...),
:mod:`lrfit.runs` (what the command line does, from Python) and :mod:`lrfit.teachers`, each
with its own ``__all__``; recordings come in through :mod:`data_adapters`.  Everything else is internal and
may move.  Names are imported on first use (PEP 562), so ``import lrfit`` is fast
and pulls in torch only when a name that needs it is used.

==========================  =====================================================
data                        ``TrialData``, ``load`` (from :mod:`data_adapters`)
estimators                  ``LowRankFit``, ``LowRankEnsembleFit``
networks                    ``LowRankRNN``, ``FullRankRNN``, ``save_model``, ``load_model``
metrics                     ``r2_score``, ``bits_per_spike``, ``noise_ceiling``
tasks and teachers          ``get_task``, ``train_teacher``, ``simulate_teacher``,
                            ``compare_student_teacher``
runs (what the CLI does)    ``load_config``, ``run_fit``, ``load_run``
errors                      ``LrfitError``, ``NotFittedError``
threads                     ``set_threads`` (the thread policy: :mod:`lrfit.threads`)
==========================  =====================================================

The command line is :func:`lrfit.cli.main`.

Examples
--------
>>> import lrfit
>>> lrfit.LowRankFit(rank=2).get_params()["rank"]
2
>>> sorted(set(lrfit.__all__) - set(dir(lrfit)))
[]
"""

from __future__ import annotations

import importlib
from typing import Any

from .threads import prepare_process as _prepare_process

__version__ = "0.1.0"

# Idle OpenMP threads sleep instead of spinning, when this runs before torch starts its
# runtime (the thread policy of lrfit.threads; OMP_WAIT_POLICY set by the user wins).
_prepare_process()

#: Public name -> module it is defined in (imported on first use).
_EXPORTS: dict[str, str] = {
    # data
    "TrialData": "data_adapters",
    "load": "data_adapters",
    # estimators
    "LowRankFit": "lrfit.fitting",
    "LowRankEnsembleFit": "lrfit.fitting",
    # networks
    "FullRankRNN": "lrfit.models",
    "LowRankRNN": "lrfit.models",
    "load_model": "lrfit.models",
    "save_model": "lrfit.models",
    # metrics
    "r2_score": "lrfit.fitting",
    "bits_per_spike": "lrfit.fitting.counts",
    "noise_ceiling": "lrfit.fitting.baselines",
    # tasks and teachers
    "get_task": "lrfit.tasks",
    "train_teacher": "lrfit.teachers",
    "simulate_teacher": "lrfit.teachers",
    "compare_student_teacher": "lrfit.runs.compare",
    # runs
    "load_config": "lrfit.runs.config",
    "run_fit": "lrfit.runs.fit",
    "load_run": "lrfit.runs.fit",
    # errors and threads
    "LrfitError": "lrfit.errors",
    "NotFittedError": "lrfit.errors",
    "set_threads": "lrfit.threads",
}

#: Public submodules (documented by their own ``__all__``).
_SUBMODULES = ("analysis", "fitting", "plotting", "runs", "teachers")

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    """Import a public name (or submodule) on first use and cache it in the module."""
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f"{__name__}.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'lrfit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
