"""Teacher-student comparison: how well a fitted student reproduces the network it was fitted to.

Reported (``compare_student_teacher``):

* **activity R^2** of the student on fresh task trials (new seed), for the recorded
  neurons, and the R^2 of the teacher's own truncated SVD at the student's rank
  (full-rank teachers only; the baseline the fit has to beat); for a student fitted to
  spike counts, the R^2 of its expected counts against the teacher's true expected
  counts (its rates mapped to Hz with the peak rates of the recorded spikes);
* **task accuracy through the teacher's readout**: the student's rates of the
  recorded neurons go through the teacher's readout weights restricted to those
  neurons, ``z(t) = sum_{i in S} w_i r_i(t) / |S|`` (equal to the teacher's own
  ``r . w / N`` when every unit is recorded), next to the teacher's own accuracy;
* **connectivity recovery** (low-rank teachers): cosines of the principal angles
  between the column spaces of the student's and the teacher's ``M`` (and ``N``),
  restricted to the recorded neurons, and the effective-connectivity correlation
  ``ECC = <vec(M P(N)^T)_s, vec(M P(N)^T)_t> / (|.| |.|)``, where ``P`` projects the
  columns of ``N`` onto the span of the columns of ``M`` and of the input weights
  (the part of ``N`` that the dynamics can see);
* **are the dynamics the teacher's?** (:mod:`lrfit.analysis.teacher_dynamics`, the
  Computation-through-Dynamics metrics): State R² (teacher state -> student state) and
  cycle consistency (student state -> teacher state), affine maps fitted on the first
  80% of the fresh trials and scored on the rest; Rate R² (for a counts student, of the
  expected counts, in whose space its fixed points are also compared); the fixed points of both
  networks without input (low-rank teachers), paired in activity space; and one line
  naming the failure mode (underfitting, feature invention, dynamical misattribution)
  the numbers indicate, if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..analysis.teacher_connectivity import connectivity_recovery
from ..analysis.teacher_dynamics import (
    NetworkState,
    compare_states,
    failure_modes,
    network_state,
    pair_fixed_points,
    rms_activity,
)
from ..errors import LrfitError
from ..fitting.estimator import LowRankFit
from ..fitting.metrics import r2_score
from ..models import FullRankRNN, LowRankRNN
from ..teachers.record import rates_to_hz, record_activity, recorded_peaks
from ..teachers.train import load_teacher
from .layout import COMPARE_FILE
from .layout import write_json as dump_json

if TYPE_CHECKING:
    from data_adapters import TrialData

#: Share of the fresh trials that fit the affine maps of the State R² (the rest score them, as ayna's default split).
STATE_TRAIN_FRACTION = 0.8


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _readout_accuracy(rates: np.ndarray, w_out: np.ndarray, task: Any, trials: Any) -> float:
    outputs = rates @ w_out / rates.shape[-1]
    return float(task.accuracy(outputs, trials))


@dataclass(frozen=True)
class FreshTrials:
    """A student and its teacher run on the same fresh task trials (what every comparison starts from).

    Attributes
    ----------
    fit : LowRankFit
        The student.
    teacher : RNNBase
        The teacher (eval mode).
    task : Task
        The teacher's task.
    ids : ndarray of int
        Teacher unit of each fitted neuron.
    trials : TaskTrials
        The fresh trials.
    data : TrialData
        The teacher's noise-free recording of the fitted neurons (the student's target kind; for a
        counts student, the true expected counts of its spikes).
    pred : TrialData
        The student's activity on the same trials.
    teacher_rates, student_rates : ndarray
        ``(trials, time, neurons)`` rates ``tanh(x)`` of the fitted neurons in each network.
    peaks : ndarray or None
        For a counts student, each fitted neuron's peak rate (Hz) in the recorded spikes.
    """

    fit: LowRankFit
    teacher: Any
    task: Any
    ids: np.ndarray
    trials: Any
    data: TrialData
    pred: TrialData
    teacher_rates: np.ndarray
    student_rates: np.ndarray
    peaks: np.ndarray | None = None


def fresh_trials(
    student_dir: str | Path, teacher_dir: str | Path, n_trials: int = 500, seed: int = 12345
) -> FreshTrials:
    """Load a student and its teacher and run both, noise-free, on fresh trials of the teacher's task.

    Parameters
    ----------
    student_dir : str or Path
        Run directory of the student (``lrfit fit``), or any ``LowRankFit.save`` directory.
    teacher_dir : str or Path
        Run directory of the teacher (``lrfit teacher``).
    n_trials : int
        Fresh task trials.
    seed : int
        Seed of those trials (pick one the fit never used).

    Returns
    -------
    FreshTrials

    Raises
    ------
    LrfitError
        If the student was not fitted to this teacher's units and inputs.
    """
    fit = LowRankFit.load(student_dir)
    teacher, task = load_teacher(teacher_dir)
    try:
        ids = np.asarray(fit.neuron_ids_).astype(np.int64)
    except ValueError:
        ids = np.asarray([-1])
    if ids.min() < 0 or ids.max() >= teacher.n_units:
        raise LrfitError(
            f"The student in '{student_dir}' was fitted to neurons {ids[:5].tolist()}... which are not unit indices "
            f"of the {teacher.n_units}-unit teacher in '{teacher_dir}'; compare a student fitted to that teacher's "
            "data."
        )
    counts = fit.observation_.counts
    record = run_record(fit)
    if fit.input_names_ and list(fit.input_names_) != list(task.input_names):
        raise LrfitError(
            f"The student was driven by inputs {list(fit.input_names_)} but the teacher's task has "
            f"{list(task.input_names)}; fit the student on data simulated from this teacher."
        )
    trials = task.generate(int(n_trials), seed=int(seed))
    data = record_activity(teacher, trials.inputs, trials.conditions, trials.input_names, record, ids,
                           noise_std=0.0, seed=seed)
    teacher_rates = np.asarray(data.activity) if record == "rates" else np.tanh(np.asarray(data.activity))
    peaks = None
    if counts:  # the spikes' true expected counts
        peaks = recorded_peaks(_run_data_section(student_dir), ids, teacher.n_units)
        data = data.replace(activity=(rates_to_hz(teacher_rates, peaks) * data.dt).astype(np.float32))
    pred = fit.predict(data)
    student_rates = fit.simulate(data).rates[..., : ids.size].cpu().numpy()
    return FreshTrials(fit, teacher, task, ids, trials, data, pred, teacher_rates, student_rates, peaks)


def _run_data_section(student_dir: str | Path) -> dict[str, Any]:
    """The ``data`` section of a student run's config (how its spikes were recorded), or one sentence."""
    from .layout import RunDir

    config = RunDir.open(student_dir).config
    if not config or "teacher" not in (config.get("data") or {}):
        raise LrfitError(
            f"'{student_dir}' is a counts fit without the config.yaml of 'lrfit fit' on teacher spikes, so "
            "the peak rates behind its spikes are unknown; compare a run written by 'lrfit fit'."
        )
    return dict(config["data"])


