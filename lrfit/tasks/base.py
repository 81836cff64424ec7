"""Common machinery of the cognitive tasks: timing in milliseconds, trials, metrics.

A task is described by epochs whose durations are given in milliseconds.  For a
given Euler step ``dt`` (seconds) the epoch boundaries are the cumulative epoch
times rounded to the nearest step (a tie goes to the earlier step), so the
structure of a trial in time does not depend on ``dt``: 10 ms and 20 ms steps give
the same epoch times whenever the durations are multiples of 20 ms, and otherwise
agree to within half a step.

Randomness is split into two independent streams derived from the seed: one draws
the trial conditions (coherences, contexts, delays, ...), the other the input
noise.  The conditions of ``generate(n, seed=s)`` are therefore the same for every
``dt``; only the noise samples differ.

Input noise is dt-corrected: a channel with noise level ``input_noise`` receives,
at each step, Gaussian noise of standard deviation
``input_noise * sqrt(DT_REF / dt)`` with ``DT_REF = 20 ms``, so that the evidence
integrated by a network (``sum_t alpha * u[t]``, ``alpha = dt / tau``) has the same
mean and variance for every ``dt``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..errors import LrfitError, closest
from ..jsonable import jsonable

#: Step (seconds) at which ``input_noise`` is the per-step standard deviation.
DT_REF = 0.02

EpochBounds = tuple[int, int] | tuple[np.ndarray, np.ndarray]


@dataclass
class TaskTrials:
    """A batch of trials of a task, ready to drive a network.

    Attributes
    ----------
    inputs : np.ndarray
        float32 ``(trials, time, input_channels)``.
    targets : np.ndarray
        float32 ``(trials, time, outputs)``; zero where there is no target.
    loss_mask : np.ndarray
        float32 ``(trials, time)``; 1 where the output is trained (decision epoch).
    conditions : pandas.DataFrame
        One row per trial (e.g. ``context``, ``coh_motion``, ``coh_color``, ``target``).
    input_names : tuple of str
        Names of the input channels.
    output_names : tuple of str
        Names of the output channels.
    dt : float
        Step in seconds.
    time : np.ndarray
        ``(time,)`` bin centres in seconds from trial onset, ``(t + 0.5) * dt``.
    epochs : dict
        Epoch name -> ``(start_step, stop_step)`` (ints, stop exclusive) when the
        epoch is at the same time in every trial, else a pair of int arrays
        ``(starts, stops)`` of shape ``(trials,)`` (variable delays).
    valid : np.ndarray
        bool ``(trials, time)``: steps inside the trial (trials with a shorter delay
        are padded at the end with zero inputs and ``valid = False``).
    task : str
        Name of the task that generated the trials.
    seed : int or None
        Seed used by :meth:`Task.generate`.
    """

    inputs: np.ndarray
    targets: np.ndarray
    loss_mask: np.ndarray
    conditions: pd.DataFrame
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dt: float
    time: np.ndarray
    epochs: dict[str, EpochBounds]
    valid: np.ndarray
    task: str = ""
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        """Number of trials ``K``."""
        return int(self.inputs.shape[0])

    @property
    def n_steps(self) -> int:
        """Number of time steps ``T``."""
        return int(self.inputs.shape[1])

    def __len__(self) -> int:
        return self.n_trials

    def epoch_bounds(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-trial ``(starts, stops)`` int arrays of shape ``(trials,)`` for epoch *name*."""
        if name not in self.epochs:
            raise LrfitError(
                f"Task '{self.task}' has no epoch '{name}'{closest(name, self.epochs)}; epochs are: "
                f"{', '.join(self.epochs)}."
            )
        start, stop = self.epochs[name]
        k = self.n_trials
        return np.broadcast_to(np.asarray(start), (k,)).astype(int), np.broadcast_to(np.asarray(stop), (k,)).astype(int)

    def epoch_mask(self, name: str) -> np.ndarray:
        """Bool ``(trials, time)``: True during epoch *name* of each trial."""
        starts, stops = self.epoch_bounds(name)
        steps = np.arange(self.n_steps)
        return (steps[None, :] >= starts[:, None]) & (steps[None, :] < stops[:, None])

    def to_torch(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(inputs, targets, loss_mask)`` as float32 tensors on *device*."""
        return (
            torch.as_tensor(self.inputs, device=device),
            torch.as_tensor(self.targets, device=device),
            torch.as_tensor(self.loss_mask, device=device),
        )

    def select(self, index: Sequence[int] | np.ndarray | slice) -> TaskTrials:
        """Subset of trials (integer indices, a boolean mask or a slice), as a new object."""
        if isinstance(index, slice):
            idx = np.arange(self.n_trials)[index]
        else:
            idx = np.asarray(index)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
        epochs: dict[str, EpochBounds] = {}
        for name, (start, stop) in self.epochs.items():
            epochs[name] = (start, stop) if np.ndim(start) == 0 else (np.asarray(start)[idx], np.asarray(stop)[idx])
        return replace(
            self,
            inputs=self.inputs[idx],
            targets=self.targets[idx],
            loss_mask=self.loss_mask[idx],
            conditions=self.conditions.iloc[idx].reset_index(drop=True),
            epochs=epochs,
            valid=self.valid[idx],
        )


def ms_to_step(ms: float | np.ndarray, dt: float) -> np.ndarray:
    """Nearest step boundary of a time in milliseconds; a tie goes to the earlier step.

    With the default CDM timing at ``dt = 20 ms`` this gives the 68 steps of
    Dubreuil, Valente et al. (2022) (the 350 ms context-only period spans 17 steps).
    """
    return np.ceil(np.asarray(ms, dtype=float) / (dt * 1000.0) - 0.5 - 1e-9).astype(int)


def _as_numpy_outputs(outputs: Any) -> np.ndarray:
    if isinstance(outputs, torch.Tensor):
        outputs = outputs.detach().cpu().numpy()
    elif hasattr(outputs, "outputs"):  # a Trajectory
        return _as_numpy_outputs(outputs.outputs)
    return np.asarray(outputs, dtype=float)


class Task:
    """Base class of the tasks: parameters, timing, trial generation and metrics.

    Subclasses set :attr:`name`, :attr:`defaults` (parameters, durations in ms),
    :attr:`input_names`, :attr:`condition_columns` and implement
    :meth:`_sample_conditions`, :meth:`_epoch_durations` and :meth:`_fill`.

    Parameters
    ----------
    dt : float
        Euler step in seconds (default 0.02); must not exceed any epoch.
    **params
        Task parameters overriding :attr:`defaults` (see each task's docstring).
    """

    name: ClassVar[str] = "base"
    defaults: ClassVar[dict[str, Any]] = {}
    input_names: ClassVar[tuple[str, ...]] = ()
    output_names: ClassVar[tuple[str, ...]] = ("choice",)
    #: condition columns that ``generate(..., column=value)`` may fix
    condition_columns: ClassVar[tuple[str, ...]] = ()
    #: input channels that receive the dt-corrected input noise
    noise_channels: ClassVar[tuple[str, ...]] = ()
    #: epochs whose duration is drawn per trial: name -> (min param, max param)
    variable_epochs: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, dt: float = 0.02, **params: Any) -> None:
        try:
            dt = float(dt)
        except (TypeError, ValueError):
            raise LrfitError(f"dt must be a number of seconds, got {dt!r}.") from None
        if not (dt > 0 and math.isfinite(dt)):
            raise LrfitError(f"dt must be a positive number of seconds, got {dt}.")
        self.dt = dt
        self.params = self._resolve(params)
        self._check_timing(self.params)

    # ------------------------------------------------------------------ parameters
    def _resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        for key in params:
            if key not in self.defaults:
                raise LrfitError(
                    f"Task '{self.name}' has no parameter '{key}'{closest(key, self.defaults)}; "
                    f"its parameters are: {', '.join(self.defaults)}."
                )
        resolved = dict(self.defaults)
        for key, value in params.items():
            default = self.defaults[key]
            if isinstance(default, (list, tuple)):
                try:
                    values = [float(v) for v in np.atleast_1d(np.asarray(value, dtype=float))]
                except (TypeError, ValueError):
                    raise LrfitError(f"Task parameter '{key}' must be a list of numbers, got {value!r}.") from None
                if not values:
                    raise LrfitError(f"Task parameter '{key}' must not be empty.")
                resolved[key] = values
            elif isinstance(default, bool):
                resolved[key] = bool(value)
            elif isinstance(default, (int, float)):
                try:
                    resolved[key] = float(value)
                except (TypeError, ValueError):
                    raise LrfitError(f"Task parameter '{key}' must be a number, got {value!r}.") from None
                if not math.isfinite(resolved[key]):
                    raise LrfitError(f"Task parameter '{key}' must be finite, got {value!r}.")
            else:
                resolved[key] = value
        for key, value in resolved.items():
            if (key.endswith("_ms") or key in ("input_noise",)) and float(value) < 0:
                raise LrfitError(f"Task parameter '{key}' must be >= 0, got {value}.")
        self._validate(resolved)
        return {k: jsonable(v) for k, v in resolved.items()}

    def _validate(self, params: dict[str, Any]) -> None:
        """Task-specific checks of the resolved parameters (raise :class:`LrfitError`)."""
        for lo_key, hi_key in self.variable_epochs.values():
            if params[lo_key] > params[hi_key]:
                raise LrfitError(
                    f"Task '{self.name}': {lo_key}={params[lo_key]:g} is larger than {hi_key}={params[hi_key]:g}; "
                    f"use {lo_key} <= {hi_key}."
                )

    def _check_timing(self, params: dict[str, Any]) -> None:
        dt_ms = self.dt * 1000.0
        for name, duration in self._min_durations(params).items():
            if duration > 0 and dt_ms > duration + 1e-9:
                raise LrfitError(
                    f"dt={dt_ms:g} ms is longer than the '{name}' epoch ({duration:g} ms) of task '{self.name}'; "
                    f"use dt <= {duration / 1000.0:g} s or lengthen that epoch."
                )

    def _min_durations(self, params: dict[str, Any]) -> dict[str, float]:
        """Shortest duration (ms) of each epoch over the possible trials."""
        raise NotImplementedError

    def _max_total_ms(self, params: dict[str, Any]) -> float:
        return float(sum(self._max_durations(params).values()))

    def _max_durations(self, params: dict[str, Any]) -> dict[str, float]:
        return self._min_durations(params)

    # ------------------------------------------------------------------ properties
    @property
    def n_inputs(self) -> int:
        """Number of input channels."""
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        """Number of readout channels."""
        return len(self.output_names)

    @property
    def n_steps(self) -> int:
        """Number of steps of a generated trial array (the longest possible trial)."""
        return int(ms_to_step(self._max_total_ms(self.params), self.dt))

    @property
    def epoch_names(self) -> tuple[str, ...]:
        """Epoch names in temporal order."""
        return tuple(self._min_durations(self.params))

    def epoch_times_ms(self) -> dict[str, tuple[float, float]]:
        """Nominal ``(start, stop)`` of each epoch in ms, for the shortest trial (dt-free)."""
        out: dict[str, tuple[float, float]] = {}
        t = 0.0
        for name, duration in self._min_durations(self.params).items():
            out[name] = (t, t + duration)
            t += duration
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description; ``get_task(**d)`` rebuilds the task."""
        return {"name": self.name, "dt": self.dt, **{k: jsonable(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        """Rebuild a task from :meth:`to_dict` output."""
        from . import get_task

        return get_task(**d)

    def with_dt(self, dt: float) -> Task:
        """The same task at another step ``dt``."""
        return type(self)(dt=dt, **self.params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dt={self.dt:g}, " + ", ".join(f"{k}={v!r}" for k, v in self.params.items()) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self.to_dict() == other.to_dict()

    # ------------------------------------------------------------------ generation
    def generate(self, n_trials: int, seed: int = 0, **overrides: Any) -> TaskTrials:
        """Draw *n_trials* trials.

        Parameters
        ----------
        n_trials : int
            Number of trials ``K``.
        seed : int
            Same seed, same arrays (conditions do not depend on ``dt``).
        **overrides
            Task parameters for this call only (e.g. ``coherences=[0.05]``,
            ``input_noise=0``), or fixed trial conditions, given as one value for
            all trials or a sequence of ``K`` values (e.g. ``context="motion"``,
            ``coh_motion=[...]``); see :attr:`condition_columns`.

        Returns
        -------
        TaskTrials
        """
        try:
            n_trials = int(n_trials)
        except (TypeError, ValueError):
            raise LrfitError(f"n_trials must be a positive integer, got {n_trials!r}.") from None
        if n_trials < 1:
            raise LrfitError(f"n_trials must be a positive integer, got {n_trials}.")
        if int(seed) < 0:
            raise LrfitError(f"seed must be >= 0, got {seed}.")
        task = self
        param_over = {k: v for k, v in overrides.items() if k in self.defaults}
        fixed = {k: v for k, v in overrides.items() if k not in self.defaults}
        for key in fixed:
            if key not in self.condition_columns:
                choices = list(self.defaults) + list(self.condition_columns)
                raise LrfitError(
                    f"Task '{self.name}' cannot override '{key}'{closest(key, choices)}; "
                    f"give a parameter ({', '.join(self.defaults)}) or a condition "
                    f"({', '.join(self.condition_columns)})."
                )
        if param_over:
            task = type(self)(dt=self.dt, **{**self.params, **param_over})
        fixed_values = {k: self._broadcast(k, v, n_trials) for k, v in fixed.items()}
        rng_cond = np.random.default_rng([int(seed), 0])
        rng_noise = np.random.default_rng([int(seed), 1])
        p = task.params
        conditions = task._sample_conditions(n_trials, rng_cond, p, fixed_values)
        conditions = conditions.reset_index(drop=True)

        names, durations = task._epoch_durations(conditions, p)  # (K, E) ms
        edges_ms = np.concatenate([np.zeros((n_trials, 1)), np.cumsum(durations, axis=1)], axis=1)
        edges = ms_to_step(edges_ms, task.dt)  # (K, E+1)
        n_steps = task.n_steps
        edges = np.minimum(edges, n_steps)
        epochs: dict[str, EpochBounds] = {}
        for e, name in enumerate(names):
            starts, stops = edges[:, e], edges[:, e + 1]
            if np.all(starts == starts[0]) and np.all(stops == stops[0]):
                epochs[name] = (int(starts[0]), int(stops[0]))
            else:
                epochs[name] = (starts.copy(), stops.copy())
        steps = np.arange(n_steps)
        valid = steps[None, :] < edges[:, -1:]

        inputs = np.zeros((n_trials, n_steps, task.n_inputs), dtype=np.float32)
        targets = np.zeros((n_trials, n_steps, task.n_outputs), dtype=np.float32)
        trials = TaskTrials(
            inputs=inputs,
            targets=targets,
            loss_mask=np.zeros((n_trials, n_steps), dtype=np.float32),
            conditions=conditions,
            input_names=tuple(task.input_names),
            output_names=tuple(task.output_names),
            dt=task.dt,
            time=((np.arange(n_steps) + 0.5) * task.dt).astype(np.float64),
            epochs=epochs,
            valid=valid,
            task=task.name,
            seed=int(seed),
            meta={"task": task.to_dict()},
        )
        task._fill(trials, p)
        sigma = float(p.get("input_noise", 0.0))
        if sigma > 0 and task.noise_channels:
            chans = [task.input_names.index(c) for c in task.noise_channels]
            scale = sigma * math.sqrt(DT_REF / task.dt)
            noise = rng_noise.standard_normal((n_trials, n_steps, len(chans))) * scale
            inputs[:, :, chans] += (noise * valid[:, :, None]).astype(np.float32)
        return trials

    def _broadcast(self, key: str, value: Any, n_trials: int) -> np.ndarray:
        arr = np.asarray(value)
        if arr.ndim == 0:
            arr = np.full(n_trials, arr.item(), dtype=arr.dtype if arr.dtype.kind in "fiub" else object)
        if arr.ndim != 1 or len(arr) != n_trials:
            raise LrfitError(
                f"Override '{key}' must be one value or {n_trials} values (one per trial), got shape {arr.shape}."
            )
        return arr

    # subclasses ---------------------------------------------------------------
    def _sample_conditions(
        self, n_trials: int, rng: np.random.Generator, params: dict[str, Any], fixed: dict[str, np.ndarray]
    ) -> pd.DataFrame:
        raise NotImplementedError

    def _epoch_durations(self, conditions: pd.DataFrame, params: dict[str, Any]) -> tuple[list[str], np.ndarray]:
        """Epoch names and their per-trial durations in ms, shape ``(K, E)``."""
        names = list(self._min_durations(params))
        row = np.array([self._min_durations(params)[n] for n in names], dtype=float)
        return names, np.tile(row, (len(conditions), 1))

    def _fill(self, trials: TaskTrials, params: dict[str, Any]) -> None:
        """Write the noiseless inputs, the targets and the loss mask in place."""
        raise NotImplementedError

    @staticmethod
    def _fill_decision(trials: TaskTrials, params: dict[str, Any]) -> None:
        """Target ``condition target * params['target']`` in the decision epoch, scored there only."""
        decision = trials.epoch_mask("decision")
        trials.targets[:, :, 0] = decision * (trials.conditions["target"].to_numpy()[:, None] * params["target"])
        trials.loss_mask[:] = decision

    def _check_categorical(self, key: str, values: np.ndarray, allowed: Sequence[Any]) -> np.ndarray:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise LrfitError(
                f"Override '{key}' has the value {bad[0]!r}{closest(str(bad[0]), map(str, allowed))}; "
                f"use one of: {', '.join(map(str, allowed))}."
            )
        return values

    def _check_numeric(self, key: str, values: np.ndarray) -> np.ndarray:
        try:
            out = values.astype(float)
        except (TypeError, ValueError):
            raise LrfitError(f"Override '{key}' must be numeric.") from None
        if not np.all(np.isfinite(out)):
            raise LrfitError(f"Override '{key}' must be finite numbers.")
        return out

    # ------------------------------------------------------------------ metrics
    def _check_outputs(self, outputs: Any, trials: TaskTrials) -> np.ndarray:
        out = _as_numpy_outputs(outputs)
        if out.ndim == 2:
            out = out[:, :, None]
        if out.ndim != 3 or out.shape[:2] != (trials.n_trials, trials.n_steps) or out.shape[2] < 1:
            raise LrfitError(
                f"outputs have shape {out.shape} but the trials need ({trials.n_trials}, {trials.n_steps}, "
                f"{self.n_outputs}) (trials, time, outputs); simulate the network on trials.inputs."
            )
        return out

    def decision_values(self, outputs: Any, trials: TaskTrials) -> np.ndarray:
        """Mean of output channel 0 over each trial's decision epoch, shape ``(trials,)``."""
        out = self._check_outputs(outputs, trials)
        mask = trials.epoch_mask("decision")
        count = mask.sum(1)
        return (out[:, :, 0] * mask).sum(1) / np.maximum(count, 1)

    def choices(self, outputs: Any, trials: TaskTrials) -> np.ndarray:
        """Choice of each trial, ``+1`` or ``-1``: the sign of the mean decision-epoch output.

        Parameters
        ----------
        outputs : np.ndarray or Tensor
            ``(trials, time, outputs)`` network readout on ``trials.inputs``.
        trials : TaskTrials
            The trials the outputs were produced on.

        Returns
        -------
        np.ndarray
            int ``(trials,)``.
        """
        return np.where(self.decision_values(outputs, trials) > 0, 1, -1).astype(int)

    def correct(self, outputs: Any, trials: TaskTrials) -> np.ndarray:
        """Whether each trial's choice has the sign of its target.

        Parameters
        ----------
        outputs : np.ndarray or Tensor
            ``(trials, time, outputs)`` network readout on ``trials.inputs``.
        trials : TaskTrials
            The trials (their ``conditions['target']`` is +1 or -1).

        Returns
        -------
        np.ndarray
            bool ``(trials,)``.
        """
        return self.choices(outputs, trials) == trials.conditions["target"].to_numpy()

    def accuracy(self, outputs: Any, trials: TaskTrials) -> float:
        """Fraction of trials whose choice has the sign of the target (the mean of :meth:`correct`).

        Parameters
        ----------
        outputs : np.ndarray or Tensor
            ``(trials, time, outputs)`` network readout on ``trials.inputs``.
        trials : TaskTrials
            The trials (their ``conditions['target']`` is +1 or -1).

        Returns
        -------
        float
            Accuracy in [0, 1].
        """
        return float(np.mean(self.correct(outputs, trials)))

    def psychometric(self, outputs: Any, trials: TaskTrials) -> pd.DataFrame:
        """Probability of choice ``+1`` per condition (see each task for the columns)."""
        raise LrfitError(f"Task '{self.name}' has no psychometric curve.")

    @staticmethod
    def _p_choice(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
        grouped = df.groupby(by, sort=True)["choice"]
        out = grouped.agg(p_choice=lambda c: float(np.mean(c == 1)), n="size").reset_index()
        out["n"] = out["n"].astype(int)
        return out


def sample_or_fixed(
    key: str, fixed: dict[str, np.ndarray], rng: np.random.Generator, values: Sequence[Any], n: int
) -> np.ndarray:
    """Values for condition *key*: the fixed override if given, else uniform draws from *values*."""
    draw = np.asarray(values)[rng.integers(0, len(values), size=n)]
    return fixed[key] if key in fixed else draw


def signed_target(value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``sign(value)`` as +1/-1; a zero value gets a random target (drawn for every trial)."""
    coin = np.where(rng.random(len(value)) < 0.5, 1, -1)
    return np.where(value > 0, 1, np.where(value < 0, -1, coin)).astype(int)


def delay_grid(params: dict[str, Any]) -> np.ndarray:
    """Possible delays (ms): ``delay_min_ms`` to ``delay_max_ms`` in steps of ``delay_step_ms``."""
    lo, hi, step = params["delay_min_ms"], params["delay_max_ms"], params["delay_step_ms"]
    if hi == lo:
        return np.array([lo])
    return np.arange(lo, hi + step / 2.0, step)


class DelayTask(Task):
    """A task whose ``delay`` epoch lasts a per-trial duration (``delay_ms`` condition).

    Subclasses define :meth:`_durations` (epoch name -> ms for a given delay) and
    have ``delay_min_ms``, ``delay_max_ms``, ``delay_step_ms`` and ``decision_ms``
    parameters.  Arrays span the longest trial; shorter trials are padded.
    """

    variable_epochs: ClassVar[dict[str, tuple[str, str]]] = {"delay": ("delay_min_ms", "delay_max_ms")}

    def _durations(self, params: dict[str, Any], delay: float) -> dict[str, float]:
        raise NotImplementedError

    def _validate(self, params: dict[str, Any]) -> None:
        super()._validate(params)
        if params["delay_step_ms"] <= 0:
            raise LrfitError(f"Task '{self.name}': delay_step_ms must be > 0, got {params['delay_step_ms']:g}.")
        if params["decision_ms"] <= 0:
            raise LrfitError(f"Task '{self.name}' needs a decision epoch: decision_ms must be > 0.")

    def _min_durations(self, params: dict[str, Any]) -> dict[str, float]:
        return self._durations(params, params["delay_min_ms"])

    def _max_durations(self, params: dict[str, Any]) -> dict[str, float]:
        return self._durations(params, params["delay_max_ms"])

    def _epoch_durations(self, conditions: pd.DataFrame, params: dict[str, Any]) -> tuple[list[str], np.ndarray]:
        names = list(self._min_durations(params))
        rows = [list(self._durations(params, d).values()) for d in conditions["delay_ms"].to_numpy()]
        return names, np.asarray(rows, dtype=float).reshape(len(conditions), len(names))

    def _sample_delays(
        self, n_trials: int, rng: np.random.Generator, params: dict[str, Any], fixed: dict[str, np.ndarray]
    ) -> np.ndarray:
        delays = self._check_numeric("delay_ms", sample_or_fixed("delay_ms", fixed, rng, delay_grid(params), n_trials))
        lo, hi = params["delay_min_ms"], params["delay_max_ms"]
        if np.any(delays < lo - 1e-9) or np.any(delays > hi + 1e-9):
            raise LrfitError(
                f"Override 'delay_ms' must lie within [{lo:g}, {hi:g}] ms; "
                "change delay_min_ms / delay_max_ms to go outside that range."
            )
        return delays


class TwoIntervalTask(DelayTask):
    """A delay task with two stimuli: fixation, stimulus1, delay, stimulus2, decision (``*_ms`` parameters)."""

    def _durations(self, params: dict[str, Any], delay: float) -> dict[str, float]:
        return {
            "fixation": params["fixation_ms"],
            "stimulus1": params["stimulus1_ms"],
            "delay": delay,
            "stimulus2": params["stimulus2_ms"],
            "decision": params["decision_ms"],
        }
