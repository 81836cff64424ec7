"""Latent trajectories of a low-rank network.

Without input, the currents of a rank-``R`` network relax onto ``span(M)``; with
inputs, onto ``span(M, W_in)``.  The latent variables are the coordinates of the
activity in these subspaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LrfitError
from ._common import jsonable, lowrank_params, to_numpy

__all__ = ["LatentTrajectories", "latent_trajectories", "subspace_bases"]


@dataclass(frozen=True)
class LatentTrajectories:
    """Latent coordinates of the activity of a low-rank network.

    Attributes
    ----------
    kappa : ndarray, (K, T, R)
        Recurrent latents ``kappa_r(t) = q_r . x(t)`` on the orthonormalised columns
        ``Q_M`` of ``M`` (thin QR, sign fixed so that ``q_r . m_r > 0``).
    v : ndarray, (K, T, C')
        Input-driven latents: coordinates on the input directions orthogonalised
        with respect to ``M`` (``C' <= C``: directions already inside ``span(M)``
        are dropped).
    kappa_m : ndarray, (K, T, R)
        Coordinates in the raw (possibly non-orthogonal) basis of the ``m`` columns,
        from the least-squares fit ``x ~ M kappa_m + W_in v_w``: the variables of
        the reduced dynamics ``kappa_dot = -kappa + n^T phi(x) / N`` (see
        :mod:`lrfit.analysis.fixed_points`).
    basis_rec : ndarray, (N, R)
        ``Q_M``.
    basis_inp : ndarray, (N, C')
        Orthonormal input directions ``Q_I`` (orthogonal to ``Q_M``).
    var_recurrent, var_input, var_total_explained : float
        Fractions of the activity variance in ``span(Q_M)``, ``span(Q_I)`` and their
        (orthogonal) sum.
    centered : bool
        Whether the activity was centred (per-unit mean over trials and time
        removed) before computing the variance fractions.
    """

    kappa: np.ndarray
    v: np.ndarray
    kappa_m: np.ndarray
    basis_rec: np.ndarray
    basis_inp: np.ndarray
    var_recurrent: float
    var_input: float
    var_total_explained: float
    centered: bool

    def to_json_dict(self) -> dict[str, Any]:
        """Variance fractions and shapes (the arrays are better saved with NumPy)."""
        return jsonable(
            {
                "var_recurrent": self.var_recurrent,
                "var_input": self.var_input,
                "var_total_explained": self.var_total_explained,
                "centered": self.centered,
                "kappa_shape": list(self.kappa.shape),
                "v_shape": list(self.v.shape),
            }
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays by documented key (``kappa``, ``v``, ``kappa_m``, ``basis_rec``, ``basis_inp``) for ``np.savez``."""
        return {k: getattr(self, k) for k in ("kappa", "v", "kappa_m", "basis_rec", "basis_inp")}


def subspace_bases(m: np.ndarray, w_in: np.ndarray, tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal bases of ``span(M)`` and of the input directions orthogonalised against it.

    ``Q_M R_M = M`` (thin QR, columns signed so that ``diag(R_M) >= 0``) and
    ``Q_I`` = orthonormal basis of ``(I - Q_M Q_M^T) W_in`` (directions whose
    residual norm is below ``tol * ||w||`` are dropped).

    Returns
    -------
    tuple of ndarray
        ``(Q_M (N, R), Q_I (N, C'))``.
    """
    qm, rm = np.linalg.qr(m)
    signs = np.where(np.diag(rm) < 0, -1.0, 1.0)
    qm = qm * signs
    if w_in.shape[1] == 0:
        return qm, np.zeros((m.shape[0], 0))
    resid = w_in - qm @ (qm.T @ w_in)
    u, s, _ = np.linalg.svd(resid, full_matrices=False)
    scale = max(np.linalg.norm(w_in, axis=0).max(), 1e-300)
    keep = s > tol * scale
    qi = u[:, keep]
    # Orient each input direction like the corresponding residual (Gram-Schmidt order where possible).
    if qi.shape[1] == resid.shape[1]:
        qi, ri = np.linalg.qr(resid)
        qi = qi * np.where(np.diag(ri) < 0, -1.0, 1.0)
    return qm, qi


def latent_trajectories(model: Any, currents: Any, center: bool = True) -> LatentTrajectories:
    """Project activity onto the recurrent and input subspaces of a low-rank network.

    Implements ``kappa(t) = Q_M^T x(t)`` and ``v(t) = Q_I^T x(t)`` with the bases of
    :func:`subspace_bases`, and the variance fractions

        ``f_rec = ||Q_M^T X_c||^2 / ||X_c||^2``,  ``f_inp = ||Q_I^T X_c||^2 / ||X_c||^2``

    where ``X_c`` is the activity (centred per unit over trials and time if
    ``center``).  Because ``Q_M`` and ``Q_I`` are orthogonal, ``f_rec + f_inp`` is
    the fraction explained by ``span(M, W_in)``; for a noiseless network started in
    ``span(M, W_in)`` it is 1.  ``kappa_m`` solves ``min ||x - M kappa_m - W_in v_w||``
    (coordinates on the raw ``m`` columns).

    Parameters
    ----------
    model : LowRankRNN
        The network (supplies ``M`` and ``W_in``).
    currents : array-like or Trajectory
        ``(K, T, N)`` (or ``(T, N)``) currents ``x``; a :class:`~lrfit.models.Trajectory`
        is accepted and its ``currents`` used.
    center : bool
        Remove each unit's mean before computing the variance fractions (the latents
        themselves are never centred).

    Returns
    -------
    LatentTrajectories
    """
    p = lowrank_params(model)
    x = to_numpy(getattr(currents, "currents", currents))
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != p.n_units:
        raise LrfitError(
            f"currents have shape {tuple(x.shape)} but the network has {p.n_units} units; pass (trials, time, "
            f"{p.n_units})."
        )
    if not np.all(np.isfinite(x)):
        raise LrfitError("currents contain NaN or infinite values; simulate again or drop those trials.")
    qm, qi = subspace_bases(p.m, p.w_in)
    kappa = x @ qm
    v = x @ qi
    basis = np.concatenate([p.m, p.w_in], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x.reshape(-1, p.n_units).T, rcond=None)
    kappa_m = coef[: p.rank].T.reshape(x.shape[0], x.shape[1], p.rank)
    xc = x - x.mean(axis=(0, 1), keepdims=True) if center else x
    total = float((xc**2).sum())
    if total <= 0:
        f_rec = f_inp = 0.0
    else:
        f_rec = float(((xc @ qm) ** 2).sum() / total)
        f_inp = float(((xc @ qi) ** 2).sum() / total)
    return LatentTrajectories(
        kappa=kappa,
        v=v,
        kappa_m=kappa_m,
        basis_rec=qm,
        basis_inp=qi,
        var_recurrent=f_rec,
        var_input=f_inp,
        var_total_explained=f_rec + f_inp,
        centered=bool(center),
    )