def compare_student_teacher(
    student_dir: str | Path,
    teacher_dir: str | Path,
    n_trials: int = 500,
    seed: int = 12345,
    write: bool = True,
) -> dict[str, Any]:
    """Compare a student fitted by ``lrfit fit`` with the teacher its data came from.

    Parameters
    ----------
    student_dir : str or Path
        Run directory of the student (``lrfit fit``), or any ``LowRankFit.save`` directory.
    teacher_dir : str or Path
        Run directory of the teacher (``lrfit teacher``).
    n_trials : int
        Fresh task trials to evaluate on.
    seed : int
        Seed of those trials (pick one the fit never used).
    write : bool
        Write the result to ``student_dir/compare.json``.

    Returns
    -------
    dict
        ``r2_activity``, ``accuracy_student``, ``accuracy_teacher``, for low-rank
        teachers ``m_cosines``, ``n_cosines``, ``ecc``; for full-rank teachers
        ``r2_truncated_svd``; and the dynamics metrics of :func:`dynamics_agreement`.

    Examples
    --------
    A student fitted for two epochs to a one-epoch teacher (see :func:`lrfit.run_fit`):

    >>> import tempfile
    >>> from lrfit import load_config, run_fit, train_teacher
    >>> work = tempfile.mkdtemp()
    >>> _ = train_teacher("cdm", n_units=16, rank=1, max_epochs=1, n_val=32, n_test=32, out=f"{work}/teacher",
    ...                   progress=False)
    >>> config = load_config(extra={"data": {"teacher": f"{work}/teacher", "trials": 40, "test_trials": 20},
    ...                             "optim": {"max_epochs": 2}})
    >>> _ = run_fit(config, f"{work}/student", progress=False)
    >>> result = compare_student_teacher(f"{work}/student", f"{work}/teacher", n_trials=40)
    >>> -1.0 <= result["r2_activity"] <= 1.0, "accuracy_student" in result
    (True, True)
    """
    run = fresh_trials(student_dir, teacher_dir, n_trials, seed)
    fit, teacher, task, ids, trials = run.fit, run.teacher, run.task, run.ids, run.trials
    truth, mask = np.asarray(run.data.activity), np.asarray(run.data.mask)
    result: dict[str, Any] = {
        "student": str(Path(student_dir).resolve()),
        "teacher": str(Path(teacher_dir).resolve()),
        "n_trials": int(n_trials),
        "seed": int(seed),
        "rank_student": int(fit.rank),
        "n_recorded": int(ids.size),
        "n_teacher_units": int(teacher.n_units),
        "r2_activity": r2_score(truth, np.asarray(run.pred.activity), mask),
    }
    w_out = _numpy(teacher.w_out)[ids]
    result["accuracy_student"] = _readout_accuracy(run.student_rates, w_out, task, trials)
    result["accuracy_teacher"] = _readout_accuracy(run.teacher_rates, w_out, task, trials)
    if isinstance(teacher, LowRankRNN):
        result.update(connectivity_recovery(fit.model_, teacher, ids))
    elif isinstance(teacher, FullRankRNN):
        result["r2_truncated_svd"] = _truncated_baseline(
            teacher, int(fit.rank), trials, ids, run_record(fit), truth, mask
        )
    result.update(dynamics_agreement(run))
    if write:
        dump_json(result, Path(student_dir) / COMPARE_FILE)
    return result


