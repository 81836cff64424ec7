"""Spike counts neuron by neuron: the Poisson target, bits per spike, count baselines, co-smoothing, files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data_adapters import TrialData
from data_adapters.hdf5 import write_hdf5
from lrfit import LowRankFit, LowRankRNN
from lrfit.errors import LrfitError
from lrfit.fitting.baselines import compute_count_baselines
from lrfit.fitting.counts import bits_per_spike, count_start, smooth_counts
from lrfit.fitting.heldout import heldout_neuron_bits_per_spike
from lrfit.fitting.metrics import psth_r2, r2_score
from lrfit.fitting.observation import Poisson
from lrfit.runs.config import load_config
from lrfit.runs.fit import run_fit

DT = 0.02


def _planted(n_trials: int = 96, n_time: int = 40, units: int = 40, seed: int = 0, lead: int = 0):
    """Poisson spikes of a planted rank-1 network on 4 cue conditions: (counts, true expected counts)."""
    gen = torch.Generator().manual_seed(seed)
    net = LowRankRNN(units, rank=1, n_inputs=2, tau=0.1, dt=DT, seed=seed)
    with torch.no_grad():
        net.m.copy_(torch.randn(units, 1, generator=gen))
        net.n.copy_(1.6 * net.m + 0.3 * torch.randn(units, 1, generator=gen))
    angle = np.tile([0.0, 90.0, 180.0, 270.0], n_trials // 4)
    cue = np.stack([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))], 1).astype(np.float32)
    inputs = np.repeat(cue[:, None, :], n_time, 1)
    inputs[:, : 5 + lead] = 0.0  # the cue comes on after 100 ms
    with torch.no_grad():
        rates = net(torch.as_tensor(inputs), noise_std=0.0).rates.numpy()
    peak = np.random.default_rng(seed).uniform(20, 50, units)
    lam = (peak * (rates + 1) / 2 * DT).astype(np.float32)
    counts = np.random.default_rng(seed + 1).poisson(lam).astype(np.float32)
    data = TrialData(activity=counts, inputs=inputs, input_names=("cue_x", "cue_y"), dt=DT,
                     conditions=pd.DataFrame({"angle": angle}), meta={"source": "planted.h5", "units": "counts"})
    return data, lam


def test_a_counts_fit_recovers_the_true_rates_and_beats_the_psth():
    data, lam = _planted(n_trials=160)
    train, test = data.select(trials=np.arange(120)), data.select(trials=np.arange(120, 160))
    fit = LowRankFit(rank=1, observation="counts", max_epochs=40, lr=0.01, progress=False).fit(train)
    pred = fit.predict(test)
    assert np.asarray(pred.activity).min() >= 0  # expected counts per bin
    assert r2_score(lam[120:], np.asarray(pred.activity)) > 0.9
    bps = fit.score(test, metric="bits_per_spike")
    assert bps == pytest.approx(bits_per_spike(test.activity, pred.activity, test.mask))
    base = compute_count_baselines(train, test)
    assert bps > base.bits_per_spike["psth"] > base.bits_per_spike["mean"]
    assert bps < bits_per_spike(test.activity, lam[120:]) + 0.02  # the true rates are (about) the best possible
    assert fit.history_[-1]["train_bits_per_spike"] > fit.history_[0]["train_bits_per_spike"] - 1e-3
    metrics = fit.evaluate(test, "test")
    assert metrics["psth_r2_test"] is not None and metrics["psth_r2_test"] > 0.5
    assert len(metrics["bits_per_spike_test_per_neuron"]) == test.n_neurons


def test_counts_fit_saves_and_loads_its_readout(tmp_path):
    data, _ = _planted(n_trials=40)
    fit = LowRankFit(rank=1, observation=Poisson("currents"), max_epochs=3, progress=False).fit(data)
    fit.save(tmp_path / "fit")
    back = LowRankFit.load(tmp_path / "fit")
    assert back.observation_ == Poisson("currents")
    np.testing.assert_allclose(back.predict(data).activity, fit.predict(data).activity, rtol=1e-6)
    state = torch.load(tmp_path / "fit" / "fit_state.pt", weights_only=True)
    state["readout_gain"] = state["readout_gain"][:3]
    torch.save(state, tmp_path / "fit" / "fit_state.pt")
    with pytest.raises(LrfitError, match="Poisson readout"):
        LowRankFit.load(tmp_path / "fit")


@pytest.mark.parametrize("settings", [{"hidden_units": 5}, {"x0": "per_condition"}, {"x0": "inputs"},
                                      {"init": "random"}, {"init": "fullrank_svd", "fullrank_epochs": 40}])
def test_counts_work_with_hidden_units_starts_and_inits(settings):
    data, _ = _planted(n_trials=48)
    fit = LowRankFit(rank=1, observation="counts", max_epochs=4, progress=False, **settings).fit(data)
    assert np.isfinite(fit.history_[-1]["train_loss"])
    assert fit.score(data, metric="bits_per_spike") > 0


def test_a_lead_in_is_neither_fitted_nor_scored_for_counts():
    data, _ = _planted(n_trials=48)
    lead = data.with_lead_in(0.1)
    garbage = np.array(lead.activity)
    garbage[:, :5] = 7.0  # masked lead-in bins: must change nothing
    fits = [LowRankFit(rank=1, observation="counts", max_epochs=2, progress=False).fit(d)
            for d in (lead, lead.replace(activity=garbage))]
    for a, b in zip(fits[0].model_.parameters(), fits[1].model_.parameters()):
        assert torch.equal(a, b)


def test_bad_counts_are_one_sentence():
    data, _ = _planted(n_trials=8)
    negative = np.array(data.activity)
    negative[2, 3, 1] = -1.0
    with pytest.raises(LrfitError, match=r"negative values .* trial 2, bin 3, neuron 1.*preprocess.normalise"):
        LowRankFit(rank=1, observation="counts").fit(data.replace(activity=negative))
    with pytest.raises(LrfitError, match="looks like rates, not counts per bin"):
        LowRankFit(rank=1, observation="counts").fit(data.replace(activity=np.array(data.activity) * 1000))
    with pytest.raises(LrfitError, match="in Hz"):
        LowRankFit(rank=1, observation="counts").fit(data.replace(meta={"source": "x.nwb", "units": "Hz"}))
    nan = np.array(data.activity)
    nan[0, 0, 0] = np.nan
    from data_adapters import DataError

    with pytest.raises(DataError, match="NaN/Inf values in valid bins"):
        data.replace(activity=nan)
    with pytest.raises(LrfitError, match="bits_per_spike.*observation='counts'"):
        LowRankFit(rank=1, max_epochs=1, progress=False).fit(
            data.replace(activity=np.array(data.activity) / 10)).score(data, metric="bits_per_spike")


def test_bits_per_spike_and_psth_r2_definitions():
    rng = np.random.default_rng(0)
    lam = rng.uniform(0.1, 2.0, (30, 20, 5))
    y = rng.poisson(lam).astype(float)
    assert bits_per_spike(y, np.broadcast_to(y.mean((0, 1)), y.shape)) == pytest.approx(0.0, abs=1e-12)
    assert bits_per_spike(y, lam) > 0
    per = bits_per_spike(y, lam, per_neuron=True)
    assert per.shape == (5,) and np.all(np.isfinite(per))
    # hand-computed: (LL_model - LL_null) / (spikes ln 2) with LL = sum y log(l) - l - log(y!)
    from scipy.stats import poisson

    ll = poisson.logpmf(y, lam).sum() - poisson.logpmf(y, np.broadcast_to(y.mean((0, 1)), y.shape)).sum()
    assert bits_per_spike(y, lam) == pytest.approx(ll / (y.sum() * np.log(2)))
    labels = np.repeat(["a", "b", "c"], 10)
    assert psth_r2(y, y, labels) == pytest.approx(1.0)
    assert psth_r2(y[:3], y[:3], np.array(["a", "b", "c"])) is None  # no condition repeats


def test_count_baselines_choose_the_smoothing_on_training_trials():
    data, lam = _planted(n_trials=160)
    train, test = data.select(trials=np.arange(120)), data.select(trials=np.arange(120, 160))
    base = compute_count_baselines(train, test)
    assert base.trained_fraction == 1.0 and base.sd_s > 0
    assert base.bits_per_spike["psth"] > 0 > base.bits_per_spike["mean"] - 1e-3
    unseen = compute_count_baselines(train.select(trials=np.flatnonzero(train.conditions["angle"] != 0)), test)
    assert unseen.trained_fraction == pytest.approx(0.75)  # angle 0 falls back to the PSTH of all training trials
    assert smooth_counts(np.ones((2, 10, 3)), np.ones((2, 10), bool), 2.0) == pytest.approx(1.0)


def test_closed_form_start_maps_log_rates_into_the_networks_range():
    data, lam = _planted(n_trials=80)
    for counts_from in ("rates", "currents"):
        start = count_start(data.activity, data.mask, DT, counts_from)
        if counts_from == "rates":
            assert np.abs(start.activity).max() < 1
        rate = start.scale * np.logaddexp(0, start.gain * start.activity + start.bias)
        corr = np.corrcoef(rate.ravel(), lam.ravel())[0, 1]
        assert corr > 0.6  # smoothed single trials: a start, not a fit


def test_co_smoothing_predicts_held_out_neurons_from_the_latents():
    data, lam = _planted(n_trials=160, units=50)
    keep, out = np.arange(40), np.arange(40, 50)
    train, test = data.select(trials=np.arange(120)), data.select(trials=np.arange(120, 160))
    fit = LowRankFit(rank=1, observation="counts", max_epochs=30, lr=0.01, progress=False).fit(
        train.select(neurons=keep)
    )
    result = heldout_neuron_bits_per_spike(fit, train.select(neurons=keep), test.select(neurons=keep),
                                           train.select(neurons=out), test.select(neurons=out))
    assert result["co_bps"] > 0.02
    assert len(result["co_bps_per_neuron"]) == 10 and np.isfinite(result["co_bps_pca"])


def _counts_config(tmp_path, fmt: str, **extra) -> dict:
    data, _ = _planted(n_trials=96)
    if fmt == "h5":
        path = tmp_path / "spikes.h5"
        write_hdf5(data, path)
        section = {"path": str(path)}
    else:  # a plain NPZ count array with a declared axis order
        path = tmp_path / "spikes.npz"
        np.savez(path, counts=np.asarray(data.activity).transpose(2, 0, 1), angle=data.conditions["angle"].to_numpy())
        section = {"path": str(path), "activity_key": "counts", "axis_order": "neuron,trial,time", "dt": DT,
                   "condition_keys": ["angle"],
                   "inputs": [{"name": "cue_x", "column": "angle", "transform": "cos_deg", "start": 0.1},
                              {"name": "cue_y", "column": "angle", "transform": "sin_deg", "start": 0.1}]}
    return {"data": section, "preprocess": {"split": {"by": "trials", "column": "angle", "seed": 0},
                                            "heldout_neurons": 0.2, **extra},
            "model": {"rank": [1, 2], "target": "counts"}, "optim": {"max_epochs": 15, "lr": 0.01}}


@pytest.mark.parametrize("fmt", ["h5", "npz"])
def test_lrfit_fit_of_spike_counts_from_files(tmp_path, fmt):
    metrics = run_fit(load_config(extra=_counts_config(tmp_path, fmt)), tmp_path / "run", progress=False)
    for key in ("bits_per_spike_test", "bits_per_spike_train", "psth_r2_test", "co_bps", "co_bps_pca",
                "count_baselines", "r2_test"):
        assert key in metrics, key
    assert metrics["best_baseline"]["metric"] == "bits_per_spike"
    # the planted trials differ only by Poisson noise within a condition, so the smoothed PSTH is near the truth
    psth = metrics["count_baselines"]["bits_per_spike"]["psth"]
    assert metrics["bits_per_spike_test"] > psth - 0.03 and metrics["bits_per_spike_test"] > 0.1
    assert metrics["beats_baselines"] == (metrics["bits_per_spike_test"] > psth)
    assert metrics["co_bps"] > 0
    selection = json.loads((tmp_path / "run" / "rank_selection.json").read_text())
    assert selection["chosen_by"] == "bits_per_spike_test" and len(selection["bits_per_spike_test"]) == 2


def test_counts_refuse_preprocessing_that_changes_them(tmp_path):
    raw = _counts_config(tmp_path, "h5", normalise="zscore")
    with pytest.raises(LrfitError, match="preprocess.normalise would change them"):
        run_fit(load_config(extra=raw), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_report_of_a_counts_fit_shows_rates_in_hz(tmp_path):
    from lrfit.cli import main

    raw = _counts_config(tmp_path, "h5")
    raw["model"]["rank"] = 1
    run_fit(load_config(extra=raw), tmp_path / "run", progress=False)
    assert main(["analyze", str(tmp_path / "run")]) == 0
    loadings = pd.read_csv(tmp_path / "run" / "analysis" / "loadings.csv")
    assert {"readout_gain", "readout_offset"} <= set(loadings.columns)
    assert main(["inactivate", str(tmp_path / "run"), "--groups", "populations"]) == 0
    assert main(["report", str(tmp_path / "run")]) == 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "bits per spike" in html and "recorded PSTH" in html and "expected rate (Hz)" in html


def test_spikes_of_a_simulated_recording_reach_a_counts_fit_unsmoothed(tmp_path):
    """lrfit simulate --record spikes (per-unit peaks 20-50 Hz) -> NWB units, binned by the reader -> lrfit fit."""
    from lrfit.cli import main
    from lrfit.teachers import train_teacher

    teacher = tmp_path / "teacher"
    train_teacher("pdm", n_units=32, rank=1, seed=0, out=teacher, max_epochs=1, batch_size=16, batches_per_epoch=1,
                  n_val=16, n_test=16, progress=False)
    nwb = tmp_path / "sim.nwb"
    assert main(["simulate", str(teacher), "--trials", "60", "--out", str(nwb), "--record", "spikes",
                 "--max-rate-hz", "20:50", "--seed", "1"]) == 0
    raw = {"data": {"path": str(nwb), "dt": 0.02, "align_to": "align_time", "inputs": "lrfit/inputs"},
           "preprocess": {"split": {"by": "trials", "seed": 0}},
           "model": {"rank": 1, "target": "counts"}, "optim": {"max_epochs": 5}}
    config = load_config(extra=raw)
    from lrfit.runs.fit import prepare_data

    data = prepare_data(config)
    counts = np.asarray(data.train.activity)
    assert np.all(counts == np.round(counts)) and counts.max() >= 1  # raw counts per bin, no smoothing
    peaks = counts.mean((0, 1)) / 0.02
    assert peaks.max() > 1.5 * peaks.min()  # each unit its own peak rate
    metrics = run_fit(config, tmp_path / "run", progress=False)
    assert metrics["target"] == "counts" and np.isfinite(metrics["bits_per_spike_test"])


def test_tdr_layout_counts_fit_by_split_halves(tmp_path):
    """Separately recorded neurons' single-trial counts (NaN-padded): halves average them, the Poisson fit takes
    the mean counts (not integers) as they are."""
    rng = np.random.default_rng(0)
    n_neurons, n_time, n_trials = 12, 20, 10
    t = np.linspace(0, 1, n_time)
    tuning = rng.uniform(-1, 1, n_neurons)  # each neuron's rise after the direction cue (an input-driven state)
    lam = np.stack([np.stack([1.5 * np.exp(0.8 * d * tuning[n] * (1 - np.exp(-t / 0.2))) for d in (-1, 1)])
                    for n in range(n_neurons)])
    counts = rng.poisson(np.broadcast_to(lam[..., None], lam.shape + (n_trials,))).astype(np.float32)
    for n in range(n_neurons):
        counts[n, :, :, 4 + n % 5:] = np.nan  # each neuron its own number of trials
    np.savez(tmp_path / "tdr.npz", counts=counts)
    raw = {"data": {"path": str(tmp_path / "tdr.npz"), "activity_key": "counts",
                    "axis_order": "neuron,cond:direction,time,trial", "condition_values": {"direction": [-1, 1]},
                    "dt": 0.05, "inputs": [{"name": "dir", "column": "direction"}]},
           "preprocess": {"split": {"by": "halves", "seed": 3}},
           "model": {"rank": 1, "target": "counts"}, "optim": {"max_epochs": 20, "lr": 0.02}}
    metrics = run_fit(load_config(extra=raw), tmp_path / "run", progress=False)
    assert metrics["split"]["by"] == "halves" and metrics["bits_per_spike_test"] > 0
