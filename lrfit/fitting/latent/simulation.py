"""The latent simulation's forward and backward passes: the compiled loops, or numpy loops over blocks.

Float32 networks with ``tanh`` on a CPU run the compiled loops of :mod:`.compiled`, one trajectory at a
time; every other problem (float64, other transfer functions, ``LRFIT_KERNELS=numpy``) runs numpy loops
over ``(members, batch, N)`` blocks, whose cost is mostly that of launching a kernel per operation
(numpy's small kernels cost a third of torch's, so they run on numpy views of the tensors).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ...models.rollout import NONLINEARITIES
from . import compiled, workspace
from .poisson import count_loss
from .problem import Problem, Tensor


def _phi_into(nonlin: str, x: np.ndarray, out: np.ndarray) -> None:
    NONLINEARITIES[nonlin][1](torch.from_numpy(x), torch.from_numpy(out))


def _sum_squares(residual: np.ndarray, out: np.ndarray) -> None:
    """*out* ``(K,)`` receives the sums of squares of a ``(K, B, n_obs)`` block."""
    if residual.shape[0] == 1:
        out[0] = np.vdot(residual, residual)
    else:
        flat = residual.reshape(residual.shape[0], 1, -1)
        out[:] = np.matmul(flat, flat.transpose(0, 2, 1)).reshape(-1)


def simulate(
    prob: Problem, rates: np.ndarray | None, states: np.ndarray | None, errors: np.ndarray | None
) -> tuple[np.ndarray, tuple[Tensor, Tensor] | None]:
    """Run the networks: each member's loss sum ``(K,)``, and for counts with *errors* the readout's gradient sums.

    The gradient sums are those of the readout's gain and bias, ``(K, n_obs)`` each.

    ``rates`` ``(T + 1, K, B, N)``, ``states`` ``(T, K, B, N)`` and ``errors``
    ``(T, K, B, n_obs)``, when given, receive ``phi(x[0..T])``, ``x[1..T]`` and the
    masked residuals, or for counts the masked derivatives of the Poisson terms in the
    compared quantity (what the backward pass needs).  Counts need the whole stack of
    the compared quantity (``states`` for currents, ``rates`` otherwise).
    """
    if prob.compiled:
        return simulate_compiled(prob, rates, states, errors)
    steps, members, batch, _ = prob.z.shape
    units, rank, n_obs, dtype = prob.loadings.shape[2], prob.rank, prob.n_obs, prob.z.dtype
    block = (members, batch, units)
    squares = prob.counts is None
    # Per-step views and bound functions, made once: the loop's cost is mostly per call.
    z, loadings, n_c, decay, targets = list(prob.z), prob.loadings, prob.n_c, prob.decay, list(prob.target)
    kappas = [step[..., :rank] for step in z]
    xs = list(states) if states is not None else [np.empty(block, dtype=dtype)] * steps
    if rates is None:
        pair = [np.empty(block, dtype=dtype), np.empty(block, dtype=dtype)]
        rs = [pair[t % 2] for t in range(steps + 1)]
    else:
        rs = list(rates)
    errs = list(errors) if errors is not None else [np.empty((members, batch, n_obs), dtype=dtype)] * steps
    preds = xs if prob.currents else rs[1:]
    if n_obs < units:
        preds = [p[..., :n_obs] for p in preds]
    weights = None if prob.weight is None else list(np.moveaxis(prob.weight, 2, 0)[..., None])
    phi = np.tanh if prob.nonlin == "tanh" else functools.partial(_phi_into, prob.nonlin)
    kappa_prev = np.empty((members, batch, rank), dtype=dtype)
    matmul, multiply, subtract = np.matmul, np.multiply, np.subtract

    phi(prob.start, out=rs[0])
    step_sums = np.zeros((steps, members))  # each step's sums of squares (float64)
    for t in range(steps):
        kappa = kappas[t]
        matmul(rs[t], n_c, out=kappa)
        if t:
            multiply(kappas[t - 1], decay, out=kappa_prev)
            kappa += kappa_prev
        x = xs[t]
        matmul(z[t], loadings, out=x)
        phi(x, out=rs[t + 1])
        if squares:
            residual = subtract(preds[t], targets[t], out=errs[t])
            if weights is not None:
                multiply(residual, weights[t], out=residual)
            _sum_squares(residual, step_sums[t])
    if squares:
        return step_sums.sum(0), None
    return count_loss(prob, states if prob.currents else rates[1:], errors)


def simulate_compiled(
    prob: Problem, rates: np.ndarray | None, states: np.ndarray | None, errors: np.ndarray | None
) -> tuple[np.ndarray, tuple[Tensor, Tensor] | None]:
    """:func:`simulate` by the compiled loops of :mod:`.compiled` (float32, tanh).

    The squared residuals are not stored (the backward pass recomputes them), so *errors*
    is only filled for counts.
    """
    steps, members, batch, _ = prob.z.shape
    block, dtype = (members, batch, prob.loadings.shape[2]), prob.z.dtype
    squares = prob.counts is None
    scratch = []
    if rates is None:  # the loops keep every step's rates; an evaluation borrows them for the call
        rates = workspace.WORKSPACE.take((steps + 1, *block), dtype)
        scratch.append(rates)
    if states is None and prob.currents:
        states = workspace.WORKSPACE.take((steps, *block), dtype)
        scratch.append(states)
    sums = compiled.forward(prob.z, prob.loadings, prob.n_c, prob.inputs, prob.start_coef, prob.alpha,
                                  prob.source, prob.rows, prob.weight, prob.rank, prob.currents, squares, rates, states)
    result = (sums, None) if squares else count_loss(prob, states if prob.currents else rates[1:], errors)
    workspace.WORKSPACE.give(tuple(scratch))
    return result


def add_start_gradient(grad_table: Tensor, index: Tensor, grad_start: Tensor) -> None:
    """Add the initial currents' gradient ``(K, B, N)`` to the x0 table's ``(K, S, N)`` through *index*."""
    members, n_start, units = grad_table.shape
    if index.is_floating_point():  # x[0] = coef @ table
        grad_table += torch.bmm(index.to(grad_table.dtype).transpose(1, 2), grad_start)
    else:
        rows = (index + torch.arange(members)[:, None] * n_start).reshape(-1)
        grad_table.view(members * n_start, units).index_add_(0, rows, grad_start.reshape(-1, units))


def adjoint(prob: Problem, rates: np.ndarray, errors: np.ndarray, m: np.ndarray, n_c_t: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward pass through the latents, by numpy loops over ``(K, B, N)`` blocks.

    Returns the gradients of half the sums of squares (or of the terms whose derivatives
    *errors* holds) in the loadings ``(K, W, N)``, in ``n_c`` before its scale ``(K, N, R)``
    and in the initial currents ``(K, B, N)``.
    """
    steps, members, batch, width = prob.z.shape
    units, rank, dtype = prob.loadings.shape[2], prob.rank, prob.z.dtype
    tanh = prob.nonlin == "tanh"
    deriv = None if tanh else NONLINEARITIES[prob.nonlin][2](torch.from_numpy(rates)).numpy()
    n_obs = prob.n_obs
    # Everything below is the gradient of the sums of squared residuals over 2;
    # each member's factor 2 * grad_loss / denom is applied at the end.
    block = (members, batch, units)
    g = np.empty(block, dtype=dtype)  # dL/dx[t+1]
    rec = np.empty_like(g)
    grad_kappa = np.zeros((members, batch, rank), dtype=dtype)  # dL/dkappa[t+2], then [t+1]
    decayed = np.empty_like(grad_kappa)
    grad_loadings = np.zeros((members, width, units), dtype=dtype)
    part_loadings = np.empty_like(grad_loadings)
    grad_n, part_n = np.zeros((members, units, rank), dtype=dtype), np.empty((members, units, rank), dtype=dtype)
    matmul, multiply = np.matmul, np.multiply
    rs, errs = list(rates), list(errors)
    rs_t = [r.transpose(0, 2, 1) for r in rs]
    z_t = [step.transpose(0, 2, 1) for step in prob.z]
    derivs = None if tanh else list(deriv)
    decay, currents = prob.decay, prob.currents
    rec_obs, g_obs = rec[..., :n_obs], g[..., :n_obs]
    # The elementwise steps run as torch kernels on views of the same memory: a broadcast
    # product fused with the residuals' injection, and tanh's derivative in one pass,
    # cost a third of numpy's separate passes over a (K, B, N) block.
    t_rec, t_g, t_grad_kappa, t_n_c = (torch.from_numpy(a) for a in (rec, g, grad_kappa, n_c_t))
    t_rs, t_errs = [torch.from_numpy(r) for r in rs], [torch.from_numpy(e) for e in errs]
    fused = not currents and n_obs == units  # the residuals join the recurrent part in one kernel
    addcmul, bmm, baddbmm = torch.addcmul, torch.bmm, torch.baddbmm
    thin = rank == 1

    def recurrent_part(t: int | None) -> None:
        """``rec = dkappa @ n_c^T`` (+ the residuals of step *t* when fused)."""
        if t is not None and fused:
            if thin:
                addcmul(t_errs[t], t_grad_kappa, t_n_c, out=t_rec)
            else:
                baddbmm(t_errs[t], t_grad_kappa, t_n_c, out=t_rec)
        elif thin:
            torch.mul(t_grad_kappa, t_n_c, out=t_rec)
        else:
            bmm(t_grad_kappa, t_n_c, out=t_rec)

    def times_derivative(t: int) -> None:
        """``g = rec * phi'(x[t])``."""
        if tanh:
            torch.ops.aten.tanh_backward.grad_input(t_rec, t_rs[t], grad_input=t_g)
        else:
            multiply(rec, derivs[t], out=g)

    for t in range(steps - 1, -1, -1):
        recurrent_part(t)  # dL/dr[t+1]: recurrent part (and the residuals)
        if currents:
            times_derivative(t + 1)
            g_obs += errs[t]
        else:
            if not fused:
                rec_obs += errs[t]
            times_derivative(t + 1)
        grad_loadings += matmul(z_t[t], g, out=part_loadings)
        multiply(grad_kappa, decay, out=decayed)
        matmul(g, m, out=grad_kappa)
        grad_kappa += decayed
        grad_n += matmul(rs_t[t], grad_kappa, out=part_n)  # kappa[t+1] = ... + n_c^T r[t]
    recurrent_part(None)  # r[0] = phi(x[0]) feeds kappa[1]
    times_derivative(0)
    return grad_loadings, grad_n, g
