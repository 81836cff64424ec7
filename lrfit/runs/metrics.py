"""A run's metrics: the names of its scores, a fit's training summary, verdicts beside the baselines, fold means.

``metrics.json`` names every score ``<metric>_<split>`` (``r2_test``, ``bits_per_spike_train``, ...), as
:meth:`lrfit.LowRankFit.evaluate` does; the observation model a run records (``target``) says which score
is the fit's own (:func:`score_key`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fitting.baselines import baselines_not_beaten, best_baseline
from ..fitting.estimator import LowRankFit
from ..fitting.observation import recorded_observation


def score_key(metrics: dict[str, Any]) -> str:
    """The ``metrics.json`` key of a fit's held-out score: ``bits_per_spike_test`` for counts, else ``r2_test``."""
    return f"{recorded_observation(metrics).score_name}_test"


def score_label(metrics: dict[str, Any]) -> str:
    """How that score reads in text: ``"bits/spike"`` or ``"R²"``."""
    return recorded_observation(metrics).score_label


def fit_summary(fit: LowRankFit) -> dict[str, Any]:
    """JSON-friendly summary of a fitted estimator's training."""
    return {
        "rank": int(fit.rank),
        "epochs": int(getattr(fit, "epochs_", 0)),
        "best_epoch": int(getattr(fit, "best_epoch_", 0)),
        "stopped": getattr(fit, "stopped_", None),
        "rollbacks": int(getattr(fit, "rollbacks_", 0)),
        "ended_worse_than_start": bool(getattr(fit, "ended_worse_than_start_", False)),
        "start_loss": getattr(fit, "start_loss_", None),
        "seconds": float(getattr(fit, "fit_seconds_", 0.0)),
        "init_seconds": float(getattr(fit, "init_seconds_", 0.0)),
        "lr": getattr(fit, "lr_", None),
    }


def baseline_verdict(score: float, scores: dict[str, float], ceiling: float | None,
                     metric: str = "r2") -> dict[str, Any]:
    """How a held-out score stands beside the trivial baselines and the noise ceiling.

    Parameters
    ----------
    score : float
        The fit's held-out score (R^2, or bits per spike for counts).
    scores : dict
        Baseline name -> the same score on the same test data
        (:func:`lrfit.fitting.baselines.compute_baselines`, or
        :func:`~lrfit.fitting.baselines.compute_count_baselines` for bits per spike).
    ceiling : float or None
        The noise ceiling, where single trials give one.
    metric : {"r2", "bits_per_spike"}
        What the scores are.

    Returns
    -------
    dict
        ``best_baseline`` (``name``, ``metric``, ``value`` and the value under the metric's
        name), ``below_baselines`` (the baselines the fit does not beat),
        ``beats_baselines`` (bool) and ``noise_ceiling``.

    Examples
    --------
    >>> v = baseline_verdict(0.2, {"mean": -0.01, "time_mean": 0.39}, None)
    >>> v["beats_baselines"], v["below_baselines"], v["best_baseline"]["value"]
    (False, ['time_mean'], 0.39)
    """
    best = best_baseline(scores)
    below = baselines_not_beaten(score, scores)
    return {
        "best_baseline": None if best is None else {"name": best[0], "metric": metric, "value": best[1],
                                                    metric: best[1]},
        "below_baselines": below,
        "beats_baselines": not below,
        "noise_ceiling": None if ceiling is None else float(ceiling),
    }


def fold_summary(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    """Cross-validated scores from the metrics of each fold: means, per-fold values and spread.

    Parameters
    ----------
    per_fold : list of dict
        ``metrics.json`` of each fold (``r2_train``, ``r2_test``, ...).

    Returns
    -------
    dict
        ``r2_test`` / ``r2_train`` / ``r2_test_per_neuron_mean`` (and ``heldout_r2`` where
        present) as means over folds, each with ``*_folds`` lists, ``r2_test_std``
        (standard deviation over folds), ``folds`` and ``analysed_fold`` (0).
    """
    out: dict[str, Any] = {"folds": len(per_fold), "analysed_fold": 0}
    for key in ("r2_test", "r2_train", "r2_test_per_neuron_mean", "heldout_r2", "bits_per_spike_test",
                "bits_per_spike_train", "psth_r2_test", "co_bps", "co_bps_pca"):
        values = [m[key] for m in per_fold if key in m]
        if len(values) == len(per_fold) and all(v is not None for v in values):
            out[key] = float(np.mean(values))
            out[f"{key}_folds"] = [float(v) for v in values]
    out["r2_test_std"] = float(np.std(out["r2_test_folds"]))
    out["test_conditions_folds"] = [m.get("test_conditions") for m in per_fold]
    out["epochs_folds"], out["stopped_folds"] = (
        [m.get("epochs") for m in per_fold],
        [m.get("stopped") for m in per_fold],
    )
    names = set.intersection(*(set(m.get("baselines", {}).get("scores", {})) for m in per_fold))
    scores = {n: float(np.mean([m["baselines"]["scores"][n] for m in per_fold])) for n in sorted(names)}
    ceilings = [m.get("noise_ceiling") for m in per_fold]
    ceiling = float(np.mean(ceilings)) if all(c is not None for c in ceilings) else None
    out["baselines_mean"] = scores
    if score_key(per_fold[0]) == "r2_test":
        out.update(baseline_verdict(out["r2_test"], scores, ceiling))
        return out
    names = set.intersection(*(set(m["count_baselines"]["bits_per_spike"]) for m in per_fold))
    count_scores = {
        n: float(np.mean([m["count_baselines"]["bits_per_spike"][n] for m in per_fold])) for n in sorted(names)
    }
    out["count_baselines_mean"] = count_scores
    out["bits_per_spike_test_std"] = float(np.std(out["bits_per_spike_test_folds"]))
    out.update(baseline_verdict(out["bits_per_spike_test"], count_scores, None, metric="bits_per_spike"))
    return out
