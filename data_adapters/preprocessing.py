"""Normalisation, condition-independent removal and PCA denoising of :class:`TrialData`.

Statistics are always fitted on one data set (the training split) and applied to
another, so nothing about held-out trials leaks into preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import DataError, where

if TYPE_CHECKING:  # annotations only: TrialData's methods call this module
    from .trialdata import TrialData

NORMALISE_METHODS = ("zscore", "soft", "centre", "centre_global", "none")


@dataclass(frozen=True)
class Normalisation:
    """Per-neuron affine normalisation ``(x - offset) / scale``.

    Attributes
    ----------
    method
        Name of the method that produced the parameters.
    offset, scale
        ``(neurons,)`` arrays.
    neuron_ids
        Ids of the neurons the parameters belong to.
    """

    method: str
    offset: np.ndarray
    scale: np.ndarray
    neuron_ids: np.ndarray

    def apply(self, data: TrialData) -> TrialData:
        """Return ``data`` normalised with these parameters (neurons must match)."""
        if data.n_neurons != self.offset.size or not np.array_equal(np.asarray(data.neuron_ids), self.neuron_ids):
            raise DataError(f"normalisation parameters were fitted on {self.offset.size} neurons but the "
                            f"data{where(data.source)} has {data.n_neurons} (or different neuron_ids); "
                            "fit them on data with the same neurons", field="reference")
        act = (data.activity - self.offset.astype(np.float32)) / self.scale.astype(np.float32)
        meta = dict(data.meta)
        if self.method != "none":
            meta["units"] = f"{meta.get('units', 'activity')} normalised ({self.method})"
        return data.replace(activity=act, meta=meta,
                            step={"step": "normalise", "method": self.method,
                                  "offset": self.offset.tolist(), "scale": self.scale.tolist()})

    def invert(self, activity: np.ndarray) -> np.ndarray:
        """Map normalised ``(..., neurons)`` activity back to the original units."""
        return np.asarray(activity) * self.scale + self.offset


def _valid_rows(data: TrialData) -> np.ndarray:
    """``(valid bins, neurons)`` float64 matrix of activity in valid bins."""
    return data.activity[data.mask].astype(np.float64)


def fit_normalisation(reference: TrialData, method: str = "centre_global", *, soft_const: float = 5.0,
                      eps: float = 1e-8) -> Normalisation:
    """Fit normalisation parameters on ``reference`` (typically the training split).

    Parameters
    ----------
    reference
        Data the statistics are computed on (valid bins of all trials).
    method
        ``"zscore"``, ``"soft"``, ``"centre"``, ``"centre_global"`` or ``"none"``
        (see :meth:`TrialData.normalise`).
    soft_const
        Constant added to each neuron's range for ``"soft"`` (same units as activity, 5 Hz
        in Churchland et al. 2012).
    eps
        Scales below ``eps`` are replaced by 1 (silent neurons stay at 0).

    Returns
    -------
    Normalisation
    """
    if method not in NORMALISE_METHODS:
        raise DataError(f"unknown normalisation method {method!r}; use one of {NORMALISE_METHODS}", field="method")
    x = _valid_rows(reference)
    N = reference.n_neurons
    offset, scale = np.zeros(N), np.ones(N)
    if method == "zscore":
        offset, scale = x.mean(0), x.std(0)
    elif method == "soft":
        scale = x.max(0) - x.min(0) + soft_const
    elif method == "centre":
        offset = x.mean(0)
    elif method == "centre_global":
        offset = x.mean(0)
        scale = np.full(N, np.sqrt(np.mean((x - offset) ** 2)))
    scale = np.where(scale < eps, 1.0, scale)
    return Normalisation(method, offset, scale, np.asarray(reference.neuron_ids))


def remove_condition_independent(data: TrialData, reference: TrialData | None = None) -> TrialData:
    """Subtract the across-trial mean time course (the part shared by all conditions).

    Parameters
    ----------
    data
        Data to correct.
    reference
        Data the mean is computed on (default ``data``); needs the same neurons and bins.

    Returns
    -------
    TrialData
    """
    ref = data if reference is None else reference
    data._check_same_neurons(ref, "remove_condition_independent")
    if ref.n_time != data.n_time:
        raise DataError(f"reference has {ref.n_time} time bins but the data{where(data.source)} has {data.n_time}; "
                        "use a reference with the same time bins", field="reference")
    w = ref.mask[:, :, None].astype(np.float64)
    mean = (ref.activity * w).sum(0) / np.maximum(w.sum(0), 1)
    return data.replace(activity=data.activity - mean.astype(np.float32),
                        step={"step": "remove_condition_independent",
                              "reference": "self" if reference is None else "reference"})


def denoise_pca(data: TrialData, k: int, reference: TrialData | None = None) -> TrialData:
    """Project activity onto the top-``k`` principal components of ``reference``.

    Parameters
    ----------
    data
        Data to denoise.
    k
        Number of components (1 <= k <= neurons).
    reference
        Data the PCs (and mean) are fitted on, e.g. the training split; default ``data``.

    Returns
    -------
    TrialData
        Same shape; ``meta["preprocessing"][-1]`` records the explained variance ratio.
    """
    ref = data if reference is None else reference
    data._check_same_neurons(ref, "denoise_pca")
    k = int(k)
    if not 1 <= k <= data.n_neurons:
        raise DataError(f"denoise_pca k={k} must be between 1 and the number of neurons ({data.n_neurons})",
                        field="k")
    x = _valid_rows(ref)
    mu = x.mean(0)
    _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
    v = vt[:k].T
    evr = (s[:k] ** 2).sum() / max((s ** 2).sum(), 1e-300)
    a = data.activity.astype(np.float64) - mu
    out = (a @ v) @ v.T + mu
    return data.replace(activity=out.astype(np.float32),
                        step={"step": "denoise_pca", "k": k, "explained_variance_ratio": float(evr),
                              "reference": "self" if reference is None else "reference"})
