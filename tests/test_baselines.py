"""Baselines and noise ceilings of held-out scores (lrfit.fitting.baselines)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_adapters import TrialData
from lrfit.fitting.baselines import compute_baselines, noise_ceiling, spearman_brown, split_half_ceiling
from lrfit.fitting.metrics import r2_score

K_COND, REPS, T, N = 4, 30, 12, 8


def trials(noise: float, seed: int = 0, signal: float = 1.0) -> TrialData:
    """REPS noisy trials of each of K_COND condition time courses (a 2-D latent mixed into N neurons)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)
    lat = np.stack([np.stack([np.sin(2 * np.pi * t + c), c * t], -1) for c in range(K_COND)])  # C, T, 2
    mix = np.random.default_rng(99).normal(size=(2, N))
    clean = signal * lat @ mix + 3.0  # C, T, N
    act = np.repeat(clean, REPS, axis=0) + noise * rng.normal(size=(K_COND * REPS, T, N))
    cond = pd.DataFrame({"c": np.repeat(np.arange(K_COND), REPS)})
    return TrialData(activity=act, conditions=cond, dt=0.02)


def test_perfect_predictor_beats_every_baseline():
    d = trials(0.5)
    tr, te = d.split("trials", test_fraction=0.3, seed=1, stratify="c")
    b = compute_baselines(tr, te, k=3)
    assert set(b.scores) == {"mean", "time_mean", "condition_mean", "pca_k"}
    assert b.below_baseline(r2_score(te.activity, te.activity, te.mask)) == []
    assert b.below_baseline(float("nan")) == list(b.scores)
    assert b.best[0] in ("condition_mean", "pca_k") and b.below_baseline(b.mean) == list(b.scores)
    assert b.mean == pytest.approx(0.0, abs=0.02)  # same distribution: the training mean explains nothing
    assert b.condition_mean > b.time_mean > b.mean
    assert b.pca_k_oracle >= b.pca_k - 1e-9 and "pca_k_oracle" not in b.scores
    d_ = b.to_dict()
    assert d_["best"]["name"] == b.best[0] and d_["references"]["pca_k_oracle"] == b.pca_k_oracle
    assert d_["ceiling"]["scored_on"] == "single_trials" and 0 < d_["ceiling"]["value"] < 1


def test_condition_mean_skipped_for_held_out_conditions():
    d = trials(0.5).condition_average("c")
    tr, te = d.split("conditions", column="c", test_values=[2])
    b = compute_baselines(tr, te, k=2)
    assert b.condition_mean is None and "do not occur in training" in b.skipped["condition_mean"]
    assert b.ceiling is None and "split_half_ceiling" in b.skipped["ceiling"]
    assert b.time_mean is not None and np.isfinite(b.pca_k)


def test_ceiling_noiseless_is_one_and_pure_noise_is_zero():
    c = noise_ceiling(trials(0.0), ["c"], n_splits=3)
    assert c.r_half == pytest.approx(1.0) and c.full == pytest.approx(1.0) and c.single == pytest.approx(1.0)
    z = noise_ceiling(trials(1.0, signal=0.0), ["c"], n_splits=20, seed=3)
    assert abs(z.r_half) < 0.1 and abs(z.full) < 0.15
    mid = noise_ceiling(trials(2.0), ["c"], n_splits=10)
    assert 0 < mid.single < mid.r_half < mid.full < 1
    assert mid.half_trials == pytest.approx(15.0) and mid.n_conditions == K_COND
    assert spearman_brown(0.5, 2) == pytest.approx(2 / 3)


def test_split_half_ceiling_predicts_the_score_of_the_truth():
    """The ceiling on half means (split halves) is the R^2 the noise-free time courses reach on a test half."""
    from data_adapters.neuron_trials import NeuronTrials, split_halves

    d = trials(3.0, seed=5)
    resp = d.activity.reshape(K_COND, REPS, T, N).astype(float)
    resp[:, 25:, :, ::2] = np.nan  # neurons with fewer trials (separate sessions)
    nt = NeuronTrials(responses=resp, conditions=pd.DataFrame({"c": range(K_COND)}), dt=0.02, time=d.time)
    ceil = split_half_ceiling(resp, n_splits=20)
    truth = trials(0.0).condition_average("c").activity
    got = np.mean([r2_score(split_halves(nt, seed=s)[1].activity, truth) for s in range(20)])
    assert ceil.scored_on == "halves" and ceil.value == ceil.r_half
    assert got == pytest.approx(ceil.value, abs=0.05)
    tr, te = split_halves(nt, seed=0)
    b = compute_baselines(tr, te, k=3, ceiling=ceil)
    assert b.ceiling is ceil and b.condition_mean is not None and "ceiling" not in b.skipped
