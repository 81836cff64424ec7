"""The simulation core shared by every network: Euler steps with a fused backward pass.

The dynamics (DESIGN.md) are

    x[t+1] = (1 - alpha) x[t] + alpha * J phi(x[t]) + d[t]

where ``d[t] = alpha * W_in u[t] + noise[t]`` is precomputed for all steps in one
matrix product by the caller.  ``J`` is applied through the :class:`Recurrence`
interface so that a low-rank ``J = M N^T / N_units`` is never formed: one step
costs ``O(trials * N * R)``.

Autograd on a Python loop records a dozen small nodes per step, and on CPU that
overhead dominates.  :class:`Rollout` instead runs the loop without recording a
graph, in time-major contiguous buffers written in place, and computes the exact
gradient with a hand-written backward pass through time (two thin matrix products
and two fused elementwise kernels per step); the weight gradients are then one
large matrix product each.  The rollout returns both the currents and the rates,
so the transfer function is evaluated once per state.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

Tensor = torch.Tensor


def _tanh_into(x: Tensor, out: Tensor) -> Tensor:
    # torch's CPU tanh is several times slower than numpy's vectorised one on
    # small blocks; both are accurate to a few ulp.  The buffers are contiguous.
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.is_contiguous():
        np.tanh(x.numpy(), out=out.numpy())
        return out
    return torch.tanh(x, out=out)


def _relu_into(x: Tensor, out: Tensor) -> Tensor:
    return torch.clamp(x, min=0, out=out)


def _softplus_into(x: Tensor, out: Tensor) -> Tensor:
    out.copy_(torch.nn.functional.softplus(x))
    return out


def _identity_into(x: Tensor, out: Tensor) -> Tensor:
    return out.copy_(x)


#: name -> (phi(x), phi written into a buffer, phi'(x) expressed through r = phi(x))
NONLINEARITIES: dict[
    str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]
] = {
    "tanh": (torch.tanh, _tanh_into, lambda r: r.square().neg_().add_(1.0)),
    "relu": (torch.relu, _relu_into, lambda r: (r > 0).to(r.dtype)),
    "softplus": (torch.nn.functional.softplus, _softplus_into, lambda r: torch.expm1(r).div_(torch.exp(r))),
    "identity": (lambda x: x, _identity_into, lambda r: torch.ones_like(r)),
}


class Recurrence:
    """How ``J`` acts: ``out += alpha * r J^T`` (forward) and ``alpha * g J`` (backward).

    Subclasses hold detached weights; :meth:`weight_grads` turns the stored
    sequences into the gradients of the weights.
    """

    def add_forward(self, rates: Tensor, out: Tensor, alpha: float) -> None:  # pragma: no cover
        """Add the recurrent drive ``alpha J rates`` to *out*."""
        raise NotImplementedError

    def backward(self, grad: Tensor, alpha: float) -> Tensor:  # pragma: no cover
        """The recurrent part of the gradient in the rates, from *grad* in the next states."""
        raise NotImplementedError

    def weight_grads(self, big_g: Tensor, rates: Tensor, alpha: float) -> tuple[Tensor, ...]:  # pragma: no cover
        """The weights' gradients from the states' gradients *big_g* and the *rates*."""
        raise NotImplementedError


class LowRankRecurrence(Recurrence):
    """``J = m n^T / scale`` applied through two thin products."""

    def __init__(self, m: Tensor, n: Tensor, scale: float) -> None:
        self.m, self.n, self.scale = m, n, scale
        self.n_scaled = n / scale
        self.m_t = m.T.contiguous()
        self._n_scaled_t = self.n_scaled.T.contiguous()

    def add_forward(self, rates: Tensor, out: Tensor, alpha: float) -> None:
        """Add the recurrent drive ``alpha J rates`` to *out*."""
        out.addmm_(rates @ self.n_scaled, self.m_t, alpha=alpha)

    def backward(self, grad: Tensor, alpha: float) -> Tensor:
        """The recurrent part of the gradient in the rates, from *grad* in the next states."""
        return (grad @ self.m).mul_(alpha) @ self._n_scaled_t

    def weight_grads(self, big_g: Tensor, rates: Tensor, alpha: float) -> tuple[Tensor, ...]:
        """The weights' gradients from the states' gradients *big_g* and the *rates*."""
        grad_m = (big_g.T @ (rates @ self.n_scaled)).mul_(alpha)
        grad_n = (rates.T @ (big_g @ self.m)).mul_(alpha / self.scale)
        return grad_m, grad_n


class DenseRecurrence(Recurrence):
    """A dense ``J``."""

    def __init__(self, j: Tensor) -> None:
        self.j = j
        self.j_t = j.T.contiguous()

    def add_forward(self, rates: Tensor, out: Tensor, alpha: float) -> None:
        """Add the recurrent drive ``alpha J rates`` to *out*."""
        out.addmm_(rates, self.j_t, alpha=alpha)

    def backward(self, grad: Tensor, alpha: float) -> Tensor:
        """The recurrent part of the gradient in the rates, from *grad* in the next states."""
        return (grad @ self.j).mul_(alpha)

    def weight_grads(self, big_g: Tensor, rates: Tensor, alpha: float) -> tuple[Tensor, ...]:
        """The weights' gradients from the states' gradients *big_g* and the *rates*."""
        return ((big_g.T @ rates).mul_(alpha),)


def _run_forward(x0: Tensor, drive: Tensor, rec: Recurrence, alpha: float, nonlin: str) -> tuple[Tensor, Tensor]:
    """Euler loop in time-major buffers; returns states ``x[1..T]`` and rates ``phi(x[0..T])``."""
    _, batch, units = drive.shape
    start = x0.expand(batch, units).contiguous() if x0.dim() == 1 else x0.contiguous()
    return euler_loop(start, drive, rec, alpha, nonlin)


def state_grad(grad_states: Tensor | None, grad_rates: Tensor | None, deriv: Tensor) -> Tensor:
    """Gradient on the states ``x[1..T]`` from the gradients on the returned states and rates."""
    if grad_rates is None:
        return grad_states.contiguous()
    grad_x = grad_rates * deriv[1:]
    if grad_states is not None:
        grad_x += grad_states
    return grad_x


def euler_loop(start: Tensor, drive: Tensor, rec: Recurrence, alpha: float, nonlin: str) -> tuple[Tensor, Tensor]:
    """``x[t+1] = (1 - alpha) x[t] + drive[t] + alpha J phi(x[t])`` into preallocated buffers.

    *drive* is ``(T, ...)`` time-major (input drive and noise, already scaled), *start* the
    state at t = 0 with the shape of ``drive[0]``; *rec* adds the recurrent term (one
    network or a batched ensemble).  Returns states ``x[1..T]`` and rates ``phi(x[0..T])``.
    """
    steps = drive.shape[0]
    _, phi_into, _ = NONLINEARITIES[nonlin]
    states = torch.empty_like(drive)
    rates = torch.empty((steps + 1, *drive.shape[1:]), dtype=drive.dtype, device=drive.device)
    phi_into(start, rates[0])
    decay = 1.0 - alpha
    x = start
    for t in range(steps):
        out = states[t]
        torch.add(drive[t], x, alpha=decay, out=out)
        rec.add_forward(rates[t], out, alpha)
        phi_into(out, rates[t + 1])
        x = out
    return states, rates


def _run_backward(grad_x: Tensor, deriv_prev: Tensor, rec: Recurrence, alpha: float) -> tuple[Tensor, Tensor]:
    """Backward pass through time.

    ``grad_x[t]`` is the direct gradient on ``x[t+1]`` and ``deriv_prev[t]`` is
    ``phi'(x[t])`` for ``t = 0..T``.  Returns ``G`` with ``G[t] = dL/dx[t+1]`` in
    total (also ``dL/d drive[t]``) and ``dL/dx[0]``.
    """
    steps = grad_x.shape[0]
    big_g = torch.empty_like(grad_x)
    big_g[steps - 1] = grad_x[steps - 1]
    decay = 1.0 - alpha
    for t in range(steps - 1, 0, -1):
        back = rec.backward(big_g[t], alpha)
        prev = big_g[t - 1]
        torch.add(grad_x[t - 1], big_g[t], alpha=decay, out=prev)
        prev.addcmul_(deriv_prev[t], back)
    grad_start = big_g[0] * decay
    grad_start.addcmul_(deriv_prev[0], rec.backward(big_g[0], alpha))
    return big_g, grad_start


class Rollout(torch.autograd.Function):
    """Differentiable rollout; gradients for ``x0``, ``drive`` and the recurrent weights.

    ``forward(x0, drive, kind, alpha, nonlin, *weights)`` with ``drive`` time-major
    ``(T, B, N)``; ``kind`` is ``"lowrank"`` (weights ``m, n, scale``) or
    ``"dense"`` (weight ``j``).  Returns time-major ``(states, rates)``, both
    ``(T, B, N)``: ``x[1..T]`` and ``phi(x[1..T])``.
    """

    @staticmethod
    def forward(ctx, x0: Tensor, drive: Tensor, kind: str, alpha: float, nonlin: str, *weights):
        """Simulate the network; keep states and rates for the backward pass."""
        rec = _make_recurrence(kind, weights)
        with torch.no_grad():
            states, rates = _run_forward(x0, drive.contiguous(), rec, alpha, nonlin)
        tensors = [w for w in weights if isinstance(w, Tensor)]
        ctx.save_for_backward(x0, states, rates, *tensors)
        ctx.kind, ctx.alpha, ctx.nonlin, ctx.weights_meta = kind, alpha, nonlin, tuple(
            None if isinstance(w, Tensor) else w for w in weights
        )
        return states, rates[1:]

    @staticmethod
    def backward(ctx, grad_states: Tensor | None, grad_rates: Tensor | None):
        """Gradients of the start, the drive and the weights from those of the states and rates."""
        x0, states, rates, *tensors = ctx.saved_tensors
        weights = [tensors.pop(0) if w is None else w for w in ctx.weights_meta]
        rec = _make_recurrence(ctx.kind, weights)
        deriv = NONLINEARITIES[ctx.nonlin][2](rates)  # phi'(x[t]), t = 0..T
        grad_x = state_grad(grad_states, grad_rates, deriv)
        units = states.shape[2]
        big_g, grad_start = _run_backward(grad_x, deriv, rec, ctx.alpha)
        flat_g = big_g.reshape(-1, units)
        flat_r = rates[:-1].reshape(-1, units)
        wgrads = list(rec.weight_grads(flat_g, flat_r, ctx.alpha))
        grads_w = [wgrads.pop(0) if w is None else None for w in ctx.weights_meta]
        grad_x0 = None
        if ctx.needs_input_grad[0]:
            grad_x0 = grad_start.sum(0) if x0.dim() == 1 else grad_start
        return (grad_x0, big_g, None, None, None, *grads_w)


def _make_recurrence(kind: str, weights) -> Recurrence:
    if kind == "lowrank":
        m, n, scale = weights
        return LowRankRecurrence(m.detach(), n.detach(), float(scale))
    if kind == "dense":
        (j,) = weights
        return DenseRecurrence(j.detach())
    raise ValueError(f"unknown recurrence kind {kind!r}")


def rollout(x0: Tensor, drive: Tensor, kind: str, alpha: float, nonlin: str, *weights) -> tuple[Tensor, Tensor]:
    """Simulate and return batch-first ``(currents, rates)``, each ``(B, T, N)``.

    Parameters
    ----------
    x0 : Tensor
        Initial state ``(N,)`` or ``(B, N)``.
    drive : Tensor
        Time-major external drive ``(T, B, N)``, already multiplied by ``alpha``
        and with the noise added.
    kind : str
        ``"lowrank"`` with ``weights = (m, n, scale)`` or ``"dense"`` with ``(j,)``.
    alpha : float
        ``dt / tau``.
    nonlin : str
        Name in :data:`NONLINEARITIES`.
    *weights
        The recurrent weights.

    Returns
    -------
    tuple of Tensor
        Currents ``x[1..T]`` and rates ``phi(x[1..T])`` as batch-first views.
    """
    states, rates = Rollout.apply(x0, drive, kind, alpha, nonlin, *weights)
    return states.transpose(0, 1), rates.transpose(0, 1)


def reference_rollout(
    x0: Tensor, drive: Tensor, j_apply: Callable[[Tensor], Tensor], alpha: float, nonlin: str = "tanh"
) -> Tensor:
    """Plain autograd version of the rollout, for tests and unusual connectivity.

    Parameters
    ----------
    x0 : Tensor
        Initial state ``(N,)`` or ``(B, N)``.
    drive : Tensor
        Batch-first ``(B, T, N)`` external drive already multiplied by ``alpha`` plus noise.
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
    phi = NONLINEARITIES[nonlin][0]
    batch, steps, units = drive.shape
    x = x0.expand(batch, units) if x0.dim() == 1 else x0
    out = []
    for t in range(steps):
        x = (1 - alpha) * x + alpha * j_apply(phi(x)) + drive[:, t]
        out.append(x)
    return torch.stack(out, 1)
