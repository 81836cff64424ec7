"""Everything a run-level analysis needs: the network, its task or data, its teacher.

A run directory (:class:`lrfit.runs.layout.RunDir`, layouts in :mod:`lrfit.runs.layout`) holds a
network trained on a task or fitted to activity.  :func:`load_context` turns it into
an analysable form and :func:`run_activity` produces the activity the latent analysis
projects:

* fitted networks: the fit's own data (:func:`lrfit.runs.data.run_data`), simulated by
  the fitted network from the fit's initial states; a fit saved from Python without
  ``config.yaml`` has no data (:func:`missing_data_reason`);
* task-trained networks: fresh task trials, simulated without private noise.

Both are computed once per :class:`~lrfit.runs.layout.RunDir` (cached on it), so the
commands that build on each other (``lrfit report``) load everything once.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError, check_choice
from .data import run_data
from .layout import CONFIG_FILE, RunDir, as_run

log = logging.getLogger(__name__)

SPLITS = ("all", "train", "test")


@dataclass
class RunContext:
    """A run directory opened for analysis.

    Attributes
    ----------
    run : RunDir
        The run directory.
    model : RNNBase
        The analysed network: a copy of the saved one, SVD-normalised when low-rank
        (``M = U sqrt(S)``, ``N = V sqrt(S)``, so ``J`` is unchanged and the latent axes
        are unique up to sign), with the teacher's readout attached
        (:func:`lrfit.analysis.network_inactivation.attach_teacher_readout`) when the network has none and
        a teacher is known.
    source_model : RNNBase
        The network as saved.
    task : Task or None
        The run's own task (teachers) or its teacher's task.
    teacher : RNNBase or None
        The teacher the network was fitted to, if known.
    fit : LowRankFit or None
        The fit estimator (runs written by ``lrfit fit``), used to simulate the data.
    neuron_ids : list of str
        One id per unit of ``model``: the recorded neuron's id for fitted units,
        ``hidden_<k>`` for hidden units, the unit index for task-trained networks.
    n_observed : int
        Number of units that stand for recorded neurons.
    readout : str
        ``"own"``, ``"teacher"`` (attached) or ``"none"``.
    """

    run: RunDir
    model: Any
    source_model: Any
    task: Any
    teacher: Any
    fit: Any
    neuron_ids: list[str]
    n_observed: int
    readout: str

    @property
    def is_lowrank(self) -> bool:
        """Whether the network has low-rank factors ``m`` and ``n``."""
        return hasattr(self.model, "m") and hasattr(self.model, "n")

    @property
    def input_names(self) -> list[str]:
        """Input channel names (``in_<c>`` when unknown)."""
        names = self.run.input_names or (list(self.task.input_names) if self.task is not None else None)
        n_in = int(self.model.n_inputs)
        if not names or len(names) != n_in:
            return [f"in_{c}" for c in range(n_in)]
        return [str(s) for s in names]

    @property
    def output_names(self) -> list[str]:
        """Readout channel names (``out_<o>`` when unknown)."""
        n_out = int(self.model.n_outputs)
        names = list(getattr(self.task, "output_names", ()) or ())
        if len(names) != n_out:
            return [f"out_{o}" for o in range(n_out)]
        return [str(s) for s in names]

    @property
    def observed_ids(self) -> list[str]:
        """Ids of the units that stand for recorded neurons."""
        return self.neuron_ids[: self.n_observed]


def _lowrank_needed_message(command: str, run: RunDir) -> str:
    return (
        f"'lrfit {command}' needs a low-rank model but '{run.model_dir}' holds a {run.kind or 'unknown'} network; "
        f"fit a low-rank student to it first (lrfit fit configs/teacher_student.yaml --set data.teacher={run.path} "
        "--out STUDENT_DIR) and analyse the student."
    )


def load_context(
    run: RunDir | str | Path,
    teacher: str | Path | None = None,
    rank: int | None = None,
    require_lowrank: bool = True,
    command: str = "analyze",
) -> RunContext:
    """The network, task, teacher and fit of a run, built once per :class:`~lrfit.runs.layout.RunDir`.

    Parameters
    ----------
    run : RunDir, str or Path
        An open run, or a run directory written by ``lrfit fit``, ``lrfit teacher`` or
        :meth:`lrfit.LowRankFit.save`.
    teacher : str or Path, optional
        Teacher directory (overrides the one the run records); only with a path.
    rank : int, optional
        For a rank list, the rank to analyse (default: the chosen one); only with a path.
    require_lowrank : bool
        Raise :class:`LrfitError` for a full-rank network.
    command : str
        Command name used in error messages.

    Returns
    -------
    RunContext
    """
    run = as_run(run, teacher=teacher, rank=rank)
    if require_lowrank and run.kind != "lowrank":
        raise LrfitError(_lowrank_needed_message(command, run))
    return run.cached("context", lambda: _build_context(run))


def _build_context(run: RunDir) -> RunContext:
    from ..analysis.network_inactivation import attach_teacher_readout

    source = run.model
    loaded = run.teacher
    teacher_model, task = (loaded if loaded is not None else (None, run.own_task()))
    model = copy.deepcopy(source)
    if hasattr(model, "svd_normalize_"):
        model.svd_normalize_()
    n_units = int(model.n_units)
    ids = run.neuron_ids
    if ids is None:
        ids = [str(i) for i in range(n_units)]
        n_obs = n_units
    else:
        n_obs = len(ids)
        ids = list(ids) + [f"hidden_{k}" for k in range(n_units - n_obs)]
    readout = "own" if int(model.n_outputs) else "none"
    if readout == "none" and teacher_model is not None:
        try:
            model = attach_teacher_readout(model, teacher_model, ids[:n_obs])
        except (ValueError, TypeError):
            log.warning("Could not map the fitted units onto the teacher's units; no readout attached.")
        else:
            readout = "teacher"
    return RunContext(run, model, source, task, teacher_model, run.estimator, ids, n_obs, readout)


def missing_data_reason(ctx: RunContext) -> str | None:
    """Why a fitted run's data cannot be rebuilt (no ``config.yaml``, e.g. a fit saved by ``LowRankFit.save``), else ``None``."""
    if ctx.fit is not None and ctx.run.config is None:
        return f"'{ctx.run.path}' holds a fitted network but no {CONFIG_FILE}, so its data cannot be rebuilt"
    return None


