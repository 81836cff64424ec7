"""The loss a fit minimises: its network's observed units against the staged trials, under an observation model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..models import LowRankRNN
from .initial_states import start_rows
from .latent import LatentBatch, LatentNetworks, TrialRows, latent_loss
from .losses import CountReadout

if TYPE_CHECKING:
    from .observation import Observation
    from .staging import StagedTrials


def batch_loss(model: nn.Module, staged: StagedTrials, idx: torch.Tensor, x0_table: torch.Tensor,
               observation: Observation, readout: CountReadout | None) -> torch.Tensor:
    """Masked mean loss of trials *idx* (latent coordinates for a low-rank network, a rollout otherwise).

    Parameters
    ----------
    model : LowRankRNN or FullRankRNN
        The network.
    staged : StagedTrials
        The trials on the network's device.
    idx : Tensor
        Trial indices of the batch.
    x0_table : Tensor
        The initial-state table (:mod:`lrfit.fitting.initial_states`).
    observation : Observation
        Compares the observed units with the recording.
    readout : CountReadout or None
        The observation's learnt readout.

    Returns
    -------
    Tensor
        A scalar.
    """
    latent = isinstance(model, LowRankRNN)
    # consumed by this step's forward/backward; on a CPU the latent loss reads the trials where they lie
    in_place = latent and model.device.type == "cpu"
    inputs, target, weight = staged.take(idx, reuse=True, activity=not in_place)
    if in_place:
        target = TrialRows(staged.activity, idx)
    table, rows = start_rows(x0_table, staged.start_index[idx])
    if latent:
        one = None if readout is None else CountReadout(*(v.unsqueeze(0) for v in readout))
        networks = LatentNetworks(model.m[None], model.n[None], model.w_in[None], model.alpha, model.nonlinearity,
                                  observation.signal, one)
        target = (TrialRows(target.source, target.index[None]) if isinstance(target, TrialRows) else target[None])
        return latent_loss(networks, LatentBatch(table[None], rows[None], inputs[None], target,
                                                 None if weight is None else weight[None]))[0]
    traj = model(inputs, x0=rows @ table if rows.is_floating_point() else table[rows], noise_std=0.0)
    out = (traj.rates if observation.signal == "rates" else traj.currents)[..., : target.shape[-1]]
    return observation.loss(out, target, weight, readout)


@torch.no_grad()
def mean_loss(model: nn.Module, staged: StagedTrials, x0_table: torch.Tensor, observation: Observation,
              readout: CountReadout | None, chunk: int = 256) -> float:
    """:func:`batch_loss` over all staged trials, *chunk* trials at a time."""
    total, k = 0.0, staged.n_trials
    for start in range(0, k, chunk):
        idx = torch.arange(start, min(start + chunk, k), device=staged.activity.device)
        total += float(batch_loss(model, staged, idx, x0_table, observation, readout)) * len(idx)
    return total / max(k, 1)
