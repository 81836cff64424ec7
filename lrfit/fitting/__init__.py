"""Fitting low-rank RNNs to recorded activity (LINT): estimators, observation models, starts, metrics.

- :mod:`.estimator` — :class:`LowRankFit`; :mod:`.ensemble` — :class:`LowRankEnsembleFit` (clones trained as one).
- :mod:`.observation` — what a unit is compared with: :class:`Gaussian` rates/currents, :class:`Poisson` counts.
- :mod:`.starts` — where a fit starts; :mod:`.checks` — its parameters and data; :mod:`.staging`,
  :mod:`.objective`, :mod:`.solver` — the trials on the device, the loss, the training loop.
- :mod:`.metrics`, :mod:`.baselines`, :mod:`.counts`, :mod:`.heldout` — scores and what they stand beside.

Examples
--------
>>> from lrfit.fitting import LowRankFit, Poisson
>>> LowRankFit(observation=Poisson("currents")).get_params()["observation"]
Poisson(signal='currents')
"""

from .ensemble import LowRankEnsembleFit
from .estimator import LowRankFit
from .metrics import r2_per_condition, r2_per_neuron, r2_score
from .observation import Gaussian, Observation, Poisson, as_observation
from .regression_init import RegressionStart, reduced_rank_regression

__all__ = [
    "Gaussian",
    "LowRankEnsembleFit",
    "LowRankFit",
    "Observation",
    "Poisson",
    "RegressionStart",
    "as_observation",
    "r2_per_condition",
    "r2_per_neuron",
    "r2_score",
    "reduced_rank_regression",
]
