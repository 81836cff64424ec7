"""Batched rollout of K low-rank networks of the same size as one tensor program.

Member ``k`` has connectivity ``J_k = m_k n_k^T / scale`` with ``m, n`` of shape
``(K, N, R)`` (ranks below ``R`` are padded with zero columns, which stay zero under
gradient descent: their gradients vanish).  Buffers are time-major
``(T, K, B, N)``; each Euler step costs two batched thin products (``torch.bmm``)
instead of ``2 K`` small ones, and the backward pass through time is the same
fused, hand-written one as :mod:`lrfit.models.rollout` (it is shape-agnostic).
"""

from __future__ import annotations

import torch

from .rollout import NONLINEARITIES, _run_backward, euler_loop, state_grad

Tensor = torch.Tensor


def thin_product(x: Tensor, w_t: Tensor, work: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """``x[k] @ w_t[k]^T`` for ``x (K, B, N)`` and a thin ``w_t (K, R, N)``: ``(K, B, R)``.

    A broadcast multiply-and-sum along the contiguous last axis (``torch.bmm`` with a
    trailing dimension of one or a few columns takes a slow path on CPU).  For rank 1,
    *work* (shaped like *x*) and *out* ``(K, B, 1)`` are reused buffers, so that a step
    allocates nothing: fresh large temporaries cost page faults on every step.
    """
    if w_t.shape[1] == 1:
        if work is None:
            return (x * w_t).sum(-1, keepdim=True)
        torch.mul(x, w_t, out=work)
        return torch.sum(work, -1, keepdim=True, out=out)
    return (x.unsqueeze(2) * w_t.unsqueeze(1)).sum(-1)


class BatchedLowRankRecurrence:
    """``out += alpha * r J_k^T`` for every member ``k`` through batched thin products.

    Parameters
    ----------
    m, n : Tensor
        ``(K, N, R)`` loadings (detached).
    scale : float
        ``J_k = m_k n_k^T / scale`` (the number of units).
    """

    def __init__(self, m: Tensor, n: Tensor, scale: float) -> None:
        self.m, self.scale = m, scale
        self.m_t = m.transpose(1, 2).contiguous()  # (K, R, N)
        self._n_scaled_t = (n / scale).transpose(1, 2).contiguous()  # (K, R, N)
        self._buffers: dict[tuple[int, ...], tuple[Tensor, Tensor, Tensor]] = {}

    def _work(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reused per-step buffers: an ``x``-shaped scratch, ``(K, B, R)`` and an ``x``-shaped result."""
        key = tuple(like.shape)
        if key not in self._buffers:
            k, b, _ = like.shape
            self._buffers[key] = (torch.empty_like(like), like.new_empty((k, b, self.m.shape[2])),
                                  torch.empty_like(like))
        return self._buffers[key]

    def add_forward(self, rates: Tensor, out: Tensor, alpha: float) -> None:
        """``out[k] += alpha * (rates[k] @ n_k / scale) @ m_k^T`` for rates, out ``(K, B, N)``."""
        work, kappa, _ = self._work(rates)
        kappa = thin_product(rates, self._n_scaled_t, work, kappa)
        if self.m_t.shape[1] == 1:  # an outer product: elementwise, no copy of out (baddbmm_ makes one)
            out.addcmul_(kappa, self.m_t, value=alpha)
        else:
            out.baddbmm_(kappa, self.m_t, alpha=alpha)

    def backward(self, grad: Tensor, alpha: float) -> Tensor:
        """``alpha * grad[k] @ J_k`` for grad ``(K, B, N)`` (a reused buffer: consume it before the next call)."""
        work, kappa, result = self._work(grad)
        kappa = thin_product(grad, self.m_t, work, kappa).mul_(alpha)
        if self.m_t.shape[1] == 1:
            return torch.mul(kappa, self._n_scaled_t, out=result)
        return torch.bmm(kappa, self._n_scaled_t, out=result)

    def weight_grads(self, big_g: Tensor, rates: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
        """Gradients of ``m`` and ``n`` (``(K, N, R)``) from ``G`` and rates, both ``(K, T*B, N)``."""
        kappa = thin_product(rates, self._n_scaled_t)  # (K, TB, R)
        grad_m = torch.bmm(kappa.transpose(1, 2), big_g).mul_(alpha).transpose(1, 2)
        back = thin_product(big_g, self.m_t)  # (K, TB, R)
        grad_n = torch.bmm(back.transpose(1, 2), rates).mul_(alpha / self.scale).transpose(1, 2)
        return grad_m, grad_n


class EnsembleRollout(torch.autograd.Function):
    """Differentiable batched rollout: ``forward(x0 (K,B,N), drive (T,K,B,N), alpha, nonlin, m, n, scale)``."""

    @staticmethod
    def forward(ctx, x0: Tensor, drive: Tensor, alpha: float, nonlin: str, m: Tensor, n: Tensor, scale: float):
        """Simulate the K networks; keep states and rates for the backward pass."""
        rec = BatchedLowRankRecurrence(m.detach(), n.detach(), float(scale))
        with torch.no_grad():
            states, rates = euler_loop(x0.detach().contiguous(), drive.detach().contiguous(), rec, alpha, nonlin)
        ctx.save_for_backward(states, rates, m, n)
        ctx.alpha, ctx.nonlin, ctx.scale = alpha, nonlin, float(scale)
        return states, rates[1:]

    @staticmethod
    def backward(ctx, grad_states: Tensor | None, grad_rates: Tensor | None):
        """Gradients of the start, the drive and the loadings from those of the states and rates."""
        states, rates, m, n = ctx.saved_tensors
        rec = BatchedLowRankRecurrence(m.detach(), n.detach(), ctx.scale)
        deriv = NONLINEARITIES[ctx.nonlin][2](rates)
        grad_x = state_grad(grad_states, grad_rates, deriv)
        steps, k, batch, units = states.shape
        big_g, grad_start = _run_backward(grad_x, deriv, rec, ctx.alpha)
        flat_g = big_g.permute(1, 0, 2, 3).reshape(k, steps * batch, units)
        flat_r = rates[:-1].permute(1, 0, 2, 3).reshape(k, steps * batch, units)
        grad_m, grad_n = rec.weight_grads(flat_g, flat_r, ctx.alpha)
        return grad_start, big_g, None, None, grad_m, grad_n, None


def ensemble_rollout(x0: Tensor, drive: Tensor, alpha: float, nonlin: str, m: Tensor, n: Tensor,
                     scale: float) -> tuple[Tensor, Tensor]:
    """Simulate K low-rank networks at once.

    Parameters
    ----------
    x0 : Tensor
        Initial states ``(K, B, N)``.
    drive : Tensor
        Time-major external drive ``(T, K, B, N)`` (``alpha * W_in u`` plus noise).
    alpha : float
        ``dt / tau`` (shared by the members).
    nonlin : str
        Name in :data:`lrfit.models.rollout.NONLINEARITIES`.
    m, n : Tensor
        ``(K, N, R)`` loadings.
    scale : float
        ``J_k = m_k n_k^T / scale``.

    Returns
    -------
    tuple of Tensor
        Time-major currents and rates ``(T, K, B, N)``.
    """
    return EnsembleRollout.apply(x0, drive, alpha, nonlin, m, n, scale)
