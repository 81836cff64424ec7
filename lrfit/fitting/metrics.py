"""Goodness-of-fit measures on masked ``(trials, time, neurons)`` arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .reductions import residual_sums


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


def condition_labels(conditions: pd.DataFrame, columns: list[str] | None = None) -> np.ndarray:
    """One string label per trial joining the values of *columns* (all columns by default)."""
    if conditions is None or conditions.shape[1] == 0:
        return np.zeros(0 if conditions is None else len(conditions), dtype=object)
    cols = list(conditions.columns) if columns is None else list(columns)
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
