"""The latent loss as a torch autograd Function: the simulation forward, the adjoint through the latents backward."""

from __future__ import annotations

import numpy as np
import torch

from ..losses import CountReadout
from . import compiled, workspace
from .problem import build_problem, denominators
from .simulation import add_start_gradient, adjoint, simulate
from .workspace import Lease


class LatentLoss(torch.autograd.Function):
    """The members' losses of :func:`~.engine.latent_loss`, with a backward pass through the latents."""

    @staticmethod
    def forward(ctx, m, n, w_in, table, index, inputs, target, weight, alpha, nonlin, target_kind, gain, bias, scale):
        """Simulate the members in latent coordinates; keep what the backward pass needs (leased arrays)."""
        readout = None if gain is None else CountReadout(gain, bias, scale)
        prob = build_problem(m, n, w_in, table, index, inputs, target, weight, alpha, nonlin, target_kind, readout)
        steps, members, batch, _ = prob.z.shape
        units, dtype = m.shape[1], prob.z.dtype
        rates = workspace.WORKSPACE.take((steps + 1, members, batch, units), dtype)
        states = workspace.WORKSPACE.take((steps, members, batch, units), dtype) if prob.currents else None
        # the compiled loops recompute squared residuals in the backward pass; counts inject stored derivatives
        errors = (
            None
            if prob.compiled and readout is None
            else workspace.WORKSPACE.take((steps, members, batch, prob.n_obs), dtype)
        )
        denom = denominators(target, weight)
        sums, ctx.readout_grads = simulate(prob, rates, states, errors)
        losses = sums / denom
        ctx.prob, ctx.rates, ctx.states, ctx.errors, ctx.denom, ctx.index = prob, rates, states, errors, denom, index
        ctx.lease = Lease(workspace.WORKSPACE, rates, states, errors, prob.target if prob.target_leased else None)
        ctx.n_start = table.shape[1]
        return torch.as_tensor(losses, dtype=m.dtype)

    @staticmethod
    def backward(ctx, grad_losses):
        """Gradients of the loadings, the table and the readout from those of the members' losses."""
        prob = ctx.prob
        members, width, units = prob.loadings.shape
        rank, dtype, decay = prob.rank, prob.z.dtype, prob.decay
        n_c_t = np.ascontiguousarray(prob.n_c.transpose(0, 2, 1))  # (K, R, N)
        m = np.ascontiguousarray(prob.loadings[:, :rank].transpose(0, 2, 1))  # (K, N, R)
        if prob.compiled:  # the initial currents' gradient is already in the x0 rows of the loadings
            grad_loadings, grad_n = compiled.backward(
                prob.z, m, n_c_t, ctx.rates, ctx.states, ctx.errors, prob.source, prob.rows, prob.weight,
                prob.start_coef, decay, prob.currents)
            g = None
        else:
            grad_loadings, grad_n, g = adjoint(prob, ctx.rates, ctx.errors, m, n_c_t)

        factor = prob.grad_factor * grad_losses.double().numpy() / ctx.denom
        scale = factor.astype(dtype)[:, None, None]
        n_in = width - rank - ctx.n_start
        grad_loadings = torch.from_numpy(grad_loadings * scale)
        grad_m = grad_loadings[:, :rank].transpose(1, 2).contiguous()
        grad_w_in = grad_loadings[:, rank : rank + n_in].transpose(1, 2).contiguous()
        grad_table = grad_loadings[:, rank + n_in :].contiguous()
        if g is not None:  # the numpy loops return the initial currents' gradient apart
            add_start_gradient(grad_table, ctx.index, torch.from_numpy(g * scale))
        grad_n = torch.from_numpy(grad_n * (scale * (1.0 - decay) / units))
        grad_gain = grad_bias = None
        if ctx.readout_grads is not None:
            member_factor = torch.from_numpy(factor)[:, None]
            grad_gain, grad_bias = ((g * member_factor).to(grad_m.dtype) for g in ctx.readout_grads)
        return (grad_m, grad_n, grad_w_in, grad_table, None, None, None, None, None, None, None,
                grad_gain, grad_bias, None)