def state_split(n_trials: int) -> np.ndarray:
    """Bool ``(n_trials,)``: the first :data:`STATE_TRAIN_FRACTION` of the trials fit the State R² maps."""
    return np.arange(n_trials) < max(1, min(n_trials - 1, int(round(STATE_TRAIN_FRACTION * n_trials))))


def states(run: FreshTrials, train: np.ndarray) -> tuple[NetworkState, NetworkState, np.ndarray]:
    """The teacher's and the student's states on the fresh trials (:func:`lrfit.analysis.network_state`).

    Parameters
    ----------
    run : FreshTrials
        The student and the teacher on the same trials.
    train : ndarray of bool
        Trials that fit a full-rank teacher's principal components.

    Returns
    -------
    tuple
        ``(teacher state, student state, teacher currents of the fitted neurons (trials, time, neurons))``.
    """
    inputs = np.asarray(run.data.inputs)
    teacher = run.teacher
    with torch.no_grad():
        currents = teacher(torch.tensor(inputs, dtype=torch.float32, device=teacher.device), noise_std=0.0).currents
    state_t = network_state(teacher, currents, inputs, fit_trials=train, mask=np.asarray(run.trials.valid, bool))
    recorded = currents[..., torch.as_tensor(run.ids, device=currents.device)].cpu().numpy()
    state_s = network_state(run.fit.model_, run.fit.simulate(run.data).currents, inputs,
                            x0=run.fit.initial_states(run.data))
    return state_t, state_s, recorded


