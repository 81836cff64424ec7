"""Mean-field reduction of Gaussian-mixture low-rank networks.

For a network whose loadings ``y_i = (m_i, n_i, w_i, ...)`` are drawn from a
Gaussian mixture (population ``p``: weight ``alpha_p``, mean ``mu^p``, covariance
``Sigma^p``), the current of a neuron of population ``p`` at latent state
``kappa`` with (filtered) input ``v`` is ``x = m . kappa + w . v``, Gaussian with

    mean  mu_x^p   = mu_m^p . kappa + mu_w^p . v
    var   Delta_p  = [kappa; v]^T Sigma^p_{[m w],[m w]} [kappa; v].

For ``N -> infinity`` the latent dynamics ``kappa_dot = -kappa + <n phi(x)>`` become,
by Stein's lemma (``E[n phi(x)] = E[n] E[phi(x)] + Cov(n, x) E[phi'(x)]`` for jointly
Gaussian ``n, x``),

    kappa_dot_k = -kappa_k + sum_p alpha_p ( mu_{n_k}^p <phi>_p
                  + (sum_l Sigma^p_{n_k m_l} kappa_l + sum_c Sigma^p_{n_k w_c} v_c) <phi'>_p )

with ``<f>_p = E[f(mu_x^p + sqrt(Delta_p) z)]``, ``z ~ N(0,1)`` (Gauss–Hermite).
With zero-mean populations this is the classic

    kappa_dot = -kappa + sigma~_nm kappa + sigma~_nw v,
    sigma~_ab = sum_p alpha_p Sigma^p_ab <phi'>_p,

and with non-zero means the extra term ``sum_p alpha_p mu_n^p <phi>_p`` is added
(exact, nothing assumed beyond Gaussian populations and ``N -> infinity``).  The
input variable is the low-pass filtered input ``v_dot = -v + u`` (the network's
input component), equal to ``u`` for a tonic input after the transient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LrfitError
from ._common import fields_json, gauss_hermite, phi_fns, to_numpy
from .populations import MixtureStats, PopulationResult

__all__ = ["EffectiveOverlaps", "effective_overlaps", "meanfield_flow", "meanfield_trajectory"]


def _stats(stats: MixtureStats | PopulationResult) -> MixtureStats:
    return stats.mixture if isinstance(stats, PopulationResult) else stats


def _moments(st: MixtureStats, kappa: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(B, P)`` and variance ``(B, P)`` of the current in each population."""
    sl = st.slices
    mw = np.r_[np.arange(st.rank), np.arange(sl["w_in"].start, sl["w_in"].stop)]
    z = np.concatenate([kappa, v], axis=1)  # (B, R + C)
    mean = z @ st.means[:, mw].T
    cov = st.covariances[:, mw][:, :, mw]  # (P, R+C, R+C)
    var = np.einsum("bi,pij,bj->bp", z, cov, z)
    return mean, np.maximum(var, 0.0)


def _gains(st: MixtureStats, kappa: np.ndarray, v: np.ndarray, nonlinearity: str, order: int):
    phi, dphi, _ = phi_fns(nonlinearity)
    zq, wq = gauss_hermite(order)
    mean, var = _moments(st, kappa, v)
    x = mean[..., None] + np.sqrt(var)[..., None] * zq
    return (phi(x) * wq).sum(-1), (dphi(x) * wq).sum(-1), mean, var


