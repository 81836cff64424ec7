"""A run opened for analysis: one :class:`Run` holds the network, its task or data, its teacher and its activity.

A run directory (layouts in :mod:`lrfit.runs.layout`) holds a network trained on a task or fitted to
activity.  :class:`Run` reads it once, as typed cached properties: the fit estimator (``fit``), the
analysed network (``model``: SVD-normalised, with the teacher's readout attached), the task, the
teacher, the unit ids, the fit's data splits (``data``) and the activity the latent analysis projects
(:meth:`Run.activity`):

* fitted networks: the fit's own data (:func:`lrfit.runs.data.prepare_data` of ``config.yaml``),
  simulated by the fitted network from the fit's initial states; a fit saved from Python without
  ``config.yaml`` has no data (:attr:`Run.missing_data_reason`);
* task-trained networks: fresh task trials, simulated without private noise.

The commands that build on each other (``lrfit report``) therefore load everything once.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError, check_choice
from . import data as splits
from .data import PreparedData
from .layout import CONFIG_FILE, RunDir

log = logging.getLogger(__name__)

SPLITS = ("all", "train", "test")


class Run(RunDir):
    """A run directory opened for analysis (see the module docstring); everything is read once.

    Parameters
    ----------
    path : str or Path
        The run directory.
    teacher : str or Path, optional
        Teacher directory (overrides what the run records).
    rank : int, optional
        For a rank list, the rank analysed instead of the chosen one.

    Examples
    --------
    >>> import tempfile
    >>> from lrfit import LowRankFit, TrialData
    >>> import numpy as np
    >>> data = TrialData(activity=0.5 * np.tanh(np.random.default_rng(0).normal(size=(8, 10, 6))), dt=0.02)
    >>> folder = LowRankFit(max_epochs=1, progress=False).fit(data).save(tempfile.mkdtemp())
    >>> run = Run.open(folder)
    >>> run.is_lowrank, run.n_observed, run.readout, run.missing_data_reason is not None
    (True, 6, 'none', True)
    """

    def __init__(self, path: str | Path, teacher: str | Path | None = None, rank: int | None = None) -> None:
        super().__init__(path, teacher=teacher, rank=rank)
        self._activity: dict[tuple[Any, ...], RunActivity] = {}

    def __repr__(self) -> str:
        return f"Run('{self.path}')"

    @property
    def fit(self) -> Any:
        """The fit estimator (:class:`lrfit.LowRankFit`) of a fitted run, else ``None``."""
        return self.estimator

    @property
    def source_model(self) -> Any:
        """The network as saved."""
        return self.saved_model

    @property
    def teacher(self) -> Any:
        """The teacher network the run was fitted to, if known."""
        return None if self.teacher_and_task is None else self.teacher_and_task[0]

    @cached_property
    def _analysed(self) -> tuple[Any, str]:
        """The analysed network and where its readout comes from."""
        from ..analysis.network_inactivation import attach_teacher_readout

        model = copy.deepcopy(self.saved_model)
        if hasattr(model, "svd_normalize_"):
            model.svd_normalize_()
        readout = "own" if int(model.n_outputs) else "none"
        if readout == "none" and self.teacher is not None:
            try:
                model = attach_teacher_readout(model, self.teacher, self.observed_ids)
            except (ValueError, TypeError):
                log.warning("Could not map the fitted units onto the teacher's units; no readout attached.")
            else:
                readout = "teacher"
        return model, readout

    @property
    def model(self) -> Any:
        """The analysed network: a copy of the saved one, SVD-normalised when low-rank.

        ``M = U sqrt(S)``, ``N = V sqrt(S)``: ``J`` unchanged, the latent axes unique up to sign.  The
        teacher's readout is attached (:func:`lrfit.analysis.network_inactivation.attach_teacher_readout`)
        when the network has none and a teacher is known.
        """
        return self._analysed[0]

    @property
    def readout(self) -> str:
        """``"own"``, ``"teacher"`` (attached) or ``"none"``."""
        return self._analysed[1]

    @property
    def is_lowrank(self) -> bool:
        """Whether the network has low-rank factors ``m`` and ``n``."""
        return hasattr(self.saved_model, "m") and hasattr(self.saved_model, "n")

    @cached_property
    def neuron_ids(self) -> list[str]:
        """One id per unit: the recorded neuron's for fitted units, ``hidden_<k>`` for hidden ones, else the index."""
        n_units, ids = int(self.saved_model.n_units), self.recorded_ids
        if ids is None:
            return [str(i) for i in range(n_units)]
        return list(ids) + [f"hidden_{k}" for k in range(n_units - len(ids))]

    @property
    def n_observed(self) -> int:
        """Number of units that stand for recorded neurons."""
        ids = self.recorded_ids
        return int(self.saved_model.n_units) if ids is None else len(ids)

    @property
    def observed_ids(self) -> list[str]:
        """Ids of the units that stand for recorded neurons."""
        return self.neuron_ids[: self.n_observed]

    @property
    def input_names(self) -> list[str]:
        """Input channel names (``in_<c>`` when unknown)."""
        names = self.saved_input_names or (list(self.task.input_names) if self.task is not None else None)
        n_in = int(self.saved_model.n_inputs)
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

    @cached_property
    def data(self) -> PreparedData | None:
        """The fit's data splits, rebuilt from ``config.yaml`` (``None`` for a run without one)."""
        return None if self.config is None else splits.prepare_data(self.config)

    @property
    def missing_data_reason(self) -> str | None:
        """Why a fitted run's data cannot be rebuilt (no ``config.yaml``, e.g. a ``LowRankFit.save``), else None."""
        if self.fit is not None and self.config is None:
            return f"'{self.path}' holds a fitted network but no {CONFIG_FILE}, so its data cannot be rebuilt"
        return None

    def activity(self, split: str = "all", n_trials: int = 256, seed: int = 0) -> RunActivity:
        """The network simulated on its own trials (the fit's data, or generated task trials), once per arguments.

        Parameters
        ----------
        split : {"all", "train", "test"}
            Fitted runs: which trials of the fit's data.
        n_trials, seed : int
            Task-trained runs: number and seed of the generated task trials.

        Returns
        -------
        RunActivity
        """
        check_choice(split, SPLITS, "split")
        if self.fit is not None:
            key: tuple[Any, ...] = ("data", split)
            make = lambda: _data_activity(self, split)  # noqa: E731
        elif self.task is None:
            raise LrfitError(
                f"'{self.path}' records neither a fit config nor a task, so there is no activity to analyse; "
                "analyse a directory written by 'lrfit fit' or 'lrfit teacher'.")
        else:
            key = ("task", int(n_trials), int(seed))
            make = lambda: _task_activity(self, int(n_trials), int(seed))  # noqa: E731
        if key not in self._activity:
            self._activity[key] = make()
        return self._activity[key]