def dynamics_agreement(run: FreshTrials) -> dict[str, Any]:
    """The Computation-through-Dynamics metrics of a student against its teacher on the same fresh trials.

    Parameters
    ----------
    run : FreshTrials
        The student and the teacher on the same trials (:func:`fresh_trials`).

    Returns
    -------
    dict
        ``rate_r2``, ``state_r2``, ``cycle_consistency`` (and their ``*_recurrent``
        variants), ``state`` (definitions and sizes), ``input_r2`` (``None``: the
        student's inputs are supplied), ``fixed_points`` (low-rank teachers, or the reason
        they were not compared), ``failure_modes`` and ``dynamics_verdict``.
    """
    mask = np.asarray(run.trials.valid, bool)
    train = state_split(mask.shape[0])
    state_t, state_s, currents_t = states(run, train)
    agreement = compare_states(state_t, state_s, train, mask)
    # a counts student sees its units through its Poisson readout: rates and fixed points are compared as the
    # expected counts both networks give the recorded spikes
    counts = run.peaks is not None
    observed = (np.asarray(run.data.activity), np.asarray(run.pred.activity)) if counts else (run.teacher_rates,
                                                                                             run.student_rates)
    out: dict[str, Any] = {
        "rate_r2": r2_score(*observed, mask),
        "rate_r2_of": "expected counts of the recorded spikes" if counts else "rates tanh(x)",
        **agreement.to_json_dict(),
        "state": {"teacher": state_t.definition, "student": state_s.definition,
                  "fit_trials": f"the first {agreement.n_train_trials} fresh trials fit the affine maps, the other "
                                f"{agreement.n_test_trials} score them"},
        "input_r2": None,
        "input_r2_note": "not applicable: the student is driven by the task's inputs (supplied, not inferred)",
    }
    points = None
    if isinstance(run.teacher, LowRankRNN):
        n_starts = 512 if run.teacher.rank <= 2 else 1024
        if counts:
            dt = float(run.data.dt)
            points = pair_fixed_points(
                run.teacher, run.fit.model_, run.ids, rms_activity(observed[0], mask), n_starts=n_starts,
                observe_teacher=lambda x: rates_to_hz(np.tanh(x), run.peaks) * dt,
                observe_student=lambda x: run.fit.observe_currents(x).cpu().numpy())
        else:
            points = pair_fixed_points(run.teacher, run.fit.model_, run.ids, rms_activity(currents_t, mask),
                                          n_starts=n_starts)
        out["fixed_points"] = points.to_json_dict()
    else:
        out["fixed_points"] = {"summary": "not compared: the teacher is full rank (lrfit finds the fixed points of "
                                          "low-rank networks)"}
    modes, line = failure_modes(out["rate_r2"], agreement, points)
    out["failure_modes"] = modes
    out["dynamics_verdict"] = line
    return out


def run_record(fit: LowRankFit) -> str:
    """What to record from a teacher to compare with *fit*: its signal, or for spike counts the rates."""
    return "rates" if fit.observation_.counts else fit.observation_.signal


def _truncated_baseline(teacher: FullRankRNN, rank: int, trials: Any, ids: np.ndarray, record: str,
                        truth: np.ndarray, mask: np.ndarray) -> float:
    """R^2 of the teacher's own rank-``rank`` truncated SVD on the same trials."""
    low = teacher.truncated(rank)
    data = record_activity(low, trials.inputs, record=record, neurons=ids, noise_std=0.0)
    return r2_score(truth, np.asarray(data.activity), mask)


def format_comparison(result: dict[str, Any]) -> str:
    """Human-readable summary of :func:`compare_student_teacher`'s result."""
    lines = [
        f"activity R^2 on {result['n_trials']} fresh trials: {result['r2_activity']:.4f}",
        f"task accuracy through the teacher's readout: student {result['accuracy_student']:.3f}, "
        f"teacher {result['accuracy_teacher']:.3f}",
    ]
    if "ecc" in result:
        lines.append(f"ECC {result['ecc']:.4f}; principal-angle cosines M {np.round(result['m_cosines'], 4).tolist()}, "
                     f"N {np.round(result['n_cosines'], 4).tolist()}")
    if "r2_truncated_svd" in result:
        lines.append(
            f"teacher's own truncated SVD at rank {result['rank_student']}: R^2 {result['r2_truncated_svd']:.4f}"
        )
    if "state_r2" in result:
        lines.append(
            f"dynamics: Rate R^2 {result['rate_r2']:.4f}, State R^2 {result['state_r2']:.4f}, cycle consistency "
            f"{result['cycle_consistency']:.4f} (recurrent coordinates only: {result['state_r2_recurrent']:.4f} / "
            f"{result['cycle_consistency_recurrent']:.4f})"
        )
        lines.append(f"fixed points without input: {result['fixed_points']['summary']}")
        lines.append(f"failure mode: {result['dynamics_verdict']}")
    return "\n".join(lines)