def _prep(st: MixtureStats, kappa: Any, v: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    kappa = np.asarray(to_numpy(kappa), float)
    if kappa.shape[-1] != st.rank:
        raise LrfitError(
            f"kappa has {kappa.shape[-1]} coordinates but the mixture has rank {st.rank}; pass (..., {st.rank})."
        )
    shape = kappa.shape[:-1]
    kappa = kappa.reshape(-1, st.rank)
    if v is None:
        v = np.zeros((kappa.shape[0], st.n_inputs))
    else:
        v = np.asarray(to_numpy(v), float)
        if v.shape[-1] != st.n_inputs:
            raise LrfitError(
                f"The input has {v.shape[-1]} channels but the mixture has {st.n_inputs}; pass (..., {st.n_inputs})."
            )
        v = np.broadcast_to(v, shape + (st.n_inputs,)).reshape(-1, st.n_inputs)
    return kappa, v, shape


@dataclass(frozen=True)
class EffectiveOverlaps:
    """State-dependent effective overlaps of a Gaussian-mixture network at one point.

    Attributes
    ----------
    sigma_nm : ndarray, (R, R)
        ``sigma~_{n_k m_l} = sum_p alpha_p Sigma^p_{n_k m_l} <phi'>_p``.
    sigma_nw : ndarray, (R, C)
        ``sigma~_{n_k w_c} = sum_p alpha_p Sigma^p_{n_k w_c} <phi'>_p``.
    mean_term : ndarray, (R,)
        ``sum_p alpha_p mu_{n_k}^p <phi>_p`` (zero for zero-mean ``n``).
    gain : ndarray, (P,)
        ``<phi'>_p``.
    mean_current : ndarray, (P,)
        ``mu_x^p``.
    variance : ndarray, (P,)
        ``Delta_p``.
    """

    sigma_nm: np.ndarray
    sigma_nw: np.ndarray
    mean_term: np.ndarray
    gain: np.ndarray
    mean_current: np.ndarray
    variance: np.ndarray

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return fields_json(self)


def effective_overlaps(
    stats: MixtureStats | PopulationResult, kappa: Any, v: Any = None, nonlinearity: str = "tanh", order: int = 80
) -> EffectiveOverlaps:
    """Effective overlaps ``sigma~_ab = sum_p alpha_p Sigma^p_ab <phi'>_p`` at latent state ``kappa``.

    ``<phi'>_p`` is the Gauss–Hermite average of ``phi'(x)`` over
    ``x ~ N(mu_x^p, Delta_p)`` (module docstring); ``Delta_p = kappa^T Sigma^p_mm kappa
    + 2 kappa^T Sigma^p_mw v + v^T Sigma^p_ww v``.

    Parameters
    ----------
    stats : MixtureStats or PopulationResult
        Gaussian-mixture statistics of the loadings.
    kappa : array-like, (R,)
        Latent state.
    v : array-like, (C,), optional
        (Filtered) input.
    nonlinearity : str
        Transfer function.
    order : int
        Gauss–Hermite order.

    Returns
    -------
    EffectiveOverlaps
    """
    st = _stats(stats)
    k, vv, _ = _prep(
        st, np.asarray(kappa, float).reshape(1, -1), None if v is None else np.asarray(v, float).reshape(1, -1)
    )
    g_phi, g_dphi, mean, var = _gains(st, k, vv, nonlinearity, order)
    sl = st.slices
    wg = st.weights * g_dphi[0]  # (P,)
    cov_nm = st.covariances[:, sl["n"], sl["m"]]
    cov_nw = st.covariances[:, sl["n"], sl["w_in"]]
    return EffectiveOverlaps(
        sigma_nm=np.einsum("p,pkl->kl", wg, cov_nm),
        sigma_nw=np.einsum("p,pkc->kc", wg, cov_nw),
        mean_term=(st.weights * g_phi[0]) @ st.means[:, sl["n"]],
        gain=g_dphi[0],
        mean_current=mean[0],
        variance=var[0],
    )


def meanfield_flow(
    stats: MixtureStats | PopulationResult, kappa: Any, v: Any = None, nonlinearity: str = "tanh", order: int = 80
) -> np.ndarray:
    """Mean-field latent velocity ``F_mf(kappa; v)`` (module docstring), vectorised.

    ``F_mf,k = -kappa_k + sum_p alpha_p [mu_{n_k}^p <phi>_p + (Sigma^p_{n_k m} kappa
    + Sigma^p_{n_k w} v) <phi'>_p]``.

    Parameters
    ----------
    stats : MixtureStats or PopulationResult
        Mixture statistics.
    kappa : array-like, (..., R)
        Latent states.
    v : array-like, (C,) or (..., C), optional
        (Filtered) input, broadcast against ``kappa``.
    nonlinearity : str
        Transfer function.
    order : int
        Gauss–Hermite order.

    Returns
    -------
    ndarray, (..., R)
    """
    st = _stats(stats)
    k, vv, shape = _prep(st, kappa, v)
    g_phi, g_dphi, _, _ = _gains(st, k, vv, nonlinearity, order)  # (B, P)
    sl = st.slices
    cov_nm = st.covariances[:, sl["n"], sl["m"]]  # (P, R, R)
    cov_nw = st.covariances[:, sl["n"], sl["w_in"]]  # (P, R, C)
    lin = np.einsum("pkl,bl->bpk", cov_nm, k) + np.einsum("pkc,bc->bpk", cov_nw, vv)
    drive = np.einsum("p,bp,bpk->bk", st.weights, g_dphi, lin) + (g_phi * st.weights) @ st.means[:, sl["n"]]
    return (-k + drive).reshape(shape + (st.rank,))


def meanfield_trajectory(
    stats: MixtureStats | PopulationResult,
    inputs: Any,
    kappa0: Any = None,
    v0: Any = None,
    alpha: float = 0.2,
    nonlinearity: str = "tanh",
    order: int = 80,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate the mean-field dynamics with the network's Euler scheme.

    ``kappa[t+1] = kappa[t] + alpha F_mf(kappa[t]; v[t])`` and
    ``v[t+1] = v[t] + alpha (-v[t] + u[t])``: the same discretisation as the
    network (``x = m kappa + W_in v``), so ``kappa[1..T]`` compares step by step
    with the latents of a simulated network started at ``x0 = m kappa0 + W_in v0``.

    Parameters
    ----------
    stats : MixtureStats or PopulationResult
        Mixture statistics.
    inputs : array-like, (T, C)
        Input time series ``u[0..T-1]``.
    kappa0 : array-like, (R,), optional
        Initial latent state (zeros).
    v0 : array-like, (C,), optional
        Initial filtered input (zeros).
    alpha : float
        ``dt / tau``.
    nonlinearity : str
        Transfer function.
    order : int
        Gauss–Hermite order.

    Returns
    -------
    tuple of ndarray
        ``kappa (T, R)`` and ``v (T, C)`` after each step.
    """
    st = _stats(stats)
    u = (
        np.asarray(to_numpy(inputs), float).reshape(-1, st.n_inputs)
        if st.n_inputs
        else np.zeros((np.shape(inputs)[0], 0))
    )
    k = np.zeros(st.rank) if kappa0 is None else np.asarray(kappa0, float).copy()
    v = np.zeros(st.n_inputs) if v0 is None else np.asarray(v0, float).copy()
    ks, vs = np.empty((u.shape[0], st.rank)), np.empty((u.shape[0], st.n_inputs))
    for t in range(u.shape[0]):
        f = meanfield_flow(st, k[None], v[None], nonlinearity, order)[0]
        k = k + alpha * f
        v = v + alpha * (-v + u[t])
        ks[t], vs[t] = k, v
    return ks, vs
