"""The Poisson terms of spike counts inside the latent loss, taken after the time loop on the whole stack."""

from __future__ import annotations

import numpy as np
import torch

from ..losses import RATE_FLOOR
from . import workspace
from .problem import Problem, Tensor


def count_loss(prob: Problem, stack: np.ndarray, errors: np.ndarray | None
                ) -> tuple[np.ndarray, tuple[Tensor, Tensor] | None]:
    """Poisson terms of a whole ``(T, K, B, N)`` stack of currents or rates, after the time loop.

    Returns the members' sums ``(K,)`` and, with *errors*, the gradient sums of the gain and
    bias; *errors* receives ``d terms / d s`` (masked), which the backward pass injects as
    it injects residuals.  The same terms as :func:`count_terms`, computed in a few passes
    over preallocated buffers (``sum(y log(scale softplus))`` splits into per-neuron sums).
    """
    n_obs = prob.target.shape[3]
    s = stack[..., :n_obs]
    y = prob.target
    shape, dtype = y.shape, y.dtype
    gain, bias, scale = (v[None, :, None, :] for v in prob.counts)  # (1, K, 1, n_obs)
    eta, soft, work = (workspace.WORKSPACE.take(shape, dtype) for _ in range(3))
    t_eta, t_soft, t_work, t_y = (torch.from_numpy(a) for a in (eta, soft, work, y))
    torch.addcmul(torch.from_numpy(bias), torch.from_numpy(s), torch.from_numpy(gain), out=t_eta)
    torch._C._nn.softplus(t_eta, 1, 20, out=t_soft)
    t_soft.clamp_min_(RATE_FLOOR)
    np.log(soft, out=work)
    # per-neuron sums (accumulated in the data's precision within a batch, in float64 across neurons)
    if prob.weight is None:
        rate_sum, spikes = t_soft.sum((0, 2)), t_y.sum((0, 2))
        log_sum = torch.from_numpy(np.einsum("tkbn,tkbn->kn", y, work))
        weight = None
    else:
        weight = np.moveaxis(prob.weight, 2, 0)[..., None]  # (T, K, B, 1)
        rate_sum = torch.from_numpy(np.einsum("tkbn,tkbx->kn", soft, weight))
        spikes = torch.from_numpy(np.einsum("tkbn,tkbx->kn", y, weight))
        log_sum = torch.from_numpy(np.einsum("tkbn,tkbn,tkbx->kn", y, work, weight))
    log_scale = np.log(prob.counts[2].astype(np.float64))
    total = (rate_sum.double().numpy() * prob.counts[2] - log_sum.double().numpy()
             - spikes.double().numpy() * log_scale).sum(1)
    if errors is None:
        workspace.WORKSPACE.give((eta, soft, work))
        return total, None
    torch.sigmoid(t_eta, out=t_eta)  # d terms / d eta = sigmoid(eta) (scale - y / softplus(eta))
    torch.div(t_y, t_soft, out=t_work)
    np.subtract(scale, work, out=work)
    work *= eta
    if weight is not None:
        work *= weight
    sums = (torch.from_numpy(np.einsum("tkbn,tkbn->kn", work, s)).double(), t_work.sum((0, 2)).double())
    np.multiply(work, gain, out=errors)
    workspace.WORKSPACE.give((eta, soft, work))
    return total, sums