def _lowrank_needed_message(command: str, run: RunDir) -> str:
    return (
        f"'lrfit {command}' needs a low-rank model but '{run.model_dir}' holds a {run.kind or 'unknown'} network; "
        f"fit a low-rank student to it first (lrfit fit configs/teacher_student.yaml --set data.teacher={run.path} "
        "--out STUDENT_DIR) and analyse the student."
    )


def open_run(run: Run | RunDir | str | Path, teacher: str | Path | None = None, rank: int | None = None) -> Run:
    """*run* itself when it is a :class:`Run`, else the run at its path opened with :meth:`Run.open`.

    Raises
    ------
    LrfitError
        If *teacher* or *rank* is given with an already opened run.
    """
    if isinstance(run, RunDir):
        if teacher is not None or rank is not None:
            raise LrfitError(f"{run!r} is already open; give teacher and rank to Run.open('{run.path}', "
                             "teacher=..., rank=...).")
        return run if isinstance(run, Run) else Run.open(run.path, teacher=run._teacher_arg, rank=run._rank)
    return Run.open(run, teacher=teacher, rank=rank)


def load_context(
    run: Run | RunDir | str | Path,
    teacher: str | Path | None = None,
    rank: int | None = None,
    require_lowrank: bool = True,
    command: str = "analyze",
) -> Run:
    """A run opened for analysis (:func:`open_run`), checked to hold a low-rank network where that is needed.

    Parameters
    ----------
    run : Run, RunDir, str or Path
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
    Run
    """
    run = open_run(run, teacher=teacher, rank=rank)
    if require_lowrank and run.kind != "lowrank":
        raise LrfitError(_lowrank_needed_message(command, run))
    return run


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


def _data_activity(run: Run, split: str) -> RunActivity:
    reason = run.missing_data_reason
    if reason is not None:
        raise LrfitError(f"{reason}; analyse the directory written by 'lrfit fit'.")
    data = run.data
    parts = {"train": data.train, "test": data.test}
    chosen = ["train", "test"] if split == "all" else [split]
    cur, inp, msk, rec, fitted, conds = [], [], [], [], [], []
    counts = run.fit.observation_.counts
    per_second = 1.0 / float(data.train.dt) if counts else 1.0  # counts per bin -> Hz
    for name in chosen:
        d = parts[name]
        traj = run.fit.simulate(d)
        cur.append(traj.currents.cpu().numpy())
        inp.append(np.asarray(d.inputs, np.float32))
        msk.append(np.asarray(d.mask, bool))
        rec.append(np.asarray(d.activity, np.float32) * np.float32(per_second))
        fitted.append(run.fit.observe(traj).cpu().numpy() * np.float32(per_second))
        cond = (
            d.conditions.reset_index(drop=True).copy()
            if d.conditions is not None
            else pd.DataFrame(index=range(d.n_trials))
        )
        cond["split"] = name
        conds.append(cond)
    lengths = {x.shape[1] for x in cur}
    if len(lengths) > 1:
        raise LrfitError(
            f"The train and test trials of '{run.path}' have different lengths {sorted(lengths)}; pass --split train "
            "or --split test."
        )
    return RunActivity(
        currents=np.concatenate(cur),
        inputs=np.concatenate(inp),
        time=np.asarray(data.train.time, float),
        mask=np.concatenate(msk),
        conditions=pd.concat(conds, ignore_index=True),
        source="data",
        recorded=np.concatenate(rec),
        fitted=np.concatenate(fitted),
        unit="Hz" if counts else run.fit.observation_.name,
    )


def _task_activity(run: Run, n_trials: int, seed: int) -> RunActivity:
    from ..analysis import run_network

    trials = run.task.generate(n_trials, seed=seed)
    traj = run_network(run.source_model, trials.inputs, noise_std=0.0)
    return RunActivity(
        currents=traj.currents.cpu().numpy(),
        inputs=np.asarray(trials.inputs, np.float32),
        time=np.asarray(trials.time, float),
        mask=np.asarray(trials.valid, bool),
        conditions=trials.conditions.reset_index(drop=True),
        source="task",
    )
