"""Split halves of separately recorded neurons: halves never share a trial, means are right, TDR works."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.io as sio

import data_adapters as da
from data_adapters import DataError
from data_adapters.load import load_neuron_trials
from data_adapters.neuron_trials import NeuronTrials, half_assignment, half_splits, split_halves

T = 5
TIME = 0.025 + 0.05 * np.arange(T)


def padded(counts: np.ndarray, seed: int = 0) -> NeuronTrials:
    """NeuronTrials with ``counts[c, n]`` trials; trial r of neuron n in condition c holds 1000 c + 10 r + n."""
    C, N = counts.shape
    R = int(counts.max())
    resp = np.full((C, R, T, N), np.nan)
    rng = np.random.default_rng(seed)
    for c, n in itertools.product(range(C), range(N)):
        for r in range(counts[c, n]):
            resp[c, r, :, n] = 1000 * c + 10 * r + n + 0.01 * rng.normal(size=T)
    cond = pd.DataFrame({"ctx": [-1, -1, 1, 1][:C], "dir": [-1, 1, -1, 1][:C]})
    return NeuronTrials(responses=resp, conditions=cond, dt=0.05, time=TIME, meta={"source": "mem"})


COUNTS = np.array([[2, 3, 7, 4], [5, 2, 3, 9], [3, 3, 3, 3], [6, 11, 2, 5]])  # unequal and odd counts


def test_half_assignment_never_shares_a_trial_and_sizes():
    nt = padded(COUNTS)
    present = nt.present
    for seed in range(5):
        a = half_assignment(present, seed)
        assert np.array_equal(a == -1, ~present)  # absent slots stay absent; present ones get exactly one side
        n_train, n_test = (a == 0).sum(1), (a == 1).sum(1)
        np.testing.assert_array_equal(n_train, (COUNTS + 1) // 2)  # odd counts: train gets the extra trial
        np.testing.assert_array_equal(n_test, COUNTS // 2)
    assert not np.array_equal(half_assignment(present, 0), half_assignment(present, 1))
    np.testing.assert_array_equal(half_assignment(present, 3), half_assignment(present, 3))


def test_split_halves_means_are_averages_of_disjoint_trials():
    nt = padded(COUNTS)
    tr, te = split_halves(nt, seed=4)
    a = half_assignment(nt.present, 4)
    for c, n in itertools.product(range(4), range(4)):
        slots_tr, slots_te = np.flatnonzero(a[c, :, n] == 0), np.flatnonzero(a[c, :, n] == 1)
        assert not set(slots_tr) & set(slots_te)
        np.testing.assert_allclose(tr.activity[c, :, n], nt.responses[c, slots_tr, :, n].mean(0), rtol=1e-6)
        np.testing.assert_allclose(te.activity[c, :, n], nt.responses[c, slots_te, :, n].mean(0), rtol=1e-6)
        # the trial identity (10 r) recovered from the means shows which trials were averaged
    assert tr.conditions[["ctx", "dir"]].equals(te.conditions[["ctx", "dir"]])
    assert tr.meta["split"] == {"by": "halves", "seed": 4, "dropped_conditions": 0, "role": "train"}
    np.testing.assert_array_equal(te.conditions["min_trials"], COUNTS.min(1) // 2)
    # the two halves together are all trials: weighted means give the full mean
    full = nt.average()
    w_tr, w_te = ((COUNTS + 1) // 2)[:, None, :], (COUNTS // 2)[:, None, :]
    np.testing.assert_allclose((tr.activity * w_tr + te.activity * w_te) / COUNTS[:, None, :], full.activity,
                               rtol=1e-5)


def test_too_few_trials_drops_or_errors():
    counts = COUNTS.copy()
    counts[1, 2] = 1
    nt = padded(counts)
    with pytest.warns(UserWarning, match=r"1 of 4 conditions .* fewer than 2 trials .*neuron 2"):
        tr, te = split_halves(nt)
    assert tr.n_trials == te.n_trials == 3 and tr.meta["split"]["dropped_conditions"] == 1
    with pytest.raises(DataError, match="on_missing='warn'"):
        split_halves(nt, on_missing="error")
    with pytest.raises(DataError, match="min_trials >= 2"):
        split_halves(nt, min_trials=1)


def test_folds_are_repeated_half_splits():
    nt = padded(COUNTS)
    folds = half_splits(nt, 3, seed=10)
    assert [f[0].meta["split"]["fold"] for f in folds] == [0, 1, 2]
    np.testing.assert_array_equal(folds[1][1].activity, split_halves(nt, seed=11)[1].activity)
    assert not np.array_equal(folds[0][1].activity, folds[1][1].activity)


def _tdr_units(counts_per_unit: list[int]) -> list[dict]:
    units = []
    for s, reps in enumerate(counts_per_unit):
        rng = np.random.default_rng(s)
        combos = list(itertools.product([-1.0, 1.0], [-1.0, 1.0])) * reps
        order = rng.permutation(len(combos))
        tv = {"context": np.array([combos[i][0] for i in order]), "dir": np.array([combos[i][1] for i in order])}
        units.append({"response": rng.normal(10.0, 3.0, size=(len(combos), T)), "task_variable": tv})
    return units


def test_tdr_reader_keeps_single_trials_and_splits(tmp_path):
    units = _tdr_units([3, 4, 5])  # unequal trial counts per neuron (separate sessions)
    rec = np.zeros((1, len(units)), dtype=[("response", object), ("task_variable", object)])
    for i, u in enumerate(units):
        rec[0, i]["response"], rec[0, i]["task_variable"] = u["response"], u["task_variable"]
    p = tmp_path / "dataT.mat"
    sio.savemat(p, {"dataT": {"unit": rec, "time": TIME}})
    conds = ["context", "dir"]
    nt = load_neuron_trials(p, conditions=conds, inputs=[{"name": "ctx", "column": "context"}])
    assert nt.responses.shape == (4, 5, T, 3)
    np.testing.assert_array_equal(nt.trial_counts, [[3, 4, 5]] * 4)
    avg = da.load(p, conditions=conds, inputs=[{"name": "ctx", "column": "context"}])
    np.testing.assert_allclose(nt.average().activity, avg.activity, rtol=1e-6)
    tr, te = split_halves(nt, seed=0)
    assert tr.input_names == ("ctx",) and tr.neuron_ids.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(te.conditions["min_trials"], [1, 1, 1, 1])
    # every trial of unit 2 in condition (context=-1, dir=-1) is in exactly one half
    sel = (units[2]["task_variable"]["context"] == -1) & (units[2]["task_variable"]["dir"] == -1)
    trials = units[2]["response"][sel]
    a = half_assignment(nt.present, 0)[0, :, 2]
    np.testing.assert_allclose(tr.activity[0, :, 2], trials[a[:5] == 0].mean(0), rtol=1e-6)
    np.testing.assert_allclose(te.activity[0, :, 2], trials[a[:5] == 1].mean(0), rtol=1e-6)
