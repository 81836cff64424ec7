"""The one entry point of the latent loss: :func:`latent_loss` of K stacked networks on their mini-batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...models.rollout import rollout
from ..losses import CountReadout, masked_mse, poisson_nll
from . import workspace
from .autograd import LatentLoss
from .problem import Tensor, TrialRows, build_problem, denominators, gathered
from .simulation import simulate


@dataclass(frozen=True)
class LatentNetworks:
    """K low-rank networks stacked along a leading axis, and how their observed units are compared.

    Attributes
    ----------
    m, n : Tensor
        ``(K, N, R)`` connectivity vectors (``J = m n^T / N``).
    w_in : Tensor
        ``(K, N, C)`` input weights.
    alpha : float
        ``dt / tau``.
    nonlinearity : str
        Name in :data:`lrfit.models.rollout.NONLINEARITIES`.
    signal : {"rates", "currents"}
        Compare ``phi(x)`` or ``x`` with the target; with a *readout*, what drives it.
    readout : CountReadout, optional
        For spike counts: the Poisson observation ``scale * softplus(gain * s + bias)``, fields
        ``(K, n_obs)``, differentiable in its gain and bias.
    """

    m: Tensor
    n: Tensor
    w_in: Tensor
    alpha: float
    nonlinearity: str = "tanh"
    signal: str = "rates"
    readout: CountReadout | None = None

    def member(self, k: int) -> LatentNetworks:
        """Member *k* alone, as a stack of one."""
        readout = None if self.readout is None else CountReadout(*(v[k : k + 1] for v in self.readout))
        return LatentNetworks(self.m[k : k + 1], self.n[k : k + 1], self.w_in[k : k + 1], self.alpha,
                              self.nonlinearity, self.signal, readout)


@dataclass(frozen=True)
class LatentBatch:
    """Each member's mini-batch: where its trials start, what drives them and what they are compared with.

    Attributes
    ----------
    x0_table : Tensor
        ``(K, S, N)`` initial states to choose from.
    x0_index : Tensor
        ``(K, B)`` long: the row of the table each trial starts from; or ``(K, B, S)`` float: each
        trial's coefficients of the rows (``x[0] = coefficients @ table``).
    inputs : Tensor
        ``(K, B, T, C)`` inputs.
    target : Tensor or TrialRows
        ``(K, B, T, n_obs)`` activity of the first ``n_obs`` units at steps ``1..T`` (counts with a
        readout), or the trials of a recording named by :class:`TrialRows`.
    weight : Tensor or None
        ``(K, B, T)`` mask (1 where the bin counts), or None when every bin counts.
    """

    x0_table: Tensor
    x0_index: Tensor
    inputs: Tensor
    target: Tensor | TrialRows
    weight: Tensor | None = None

    def member(self, k: int) -> LatentBatch:
        """Member *k*'s batch alone, as a stack of one."""
        target = gathered(self.target)[k : k + 1]
        return LatentBatch(self.x0_table[k : k + 1], self.x0_index[k : k + 1], self.inputs[k : k + 1], target,
                           None if self.weight is None else self.weight[k : k + 1])


def latent_loss(networks: LatentNetworks, batch: LatentBatch) -> Tensor:
    """Masked loss of each of K noise-free low-rank networks' observed units on its own trials: ``(K,)``.

    The loss is ``sum(weight * terms) / (sum(weight) * n_obs)`` with squared residuals, or with a
    readout the Poisson terms (:func:`lrfit.fitting.losses.poisson_nll`); equal, to float rounding, to
    simulating each network with :func:`lrfit.models.rollout.rollout` and taking
    :func:`lrfit.fitting.losses.masked_mse`.  On a CPU the members are simulated together in latent
    coordinates (the package docstring), several times faster, with a hand-written backward pass; on
    other devices each is rolled out.  Differentiable in ``m``, ``n``, ``w_in``, ``x0_table`` and the
    readout's gain and bias.

    Parameters
    ----------
    networks : LatentNetworks
        The K networks.
    batch : LatentBatch
        Their mini-batches.

    Returns
    -------
    Tensor
        ``(K,)`` losses.

    Examples
    --------
    >>> gen = torch.Generator().manual_seed(0)
    >>> m, n = torch.randn(1, 8, 1, generator=gen), torch.randn(1, 8, 1, generator=gen)
    >>> nets = LatentNetworks(m, n, torch.zeros(1, 8, 0), alpha=0.2)
    >>> batch = LatentBatch(torch.zeros(1, 1, 8), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, 5, 0),
    ...                     torch.zeros(1, 2, 5, 8))
    >>> latent_loss(nets, batch).tolist()  # at rest, as the target
    [0.0]
    """
    if networks.m.device.type != "cpu":
        return torch.stack([_rolled_out(networks.member(k), batch.member(k)) for k in range(networks.m.shape[0])])
    alpha, readout = float(networks.alpha), networks.readout
    weights = (networks.m, networks.n, networks.w_in, batch.x0_table)
    data = (batch.x0_index, batch.inputs, batch.target, batch.weight, alpha, networks.nonlinearity, networks.signal)
    learnt = weights if readout is None else (*weights, readout.gain, readout.bias)
    if torch.is_grad_enabled() and any(w.requires_grad for w in learnt):
        return LatentLoss.apply(*weights, *data, *((None, None, None) if readout is None else tuple(readout)))
    with torch.no_grad():
        prob = build_problem(*weights, *data, readout)
        leased: tuple = (prob.target if prob.target_leased else None,)
        rates = states = None
        if readout is not None:  # the Poisson terms are taken over the whole stack after the time loop
            steps, members, batch_size, _ = prob.z.shape
            block = (members, batch_size, networks.m.shape[1])
            if networks.signal == "currents":
                states = workspace.WORKSPACE.take((steps, *block), prob.z.dtype)
            else:
                rates = workspace.WORKSPACE.take((steps + 1, *block), prob.z.dtype)
            leased += (rates, states)
        sums, _ = simulate(prob, rates, states, None)
        workspace.WORKSPACE.give(leased)
        return torch.as_tensor(sums / denominators(batch.target, batch.weight), dtype=networks.m.dtype)


def _rolled_out(networks: LatentNetworks, batch: LatentBatch) -> Tensor:
    """The loss of one network (a stack of one), by simulating it step by step (GPUs)."""
    alpha, target = float(networks.alpha), gathered(batch.target)[0]
    inputs, index, table = batch.inputs[0], batch.x0_index[0], batch.x0_table[0]
    m, n, w_in = networks.m[0], networks.n[0], networks.w_in[0]
    drive = (inputs @ (w_in.T * alpha)).transpose(0, 1)
    start = index.to(table.dtype) @ table if index.is_floating_point() else table[index]
    states, rates = rollout(start, drive, "lowrank", alpha, networks.nonlinearity, m, n, float(m.shape[0]))
    pred = (rates if networks.signal == "rates" else states)[..., : target.shape[2]]
    weight = None if batch.weight is None else batch.weight[0]
    if networks.readout is None:
        return masked_mse(pred, target, weight)
    return poisson_nll(pred, target, weight, CountReadout(*(v[0] for v in networks.readout)))
