"""Record a network's activity as a ``TrialData`` (the bridge from teachers to the fitter)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from data_adapters import TrialData

from .errors import LrfitError
from .models import RNNBase


def record_activity(
    model: RNNBase,
    inputs: np.ndarray,
    conditions: pd.DataFrame | None = None,
    input_names: tuple[str, ...] | list[str] | None = None,
    record: str = "rates",
    neurons: np.ndarray | None = None,
    noise_std: float | None = None,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
) -> TrialData:
    """Simulate *model* on *inputs* and return the chosen units' activity.

    Parameters
    ----------
    model : RNNBase
        The network (e.g. a teacher).
    inputs : ndarray
        ``(trials, time, channels)``.
    conditions : DataFrame, optional
        One row per trial.
    input_names : sequence of str, optional
        Channel names.
    record : {"rates", "currents"}
        ``phi(x)`` or ``x``.
    neurons : ndarray of int, optional
        Indices of the recorded units (all by default); they become ``neuron_ids``.
    noise_std : float, optional
        Private noise of the simulation (the network's own by default).
    seed : int
        Seed of that noise.
    meta : dict, optional
        Provenance stored in ``TrialData.meta``.

    Returns
    -------
    TrialData
        ``activity`` ``(trials, time, len(neurons))`` with ``dt = model.dt``.
    """
    if record not in ("rates", "currents"):
        raise LrfitError(f"record must be 'rates' or 'currents', got '{record}'.")
    units = np.arange(model.n_units) if neurons is None else np.asarray(neurons, dtype=np.int64)
    if units.size == 0 or units.min() < 0 or units.max() >= model.n_units:
        raise LrfitError(f"recorded neuron indices must lie in [0, {model.n_units}); got {units.min() if units.size else 'none'}..{units.max() if units.size else ''}.")
    gen = torch.Generator(device=model.device).manual_seed(int(seed))
    with torch.no_grad():
        traj = model(torch.as_tensor(np.asarray(inputs), dtype=torch.float32), noise_std=noise_std, generator=gen)
        values = traj.rates if record == "rates" else traj.currents
        activity = values[..., torch.as_tensor(units, device=values.device)].cpu().numpy()
    steps = activity.shape[1]
    info = {"source": f"simulated {type(model).__name__}", "record": record, "units": "a.u."}
    info.update(meta or {})
    return TrialData(
        activity=activity,
        inputs=np.asarray(inputs, dtype=np.float32),
        input_names=tuple(input_names) if input_names is not None else None,
        conditions=conditions if conditions is not None else pd.DataFrame(index=range(activity.shape[0])),
        dt=model.dt,
        time=(np.arange(steps) + 1) * model.dt,
        neuron_ids=units,
        meta=info,
    )
