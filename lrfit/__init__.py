"""lrfit: fit low-rank recurrent neural networks to recorded neural activity.

The public API is what :data:`__all__` names, plus the submodules
:mod:`lrfit.analysis` and :mod:`lrfit.plotting` (each with its own ``__all__``);
recordings come in through :mod:`data_adapters`.  Everything else is internal and
may move.  Names are imported on first use (PEP 562), so ``import lrfit`` is fast
and pulls in torch only when a name that needs it is used.

==========================  =====================================================
data                        ``TrialData``, ``load`` (from :mod:`data_adapters`)
networks                    ``LowRankRNN``, ``FullRankRNN``, ``save_model``, ``load_model``
fitting                     ``LowRankFit``, ``LowRankEnsembleFit``, ``r2_score``,
                            ``compute_baselines``, ``noise_ceiling``, ``bits_per_spike``, ...
tasks and teachers          ``get_task``, ``train_teacher``, ``load_teacher``,
                            ``simulate_teacher``, ``compare_student_teacher``
runs (what the CLI does)    ``RunDir``, ``load_config``, ``prepare_data``, ``prepare_folds``,
                            ``run_fit``, ``load_run``,
                            ``load_context``, ``run_activity``, ``analyze_run``,
                            ``run_sweep``, ``load_sweep``, ``main`` (the command line)
errors                      ``LrfitError``, ``NotFittedError``
threads                     ``set_threads`` (the thread policy: :mod:`lrfit.threads`)
==========================  =====================================================

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
    # errors
    "LrfitError": "lrfit.errors",
    "NotFittedError": "lrfit.errors",
    # data
    "TrialData": "data_adapters",
    "load": "data_adapters",
    # networks and tasks
    "FullRankRNN": "lrfit.models",
    "LowRankRNN": "lrfit.models",
    "load_model": "lrfit.models",
    "save_model": "lrfit.models",
    "get_task": "lrfit.tasks",
    # fitting
    "LowRankFit": "lrfit.fitting",
    "LowRankEnsembleFit": "lrfit.fitting",
    "r2_per_condition": "lrfit.fitting",
    "r2_per_neuron": "lrfit.fitting",
    "r2_score": "lrfit.fitting",
    "compute_baselines": "lrfit.fitting.baselines",
    "compute_count_baselines": "lrfit.fitting.baselines",
    "noise_ceiling": "lrfit.fitting.baselines",
    "bits_per_spike": "lrfit.fitting.counts",
    "smooth_counts": "lrfit.fitting.counts",
    "heldout_neuron_bits_per_spike": "lrfit.fitting.heldout",
    "heldout_neuron_r2": "lrfit.fitting.heldout",
    "SmoothedRateFit": "lrfit.fitting.smoothed",
    # teachers (the lrfit.teachers package: train, record, compare)
    "compare_student_teacher": "lrfit.teachers",
    "load_teacher": "lrfit.teachers",
    "principal_angle_cosines": "lrfit.analysis",
    "simulate_teacher": "lrfit.teachers",
    "peak_rates": "lrfit.teachers",
    "rates_to_hz": "lrfit.teachers",
    "train_teacher": "lrfit.teachers",
    # runs: configs, fits, analyses, sweeps, the command line
    "load_config": "lrfit.config",
    "prepare_data": "lrfit.pipeline",
    "prepare_folds": "lrfit.fit_data",
    "RunDir": "lrfit.rundir",
    "run_fit": "lrfit.pipeline",
    "load_run": "lrfit.pipeline",
    "load_context": "lrfit.workflows",
    "run_activity": "lrfit.workflows",
    "analyze_run": "lrfit.workflows",
    "inactivate_run": "lrfit.workflows",
    "latent_conditions": "lrfit.workflows.analyze",
    "LATENTS_FILE": "lrfit.rundir",
    "LOADINGS_FILE": "lrfit.rundir",
    "build_report": "lrfit.report",
    "load_sweep": "lrfit.sweep",
    "run_sweep": "lrfit.sweep",
    "main": "lrfit.cli",
    # threads
    "set_threads": "lrfit.threads",
}

#: Public submodules (documented by their own ``__all__``).
_SUBMODULES = ("analysis", "plotting")

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
