"""Fitting low-rank RNNs to recorded activity (LINT): estimator, starts, metrics, rank selection."""

from .ensemble import LowRankEnsembleFit
from .estimator import LowRankFit, fit_summary
from .metrics import r2_per_condition, r2_per_neuron, r2_score
from .regression_init import RegressionStart, reduced_rank_regression

__all__ = [
    "LowRankEnsembleFit",
    "LowRankFit",
    "RegressionStart",
    "fit_summary",
    "r2_per_condition",
    "r2_per_neuron",
    "r2_score",
    "reduced_rank_regression",
]
