"""Held-out neurons: how well the fitted latents explain neurons the fit never saw (co-smoothing for counts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .estimator import LowRankFit
from .metrics import r2_per_neuron, r2_score
from .regression_init import to_currents

if TYPE_CHECKING:
    from data_adapters import TrialData


def heldout_neuron_r2(
    fit: LowRankFit,
    train_fitted: TrialData,
    test_fitted: TrialData,
    train_heldout: TrialData,
    test_heldout: TrialData,
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

    def features(data: TrialData) -> np.ndarray:
        lat = fit.latents(data, include_inputs=True).astype(np.float64)
        return np.concatenate([lat, np.ones(lat.shape[:-1] + (1,))], axis=-1)

    mask_tr = np.asarray(train_heldout.mask, dtype=bool)
    f_tr = features(train_fitted)[mask_tr]
    y_tr = to_currents(np.asarray(train_heldout.activity)[mask_tr], fit.observation_.signal)
    gram = f_tr.T @ f_tr
    lam = ridge * np.trace(gram) / gram.shape[0]
    coef = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), f_tr.T @ y_tr)
    pred = features(test_fitted) @ coef
    if fit.observation_.signal == "rates":
        pred = np.tanh(pred)
    truth, mask = np.asarray(test_heldout.activity), np.asarray(test_heldout.mask)
    per = r2_per_neuron(truth, pred, mask)
    return {
        "heldout_r2": r2_score(truth, pred, mask),
        "heldout_r2_per_neuron_mean": float(np.nanmean(per)) if per.size else float("nan"),
        "heldout_r2_per_neuron": [float(v) for v in per],
    }


#: L2 penalty of the Poisson GLMs of co-smoothing (scikit-learn's ``alpha``, per sample).
GLM_ALPHA = 1e-4


def _poisson_glm(features_train: np.ndarray, counts_train: np.ndarray, features_test: np.ndarray) -> np.ndarray:
    """Expected counts of each neuron on *features_test* from a Poisson GLM (log link) fitted per neuron."""
    from sklearn.linear_model import PoissonRegressor
    from threadpoolctl import threadpool_limits

    mu, sd = features_train.mean(0), features_train.std(0) + 1e-9
    z_train, z_test = (features_train - mu) / sd, (features_test - mu) / sd
    out = np.empty((len(features_test), counts_train.shape[1]))
    with threadpool_limits(1):  # many small solves: threads only add overhead
        for i in range(counts_train.shape[1]):
            y = counts_train[:, i]
            if y.sum() == 0:
                out[:, i] = 0.0
                continue
            glm = PoissonRegressor(alpha=GLM_ALPHA, max_iter=300).fit(z_train, y)
            out[:, i] = glm.predict(z_test)
    return out


#: Relative ridge penalty on the held-out units' latent weights, and L-BFGS iterations of their fit.
UNIT_RIDGE = 1e-4
UNIT_ITERATIONS = 20


def _heldout_units(fit: LowRankFit, f_tr: np.ndarray, counts_tr: np.ndarray, mask_tr: np.ndarray,
                   f_te: np.ndarray) -> np.ndarray:
    """Expected counts of withheld neurons, each as one more unit of the fitted network.

    The unit's current is affine in the latents and inputs, ``x = beta . [kappa, v, 1]``
    (a low-rank network's currents are ``m_i kappa + w_i v``), and its expected count goes
    through the fit's Poisson readout, ``scale softplus(a s + b)`` with ``s = tanh(x)`` or
    ``x`` (``counts_from``).  ``beta, a, b`` start from the closed-form start of the counts
    (:func:`lrfit.fitting.counts.count_start`, ``beta`` by ridge regression of its
    currents) and are refined by L-BFGS on the Poisson likelihood of the training trials.
    """
    from .counts import count_start
    from .losses import CountReadout, poisson_nll

    start = count_start(counts_tr, mask_tr, float(fit.dt_), fit.observation_.signal)
    design_tr = np.concatenate([f_tr, np.ones(f_tr.shape[:-1] + (1,))], -1)[mask_tr]
    target = to_currents(start.activity[mask_tr], fit.observation_.signal).astype(np.float64)
    gram = design_tr.T @ design_tr
    lam = UNIT_RIDGE * np.trace(gram) / gram.shape[0]
    beta0 = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), design_tr.T @ target)
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    design, counts = as_tensor(design_tr), as_tensor(counts_tr[mask_tr])
    beta = as_tensor(beta0).requires_grad_(True)
    gain, bias = as_tensor(start.gain).requires_grad_(True), as_tensor(start.bias).requires_grad_(True)
    scale = as_tensor(start.scale)
    squash = torch.tanh if fit.observation_.signal == "rates" else (lambda x: x)
    optimiser = torch.optim.LBFGS([beta, gain, bias], max_iter=UNIT_ITERATIONS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = poisson_nll(squash(design @ beta), counts, None, CountReadout(gain, bias, scale))
        loss = loss + lam / len(design) * beta[:-1].square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        design_te = as_tensor(np.concatenate([f_te, np.ones(f_te.shape[:-1] + (1,))], -1))
        s_te = squash(design_te @ beta)
        return (torch.nn.functional.softplus(gain * s_te + bias) * scale).numpy()


def heldout_neuron_bits_per_spike(
    fit: LowRankFit,
    train_fitted: TrialData,
    test_fitted: TrialData,
    train_heldout: TrialData,
    test_heldout: TrialData,
) -> dict[str, Any]:
    """Co-smoothing: predict withheld neurons' spike counts from the fitted network's latents and inputs.

    Each held-out neuron is read out of the latent coordinates and inputs ``[kappa, v]``
    of :meth:`LowRankFit.latents` as one more unit of the fitted network would be: its
    current affine in them, its expected count through the fit's Poisson readout
    (:func:`_heldout_units`), fitted on the training trials and predicted on the test
    trials.  The prediction is scored in bits per spike of the held-out neurons
    (``co_bps``, the Neural Latents Benchmark's co-smoothing score) and R^2.  As a
    reference, a Poisson GLM (log link, small L2 penalty :data:`GLM_ALPHA`) on the top
    ``k`` principal components of the held-in neurons' smoothed counts (``k`` = latents +
    inputs, PCs fitted on the training trials; Gaussian smoothing of
    :data:`lrfit.fitting.counts.START_SMOOTHING_S`) gives ``co_bps_pca``.

    Parameters
    ----------
    fit : LowRankFit
        A counts fit of ``train_fitted``.
    train_fitted, test_fitted : TrialData
        The fitted neurons' counts on training and test trials.
    train_heldout, test_heldout : TrialData
        The withheld neurons' counts on the same trials.

    Returns
    -------
    dict
        ``co_bps``, ``co_bps_per_neuron``, ``co_bps_pca``,
        ``heldout_r2`` (pooled R^2 of the expected counts), ``heldout_r2_per_neuron_mean`` and
        ``heldout_r2_per_neuron``.
    """
    from .counts import START_SMOOTHING_S, bits_per_spike, smooth_counts

    mask_tr, mask_te = np.asarray(train_heldout.mask, dtype=bool), np.asarray(test_heldout.mask, dtype=bool)
    y_tr = np.asarray(train_heldout.activity, dtype=np.float64)[mask_tr]
    truth = np.asarray(test_heldout.activity, dtype=np.float64)

    def predict(f_tr: np.ndarray, f_te: np.ndarray) -> np.ndarray:
        pred = np.zeros_like(truth)
        pred[mask_te] = _poisson_glm(f_tr[mask_tr], y_tr, f_te[mask_te])
        return pred

    latent = np.zeros_like(truth)
    latent[mask_te] = _heldout_units(fit, fit.latents(train_fitted, include_inputs=True).astype(np.float64),
                                     np.asarray(train_heldout.activity, dtype=np.float64), mask_tr,
                                     fit.latents(test_fitted, include_inputs=True).astype(np.float64)[mask_te])
    # reference: the top PCs of the held-in neurons' smoothed counts
    width = START_SMOOTHING_S / train_fitted.dt
    s_tr = smooth_counts(train_fitted.activity, train_fitted.mask, width).astype(np.float64)
    s_te = smooth_counts(test_fitted.activity, test_fitted.mask, width).astype(np.float64)
    rows = s_tr[mask_tr]
    mean = rows.mean(0)
    k = min(int(fit.model_.rank) + int(fit.model_.n_inputs), rows.shape[1])
    components = np.linalg.svd(rows - mean, full_matrices=False)[2][:k].T
    pca = predict((s_tr - mean) @ components, (s_te - mean) @ components)
    per = r2_per_neuron(truth, latent, mask_te)
    return {
        "co_bps": bits_per_spike(truth, latent, mask_te),
        "co_bps_per_neuron": [float(v) for v in bits_per_spike(truth, latent, mask_te, per_neuron=True)],
        "co_bps_pca": bits_per_spike(truth, pca, mask_te),
        "heldout_r2": r2_score(truth, latent, mask_te),
        "heldout_r2_per_neuron_mean": float(np.nanmean(per)) if per.size else float("nan"),
        "heldout_r2_per_neuron": [float(v) for v in per],
    }
