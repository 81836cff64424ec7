"""Multi-factor arrays: cond:<name> axes with condition_values and a NaN-padded trial axis."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio

import data_adapters as da
from data_adapters import DataError
from data_adapters.load import load_neuron_trials
from data_adapters.neuron_trials import split_halves

T = 4
AXES = "neuron,cond:direction,cond:task,time,trial"
VALUES = {"direction": [-1, 1], "task": ["look", "nolook"]}


def five_d(counts=None, seed=0):
    """(neuron=3, direction=2, task=2, time, trial=5); neuron n has counts[n] trials (NaN-padded)."""
    x = np.random.default_rng(seed).normal(size=(3, 2, 2, T, 5))
    for n, c in enumerate(counts or [5, 5, 5]):
        x[n, ..., c:] = np.nan
    return x


def test_separate_sessions_give_condition_means_and_halves(tmp_path):
    x = five_d([3, 5, 4])
    np.savez(tmp_path / "f.npz", rates=x, t=np.arange(T) * 50.0)
    opts = dict(activity_key="rates", axis_order=AXES, condition_values=VALUES, time_key="t", time_units="ms")
    d = da.load(tmp_path / "f.npz", **opts, inputs=[{"name": "dir", "column": "direction"}])
    assert (d.n_trials, d.n_time, d.n_neurons) == (4, T, 3) and d.dt == pytest.approx(0.05)
    assert list(zip(d.conditions["direction"], d.conditions["task"])) == [
        (-1, "look"), (-1, "nolook"), (1, "look"), (1, "nolook")]
    np.testing.assert_allclose(d.activity[1, :, 2], np.nanmean(x[2, 0, 1], axis=1), rtol=1e-6)
    np.testing.assert_array_equal(d.inputs[:, 0, 0], [-1, -1, 1, 1])
    nt = load_neuron_trials(tmp_path / "f.npz", **opts)
    np.testing.assert_array_equal(nt.trial_counts, [[3, 5, 4]] * 4)
    tr, te = split_halves(nt, seed=1)
    assert tr.n_trials == te.n_trials == 4
    np.testing.assert_array_equal(tr.conditions["min_trials"], [2] * 4)


def test_simultaneous_trials_and_no_trial_axis(tmp_path):
    x = five_d()
    x[:, 1, 0, :, 3:] = np.nan  # the same missing trials for every neuron
    np.savez(tmp_path / "f.npz", rates=x)
    d = da.load(tmp_path / "f.npz", axis_order=AXES, condition_values=VALUES, dt=0.02)
    assert d.n_trials == 5 * 4 - 2 and d.conditions.columns.tolist() == ["direction", "task", "trial"]
    row = d.conditions.query("direction == 1 and task == 'look' and trial == 2").index[0]
    np.testing.assert_allclose(d.activity[row], x[:, 1, 0, :, 2].T, rtol=1e-6)
    means = np.nanmean(x, axis=-1)  # neuron, direction, task, time
    np.savez(tmp_path / "m.npz", rates=means)
    m = da.load(tmp_path / "m.npz", axis_order="neuron,cond:direction,cond:task,time", dt=0.02)
    assert m.n_trials == 4 and m.conditions["task"].tolist() == [0, 1, 0, 1]  # default values 0..n-1
    # MAT arrays share the code path
    sio.savemat(tmp_path / "f.mat", {"rates": means})
    mm = da.load(tmp_path / "f.mat", activity_key="rates", axis_order="neuron,cond:direction,cond:task,time",
                 condition_values=VALUES, dt=0.02)
    np.testing.assert_allclose(mm.activity, m.activity)


def test_bad_factor_input(tmp_path):
    np.savez(tmp_path / "f.npz", rates=five_d(), t=np.arange(T + 1) * 0.05)
    p = tmp_path / "f.npz"
    with pytest.raises(DataError, match=r"condition_values.task for '.*f\.npz' has 3 values but axis cond:task .* 2"):
        da.load(p, axis_order=AXES, condition_values={"task": [1, 2, 3]}, dt=0.02)
    with pytest.raises(DataError, match=r"condition_values for .* name \['context'\].*cond:context") as e:
        da.load(p, axis_order=AXES, condition_values={"context": [1, 2]}, dt=0.02)
    assert e.value.field == "condition_values"
    with pytest.raises(DataError, match="axis_order"):
        da.load(p, axis_order="neuron,cond:direction,cond:direction,time,trial", dt=0.02)
    with pytest.raises(DataError, match="axis_order"):
        da.load(p, axis_order="neuron,cond:direction,cond,time,trial", dt=0.02)
    with pytest.raises(DataError, match=r"time array 't' in .* has 5 entries but the activity has 4 .*axis_order"):
        da.load(p, axis_order=AXES, time_key="t")
    with pytest.raises(DataError, match="condition_keys .* does not apply"):
        da.load(p, axis_order=AXES, dt=0.02, condition_keys=["t"])
    with pytest.raises(DataError, match="need condition factor axes"):
        np.savez(tmp_path / "g.npz", rates=np.ones((2, T, 3)))
        da.load(tmp_path / "g.npz", axis_order="trial,time,neuron", condition_values=VALUES, dt=0.02)
    with pytest.raises(DataError, match="no trial axis"):
        load_neuron_trials(p, axis_order="neuron,cond:direction,cond:task,time,cond:x", dt=0.02)
