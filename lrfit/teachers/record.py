"""Record a network's activity as a ``TrialData`` (the bridge from teachers to the fitter)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from data_adapters import TrialData

from ..errors import LrfitError
from ..models import RNNBase


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
    del traj, values  # (trials, time, N) currents and rates: free them before TrialData copies the activity
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


def choose_neurons(n_units: int, neurons: int | float | None, seed: int = 0) -> np.ndarray | None:
    """Indices of a random subset of units (sorted), reproducible from *seed*.

    Parameters
    ----------
    n_units : int
        Size of the network.
    neurons : int, float or None
        A count (``>= 1``), a fraction in ``(0, 1)``, or ``None`` for all units.
    seed : int
        Seed of the draw.

    Returns
    -------
    ndarray of int or None
        ``None`` when every unit is recorded.
    """
    if neurons is None:
        return None
    count = int(round(neurons * n_units)) if isinstance(neurons, float) and 0 < neurons < 1 else int(neurons)
    if count < 1 or count > n_units:
        raise LrfitError(
            f"Cannot record {neurons} neurons of a {n_units}-unit network; give a count in 1..{n_units} "
            "or a fraction in (0, 1)."
        )
    if count == n_units:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_units, size=count, replace=False))


def simulate_teacher(
    teacher_dir: str | Any,
    n_trials: int,
    seed: int = 0,
    record: str = "rates",
    noise_std: float | None = None,
    neurons: int | float | None = None,
    neuron_seed: int = 0,
    task_params: dict[str, Any] | None = None,
) -> TrialData:
    """Generate task trials and record a saved teacher's activity on them.

    Parameters
    ----------
    teacher_dir : str or Path
        Directory written by :func:`lrfit.teachers.train_teacher`.
    n_trials : int
        Number of trials.
    seed : int
        Seed of the trials and of the network noise.
    record : {"rates", "currents"}
        What is recorded.
    noise_std : float, optional
        Private noise of the simulation (the teacher's own by default).
    neurons : int or float, optional
        Record a random subset of units (count or fraction; see :func:`choose_neurons`).
    neuron_seed : int
        Seed of that subset (kept apart from *seed* so that train and test trials
        record the same neurons).
    task_params : dict, optional
        Task parameters overriding the saved ones (e.g. coherences).

    Returns
    -------
    TrialData
        With the task's inputs, conditions and ``meta["teacher"]``.
    """
    from pathlib import Path

    from ..tasks import get_task
    from .train import load_teacher

    if int(n_trials) < 1:
        raise LrfitError(f"n_trials must be at least 1, got {n_trials}.")
    model, task = load_teacher(teacher_dir)
    if task_params:
        task = get_task(**{**task.to_dict(), **task_params})
    trials = task.generate(int(n_trials), seed=int(seed))
    units = choose_neurons(model.n_units, neurons, neuron_seed)
    meta = {"teacher": str(Path(teacher_dir).resolve()), "task": task.to_dict(), "trial_seed": int(seed)}
    return record_activity(model, trials.inputs, trials.conditions, trials.input_names, record, units,
                           noise_std, seed, meta)
