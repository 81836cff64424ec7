"""The fitter: planted-network recovery, resume, NaN rollback, held-out neurons, bad input, CLI."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import torch
import yaml
from conftest import planted_data, planted_network

from data_adapters import TrialData
from data_adapters.hdf5 import write_hdf5
from lrfit import LowRankFit
from lrfit.cli import main
from lrfit.errors import LrfitError
from lrfit.fitting.policies import RollbackPolicy
from lrfit.runs.config import load_config
from lrfit.runs.fit import prepare_data, run_fit


def quick_fit(**kwargs) -> LowRankFit:
    settings = dict(rank=2, max_epochs=15, batch_size=32, lr=3e-3, progress=False, random_state=0)
    settings.update(kwargs)
    return LowRankFit(**settings)


def params_of(fit: LowRankFit) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in fit.model_.state_dict().items()}


def test_planted_rank2_network_is_recovered_on_held_out_trials():
    train, test = planted_data(seed=0), planted_data(n_trials=60, seed=1)
    fit = quick_fit().fit(train, validation=test)
    assert fit.score(test) > 0.99
    predicted = fit.predict(test)
    assert predicted.activity.shape == test.activity.shape
    assert np.array_equal(predicted.neuron_ids, test.neuron_ids)
    kappa = fit.latents(test)
    assert kappa.shape == (test.n_trials, test.n_time, 2)
    # The recovered column space of M matches the planted one.
    planted_m = planted_network().m.detach().numpy()
    q_true, _ = np.linalg.qr(planted_m)
    q_fit, _ = np.linalg.qr(fit.model_.m.detach().numpy())
    cosines = np.linalg.svd(q_true.T @ q_fit, compute_uv=False)
    assert cosines.min() > 0.95


def test_random_init_trains_too():
    train, test = planted_data(n_trials=96), planted_data(n_trials=32, seed=1)
    fit = quick_fit(init="random", max_epochs=5).fit(train, validation=test)
    losses = [row["train_loss"] for row in fit.history_]
    assert losses[-1] < losses[0]


def test_a_converged_fit_stops_and_says_why():
    train, test = planted_data(), planted_data(n_trials=60, seed=1)
    fit = quick_fit(batch_size=8, max_epochs=200).fit(train, validation=test)  # 20 steps per epoch: window 13
    assert fit.stopped_ == "converged" and fit.epochs_ < 60
    assert fit.score(test) > 0.999
    endless = quick_fit(batch_size=8, max_epochs=14, tol=0.0, patience=0).fit(train, validation=test)
    assert (endless.stopped_, endless.epochs_) == ("max_epochs", 14)


def test_convergence_is_judged_on_the_training_loss_without_validation():
    from lrfit.fitting.policies import convergence_window

    fit = quick_fit(batch_size=16, max_epochs=100).fit(planted_data())
    assert convergence_window(10) == 25
    assert fit.stopped_ == "converged" and 25 < fit.epochs_ < 100


class InterruptedFit(LowRankFit):
    """Raises Ctrl-C after a given epoch, as a user would."""

    stop_after = 4

    def _on_epoch_end(self, epoch: int) -> None:
        if epoch == self.stop_after:
            raise KeyboardInterrupt


def test_interrupted_fit_resumes_to_the_uninterrupted_parameters(tmp_path):
    train, test = planted_data(n_trials=96), planted_data(n_trials=32, seed=1)
    straight = quick_fit(init="random", max_epochs=8).fit(train, validation=test)
    interrupted = InterruptedFit(**{**quick_fit(init="random", max_epochs=8).get_params(), "checkpoint_dir": tmp_path})
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(train, validation=test)
    assert (tmp_path / "checkpoint.pt").is_file()
    resumed = quick_fit(init="random", max_epochs=8, checkpoint_dir=tmp_path).fit(train, validation=test, resume=True)
    assert resumed.epochs_ == straight.epochs_ == 8
    for name, value in params_of(straight).items():
        np.testing.assert_array_equal(params_of(resumed)[name], value, err_msg=name)


class NanOnceFit(LowRankFit):
    """Returns a NaN loss on the 3rd mini-batch, once."""

    calls = 0

    def _batch_loss(self, model, tensors, idx):
        loss = super()._batch_loss(model, tensors, idx)
        type(self).calls += 1
        return loss * float("nan") if type(self).calls == 3 else loss


def test_nan_loss_rolls_back_and_says_so(caplog):
    train = planted_data(n_trials=96)
    with caplog.at_level(logging.WARNING):
        fit = NanOnceFit(**quick_fit(max_epochs=4, batch_size=16).get_params()).fit(train)
    assert fit.rollbacks_ == 1
    assert "rolled back" in caplog.text and "halved the learning rate" in caplog.text
    assert fit.epochs_ == 4
    assert all(np.isfinite(v).all() for v in params_of(fit).values())
    assert fit.score(train) > 0.9


def test_rollbacks_compound_and_end_in_one_sentence(caplog):
    # issue 16 item 6: at lr 1e38 every rollback said "halved to 5e37" (the restored optimiser state undid the
    # halving) and the run ended in a raw FloatingPointError after 21 rollbacks
    train = planted_data(n_trials=32, n_time=10, n_units=16)
    lr0 = 1e38
    with caplog.at_level(logging.WARNING), pytest.raises(LrfitError) as info:
        quick_fit(lr=lr0, max_epochs=3, batch_size=8, observation="currents").fit(train)
    halved = [float(m.group(1)) for m in re.finditer(r"halved the learning rate to (\S+)", caplog.text)]
    assert len(halved) == RollbackPolicy().max_rollbacks == 20
    for k, lr in enumerate(halved, start=1):
        assert lr == pytest.approx(lr0 / 2**k, rel=5e-3), k
    message = str(info.value)
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")
    assert "20 rollbacks" in message and "data scaling" in message and "'optim.lr'" in message


def _write_planted(tmp_path, name="planted.h5", data: TrialData | None = None):
    path = tmp_path / name
    write_hdf5(data if data is not None else planted_data(n_trials=80), path)
    return path


def _config(path, **sections) -> dict:
    raw = {
        "data": {"path": str(path)},
        "preprocess": {"heldout_neurons": 8, "split": {"by": "trials", "test_fraction": 0.25, "seed": 0}},
        "model": {"rank": 2},
        "optim": {"max_epochs": 3, "batch_size": 32},
    }
    for key, value in sections.items():
        raw[key].update(value)
    return load_config(extra=raw)


def test_heldout_neurons_never_influence_training(tmp_path):
    data = planted_data(n_trials=80)
    config = _config(_write_planted(tmp_path, data=data))
    prepared = prepare_data(config)
    held = prepared.info["heldout_neuron_ids"]
    assert len(held) == 8 and not set(held) & set(prepared.info["neuron_ids"])
    # Scramble the held-out neurons' activity: the fitted network must not change.
    activity = np.array(data.activity)
    position = {nid: i for i, nid in enumerate(data.neuron_ids)}
    columns = [position[h] for h in held]
    activity[:, :, columns] = np.random.default_rng(5).uniform(-0.9, 0.9, size=activity[:, :, columns].shape)
    config_b = _config(_write_planted(tmp_path, "scrambled.h5", data.replace(activity=activity)))
    out_a, out_b = tmp_path / "run_a", tmp_path / "run_b"
    metrics_a = run_fit(config, out_a, progress=False)
    metrics_b = run_fit(config_b, out_b, progress=False)
    a, b = LowRankFit.load(out_a), LowRankFit.load(out_b)
    for name, value in params_of(a).items():
        np.testing.assert_array_equal(params_of(b)[name], value, err_msg=name)
    assert metrics_a["r2_test"] == metrics_b["r2_test"]
    # The held-out neurons of the planted network are predicted from the latents;
    # scrambled ones are not.
    assert metrics_a["heldout_r2"] > 0.9 and "latent coordinates" in metrics_a["heldout_prediction"]
    assert metrics_b["heldout_r2"] < 0.5


def test_rank_list_writes_selection_and_per_rank_runs(tmp_path):
    config = _config(_write_planted(tmp_path), model={"rank": [1, 2]}, preprocess={"heldout_neurons": 0})
    out = tmp_path / "run"
    metrics = run_fit(config, out, progress=False)
    selection = json.loads((out / "rank_selection.json").read_text())
    assert selection["ranks"] == [1, 2] and len(selection["r2_test"]) == 2
    assert (out / "rank_1" / "model.json").is_file() and (out / "rank_2" / "history.csv").is_file()
    for key in ("r2_train", "r2_test", "r2_test_per_neuron_mean", "rank", "epochs", "seconds"):
        assert key in metrics
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["rank"] == [1, 2]
    with pytest.raises(LrfitError, match="--resume"):
        run_fit(config, out, progress=False)
    assert run_fit(config, out, resume=True, progress=False)["r2_test"] == metrics["r2_test"]


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(rank=100), "larger than the number of units"),
        (dict(rank=0), "positive integer"),
        (dict(observation="spikes"), "Unknown observation 'spikes'"),
    ],
)
def test_estimator_rejects_bad_settings(change, match):
    with pytest.raises(LrfitError, match=match):
        quick_fit(**change).fit(planted_data(n_trials=8))


def test_rates_outside_tanh_range_suggest_normalising():
    data = planted_data(n_trials=8)
    loud = data.replace(activity=np.asarray(data.activity) * 3)
    with pytest.raises(LrfitError, match="outside tanh's range.*normalise"):
        quick_fit().fit(loud)
    fit = quick_fit(observation="currents", max_epochs=1).fit(loud)
    assert np.isfinite(fit.score(loud))


def test_empty_training_split_is_one_sentence(tmp_path):
    config = _config(_write_planted(tmp_path), preprocess={"split": {"by": "trials", "test_fraction": 1.0, "seed": 0}})
    with pytest.raises(ValueError, match=r"test_fraction 1.0 must be in \(0, 1\)"):
        prepare_data(config)
    one_value = _config(_write_planted(tmp_path), preprocess={
        "split": {"by": "conditions", "column": "amp0", "test_values": [], "seed": 0}})
    with pytest.raises(ValueError, match="empty"):
        prepare_data(one_value)


def test_missing_input_channels_are_named(tmp_path):
    config = _config(_write_planted(tmp_path), model={"inputs": ["u0", "context"]})
    with pytest.raises(LrfitError, match=r"input channel\(s\) \['context'\].*data.inputs"):
        prepare_data(config)


def test_unknown_config_key_names_the_closest(tmp_path):
    with pytest.raises(LrfitError, match="max_epoch.*did you mean 'max_epochs'"):
        load_config(extra={"data": {"path": "x.h5"}, "optim": {"max_epoch": 3}})
    with pytest.raises(LrfitError, match="did you mean 'rank'"):
        load_config(extra={"data": {"path": "x.h5"}}, overrides=["model.rnak=2"])


def test_cli_fit_and_compare_on_a_tiny_teacher(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    assert main(["teacher", "--task", "cdm", "--units", "32", "--rank", "1", "--epochs", "3", "--seed", "0",
                 "--out", str(teacher), "--no-progress"]) == 0
    config = tmp_path / "student.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"teacher": str(teacher), "trials": 64, "test_trials": 32},
        "model": {"rank": 1},
        "optim": {"max_epochs": 3},
    }))
    student = tmp_path / "student"
    assert main(["fit", str(config), "--out", str(student), "--no-progress", "--set", "optim.batch_size=16"]) == 0
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["r2_test"] > 0.9 and metrics["rank"] == 1
    assert metrics["stopped"] == "max_epochs" and '"stopped": "max_epochs"' in capsys.readouterr().out
    capsys.readouterr()
    assert main(["compare", str(student), str(teacher)]) == 0
    result = json.loads((student / "compare.json").read_text())
    for key in ("r2_activity", "accuracy_student", "accuracy_teacher", "m_cosines", "n_cosines", "ecc"):
        assert key in result
    assert result["r2_activity"] > 0.9
    assert main(["fit", str(config), "--out", str(student), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err


CONFIGS = __import__("pathlib").Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["teacher_student.yaml", "rank_sweep.yaml", "m1_reaching.yaml"])
def test_shipped_fit_configs_are_valid(name):
    config = load_config(CONFIGS / name)
    assert config["model"]["rank"]


def test_m1_config_holds_out_every_direction_once_in_four_folds(m1_path):
    from lrfit.runs.data import prepare_folds

    folds = prepare_folds(load_config(CONFIGS / "m1_reaching.yaml"))
    assert len(folds) == 4
    held = []
    for fold in folds:
        train, test = fold.train, fold.test
        assert (train.n_trials, test.n_trials, train.n_neurons) == (6, 2, 141)
        assert not set(train.conditions["reach_angle_deg"]) & set(test.conditions["reach_angle_deg"])
        assert list(train.input_names) == ["cue_x", "cue_y", "go", "go_x", "go_y"]
        # Normalisation statistics come from each fold's training directions only.
        assert abs(float(np.mean(train.activity))) < 1e-5
        held += list(test.conditions["reach_angle_deg"])
    assert sorted(held) == sorted(folds[0].train.conditions["reach_angle_deg"].tolist()
                                  + folds[0].test.conditions["reach_angle_deg"].tolist())


def test_checkpoint_is_plain_tensors_and_json_with_the_batch_order_state(tmp_path):
    train = planted_data(n_trials=32, n_time=10, n_units=16)
    quick_fit(init="random", max_epochs=2, checkpoint_dir=tmp_path).fit(train)
    tensors = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert set(tensors) == {"params", "optimiser", "best", "rng", "epoch"} and len(tensors["rng"]["generators"]) == 1
    assert meta["epoch"] == tensors["epoch"] == 2 and len(meta["history"]) == 2 and meta["stop"][0]["best_epoch"] >= 1
    # a kill between the two writes leaves checkpoint.pt one epoch ahead of checkpoint.json: refused in one sentence
    (tmp_path / "checkpoint.json").write_text(json.dumps({**meta, "epoch": 1}))
    with pytest.raises(LrfitError, match="is torn"):
        quick_fit(init="random", max_epochs=3, checkpoint_dir=tmp_path).fit(train, resume=True)


def test_a_path_given_with_set_is_relative_to_the_current_directory(tmp_path, monkeypatch):
    """``--set data.teacher=runs/T`` means runs/T where the command is typed, not beside the config file."""
    from lrfit.runs.config import load_config

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "fit.yaml").write_text("data: {teacher: ../runs/default}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(tmp_path / "configs" / "fit.yaml", ["data.teacher=runs/T1", "data.path=rec.h5"])
    assert config["data"]["teacher"] == str((tmp_path / "runs" / "T1").resolve())
    assert config["data"]["path"] == str((tmp_path / "rec.h5").resolve())
    kept = load_config(tmp_path / "configs" / "fit.yaml")  # a path in the file stays relative to the file
    assert kept["data"]["teacher"] == "../runs/default"