@dataclass(frozen=True)
class RunActivity:
    """Activity of a run's network on its trials.

    Attributes
    ----------
    currents : ndarray, (K, T, N)
        Currents ``x`` of every unit of the network.
    inputs : ndarray, (K, T, C)
        Inputs that drove it.
    time : ndarray, (T,)
        Seconds.
    mask : ndarray, (K, T) bool
        Valid bins.
    conditions : pandas.DataFrame
        One row per trial (a ``split`` column for fitted runs).
    source : str
        ``"data"`` (the fit's trials) or ``"task"`` (generated task trials).
    recorded, fitted : ndarray or None, (K, T, n_observed)
        Recorded and fitted activity of the observed units (fitted runs only).
    unit : str
        What ``recorded`` holds (``"rates"`` or ``"currents"``; ``"Hz"`` for a counts fit,
        whose recorded counts and expected counts are divided by ``dt``).
    """

    currents: np.ndarray
    inputs: np.ndarray
    time: np.ndarray
    mask: np.ndarray
    conditions: pd.DataFrame
    source: str
    recorded: np.ndarray | None = None
    fitted: np.ndarray | None = None
    unit: str = "rates"


def _data_activity(ctx: RunContext, split: str) -> RunActivity:
    reason = missing_data_reason(ctx)
    if reason is not None:
        raise LrfitError(f"{reason}; analyse the directory written by 'lrfit fit'.")
    data = run_data(ctx.run)
    parts = {"train": data.train, "test": data.test}
    chosen = ["train", "test"] if split == "all" else [split]
    cur, inp, msk, rec, fitted, conds = [], [], [], [], [], []
    counts = ctx.fit.observation_.counts
    per_second = 1.0 / float(data.train.dt) if counts else 1.0  # counts per bin -> Hz
    for name in chosen:
        d = parts[name]
        traj = ctx.fit.simulate(d)
        cur.append(traj.currents.cpu().numpy())
        inp.append(np.asarray(d.inputs, np.float32))
        msk.append(np.asarray(d.mask, bool))
        rec.append(np.asarray(d.activity, np.float32) * np.float32(per_second))
        fitted.append(ctx.fit.observe(traj).cpu().numpy() * np.float32(per_second))
        cond = d.conditions.reset_index(drop=True).copy() if d.conditions is not None else pd.DataFrame(index=range(d.n_trials))
        cond["split"] = name
        conds.append(cond)
    lengths = {x.shape[1] for x in cur}
    if len(lengths) > 1:
        raise LrfitError(f"The train and test trials of '{ctx.run.path}' have different lengths {sorted(lengths)}; pass --split train or --split test.")
    return RunActivity(
        currents=np.concatenate(cur),
        inputs=np.concatenate(inp),
        time=np.asarray(data.train.time, float),
        mask=np.concatenate(msk),
        conditions=pd.concat(conds, ignore_index=True),
        source="data",
        recorded=np.concatenate(rec),
        fitted=np.concatenate(fitted),
        unit="Hz" if counts else ctx.fit.observation_.name,
    )


def run_activity(ctx: RunContext, split: str = "all", n_trials: int = 256, seed: int = 0) -> RunActivity:
    """Simulate the run's network on its own trials (once per run and arguments).

    Parameters
    ----------
    ctx : RunContext
        From :func:`load_context`.
    split : {"all", "train", "test"}
        Fitted runs: which trials of the fit's data.
    n_trials, seed : int
        Task-trained runs: number and seed of the generated task trials.

    Returns
    -------
    RunActivity
    """
    check_choice(split, SPLITS, "split")
    if ctx.fit is not None:
        return ctx.run.cached(("activity", split), lambda: _data_activity(ctx, split))
    if ctx.task is None:
        raise LrfitError(
            f"'{ctx.run.path}' records neither a fit config nor a task, so there is no activity to analyse; "
            "analyse a directory written by 'lrfit fit' or 'lrfit teacher'."
        )
    return ctx.run.cached(("activity", "task", int(n_trials), int(seed)), lambda: _task_activity(ctx, int(n_trials), int(seed)))


def _task_activity(ctx: RunContext, n_trials: int, seed: int) -> RunActivity:
    from ..analysis import run_network

    trials = ctx.task.generate(n_trials, seed=seed)
    traj = run_network(ctx.source_model, trials.inputs, noise_std=0.0)
    return RunActivity(
        currents=traj.currents.cpu().numpy(),
        inputs=np.asarray(trials.inputs, np.float32),
        time=np.asarray(trials.time, float),
        mask=np.asarray(trials.valid, bool),
        conditions=trials.conditions.reset_index(drop=True),
        source="task",
    )
