"""Tests of the task library: shapes, timing, seeds, metrics, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lrfit.errors import LrfitError
from lrfit.tasks import TASKS, Task, TaskTrials, get_task

ALL = sorted(TASKS)
#: Tasks with one readout and a decision epoch (the flip-flop holds three bits: tests/test_flipflop.py).
DECISION = [name for name in ALL if name != "flipflop"]


@pytest.mark.parametrize("name", DECISION)
def test_shapes_and_dtypes(name: str) -> None:
    task = get_task(name)
    trials = task.generate(7, seed=3)
    assert isinstance(trials, TaskTrials)
    k, t = 7, task.n_steps
    assert trials.inputs.shape == (k, t, task.n_inputs) and trials.inputs.dtype == np.float32
    assert trials.targets.shape == (k, t, task.n_outputs) and trials.targets.dtype == np.float32
    assert trials.loss_mask.shape == (k, t) and trials.loss_mask.dtype == np.float32
    assert trials.valid.shape == (k, t) and trials.valid.dtype == bool
    assert trials.time.shape == (t,)
    assert len(trials.conditions) == k and "target" in trials.conditions
    assert set(trials.conditions["target"]) <= {-1, 1}
    assert trials.input_names == task.input_names and len(task.input_names) == task.n_inputs
    assert trials.dt == task.dt
    # the loss is on the decision epoch only, where the target is +-1
    decision = trials.epoch_mask("decision")
    np.testing.assert_array_equal(trials.loss_mask.astype(bool), decision)
    np.testing.assert_array_equal(trials.targets[..., 0][decision].reshape(-1) != 0, True)
    assert np.all(trials.targets[..., 0][~decision] == 0)
    assert np.all(trials.loss_mask.sum(1) > 0)
    assert np.all(trials.inputs[~trials.valid] == 0)
    x, y, m = trials.to_torch()
    assert x.dtype == torch.float32 and y.shape == (k, t, 1) and m.shape == (k, t)


def test_cdm_structure_follows_dubreuil() -> None:
    task = get_task("cdm")
    assert task.n_steps == 68
    assert task.input_names == ("motion", "color", "ctx_motion", "ctx_color")
    trials = task.generate(50, seed=0, input_noise=0.0)
    c = trials.conditions
    stim = trials.epoch_mask("stimulus")
    np.testing.assert_allclose(
        trials.inputs[:, :, 0][stim].reshape(50, -1), np.repeat(c["coh_motion"].to_numpy()[:, None], 40, 1)
    )
    assert np.all(trials.inputs[:, :, :2][~stim] == 0)
    motion = (c["context"] == "motion").to_numpy()
    # context cue: on from the end of fixation until the decision period
    assert np.all(trials.inputs[motion, 5:67, 2] == 1) and np.all(trials.inputs[motion, :, 3] == 0)
    assert np.all(trials.inputs[:, :5, 2:] == 0) and np.all(trials.inputs[:, 67:, 2:] == 0)
    relevant = np.where(motion, c["coh_motion"], c["coh_color"])
    np.testing.assert_array_equal(c["target"], np.sign(relevant))
    np.testing.assert_array_equal(c["coh_relevant"], relevant)
    np.testing.assert_array_equal(trials.targets[:, 67, 0], c["target"])


@pytest.mark.parametrize("name", ALL)
def test_epoch_times_do_not_depend_on_dt(name: str) -> None:
    params = {"context_only_ms": 360.0} if name == "cdm" else {}  # all durations multiples of 20 ms
    coarse = get_task(name, dt=0.02, **params).generate(20, seed=5)
    fine = get_task(name, dt=0.01, **params).generate(20, seed=5)
    pd.testing.assert_frame_equal(coarse.conditions, fine.conditions)
    assert list(coarse.epochs) == list(fine.epochs)
    for epoch in coarse.epochs:
        for a, b in zip(coarse.epoch_bounds(epoch), fine.epoch_bounds(epoch)):
            np.testing.assert_allclose(a * coarse.dt, b * fine.dt, atol=1e-12)
    assert coarse.n_steps * coarse.dt == pytest.approx(fine.n_steps * fine.dt)


def test_published_cdm_timing_is_within_half_a_step() -> None:
    coarse, fine = get_task("cdm", dt=0.02), get_task("cdm", dt=0.005)
    a, b = coarse.generate(2, seed=0), fine.generate(2, seed=0)
    for epoch in a.epochs:
        for x, y in zip(a.epochs[epoch], b.epochs[epoch]):
            assert abs(x * a.dt - y * b.dt) <= a.dt / 2 + 1e-12
    # durations (stimulus 800 ms) are exact
    s = a.epochs["stimulus"]
    assert (s[1] - s[0]) * a.dt == pytest.approx(0.8)


def test_input_noise_is_dt_corrected() -> None:
    # the integrated evidence sum(u * dt) has the same spread at every dt
    spreads = []
    for dt in (0.01, 0.02):
        trials = get_task("pdm", dt=dt).generate(2000, seed=1, coherence=0.0)
        stim = trials.epoch_mask("stimulus")
        spreads.append(np.std((trials.inputs[:, :, 0] * stim).sum(1) * dt))
    assert spreads[0] == pytest.approx(spreads[1], rel=0.08)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_arrays(name: str) -> None:
    task = get_task(name)
    a, b, c = task.generate(16, seed=11), task.generate(16, seed=11), task.generate(16, seed=12)
    for field in ("inputs", "targets", "loss_mask", "valid"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    pd.testing.assert_frame_equal(a.conditions, b.conditions)
    assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("name", ALL)
def test_to_dict_round_trip(name: str) -> None:
    task = get_task(name, dt=0.01)
    d = json.loads(json.dumps(task.to_dict()))
    again = get_task(**d)
    assert again == task and Task.from_dict(d) == task
    np.testing.assert_array_equal(again.generate(4, seed=2).inputs, task.generate(4, seed=2).inputs)


def test_overrides_fix_conditions() -> None:
    task = get_task("cdm")
    trials = task.generate(6, seed=0, context="color", coh_motion=[0.1, -0.1, 0.2, -0.2, 0.0, 0.3], coherences=[0.05])
    c = trials.conditions
    assert set(c["context"]) == {"color"} and set(c["coh_color"]) == {0.05}
    np.testing.assert_array_equal(c["coh_motion"], [0.1, -0.1, 0.2, -0.2, 0.0, 0.3])
    np.testing.assert_array_equal(c["target"], 1)
    assert task.params["coherences"] == [-0.4, -0.2, -0.1, 0.1, 0.2, 0.4]  # the task itself is unchanged
    dms = get_task("dms").generate(4, seed=0, delay_ms=700.0, sample="A", test=["A", "B", "A", "B"])
    np.testing.assert_array_equal(dms.conditions["target"], [1, -1, 1, -1])
    assert np.ndim(dms.epochs["delay"][0]) == 0 and dms.epochs["delay"][1] - dms.epochs["delay"][0] == 35
    romo = get_task("romo").generate(3, seed=0, f1=[20.0, 20.0, 30.0], f2=[10.0, 30.0, 22.0])
    np.testing.assert_array_equal(romo.conditions["target"], [1, -1, 1])


def test_variable_delays_pad_shorter_trials() -> None:
    task = get_task("dms", delay_min_ms=500, delay_max_ms=900)
    trials = task.generate(40, seed=4)
    starts, stops = trials.epoch_bounds("delay")
    durations = (stops - starts) * trials.dt * 1000
    np.testing.assert_allclose(durations, trials.conditions["delay_ms"])
    assert len(set(durations)) > 3 and durations.min() >= 500 and durations.max() <= 900
    assert task.n_steps == trials.n_steps == 150
    _, end = trials.epoch_bounds("decision")
    np.testing.assert_array_equal(trials.valid.sum(1), end)
    assert trials.select([0, 2]).epoch_bounds("delay")[0].shape == (2,)


def _ideal_outputs(trials: TaskTrials, flip: np.ndarray) -> np.ndarray:
    out = np.zeros(trials.targets.shape, dtype=np.float32)
    sign = np.where(flip, -1, 1) * trials.conditions["target"].to_numpy()
    out[..., 0] = trials.epoch_mask("decision") * sign[:, None] * 0.7
    out[..., 0] -= (~trials.epoch_mask("decision")) * sign[:, None] * 5.0  # outside the decision epoch: ignored
    return out


@pytest.mark.parametrize("name", DECISION)
def test_accuracy_and_choices_on_hand_made_outputs(name: str) -> None:
    task = get_task(name)
    trials = task.generate(40, seed=9)
    flip = np.zeros(40, bool)
    flip[:10] = True  # 10 wrong answers out of 40
    out = _ideal_outputs(trials, flip)
    assert task.accuracy(out, trials) == pytest.approx(0.75)
    assert task.accuracy(torch.from_numpy(out), trials) == pytest.approx(0.75)
    choices = task.choices(out, trials)
    assert choices.shape == (40,) and set(choices) <= {-1, 1}
    np.testing.assert_array_equal(choices[10:], trials.conditions["target"].to_numpy()[10:])
    np.testing.assert_array_equal(task.correct(out, trials), ~flip)  # exactly the flipped trials are wrong
    with pytest.raises(LrfitError, match="shape"):
        task.accuracy(out[:, :-1], trials)


def test_cdm_psychometric_curve() -> None:
    task = get_task("cdm")
    trials = task.generate(600, seed=1)
    out = _ideal_outputs(trials, np.zeros(600, bool))
    curve = task.psychometric(out, trials)
    assert list(curve.columns) == ["context", "stimulus", "relevant", "coherence", "p_choice", "n"]
    assert len(curve) == 2 * 2 * 6 and curve["n"].sum() == 2 * 600
    rel = curve[curve["relevant"]]
    np.testing.assert_array_equal(rel["p_choice"], (rel["coherence"] > 0).astype(float))
    irr = curve[~curve["relevant"]]
    assert irr["p_choice"].between(0.2, 0.8).all()  # the irrelevant stimulus does not drive the choice


@pytest.mark.parametrize("name", ["pdm", "dms", "romo"])
def test_other_psychometric_curves(name: str) -> None:
    task = get_task(name)
    trials = task.generate(300, seed=2)
    curve = task.psychometric(_ideal_outputs(trials, np.zeros(300, bool)), trials)
    assert {"p_choice", "n"} <= set(curve.columns) and curve["n"].sum() == 300
    assert curve["p_choice"].between(0, 1).all()


def test_errors_are_one_sentence() -> None:
    with pytest.raises(LrfitError, match="did you mean 'cdm'"):
        get_task("cmd")
    with pytest.raises(LrfitError, match="'decision' epoch"):
        get_task("cdm", dt=0.025)
    with pytest.raises(LrfitError, match="did you mean 'stimulus_ms'"):
        get_task("pdm", stimulus_s=1)
    with pytest.raises(LrfitError, match="positive"):
        get_task("pdm", dt=-0.01)
    with pytest.raises(LrfitError, match="delay_min_ms"):
        get_task("dms", delay_min_ms=900, delay_max_ms=500)
    with pytest.raises(LrfitError, match="did you mean 'context'"):
        get_task("cdm").generate(3, contxt="color")
    with pytest.raises(LrfitError, match="'color'"):
        get_task("cdm").generate(3, context="colour")
    with pytest.raises(LrfitError, match="3 values"):
        get_task("cdm").generate(3, coh_motion=[0.1, 0.2])
    with pytest.raises(LrfitError, match="within"):
        get_task("dms").generate(3, delay_ms=100.0)
    with pytest.raises(LrfitError, match="positive integer"):
        get_task("cdm").generate(0)
