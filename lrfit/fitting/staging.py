"""Trials staged on the fit's device: the tensors a solver's batch losses read, and their score's scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from .reductions import column_moments

if TYPE_CHECKING:
    from data_adapters import TrialData

    from .observation import Observation


@dataclass
class StagedTrials:
    """Data of one split on the device.

    Attributes
    ----------
    activity : Tensor
        ``(K, T, n_obs)``, zero where masked (a stand-in of that shape for predictions).
    inputs : Tensor
        ``(K, T, C)``.
    weight : Tensor or None
        ``(K, T)``: 1 where the bin counts; None when every bin counts.
    start_index : Tensor
        ``(K,)`` long: each trial's row of the initial-state table; or ``(K, S)`` float: coefficients of its rows.
    null_loss, loss_unit : float
        The score of a mean loss ``L`` on these data is ``(null_loss - L) / loss_unit`` (the observation model's).
    """

    activity: torch.Tensor
    inputs: torch.Tensor
    weight: torch.Tensor | None
    start_index: torch.Tensor
    null_loss: float = 1.0
    loss_unit: float = 1.0
    _buffers: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def n_trials(self) -> int:
        """Number of trials K."""
        return self.activity.shape[0]

    def score(self, loss: float) -> float:
        """The natural score of a mean loss on these data (R^2, or bits per spike)."""
        return self.null_loss / self.loss_unit - loss / self.loss_unit  # R^2 exactly 1 - loss / variance

    def take(self, idx: torch.Tensor, reuse: bool = False,
             activity: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Inputs, activity and mask weights of trials *idx* (contiguous copies).

        With ``reuse`` the copies are written into buffers kept for the next call with as many
        trials, valid until then (a training step consumes them before the next mini-batch):
        a fresh tensor per batch costs more in page faults than the copy.  Without
        ``activity`` the activity is not copied (None): the latent loss reads it in place.
        """
        sources = (self.inputs, self.activity if activity else None, self.weight)
        if not reuse:
            return tuple(None if src is None else src.index_select(0, idx) for src in sources)  # type: ignore[return-value]
        return tuple(None if src is None else torch.index_select(src, 0, idx, out=self._buffer((name, len(idx)), src))
                     for name, src in zip(("inputs", "activity", "weight"), sources))  # type: ignore[return-value]

    def _buffer(self, key: tuple[str, int], like: torch.Tensor) -> torch.Tensor:
        """The buffer kept under *key* = ``(name, size)``: shaped like *like* with *size* rows."""
        if key not in self._buffers:
            self._buffers[key] = like.new_empty((key[1], *like.shape[1:]))
        return self._buffers[key]


def stage(data: TrialData, start_index: np.ndarray, observation: Observation, device: str | torch.device,
          targets: bool = True) -> StagedTrials:
    """Put *data* on *device* for a fit; without *targets* (predictions) the activity is a stand-in of its shape.

    Parameters
    ----------
    data : TrialData
        The trials.
    start_index : ndarray
        Each trial's row of the initial-state table, or coefficients of its rows
        (:func:`lrfit.fitting.initial_states.start_index`).
    observation : Observation
        Sets the score's null and unit.
    device : str or torch.device
        Where the tensors live.
    targets : bool
        Copy the activity (training and scoring) or not (prediction).

    Returns
    -------
    StagedTrials
    """
    dev = torch.device(device)
    activity = (np.asarray(data.activity, dtype=np.float32) if targets
                else np.zeros((0, 0, data.n_neurons), dtype=np.float32))
    mask = np.asarray(data.mask, dtype=bool)
    count, mean, ss = column_moments(activity, mask)  # block by block: no copy of the data
    variance = float(ss.sum() / (count * ss.size)) if count and ss.size else 1.0
    null, unit = observation.null_and_unit(mean if count else np.zeros(0), variance if variance > 0 else 1.0)
    return StagedTrials(
        activity=torch.as_tensor(np.where(mask[..., None], activity, 0.0), device=dev) if targets
        else torch.zeros((), device=dev).expand(data.n_trials, data.n_time, data.n_neurons),
        inputs=torch.tensor(np.asarray(data.inputs, dtype=np.float32), device=dev),
        weight=None if mask.all() else torch.as_tensor(mask.astype(np.float32), device=dev),
        start_index=torch.as_tensor(start_index, device=dev),
        null_loss=null,
        loss_unit=unit,
    )
