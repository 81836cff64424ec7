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
import torch

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


#: Rows (trials x steps) of one chunk of the regression's sums: the design matrix is never formed whole.
CHUNK_ROWS = 8192


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

    The sums it needs (the regressors' Gram matrix, their products with the targets, the
    targets' sum of squares) are accumulated over chunks of trials, so memory stays at
    a few chunks of ``(CHUNK_ROWS, N)`` whatever the number of trials; everything after
    them (the ridge solve, the top-R output directions, the input weights refitted on
    what the rank-R drive leaves and the R^2 of the drive) is algebra on those sums.

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
    from scipy.linalg import eigh

    activity, inputs, mask = np.asarray(activity), np.asarray(inputs), np.asarray(mask, dtype=bool)
    trials, steps, units = activity.shape
    chans = inputs.shape[-1]
    dim = units + chans
    gram = np.zeros((dim, dim))
    cross = np.zeros((dim, units))
    y_squares, y_sum, rows = 0.0, np.zeros(units), 0
    first_sum, first_count = np.zeros(units), 0
    per_chunk = max(1, CHUNK_ROWS // max(steps - 1, 1))
    for k0 in range(0, trials, per_chunk):
        # Float32 chunks updated in place: the time goes into touching (rows, N) arrays, not into the products.
        x = to_currents(activity[k0 : k0 + per_chunk], target)
        chunk_mask = mask[k0 : k0 + per_chunk]
        first = chunk_mask[:, 0]
        first_sum += x[first, 0].sum(0, dtype=np.float64)
        first_count += int(first.sum())
        valid = chunk_mask[:, :-1] & chunk_mask[:, 1:]
        x_now = x[:, :-1][valid]
        y = x[:, 1:][valid]  # a copy (boolean index): becomes the regression target in place
        y -= np.float32(1.0 - alpha) * x_now
        y /= np.float32(alpha)
        feats = np.empty((len(y), dim), dtype=np.float32)
        np.tanh(x_now, out=feats[:, :units])
        feats[:, units:] = np.asarray(inputs[k0 : k0 + per_chunk], dtype=np.float32)[:, 1:][valid]
        f, t = torch.from_numpy(feats), torch.from_numpy(y)  # torch's CPU products beat numpy's BLAS here (2x)
        gram += (f.T @ f).numpy()
        cross += (f.T @ t).numpy()
        y_squares += float(np.vdot(y, y))
        y_sum += y.sum(0, dtype=np.float64)
        rows += len(y)
    lam = ridge * np.trace(gram) / dim
    coef = np.linalg.solve(gram + lam * np.eye(dim), cross)  # (N + C, N)
    j_hat = coef[:units].T  # y ~ r J^T
    # Output directions of the fitted recurrent drive: the right singular vectors of drive = r J^T are the
    # eigenvectors of J (r^T r) J^T (gram's top-left block is r^T r); only the top R are computed.
    drive_cov = j_hat @ gram[:units, :units] @ j_hat.T
    _, eigvec = eigh(drive_cov, subset_by_index=[units - rank, units - 1])
    basis = eigvec[:, ::-1]  # (N, R) orthonormal, largest first
    m = basis * np.sqrt(units)
    n = j_hat.T @ basis * np.sqrt(units)  # m n^T / N = P J_hat
    recurrent = n @ m.T / units  # (N, N) coefficients of r in the rank-R drive (never applied to the data)
    # Refit W_in on what the rank-R recurrent drive leaves: u^T (y - r B) from the sums.
    if chans:
        u_gram = gram[units:, units:]
        u_resid = cross[units:] - gram[units:, :units] @ recurrent
        w_in = np.linalg.solve(u_gram + 1e-8 * np.eye(chans) * max(np.trace(u_gram), 1.0), u_resid).T
    else:
        w_in = np.zeros((units, 0))
    # R^2 of the drive: |y - feats B|^2 = |y|^2 - 2 tr(B^T feats^T y) + tr(B^T G B), B = [recurrent; W_in^T]
    coefs = np.concatenate([recurrent, w_in.T], 0)
    residual = y_squares - 2.0 * float(np.sum(coefs * cross)) + float(np.sum(coefs * (gram @ coefs)))
    total = y_squares - float(y_sum @ y_sum) / max(rows, 1)
    r2 = 1.0 - residual / max(total, 1e-300)
    x0 = first_sum / first_count if first_count else np.zeros(units)
    log.info("regression start: rank %d explains %.4f of the one-step drive", rank, r2)
    return RegressionStart(m=m, n=n, w_in=w_in, j_full=j_hat, x0=x0, r2_drive=float(r2))
