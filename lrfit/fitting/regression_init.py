"""Closed-form starts for a low-rank fit.

Teacher-forced reduced-rank regression (DESIGN.md, "Fitting"): with currents
``x`` (``atanh`` of clipped rates for rate data), every Euler step of the network
says

    y[t] = (x[t+1] - (1 - alpha) x[t]) / alpha = J phi(x[t]) + W_in u[t+1]

(bin ``t`` of a recording is the state after input bin ``t``).  A ridge regression
of ``y`` on ``[phi(x[t]), u[t+1]]`` over all trials and steps gives ``J_hat`` and
``W_in_hat``; the top-R right singular vectors of the fitted recurrent drive
``phi(x) J_hat^T`` are the output directions kept as ``M``, ``J_hat`` projected on
them gives ``N``, and ``W_in`` is refitted on what the rank-R drive leaves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .reductions import column_moments

log = logging.getLogger(__name__)

RATE_CLIP = 1.0 - 1e-3


@dataclass(frozen=True)
class RegressionStart:
    """Result of :func:`reduced_rank_regression`.

    Attributes
    ----------
    m, n : ndarray
        ``(N, R)`` connectivity factors, ``J = m n^T / N``.
    w_in : ndarray
        ``(N, C)`` input weights.
    j_full : ndarray
        ``(N, N)`` full ridge estimate of ``J`` (used by ``init="fullrank_svd"``).
    x0 : ndarray
        ``(N,)`` mean current in the first bin (a start for the initial state).
    r2_drive : float
        Fraction of the variance of ``y`` that the rank-R model explains (teacher forced).
    """

    m: np.ndarray
    n: np.ndarray
    w_in: np.ndarray
    j_full: np.ndarray
    x0: np.ndarray
    r2_drive: float


def to_currents(activity: np.ndarray, target: str, nonlinearity: str = "tanh") -> np.ndarray:
    """Currents ``x`` from recorded activity: ``atanh`` of clipped rates, or the currents themselves."""
    if target == "currents":
        return np.asarray(activity, dtype=np.float32)
    if nonlinearity != "tanh":
        raise ValueError("rate targets are inverted through tanh only")
    rates = np.clip(np.asarray(activity, dtype=np.float32), -RATE_CLIP, RATE_CLIP)  # a new array
    return np.arctanh(rates, out=rates)


def reduced_rank_regression(
    activity: np.ndarray,
    inputs: np.ndarray,
    mask: np.ndarray,
    alpha: float,
    rank: int,
    target: str = "rates",
    ridge: float = 1e-3,
) -> RegressionStart:
    """Teacher-forced reduced-rank regression of one Euler step (see module docstring).

    Parameters
    ----------
    activity : ndarray
        ``(trials, time, N)`` rates (in tanh's range) or currents.
    inputs : ndarray
        ``(trials, time, C)``.
    mask : ndarray of bool
        ``(trials, time)``; a pair of bins is used when both are valid.
    alpha : float
        ``dt / tau``.
    rank : int
        Rank R kept.
    target : str
        ``"rates"`` or ``"currents"``.
    ridge : float
        Ridge penalty relative to the mean eigenvalue of the regressors' Gram matrix.

    Returns
    -------
    RegressionStart
        Factors ``m, n`` (SVD-normalised), ``w_in``, the full ``J_hat`` and a start for ``x0``.
    """
    # Large arrays stay float32 and are updated in place: on CPU the time goes into
    # allocating and touching (trials * time, N) temporaries, not into the products.
    x = to_currents(activity, target)
    trials, steps, units = x.shape
    chans = inputs.shape[-1]
    valid = np.asarray(mask[:, :-1] & mask[:, 1:], dtype=bool)
    x_now = x[:, :-1][valid]
    y = x[:, 1:][valid]  # a copy (boolean index): becomes the regression target in place
    first = np.asarray(mask[:, 0], dtype=bool)
    x0 = x[first, 0].mean(0) if first.any() else np.zeros(units)
    del x  # (trials, time, N): no longer needed
    y -= np.float32(1.0 - alpha) * x_now
    y /= np.float32(alpha)
    u_next = np.asarray(inputs, dtype=np.float32)[:, 1:][valid]
    feats = np.empty((x_now.shape[0], units + chans), dtype=np.float32)
    np.tanh(x_now, out=feats[:, :units])
    feats[:, units:] = u_next
    del x_now
    r_now = feats[:, :units]
    gram = (feats.T @ feats).astype(np.float64)
    lam = ridge * np.trace(gram) / gram.shape[0]
    cross = (feats.T @ y).astype(np.float64)
    coef = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), cross)  # (N + C, N)
    j_hat = coef[:units].T  # y ~ r J^T
    # Output directions of the fitted recurrent drive.
    # (right singular vectors of drive = r J^T are eigenvectors of J (r^T r) J^T)
    drive_cov = j_hat @ gram[:units, :units] @ j_hat.T  # gram's top-left block is r^T r
    _, eigvec = np.linalg.eigh(drive_cov)
    basis = eigvec[:, ::-1][:, :rank]  # (N, R) orthonormal, largest first
    m = basis * np.sqrt(units)
    n = j_hat.T @ basis * np.sqrt(units)  # m n^T / N = P J_hat
    total = float(np.sum(column_moments(y)[2]))  # sum of squared deviations, block by block (no float64 copy)
    # Refit W_in on what the rank-R recurrent drive leaves unexplained (in place on y).
    y -= (r_now @ n.astype(np.float32)) @ (m.T / units).astype(np.float32)  # rank R, never N x N
    resid = y
    if chans:
        u_gram = (u_next.T @ u_next).astype(np.float64)
        w_in = np.linalg.solve(u_gram + 1e-8 * np.eye(chans) * max(np.trace(u_gram), 1.0),
                               (u_next.T @ resid).astype(np.float64)).T
        resid -= u_next @ w_in.T.astype(np.float32)
    else:
        w_in = np.zeros((units, 0))
    flat = resid.ravel()
    r2 = 1.0 - float(flat @ flat) / max(total, 1e-300)
    log.info("regression start: rank %d explains %.4f of the one-step drive", rank, r2)
    return RegressionStart(m=m, n=n, w_in=w_in, j_full=j_hat, x0=x0, r2_drive=float(r2))
