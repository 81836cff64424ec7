"""The three-bit flip-flop task, and (slow) the worked comparison: rank 3 recovers the 8 stable states, rank 2 fails."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lrfit.errors import LrfitError
from lrfit.tasks import get_task


def test_targets_hold_the_last_pulse_of_each_channel():
    task = get_task("flipflop")
    trials = task.generate(30, seed=4)
    assert trials.inputs.shape == (30, 100, 3) and trials.targets.shape == (30, 100, 3)
    assert task.output_names == task.input_names == ("bit_0", "bit_1", "bit_2")
    for k in range(3):
        u, y = trials.inputs[:, :, k], trials.targets[:, :, k]
        for i in range(30):
            on = np.flatnonzero(u[i])
            assert on[0] == 0  # every bit is set in the first slot
            held = 0.0
            for t in range(100):
                held = np.sign(u[i, t]) if u[i, t] else held
                assert y[i, t] == held
        np.testing.assert_array_equal(y[:, -1], trials.conditions[f"bit_{k}"])
    decision = trials.epoch_mask("decision")
    assert np.all(trials.inputs[decision] == 0)  # no pulse while the bits are read
    assert np.all(trials.loss_mask[:, :3] == 0) and np.all(trials.loss_mask[:, 3:] == 1)
    assert (trials.conditions["n_pulses"] >= 3).all()
    codes = trials.conditions["pulses_0"]
    assert codes.str.len().eq(18).all() and codes.str[0].isin(["+", "-"]).all()


def test_accuracy_needs_every_bit():
    task = get_task("flipflop")
    trials = task.generate(40, seed=1)
    out = trials.targets.copy()
    assert task.accuracy(out, trials) == 1.0 and task.bit_accuracy(out, trials) == 1.0
    out[:10, :, 2] *= -1  # one bit wrong in 10 trials
    np.testing.assert_array_equal(task.correct(out, trials), np.arange(40) >= 10)
    assert task.accuracy(out, trials) == pytest.approx(0.75)
    curve = task.psychometric(trials.targets, trials)
    assert list(curve.columns) == ["channel", "bit", "p_choice", "n"] and curve["n"].sum() == 3 * 40
    np.testing.assert_array_equal(curve["p_choice"], (curve["bit"] > 0).astype(float))
    with pytest.raises(LrfitError, match="3 output channels"):
        task.correct(out[:, :, :1], trials)


def test_conditions_do_not_depend_on_dt_and_bad_parameters_are_one_sentence():
    coarse = get_task("flipflop", dt=0.02).generate(10, seed=3)
    fine = get_task("flipflop", dt=0.01).generate(10, seed=3)
    pd.testing.assert_frame_equal(coarse.conditions, fine.conditions)
    with pytest.raises(LrfitError, match="pulse_prob must lie in"):
        get_task("flipflop", pulse_prob=1.5)
    with pytest.raises(LrfitError, match="pulse_ms <= slot_ms"):
        get_task("flipflop", pulse_ms=200)


@pytest.mark.slow
def test_rank3_student_recovers_the_8_stable_states_and_rank2_is_flagged(tmp_path):
    """The worked comparison of the README: a rank-3 flip-flop teacher has 8 stable fixed points without input;
    a rank-3 student fitted to its activity has the same 8, each within 10% of the rms activity of the teacher's
    in activity space; a rank-2 student cannot, and the metrics say so (not only through R²)."""
    from lrfit import LowRankFit
    from lrfit.runs.compare import compare_student_teacher
    from lrfit.teachers import train_teacher
    from lrfit.teachers.record import simulate_teacher

    teacher = tmp_path / "teacher"
    result = train_teacher("flipflop", n_units=128, rank=3, seed=0, max_epochs=300, target_accuracy=0.98, out=teacher,
                           n_val=256, n_test=512, progress=False)
    assert result.accuracy >= 0.95
    train = simulate_teacher(teacher, 400, seed=1, noise_std=0.0)
    out = {}
    for rank in (3, 2):
        fit = LowRankFit(rank=rank, init="regression", max_epochs=20, random_state=0, progress=False).fit(train)
        fit.save(tmp_path / f"rank{rank}")
        out[rank] = compare_student_teacher(tmp_path / f"rank{rank}", teacher, n_trials=200)
    good, bad = out[3], out[2]
    fp = good["fixed_points"]
    assert fp["counts_teacher"]["stable"] == 8 and fp["counts_student"]["stable"] == 8
    assert fp["stable_matched"] == 8 and fp["agrees"]
    assert max(p["distance"] for p in fp["pairs"] if p["stability"] == "stable") < 0.1
    assert good["state_r2"] > 0.95 and good["cycle_consistency"] > 0.95 and good["failure_modes"] == []
    # rank 2: flagged by the state metrics and the landscape
    assert "underfitting" in bad["failure_modes"]
    assert bad["cycle_consistency"] < 0.9
    assert bad["fixed_points"]["counts_student"]["stable"] < 8 and not bad["fixed_points"]["agrees"]
