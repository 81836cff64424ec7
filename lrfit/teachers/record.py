"""Record a network's activity as a ``TrialData`` (the bridge from teachers to the fitter).

Rates ``tanh(x)``, currents ``x``, or Poisson spike counts per bin drawn from firing
rates ``peak_i * (tanh(x_i) + 1) / 2`` in Hz (:func:`rates_to_hz`), with one peak rate per
neuron: a number, or a ``(low, high)`` range from which each neuron's peak is drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from data_adapters import TrialData

from ..errors import LrfitError
from ..models import RNNBase

RECORD = ("rates", "currents", "spikes")
#: Peak firing rate (Hz, at tanh(x) = 1) of recorded spikes unless told otherwise.
DEFAULT_MAX_RATE_HZ = 50.0


def peak_rates(n_neurons: int, max_rate_hz: float | tuple[float, float] | list[float], seed: int = 0) -> np.ndarray:
    """Each neuron's peak firing rate in Hz: *max_rate_hz* itself, or drawn uniformly from a ``(low, high)`` range.

    Parameters
    ----------
    n_neurons : int
        Number of neurons.
    max_rate_hz : float or (float, float)
        One peak rate, or the range of the uniform draw.
    seed : int
        Seed of the draw (the recorded neurons' seed, so that train and test trials agree).

    Returns
    -------
    ndarray
        ``(n_neurons,)`` peak rates in Hz.

    Examples
    --------
    >>> peak_rates(3, 50.0).tolist()
    [50.0, 50.0, 50.0]
    >>> bool(((peak_rates(100, (20, 50)) >= 20) & (peak_rates(100, (20, 50)) <= 50)).all())
    True
    """
    values = np.atleast_1d(np.asarray(max_rate_hz, dtype=np.float64)) if not isinstance(max_rate_hz, str) else None
    if values is None or values.size not in (1, 2) or not np.all(np.isfinite(values)) or values.min() <= 0 or (
            values.size == 2 and values[0] > values[1]):
        raise LrfitError(f"max_rate_hz must be a positive rate in Hz or a range [low, high] with 0 < low <= high, "
                         f"got {max_rate_hz!r}.")
    if values.size == 1:
        return np.full(int(n_neurons), float(values[0]))
    return np.random.default_rng([int(seed), 7]).uniform(values[0], values[1], size=int(n_neurons))


def rates_to_hz(rates: np.ndarray, max_rate_hz: float | np.ndarray) -> np.ndarray:
    """Map tanh rates in ``[-1, 1]`` to firing rates ``max_rate_hz * (r + 1) / 2`` in Hz.

    Parameters
    ----------
    rates : ndarray
        Network rates ``tanh(x)``, ``(..., neurons)``.
    max_rate_hz : float or ndarray
        Rate at ``r = 1``: one for all neurons, or ``(neurons,)`` (see :func:`peak_rates`).

    Returns
    -------
    ndarray
        Non-negative rates in Hz, same shape.
    """
    peak = np.asarray(max_rate_hz, dtype=np.float64)
    if not np.all(peak > 0):
        raise LrfitError(f"max_rate_hz must be positive, got {max_rate_hz}.")
    return np.clip(peak * (np.asarray(rates, dtype=np.float64) + 1.0) / 2.0, 0.0, None)


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
    max_rate_hz: float | tuple[float, float] = DEFAULT_MAX_RATE_HZ,
    neuron_seed: int = 0,
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
    record : {"rates", "currents", "spikes"}
        ``phi(x)``, ``x``, or Poisson spike counts per bin with rates
        ``peak_i (phi(x_i) + 1) / 2`` Hz (tanh networks; see :func:`rates_to_hz`).
    neurons : ndarray of int, optional
        Indices of the recorded units (all by default); they become ``neuron_ids``.
    noise_std : float, optional
        Private noise of the simulation (the network's own by default).
    seed : int
        Seed of that noise.
    meta : dict, optional
        Provenance stored in ``TrialData.meta``.
    max_rate_hz : float or (float, float)
        With ``record="spikes"``: each neuron's peak rate, or the range it is drawn from
        (:func:`peak_rates`, seeded by *neuron_seed*).
    neuron_seed : int
        Seed of the peak rates (shared by train and test recordings of the same neurons).

    Returns
    -------
    TrialData
        ``activity`` ``(trials, time, len(neurons))`` with ``dt = model.dt``.
    """
    if record not in RECORD:
        raise LrfitError(f"record must be one of {', '.join(RECORD)}, got '{record}'.")
    units = np.arange(model.n_units) if neurons is None else np.asarray(neurons, dtype=np.int64)
    if units.size == 0 or units.min() < 0 or units.max() >= model.n_units:
        raise LrfitError(
            f"recorded neuron indices must lie in [0, {model.n_units}); got "
            f"{units.min() if units.size else 'none'}..{units.max() if units.size else ''}."
        )
    gen = torch.Generator(device=model.device).manual_seed(int(seed))
    with torch.no_grad():
        traj = model(torch.as_tensor(np.asarray(inputs), dtype=torch.float32), noise_std=noise_std, generator=gen)
        values = traj.currents if record == "currents" else traj.rates
        activity = values[..., torch.as_tensor(units, device=values.device)].cpu().numpy()
    del traj, values  # (trials, time, N) currents and rates: free them before TrialData copies the activity
    info = {"source": f"simulated {type(model).__name__}", "record": record, "units": "a.u."}
    if record == "spikes":
        peaks = peak_rates(len(units), max_rate_hz, neuron_seed)
        hz = rates_to_hz(activity, peaks)
        activity = np.random.default_rng([int(seed), 11]).poisson(hz * model.dt).astype(np.float32)
        info.update(units="counts per bin", max_rate_hz=max_rate_hz if np.ndim(max_rate_hz) == 0 else list(max_rate_hz))
    steps = activity.shape[1]
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


def recorded_peaks(section: dict[str, Any], ids: np.ndarray, n_units: int) -> np.ndarray:
    """Each recorded unit's peak rate (Hz) as a fit config's teacher ``data`` section drew it.

    Parameters
    ----------
    section : dict
        The ``data`` section (``record: spikes``, ``max_rate_hz``, ``neurons``, ``seed``).
    ids : ndarray of int
        Teacher units (a subset of the recorded ones, e.g. the fitted neurons).
    n_units : int
        Units of the teacher.

    Returns
    -------
    ndarray
        ``(len(ids),)`` peak rates in Hz.
    """
    seed = int(section.get("seed", 0))
    recorded = choose_neurons(n_units, section.get("neurons"), seed)
    recorded = np.arange(n_units) if recorded is None else recorded
    peaks = peak_rates(len(recorded), section.get("max_rate_hz", DEFAULT_MAX_RATE_HZ), seed)
    ids = np.asarray(ids).astype(np.int64)
    position = np.searchsorted(recorded, ids)
    if np.any(position >= len(recorded)) or np.any(recorded[np.minimum(position, len(recorded) - 1)] != ids):
        raise LrfitError("The compared neurons were not among the units this config records; compare the student with "
                         "the teacher its spikes came from.")
    return peaks[position]


def teacher_expected_counts(section: dict[str, Any], rates: TrialData, n_units: int) -> np.ndarray:
    """The true expected counts per bin behind spikes recorded by a fit config's teacher ``data`` section.

    Parameters
    ----------
    section : dict
        The ``data`` section (``record: spikes``, ``max_rate_hz``, ``neurons``, ``seed``).
    rates : TrialData
        The teacher's rates ``tanh(x)`` of some recorded units (``neuron_ids`` = unit indices).
    n_units : int
        Units of the teacher.

    Returns
    -------
    ndarray
        ``(trials, time, neurons)``: ``dt * peak_i * (r_i + 1) / 2`` with each unit's peak as
        the recording drew it (:func:`recorded_peaks`).
    """
    peaks = recorded_peaks(section, rates.neuron_ids, n_units)
    return (rates_to_hz(np.asarray(rates.activity), peaks) * rates.dt).astype(np.float32)


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
    max_rate_hz: float | tuple[float, float] = DEFAULT_MAX_RATE_HZ,
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
    record : {"rates", "currents", "spikes"}
        What is recorded (see :func:`record_activity`).
    noise_std : float, optional
        Private noise of the simulation (the teacher's own by default).
    neurons : int or float, optional
        Record a random subset of units (count or fraction; see :func:`choose_neurons`).
    neuron_seed : int
        Seed of that subset (kept apart from *seed* so that train and test trials
        record the same neurons).
    task_params : dict, optional
        Task parameters overriding the saved ones (e.g. coherences).
    max_rate_hz : float or (float, float)
        Peak rate(s) of recorded spikes (see :func:`peak_rates`).

    Returns
    -------
    TrialData
        With the task's inputs, conditions and ``meta["teacher"]``.

    Examples
    --------
    >>> import tempfile
    >>> from lrfit.teachers import train_teacher
    >>> teacher = tempfile.mkdtemp()
    >>> _ = train_teacher("cdm", n_units=16, rank=1, max_epochs=1, n_val=32, n_test=32, out=teacher, progress=False)
    >>> data = simulate_teacher(teacher, 8, seed=1)
    >>> data.n_trials, data.n_neurons, data.input_names
    (8, 16, ('motion', 'color', 'ctx_motion', 'ctx_color'))
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
                           noise_std, seed, meta, max_rate_hz=max_rate_hz, neuron_seed=neuron_seed)
