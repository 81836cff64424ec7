"""The simulation core shared by every network: Euler steps with a fused backward pass.

The dynamics (DESIGN.md) are

    x[t+1] = (1 - alpha) x[t] + alpha * J phi(x[t]) + d[t]

where ``d[t] = alpha * W_in u[t] + noise[t]`` is precomputed for all steps in one
matrix product by the caller.  ``J`` is applied through a callable pair so that a
low-rank ``J = M N^T / N_units`` is never formed: one step costs
``O(trials * N * R)``.

Autograd on a Python loop records a dozen small nodes per step; on CPU that
overhead dominates.  The :class:`torch.autograd.Function` subclasses here run the
loop without recording a graph and compute the exact gradient with a hand-written
backward pass through time (a handful of fused kernels per step), then form the
weight gradients with one large matrix product each.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Tensor = torch.Tensor

#: name -> (phi(x), phi'(x) given x and phi(x))
NONLINEARITIES: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor], Tensor]]] = {
    "tanh": (torch.tanh, lambda x, r: 1.0 - r * r),
    "relu": (torch.relu, lambda x, r: (x > 0).to(x.dtype)),
    "softplus": (torch.nn.functional.softplus, lambda x, r: torch.sigmoid(x)),
    "identity": (lambda x: x, lambda x, r: torch.ones_like(x)),
}


def _forward_loop(
    x0: Tensor, drive: Tensor, alpha: float, phi: Callable[[Tensor], Tensor], recur: Callable[[Tensor], Tensor]
) -> tuple[Tensor, Tensor]:
    """Run the Euler loop; return states ``(B, T, N)`` and the rates ``phi`` of the pre-step states."""
    batch, steps, units = drive.shape
    states = torch.empty_like(drive)
    rates_prev = torch.empty_like(drive)  # phi(x[t]) for t = 0..T-1
    x = x0.expand(batch, units) if x0.dim() == 1 else x0
    decay = 1.0 - alpha
    for t in range(steps):
        r = phi(x)
        rates_prev[:, t] = r
        x = torch.add(drive[:, t], recur(r), alpha=alpha).add_(x, alpha=decay)
        states[:, t] = x
    return states, rates_prev


def _backward_loop(
    grad_states: Tensor,
    states: Tensor,
    x0: Tensor,
    rates_prev: Tensor,
    alpha: float,
    dphi: Callable[[Tensor, Tensor], Tensor],
    recur_t: Callable[[Tensor], Tensor],
) -> tuple[Tensor, Tensor]:
    """Backward pass through time.

    Returns ``(G, g0)`` where ``G[:, t] = dL/dx[t+1]`` (total, including the path
    through later steps; it is also ``dL/d drive[:, t]``) and ``g0 = dL/dx[0]``.
    """
    batch, steps, units = states.shape
    big_g = torch.empty_like(states)
    decay = 1.0 - alpha
    g = grad_states[:, steps - 1].clone()
    for t in range(steps - 1, -1, -1):
        big_g[:, t] = g
        x_t = states[:, t - 1] if t > 0 else x0.expand(batch, units)
        back = dphi(x_t, rates_prev[:, t]).mul_(recur_t(g)).mul_(alpha).add_(g, alpha=decay)
        g = back.add_(grad_states[:, t - 1]) if t > 0 else back
    return big_g, g


class LowRankRollout(torch.autograd.Function):
    """Rollout with ``J = m n^T / scale``; gradients for ``x0, drive, m, n``."""

    @staticmethod
    def forward(ctx, x0: Tensor, drive: Tensor, m: Tensor, n: Tensor, alpha: float, scale: float, nonlin: str):
        phi, _ = NONLINEARITIES[nonlin]
        n_scaled = n / scale

        def recur(r: Tensor) -> Tensor:
            return (r @ n_scaled) @ m.T

        with torch.no_grad():
            states, rates_prev = _forward_loop(x0, drive, alpha, phi, recur)
        ctx.save_for_backward(x0, states, rates_prev, m, n)
        ctx.alpha, ctx.scale, ctx.nonlin = alpha, scale, nonlin
        return states

    @staticmethod
    def backward(ctx, grad_states: Tensor):
        x0, states, rates_prev, m, n = ctx.saved_tensors
        alpha, scale = ctx.alpha, ctx.scale
        _, dphi = NONLINEARITIES[ctx.nonlin]
        n_scaled = n / scale

        def recur_t(g: Tensor) -> Tensor:
            return (g @ m) @ n_scaled.T

        big_g, g0 = _backward_loop(grad_states.contiguous(), states, x0, rates_prev, alpha, dphi, recur_t)
        units = m.shape[0]
        flat_g = big_g.reshape(-1, units)
        flat_r = rates_prev.reshape(-1, units)
        kappa = flat_r @ n_scaled  # (B*T, R)
        grad_m = (flat_g.T @ kappa).mul_(alpha)
        grad_n = (flat_r.T @ (flat_g @ m)).mul_(alpha / scale)
        grad_x0 = None
        if ctx.needs_input_grad[0]:
            grad_x0 = g0.sum(0) if x0.dim() == 1 else g0
        return grad_x0, big_g, grad_m, grad_n, None, None, None


class FullRankRollout(torch.autograd.Function):
    """Rollout with a dense ``J``; gradients for ``x0, drive, J``."""

    @staticmethod
    def forward(ctx, x0: Tensor, drive: Tensor, j: Tensor, alpha: float, nonlin: str):
        phi, _ = NONLINEARITIES[nonlin]
        jt = j.T.contiguous()

        def recur(r: Tensor) -> Tensor:
            return r @ jt

        with torch.no_grad():
            states, rates_prev = _forward_loop(x0, drive, alpha, phi, recur)
        ctx.save_for_backward(x0, states, rates_prev, j)
        ctx.alpha, ctx.nonlin = alpha, nonlin
        return states

    @staticmethod
    def backward(ctx, grad_states: Tensor):
        x0, states, rates_prev, j = ctx.saved_tensors
        alpha = ctx.alpha
        _, dphi = NONLINEARITIES[ctx.nonlin]

        def recur_t(g: Tensor) -> Tensor:
            return g @ j

        big_g, g0 = _backward_loop(grad_states.contiguous(), states, x0, rates_prev, alpha, dphi, recur_t)
        units = j.shape[0]
        grad_j = (big_g.reshape(-1, units).T @ rates_prev.reshape(-1, units)).mul_(alpha)
        grad_x0 = None
        if ctx.needs_input_grad[0]:
            grad_x0 = g0.sum(0) if x0.dim() == 1 else g0
        return grad_x0, big_g, grad_j, None, None


def reference_rollout(
    x0: Tensor, drive: Tensor, j_apply: Callable[[Tensor], Tensor], alpha: float, nonlin: str = "tanh"
) -> Tensor:
    """Plain autograd version of the rollout, for tests and unusual connectivity.

    Parameters
    ----------
    x0 : Tensor
        Initial state ``(N,)`` or ``(B, N)``.
    drive : Tensor
        ``(B, T, N)`` external drive already multiplied by ``alpha`` plus noise.
    j_apply : callable
        Maps rates ``(B, N)`` to recurrent input ``(B, N)`` (``r @ J^T``).
    alpha : float
        ``dt / tau``.
    nonlin : str
        Name in :data:`NONLINEARITIES`.

    Returns
    -------
    Tensor
        States ``x[1..T]`` of shape ``(B, T, N)``.
    """
    phi, _ = NONLINEARITIES[nonlin]
    batch, steps, units = drive.shape
    x = x0.expand(batch, units) if x0.dim() == 1 else x0
    out = []
    for t in range(steps):
        x = (1 - alpha) * x + alpha * j_apply(phi(x)) + drive[:, t]
        out.append(x)
    return torch.stack(out, 1)
