"""Training losses on observed activity: the masked mean squared error and the Poisson negative log-likelihood.

Both are ``sum(weight * terms) / (sum(weight) * n_obs)``: the mean over the valid entries.  The latent
loss engine (:mod:`lrfit.fitting.latent`) computes the same losses of a low-rank network without
simulating it unit by unit.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

Tensor = torch.Tensor


def masked_mse(pred: Tensor, target: Tensor, weight: Tensor | None, dims: tuple[int, ...] | None = None) -> Tensor:
    """``sum(weight * (pred - target)**2) / (sum(weight) * n_obs)`` over *dims* (all by default).

    Parameters
    ----------
    pred, target : Tensor
        ``(..., n_obs)`` activity; the last axis holds the neurons.
    weight : Tensor or None
        Mask of *pred* without its last axis (1 where the bin counts), or ``None``
        when every bin counts.
    dims : tuple of int, optional
        Axes to average over (including the last); all of them by default.

    Returns
    -------
    Tensor
        The loss (one value per remaining index when *dims* leaves some axes).
    """
    return _masked_mean((pred - target).square(), weight, dims)


def _masked_mean(terms: Tensor, weight: Tensor | None, dims: tuple[int, ...] | None) -> Tensor:
    """``sum(weight * terms) / (sum(weight) * n_obs)`` over *dims* (all by default); *weight* lacks the last axis."""
    if weight is None:
        return terms.mean() if dims is None else terms.mean(dim=dims)
    w = weight.unsqueeze(-1).to(terms.dtype)
    if dims is None:
        return (terms * w).sum() / (w.sum() * terms.shape[-1]).clamp_min(1.0)
    return (terms * w).sum(dim=dims) / (w.sum(dim=dims) * terms.shape[-1]).clamp_min(1.0)


#: Floor of ``softplus`` in the Poisson terms: keeps ``log(rate)`` finite far below a neuron's range.
RATE_FLOOR = 1e-8


class CountReadout(NamedTuple):
    """Poisson observation of the observed units: expected count per bin ``scale * softplus(gain * s + bias)``.

    ``s`` is each observed unit's current ``x`` or rate ``phi(x)`` (the loss's
    ``target_kind``).  Every field is ``(n_obs,)``, or ``(K, n_obs)`` for K members.

    Attributes
    ----------
    gain, bias : Tensor
        Learnt per-neuron gain ``a_i`` and offset ``b_i`` of the softplus argument.
    scale : Tensor
        Fixed per-neuron unit of the expected count (counts per bin at ``softplus = 1``).
    """

    gain: Tensor
    bias: Tensor
    scale: Tensor


def count_terms(s: Tensor, counts: Tensor, gain: Tensor, bias: Tensor, scale: Tensor,
                grad: bool = False) -> tuple[Tensor, Tensor | None]:
    """Per-entry Poisson negative log-likelihood (without ``log(y!)``) and its derivative in ``eta``.

    ``eta = gain * s + bias``, ``lambda = scale * softplus(eta)``; the terms are
    ``lambda - y log(lambda)`` and ``d/d eta = sigmoid(eta) (scale - y / softplus(eta))``.

    Parameters
    ----------
    s : Tensor
        ``(..., n_obs)`` currents or rates of the observed units.
    counts : Tensor
        ``(..., n_obs)`` counts ``y`` (non-negative, integers or not).
    gain, bias, scale : Tensor
        Broadcastable to ``s``.
    grad : bool
        Also return the derivative in ``eta``.

    Returns
    -------
    tuple of Tensor
        The terms, and the derivative (or None).
    """
    eta = torch.addcmul(bias, s, gain)
    soft = torch.nn.functional.softplus(eta).clamp_min_(RATE_FLOOR)
    rate = soft * scale
    terms = rate - torch.xlogy(counts, rate)
    if not grad:
        return terms, None
    return terms, torch.sigmoid(eta).mul_(scale - counts / soft)


def poisson_nll(s: Tensor, counts: Tensor, weight: Tensor | None, readout: CountReadout,
                dims: tuple[int, ...] | None = None) -> Tensor:
    """Masked mean Poisson negative log-likelihood of counts under :class:`CountReadout` (autograd).

    The same normalisation as :func:`masked_mse`: ``sum(weight * terms) / (sum(weight) * n_obs)``,
    with the terms of :func:`count_terms` (``log(y!)`` left out: it does not depend on the model).

    Parameters
    ----------
    s : Tensor
        ``(..., T, n_obs)`` currents or rates of the observed units.
    counts : Tensor
        Counts of the same shape.
    weight : Tensor or None
        Mask of *s* without its last axis, or None.
    readout : CountReadout
        Gain, offset and scale, broadcastable to *s* along the last axis (members first).
    dims : tuple of int, optional
        Axes to average over (all by default).

    Returns
    -------
    Tensor
    """
    lead = s.dim() - readout.gain.dim()
    shape = readout.gain.shape[:-1] + (1,) * lead + readout.gain.shape[-1:]
    gain, bias, scale = (v.reshape(shape) for v in readout)
    return _masked_mean(count_terms(s, counts, gain, bias, scale)[0], weight, dims)
