"""Fits that generalise to held-out conditions: k-fold runs, a lead-in, starts from the inputs, baselines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data_adapters import TrialData
from data_adapters.hdf5 import write_hdf5
from lrfit import LowRankFit, LowRankRNN
from lrfit.fitting.metrics import r2_score
from lrfit.runs.config import load_config
from lrfit.runs.fit import prepare_data, run_fit


def _cued_data(
    n_conditions: int = 8, repeats: int = 4, n_time: int = 30, n_units: int = 40, seed: int = 0
) -> TrialData:
    """Rates of a rank-1 network driven by a constant cue [cos, sin] of a direction, from a cue-dependent state."""
    gen = torch.Generator().manual_seed(seed)
    net = LowRankRNN(n_units, rank=1, n_inputs=2, tau=0.1, dt=0.02, seed=seed)
    with torch.no_grad():
        net.m.copy_(torch.randn(n_units, 1, generator=gen))
        net.n.copy_(1.5 * net.m + 0.3 * torch.randn(n_units, 1, generator=gen))
        net.w_in.mul_(0.5)
    angle = np.repeat(np.arange(n_conditions) * 360.0 / n_conditions, repeats)
    cue = np.stack([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))], 1).astype(np.float32)
    inputs = np.repeat(cue[:, None, :], n_time, 1)
    x0 = torch.as_tensor(cue) @ net.w_in.detach().T * 2.0  # the preparatory state is tuned to the cue
    with torch.no_grad():
        rates = net(torch.as_tensor(inputs), x0=x0, noise_std=0.0).rates.numpy()
    return TrialData(activity=0.8 * rates, inputs=inputs, input_names=("cue_x", "cue_y"), dt=0.02,
                     conditions=pd.DataFrame({"angle": angle}), meta={"source": "cued.h5"})


def test_lead_in_bins_are_never_scored_nor_fitted():
    data = _cued_data().with_lead_in(0.1)
    assert data.meta["lead_in"]["bins"] == 5
    garbage = np.array(data.activity)
    garbage[:, :5] = 0.7  # the lead-in's activity is masked: changing it must change nothing
    other = data.replace(activity=garbage)
    fits = [LowRankFit(rank=1, max_epochs=3, progress=False, random_state=0).fit(d) for d in (data, other)]
    for a, b in zip(fits[0].model_.parameters(), fits[1].model_.parameters()):
        assert torch.equal(a, b)
    assert fits[0].score(data) == fits[0].score(other)
    pred = fits[0].predict(data).activity
    window = np.asarray(data.mask)
    assert fits[0].score(data) == pytest.approx(r2_score(np.asarray(data.activity)[:, 5:], pred[:, 5:], window[:, 5:]))


def test_a_held_out_condition_starts_from_its_own_inputs():
    data = _cued_data()
    train, test = data.split("conditions", column="angle", test_values=[90.0, 270.0])
    by_inputs = LowRankFit(rank=1, x0="inputs", max_epochs=30, lr=1e-2, progress=False).fit(train)
    shared = LowRankFit(rank=1, x0="per_condition", max_epochs=30, lr=1e-2, progress=False).fit(train)
    def starts(fit):
        return fit.initial_states(test)

    angle = test.conditions["angle"].to_numpy()
    own = starts(by_inputs)
    assert np.abs(own[angle == 90.0].mean(0) - own[angle == 270.0].mean(0)).max() > 0.05  # its own start
    same = starts(shared)
    np.testing.assert_allclose(same[0], same[-1], atol=1e-6)  # per_condition: unseen conditions share the mean start
    assert by_inputs.score(test) > shared.score(test)
    # saved and loaded, the start still follows the inputs
    assert by_inputs.x0_table_.shape[0] == 1 + data.n_inputs


def test_lead_in_gives_held_out_conditions_input_driven_starts():
    data = _cued_data().with_lead_in(0.2)
    train, test = data.split("conditions", column="angle", test_values=[90.0, 270.0])
    fit = LowRankFit(rank=1, max_epochs=5, progress=False).fit(train)
    first = fit.simulate(test).currents[:, 10].numpy()  # the first recorded bin
    angle = test.conditions["angle"].to_numpy()
    assert np.abs(first[angle == 90.0].mean(0) - first[angle == 270.0].mean(0)).max() > 0.05


def test_cross_validated_run_holds_out_each_condition_once(tmp_path):
    path = tmp_path / "cued.h5"
    write_hdf5(_cued_data(repeats=1), path)
    raw = {"data": {"path": str(path)},
           "preprocess": {"split": {"by": "conditions", "column": "angle", "folds": 4, "seed": 1}, "lead_in": 0.06},
           "model": {"rank": [1, 2], "x0": "inputs"}, "optim": {"max_epochs": 3, "batch_size": 8}}
    config = load_config(extra=raw)
    metrics = run_fit(config, tmp_path / "run", progress=False)
    out = tmp_path / "run"
    held = []
    for k in range(4):
        fold = json.loads((out / "rank_1" / f"fold_{k}" / "metrics.json").read_text())
        held += fold["test_conditions"]
        assert fold["lead_in_bins"] == 3
    assert sorted(held) == sorted(f"angle={a:g}" for a in np.arange(8) * 45.0)
    rank1 = json.loads((out / "rank_1" / "metrics.json").read_text())
    assert rank1["r2_test"] == pytest.approx(np.mean(rank1["r2_test_folds"]))
    selection = json.loads((out / "rank_selection.json").read_text())
    assert selection["r2_test_folds"][0] == rank1["r2_test_folds"]
    assert metrics["folds"] == 4 and "r2_test_std" in metrics and metrics["baselines_mean"]
    # the analysed network is fold 0's, whose split the run rebuilds
    assert prepare_data(config).info["test_conditions"] == json.loads(
        (out / "rank_1" / "fold_0" / "metrics.json").read_text())["test_conditions"]


def test_a_fit_below_baseline_is_flagged_in_metrics_console_and_report(tmp_path, capsys):
    from lrfit.cli import main

    data = _cued_data(repeats=3)
    noise = np.random.default_rng(0).normal(0, 0.3, data.activity.shape).astype(np.float32)
    path = tmp_path / "noisy.h5"
    write_hdf5(data.replace(activity=np.clip(data.activity + noise, -0.95, 0.95)), path)
    cfg = tmp_path / "fit.yaml"
    cfg.write_text(json.dumps({"data": {"path": str(path)},
                               "preprocess": {"split": {"by": "trials", "column": "angle", "seed": 0}},
                               "model": {"rank": 1, "init": "random"}, "optim": {"max_epochs": 1, "lr": 1e-4}}))
    assert main(["fit", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["beats_baselines"] is False and "condition_mean" in metrics["below_baselines"]
    assert metrics["noise_ceiling"] is not None
    assert "WARNING: the fit does not beat the baseline" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "run")]) == 0
    page = (tmp_path / "run" / "report.html").read_text()
    assert 'class="banner"' in page and "does not beat the trivial baseline" in page


def test_every_config_key_is_documented(capsys):
    from lrfit.cli import main
    from lrfit.runs.config import config_schema

    rows = config_schema()
    assert all(meaning for _, _, _, meaning in rows), [key for key, _, _, m in rows if not m]
    assert main(["fit", "--show-config"]) == 0
    shown = capsys.readouterr().out
    for key in ("preprocess.split.folds", "preprocess.lead_in", "model.x0", "optim.lr", "model.target"):
        assert key in shown
    assert main(["fit"]) == 2  # no config: one sentence pointing at --show-config
    assert "--show-config" in capsys.readouterr().err


def test_split_halves_of_separately_recorded_neurons_with_a_ceiling(tmp_path):
    """Neurons of separate sessions (unequal, NaN-padded trial counts): split halves, folds, ceiling in metrics."""
    rng = np.random.default_rng(0)
    n_neurons, n_time, n_trials = 12, 15, 8
    t = np.linspace(0, 1, n_time)
    signal = np.stack([np.stack([np.sin(2 * np.pi * (t + 0.1 * n)) * d for d in (-1, 1)]) for n in range(n_neurons)])
    x = signal[:, :, :, None] * 0.5 + rng.normal(0, 0.2, (n_neurons, 2, n_time, n_trials))  # neuron, dir, time, trial
    for n in range(n_neurons):
        x[n, :, :, 3 + n % 5:] = np.nan  # each neuron its own number of trials
    np.savez(tmp_path / "tdr.npz", rates=x.astype(np.float32))
    raw = {
        "data": {
            "path": str(tmp_path / "tdr.npz"),
            "activity_key": "rates",
            "axis_order": "neuron,cond:direction,time,trial",
            "condition_values": {"direction": [-1, 1]},
            "dt": 0.05,
            "inputs": [{"name": "dir", "column": "direction"}],
        },
        "preprocess": {"split": {"by": "halves", "folds": 2, "seed": 3}},
        "model": {"rank": 1, "target": "currents"},
        "optim": {"max_epochs": 20, "lr": 0.02},
    }
    metrics = run_fit(load_config(extra=raw), tmp_path / "run", progress=False)
    assert metrics["folds"] == 2 and metrics["split"]["by"] == "halves"
    assert 0 < metrics["noise_ceiling"] < 1
    assert metrics["n_train_trials"] == metrics["n_test_trials"] == 2  # condition means of each half


def test_inactivation_of_a_fit_to_recorded_data_predicts_activity_and_decoding(tmp_path, capsys):
    from lrfit.cli import main

    path = tmp_path / "cued.h5"
    write_hdf5(_cued_data(repeats=2), path)
    raw = {"data": {"path": str(path)}, "preprocess": {"split": {"by": "trials", "column": "angle", "seed": 0}},
           "model": {"rank": 1}, "optim": {"max_epochs": 5}}
    run_fit(load_config(extra=raw), tmp_path / "run", progress=False)
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"first_half": list(range(20)), "one": [0]}))
    assert main(["inactivate", str(tmp_path / "run"), "--groups", str(groups), "--decode", "angle"]) == 0
    table = pd.read_csv(tmp_path / "run" / "analysis" / "inactivation.csv").set_index("group")
    assert table.loc["control", "activity_change"] == 0
    assert table.loc["first_half", "activity_change"] > table.loc["one", "activity_change"] > 0
    assert table.loc["control", "decode_angle"] == table.loc["control", "decode_angle_control"]
    assert "delta_decode_angle" in table
    record = json.loads((tmp_path / "run" / "analysis" / "inactivation.json").read_text())
    assert record["kind"] == "activity" and record["decode"] == ["angle"]
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "linear decoder of angle" in (tmp_path / "run" / "report.html").read_text()


def test_check_inputs_plots_the_inputs_over_the_population_response(tmp_path):
    from lrfit.cli import main

    path = tmp_path / "cued.h5"
    write_hdf5(_cued_data(repeats=2), path)
    cfg = tmp_path / "fit.yaml"
    cfg.write_text(
        json.dumps(
            {
                "data": {"path": str(path)},
                "preprocess": {"split": {"by": "conditions", "column": "angle", "test_fraction": 0.25}},
            }
        )
    )
    assert main(["fit", str(cfg), "--check-inputs", str(tmp_path / "inputs.png")]) == 0
    assert (tmp_path / "inputs.png").stat().st_size > 10_000
    assert not (tmp_path / "run").exists()  # nothing fitted
