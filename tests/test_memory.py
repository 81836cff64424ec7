"""Scores, baselines and predictions do not copy the recording: block reductions, bounded allocations."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from data_adapters import TrialData
from lrfit.fitting.baselines import compute_baselines
from lrfit.fitting.metrics import r2_per_neuron, r2_score
from lrfit.fitting.reductions import column_moments, masked_time_mean, principal_axes, residual_sums

MB = 1 << 20


def recording(trials: int = 240, steps: int = 50, neurons: int = 200, seed: int = 0) -> TrialData:
    rng = np.random.default_rng(seed)
    activity = (0.5 * np.tanh(rng.normal(size=(trials, steps, neurons)))).astype(np.float32)
    mask = np.ones((trials, steps), dtype=bool)
    mask[::3, steps // 2:] = False  # unequal trial lengths
    activity[~mask] = np.nan  # never read
    inputs = rng.normal(size=(trials, steps, 2)).astype(np.float32)
    return TrialData(activity=activity, inputs=inputs, mask=mask, dt=0.02)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 64k values (512 kB as float64), so that small test arrays span many blocks."""
    monkeypatch.setattr("lrfit.fitting.reductions.BLOCK_ELEMENTS", 1 << 16)


def peak_allocation(fn) -> float:
    """Bytes allocated at the peak while *fn* runs (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_block_reductions_equal_the_whole_array_ones():
    data = recording()
    x, mask = data.activity, data.mask
    rows = x[mask].astype(np.float64)
    count, mean, ss = column_moments(x, mask)
    assert count == rows.shape[0]
    np.testing.assert_allclose(mean, rows.mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ss, ((rows - rows.mean(0)) ** 2).sum(0), rtol=1e-10)
    pred = np.where(mask[..., None], x, 0) * np.float32(0.9)
    ss_res, ss_tot = residual_sums(x, pred, mask)
    np.testing.assert_allclose(ss_res, ((rows - pred[mask]) ** 2).sum(0), rtol=1e-10)
    np.testing.assert_allclose(ss_tot, ss, rtol=1e-12)
    time_mean, counts = masked_time_mean(x, mask)
    np.testing.assert_allclose(time_mean, np.nanmean(np.where(mask[..., None], x, np.nan), 0), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(counts, mask.sum(0))
    axes = principal_axes(x, mask, 3)
    vt = np.linalg.svd(rows - rows.mean(0), full_matrices=False)[2][:3]
    np.testing.assert_allclose(np.abs(np.sum(axes * vt.T, 0)), 1.0, atol=1e-8)  # the same axes up to sign
    assert np.isclose(r2_score(x, pred, mask), 1 - ss_res.sum() / ss.sum())
    np.testing.assert_allclose(r2_per_neuron(x, pred, mask), 1 - ss_res / ss)


@pytest.mark.parametrize("name", ["r2_score", "r2_per_neuron"])
def test_scores_allocate_a_fraction_of_the_recording(name):
    data = recording()
    fn = {"r2_score": r2_score, "r2_per_neuron": r2_per_neuron}[name]
    pred = data.activity.copy()
    assert peak_allocation(lambda: fn(data.activity, pred, data.mask)) < 0.6 * data.activity.nbytes  # was 5.4x


def test_baselines_allocate_about_the_test_data_not_the_training_data():
    train, test = recording(trials=600), recording(trials=40, seed=1)
    peak = peak_allocation(lambda: compute_baselines(train, test, k=3, no_ceiling="simulated"))
    assert peak < 0.5 * train.activity.nbytes  # was 7x the training data (float64 copies, an SVD)


def test_predictions_do_not_copy_the_recorded_activity():
    from lrfit import LowRankFit

    data = recording(trials=300, neurons=100)
    fit = LowRankFit(rank=1, max_epochs=0, progress=False).fit(data)
    pred = fit._predict_array(data)
    assert pred.shape == data.activity.shape
    assert peak_allocation(lambda: fit._predict_array(data)) < 1.6 * data.activity.nbytes  # output + one chunk
