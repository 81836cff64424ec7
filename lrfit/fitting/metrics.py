"""Goodness-of-fit measures on masked ``(trials, time, neurons)`` arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .reductions import residual_sums

if TYPE_CHECKING:
    from data_adapters import TrialData


def r2_score(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of variance explained over all entries.

    ``R^2 = 1 - sum (y - yhat)^2 / sum (y - mean_i)^2`` where ``mean_i`` is each
    neuron's mean over the valid bins, so that a constant per-neuron guess scores 0.

    Parameters
    ----------
    y_true, y_pred : ndarray
        ``(trials, time, neurons)``.
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins.

    Returns
    -------
    float
        The pooled R^2.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(8.0).reshape(1, 4, 2)
    >>> float(r2_score(y, y)), float(r2_score(y, y + 1.0))
    (1.0, 0.8)
    """
    ss_res, ss_tot = (float(np.sum(s)) for s in residual_sums(y_true, y_pred, mask))  # block by block
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def r2_per_neuron(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """R^2 of each neuron, ``1 - SS_res_i / SS_tot_i`` (NaN for a constant neuron).

    Parameters
    ----------
    y_true, y_pred : ndarray
        ``(trials, time, neurons)``.
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins.

    Returns
    -------
    ndarray
        ``(neurons,)``.
    """
    ss_res, ss_tot = residual_sums(y_true, y_pred, mask)  # block by block, no copy of the data
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)


def condition_labels(conditions: pd.DataFrame | None, columns: list[str] | None = None, single: Any = 0,
                     ) -> np.ndarray:
    """One string label per trial joining the values of *columns* (all columns by default).

    Parameters
    ----------
    conditions : DataFrame or None
        One row per trial.
    columns : list of str, optional
        Columns to join (default: all of them).
    single : Any
        The one label every trial gets when there are no condition columns (or *columns* is empty);
        the fit's x0 table calls that condition ``"all"``.

    Returns
    -------
    ndarray
        ``(trials,)`` object array of labels.

    Examples
    --------
    >>> import pandas as pd
    >>> condition_labels(pd.DataFrame({"context": [0, 1], "coh": [0.1, -0.1]})).tolist()
    ['0|0.1', '1|-0.1']
    >>> condition_labels(pd.DataFrame(index=range(2)), single="all").tolist()
    ['all', 'all']
    """
    cols = [] if conditions is None or conditions.shape[1] == 0 else columns
    cols = list(conditions.columns) if cols is None else list(cols)
    if not cols:
        return np.full(0 if conditions is None else len(conditions), single, dtype=object)
    return conditions[cols].astype(str).agg("|".join, axis=1).to_numpy()


def r2_per_condition(
    y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """Pooled R^2 within the trials of each condition label.

    Parameters
    ----------
    y_true, y_pred : ndarray
        ``(trials, time, neurons)``.
    labels : ndarray
        ``(trials,)`` condition label per trial (see :func:`condition_labels`).
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins.

    Returns
    -------
    dict
        Label -> R^2.
    """
    out: dict[str, float] = {}
    for label in pd.unique(labels):
        sel = labels == label
        out[str(label)] = r2_score(y_true[sel], y_pred[sel], None if mask is None else mask[sel])
    return out


def psth_r2(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray | None,
            mask: np.ndarray | None = None) -> float | None:
    """Pooled R^2 of condition-averaged predictions against condition-averaged data (the PSTH R^2).

    Trials are averaged per condition label over their valid bins; the R^2 of
    :func:`r2_score` is then taken over the condition means (each neuron centred).

    Parameters
    ----------
    y_true, y_pred : ndarray
        ``(trials, time, neurons)``, e.g. counts and expected counts.
    labels : ndarray or None
        ``(trials,)`` condition label per trial (see :func:`condition_labels`); None: one condition.
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins.

    Returns
    -------
    float or None
        None when no condition has two trials (the averages would be single trials).

    Examples
    --------
    >>> y = np.array([[[1.0]], [[3.0]], [[5.0]], [[7.0]]])
    >>> psth_r2(y, np.array([[[2.0]], [[2.0]], [[6.0]], [[6.0]]]), np.array(["a", "a", "b", "b"]))
    1.0
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    labels = np.zeros(len(y_true), dtype=object) if labels is None else np.asarray(labels)
    valid = np.ones(y_true.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    groups = [labels == lab for lab in pd.unique(labels)]
    if not any(g.sum() >= 2 for g in groups):
        return None

    def means(y: np.ndarray) -> np.ndarray:
        out = []
        for g in groups:
            w = valid[g][..., None].astype(np.float64)
            out.append((y[g] * w).sum(0) / np.maximum(w.sum(0), 1.0))
        return np.stack(out)

    seen = np.stack([valid[g].any(0) for g in groups])
    return r2_score(means(y_true), means(y_pred), seen)


def fit_scores(observation: Any, data: TrialData, pred: np.ndarray, split: str = "") -> dict[str, Any]:
    """R^2 over all entries, per neuron and per condition, and the observation model's own scores.

    Parameters
    ----------
    observation : Observation
        The fit's observation model (adds bits per spike for counts).
    data : TrialData
        The recorded trials.
    pred : ndarray
        ``(trials, time, neurons)`` the fit's prediction of them.
    split : str
        Appended to each metric's name as in ``metrics.json`` (``split="test"``: ``r2_test``, ...).

    Returns
    -------
    dict
        ``r2``, ``r2_per_neuron_mean``, ``r2_per_neuron`` (list), ``r2_per_condition`` (dict), each
        with ``_<split>`` after ``r2``; for a counts fit also ``bits_per_spike``,
        ``bits_per_spike_per_neuron`` and ``psth_r2`` (condition-averaged predicted vs recorded
        rates; None where no condition has two trials).

    Examples
    --------
    >>> from data_adapters import TrialData
    >>> from lrfit.fitting.observation import Gaussian
    >>> data = TrialData(activity=np.arange(12.0).reshape(2, 3, 2) / 20, dt=0.02)
    >>> fit_scores(Gaussian(), data, np.asarray(data.activity), "test")["r2_test"]
    1.0
    """
    truth, mask = np.asarray(data.activity), np.asarray(data.mask)
    per_neuron = r2_per_neuron(truth, pred, mask)
    labels = condition_labels(data.conditions) if data.conditions is not None and data.conditions.shape[1] else None
    key = f"r2_{split}" if split else "r2"
    return {
        key: r2_score(truth, pred, mask),
        f"{key}_per_neuron_mean": float(np.nanmean(per_neuron)) if per_neuron.size else float("nan"),
        f"{key}_per_neuron": [float(v) for v in per_neuron],
        f"{key}_per_condition": {} if labels is None else r2_per_condition(truth, pred, labels, mask),
        **observation.extra_scores(truth, pred, mask, labels, split),
    }
