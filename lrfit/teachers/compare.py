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
  (the part of ``N`` that the dynamics can see).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis.compare import connectivity_recovery
from ..errors import LrfitError
from ..fitting.estimator import LowRankFit
from ..fitting.metrics import r2_score
from ..models import FullRankRNN, LowRankRNN
from ..rundir import COMPARE_FILE
from ..rundir import write_json as dump_json
from .record import record_activity, teacher_expected_counts
from .train import load_teacher



def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _readout_accuracy(rates: np.ndarray, w_out: np.ndarray, task: Any, trials: Any) -> float:
    outputs = rates @ w_out / rates.shape[-1]
    return float(task.accuracy(outputs, trials))


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
        ``r2_activity``, ``accuracy_student``, ``accuracy_teacher``, and for low-rank
        teachers ``m_cosines``, ``n_cosines``, ``ecc``; for full-rank teachers
        ``r2_truncated_svd``.
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
            f"of the {teacher.n_units}-unit teacher in '{teacher_dir}'; compare a student fitted to that teacher's data."
        )
    record = "rates" if fit.target == "counts" else fit.target
    if fit.input_names_ and list(fit.input_names_) != list(task.input_names):
        raise LrfitError(
            f"The student was driven by inputs {list(fit.input_names_)} but the teacher's task has "
            f"{list(task.input_names)}; fit the student on data simulated from this teacher."
        )
    trials = task.generate(int(n_trials), seed=int(seed))
    data = record_activity(teacher, trials.inputs, trials.conditions, trials.input_names, record, ids,
                           noise_std=0.0, seed=seed)
    teacher_rates = np.asarray(data.activity) if record == "rates" else np.tanh(np.asarray(data.activity))
    if fit.target == "counts":  # the spikes' true expected counts
        data = data.replace(activity=teacher_expected_counts(_run_data_section(student_dir), data, teacher.n_units))
    pred = fit.predict(data)
    truth, mask = np.asarray(data.activity), np.asarray(data.mask)
    result: dict[str, Any] = {
        "student": str(Path(student_dir).resolve()),
        "teacher": str(Path(teacher_dir).resolve()),
        "n_trials": int(n_trials),
        "seed": int(seed),
        "rank_student": int(fit.rank),
        "n_recorded": int(ids.size),
        "n_teacher_units": int(teacher.n_units),
        "r2_activity": r2_score(truth, np.asarray(pred.activity), mask),
    }
    w_out = _numpy(teacher.w_out)[ids]
    student_rates = fit.simulate(data).rates[..., : ids.size].cpu().numpy()
    result["accuracy_student"] = _readout_accuracy(student_rates, w_out, task, trials)
    result["accuracy_teacher"] = _readout_accuracy(teacher_rates, w_out, task, trials)
    if isinstance(teacher, LowRankRNN):
        result.update(connectivity_recovery(fit.model_, teacher, ids))
    elif isinstance(teacher, FullRankRNN):
        result["r2_truncated_svd"] = _truncated_baseline(teacher, int(fit.rank), trials, ids, record, truth, mask)
    if write:
        dump_json(result, Path(student_dir) / COMPARE_FILE)
    return result


def _run_data_section(student_dir: str | Path) -> dict[str, Any]:
    """The ``data`` section of a student run's config (how its spikes were recorded), or one sentence."""
    from ..rundir import RunDir

    config = RunDir.open(student_dir).config
    if not config or "teacher" not in (config.get("data") or {}):
        raise LrfitError(f"'{student_dir}' is a counts fit without the config.yaml of 'lrfit fit' on teacher spikes, so "
                         "the peak rates behind its spikes are unknown; compare a run written by 'lrfit fit'.")
    return dict(config["data"])


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
        lines.append(f"teacher's own truncated SVD at rank {result['rank_student']}: R^2 {result['r2_truncated_svd']:.4f}")
    return "\n".join(lines)
