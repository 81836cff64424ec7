"""Held-out-neuron prediction: how well the fitted latents explain neurons the fit never saw."""

from __future__ import annotations

from typing import Any

import numpy as np

from .estimator import LowRankFit
from .metrics import r2_per_neuron, r2_score
from .regression_init import to_currents


def heldout_neuron_r2(
    fit: LowRankFit,
    train_fitted: Any,
    test_fitted: Any,
    train_heldout: Any,
    test_heldout: Any,
    ridge: float = 1e-3,
) -> dict[str, Any]:
    """Predict withheld neurons from the fitted network's latents and inputs.

    A low-rank network's currents are ``x_i(t) = m_i . kappa(t) + w_i . v(t)``, so a
    neuron the fit never saw is predicted by a ridge regression of its current on
    the latent coordinates ``[kappa, v, 1]`` (:meth:`LowRankFit.latents` with
    inputs), fitted on the training trials only; for rate targets the regression
    is on ``atanh`` of the rates and the prediction goes back through ``tanh``.

    Parameters
    ----------
    fit : LowRankFit
        Fitted to ``train_fitted``.
    train_fitted, test_fitted : TrialData
        The fitted neurons on training and test trials.
    train_heldout, test_heldout : TrialData
        The withheld neurons on the same training and test trials.
    ridge : float
        Ridge penalty relative to the mean eigenvalue of the regressors' Gram matrix.

    Returns
    -------
    dict
        ``heldout_r2`` (pooled test R^2), ``heldout_r2_per_neuron_mean`` and
        ``heldout_r2_per_neuron``.
    """

    def features(data: Any) -> np.ndarray:
        lat = fit.latents(data, include_inputs=True).astype(np.float64)
        return np.concatenate([lat, np.ones(lat.shape[:-1] + (1,))], axis=-1)

    mask_tr = np.asarray(train_heldout.mask, dtype=bool)
    f_tr = features(train_fitted)[mask_tr]
    y_tr = to_currents(np.asarray(train_heldout.activity)[mask_tr], fit.target)
    gram = f_tr.T @ f_tr
    lam = ridge * np.trace(gram) / gram.shape[0]
    coef = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), f_tr.T @ y_tr)
    pred = features(test_fitted) @ coef
    if fit.target == "rates":
        pred = np.tanh(pred)
    truth, mask = np.asarray(test_heldout.activity), np.asarray(test_heldout.mask)
    per = r2_per_neuron(truth, pred, mask)
    return {
        "heldout_r2": r2_score(truth, pred, mask),
        "heldout_r2_per_neuron_mean": float(np.nanmean(per)) if per.size else float("nan"),
        "heldout_r2_per_neuron": [float(v) for v in per],
    }
