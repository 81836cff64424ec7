"""Teachers: training writes a complete run, resume = straight run, seeds, CLI errors and help."""

from __future__ import annotations

import json

import pytest
import torch

from lrfit import LrfitError
from lrfit.cli import build_parser, main
from lrfit.seeding import derive_seed
from lrfit.tasks import get_task
from lrfit.teachers import build_network, evaluate, load_teacher, parse_rank, train_teacher

#: a teacher small enough to train in well under a second per epoch
TINY = dict(
    n_units=32,
    batch_size=16,
    batches_per_epoch=2,
    n_val=64,
    n_test=64,
    target_accuracy=2.0,  # never stop early: every run lasts max_epochs
    progress=False,
)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_training_writes_a_complete_run(tmp_path):
    out = tmp_path / "run"
    result = train_teacher("pdm", rank="full", rho=0.5, seed=1, out=out, max_epochs=4, lr=1e-2, **TINY)
    for name in ("model.pt", "model.json", "settings.json", "metrics.json", "checkpoint.pt", "checkpoint.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "loss", "epochs", "seconds"} <= set(metrics)
    assert metrics["epochs"] == 4 and len(metrics["history"]) == 4
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["loss"] > 0 and metrics["seconds"] > 0
    settings = json.loads((out / "settings.json").read_text())
    assert settings["n_units"] == 32 and settings["rank"] == "full" and settings["rho"] == 0.5
    assert settings["task"]["name"] == "pdm"
    # training lowers the loss on fresh trials
    history = metrics["history"]
    assert history[-1]["loss"] < history[0]["loss"]

    # the saved teacher reloads with its task and reproduces the reported test accuracy
    model, task = load_teacher(out)
    assert task == result.task
    _assert_same_state(_state(model), _state(result.model))
    again = evaluate(model, task, n_trials=TINY["n_test"], seed=derive_seed(1, 3))
    assert again["accuracy"] == pytest.approx(metrics["accuracy"])
    assert again["loss"] == pytest.approx(metrics["loss"], rel=1e-5)


def test_low_rank_teacher_and_early_stop(tmp_path):
    result = train_teacher("pdm", rank=1, seed=0, max_epochs=30, lr=2e-2, **{**TINY, "target_accuracy": 0.8})
    assert result.settings["rank"] == 1 and result.settings["rho"] is None
    assert result.model.m.shape == (32, 1)
    assert result.metrics["stopped"] == "target"
    assert result.metrics["epochs"] < 30
    assert result.history[-1]["val_accuracy"] >= 0.8


def test_same_seed_same_teacher_other_seed_differs():
    a = train_teacher("cdm", rank=2, seed=3, max_epochs=2, **TINY)
    b = train_teacher("cdm", rank=2, seed=3, max_epochs=2, **TINY)
    c = train_teacher("cdm", rank=2, seed=4, max_epochs=2, **TINY)
    _assert_same_state(_state(a.model), _state(b.model))
    assert a.metrics["accuracy"] == b.metrics["accuracy"] and a.metrics["loss"] == b.metrics["loss"]
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert not torch.equal(a.model.m, c.model.m)


def test_interrupted_run_resumes_to_the_straight_run(tmp_path):
    kwargs = dict(rank="full", rho=1.0, seed=2, max_epochs=4, **TINY)
    straight = train_teacher("pdm", out=tmp_path / "straight", **kwargs)

    def interrupt(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_teacher("pdm", out=tmp_path / "cut", callback=interrupt, **kwargs)
    assert json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["epoch"] == 2
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = train_teacher("pdm", out=tmp_path / "cut", resume=True, **kwargs)
    assert resumed.metrics["epochs"] == 4
    _assert_same_state(_state(resumed.model), _state(straight.model))
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    assert resumed.metrics["accuracy"] == straight.metrics["accuracy"]


def test_more_epochs_on_resume_equal_a_longer_run(tmp_path):
    kwargs = dict(rank=1, seed=5, **TINY)
    long = train_teacher("cdm", max_epochs=3, **kwargs)
    train_teacher("cdm", out=tmp_path / "r", max_epochs=1, **kwargs)
    extended = train_teacher("cdm", out=tmp_path / "r", max_epochs=3, resume=True, **kwargs)
    _assert_same_state(_state(extended.model), _state(long.model))


def test_existing_run_is_protected_and_settings_must_match(tmp_path):
    out = tmp_path / "run"
    train_teacher("pdm", rank=1, seed=0, out=out, max_epochs=1, **TINY)
    with pytest.raises(LrfitError, match="already holds a training run"):
        train_teacher("pdm", rank=1, seed=0, out=out, max_epochs=1, **TINY)
    with pytest.raises(LrfitError, match="setting 'seed'"):
        train_teacher("pdm", rank=1, seed=9, out=out, max_epochs=2, resume=True, **TINY)
    again = train_teacher("pdm", rank=1, seed=9, out=out, max_epochs=1, overwrite=True, **TINY)
    assert again.settings["seed"] == 9


@pytest.mark.parametrize(
    ("rank", "n_units", "expected"),
    [("full", 8, None), ("FULL", 8, None), ("3", 8, 3), (8, 8, 8)],
)
def test_parse_rank_accepts(rank, n_units, expected):
    assert parse_rank(rank, n_units) == expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(rank=-1), "positive integer"),
        (dict(rank=0), "positive integer"),
        (dict(rank=40), "larger than the number of units 32"),
        (dict(rank="two"), "'full' or a positive integer"),
        (dict(rank="full", rho=-1.0), "rho must be >= 0"),
        (dict(rank=1, lr=0.0), "lr must be positive"),
        (dict(rank=1, noise_std=-0.1), "noise_std must be >= 0"),
        (dict(rank=1, max_epochs=0), "max_epochs must be a positive integer"),
        (dict(rank=1, dt=0.05), "longer than the 'decision' epoch"),
    ],
)
def test_invalid_teacher_settings(kwargs, match):
    settings = {**TINY, "max_epochs": 1, **kwargs}
    with pytest.raises(LrfitError, match=match):
        train_teacher("cdm", **settings)


def test_unknown_task_suggests_the_closest_name():
    with pytest.raises(LrfitError, match="did you mean 'cdm'"):
        train_teacher("cmd", **{**TINY, "max_epochs": 1})


def _cli(tmp_path, *extra: str) -> list[str]:
    return ["teacher", "--units", "32", "--out", str(tmp_path / "cli"), "--no-progress", *extra]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--task", "cdm", "--rank", "-1"], "rank must be a positive integer"),
        (["--task", "cdm", "--rank", "33"], "rank 33 is larger than the number of units 32"),
        (["--task", "dsm"], "Unknown task 'dsm' (did you mean 'dms'?)"),
        (["--task", "cdm", "--dt", "0.05"], "longer than the 'decision' epoch"),
        (["--task", "pdm", "--task-param", "stimulus"], "--task-param expects KEY=VALUE"),
        (["--task", "pdm", "--task-param", "stimulus=800"], "has no parameter 'stimulus'"),
    ],
)
def test_cli_invalid_arguments_print_one_sentence(tmp_path, capsys, extra, match):
    assert main(_cli(tmp_path, *extra)) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("lrfit teacher: error: ")
    assert match in err
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err
    assert not (tmp_path / "cli" / "model.pt").exists()


def test_cli_trains_and_resumes(tmp_path, capsys):
    args = _cli(tmp_path, "--task", "pdm", "--rank", "2", "--epochs", "1", "--batch-size", "8", "--seed", "3")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "1 epochs" in out
    metrics = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert metrics["epochs"] == 1
    settings = json.loads((tmp_path / "cli" / "settings.json").read_text())
    assert settings["rank"] == 2 and settings["batch_size"] == 8 and settings["seed"] == 3
    # a second run into the same directory refuses without --resume / --overwrite
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*args[:-6], "--epochs", "2", "--batch-size", "8", "--seed", "3", "--resume"]) == 0
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["epochs"] == 2


def test_cli_task_parameters_reach_the_task(tmp_path, capsys):
    args = _cli(tmp_path, "--task", "pdm", "--rank", "1", "--epochs", "1", "--task-param", "input_noise=0.0")
    assert main([*args, "--dt", "0.01"]) == 0
    task = json.loads((tmp_path / "cli" / "settings.json").read_text())["task"]
    assert task["input_noise"] == 0.0 and task["dt"] == 0.01
    capsys.readouterr()


def test_help_lists_subcommands_and_each_has_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    top = capsys.readouterr().out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = list(sub.choices)
    assert "teacher" in names
    for name in names:
        assert name in top
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert f"lrfit {name}" in capsys.readouterr().out
    assert main([]) == 0
    assert "teacher" in capsys.readouterr().out


def test_teacher_help_names_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["teacher", "--help"])
    text = capsys.readouterr().out
    for option in ("--task", "--units", "--rank", "--rho", "--seed", "--out", "--resume", "--epochs", "--dt"):
        assert option in text


def _sample_memory(model, task) -> float:
    """How much of the sample (A vs B) difference in the state survives a 1 s delay, noiseless."""
    trials = task.generate(2, seed=0, sample=["A", "B"], test="A", delay_ms=1000.0, input_noise=0.0)
    x, _, _ = trials.to_torch()
    with torch.no_grad():
        currents = model(x, noise_std=0.0).currents
        kappa = currents @ torch.linalg.pinv(model.m).T  # latent coordinates along m
    end_sample, start_test = trials.epochs["stimulus1"][1] - 1, trials.epochs["stimulus2"][0] - 1
    diff = kappa[0] - kappa[1]
    return float(diff[start_test].norm() / diff[end_sample].norm())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_low_rank_init_has_overlap_and_memory(seed):
    # regression: with independent m, n (overlaps O(1/sqrt(N))) a rank-2 dms teacher had
    # no memory across the delay and stayed at chance (loss 1.000) for 170+ epochs
    task = get_task("dms")
    model = build_network(task, 512, 2, seed=seed)
    overlaps = model.overlaps().detach()
    assert torch.allclose(overlaps, torch.eye(2), atol=0.2)
    assert _sample_memory(model, task) > 0.1
    legacy = build_network(task, 512, 2, seed=seed, overlap_init=0.0)
    assert legacy.overlaps().detach().abs().max() < 0.2
    assert _sample_memory(legacy, task) < 0.01


def test_overlap_init_is_recorded_and_checked():
    low = train_teacher("pdm", rank=1, seed=0, max_epochs=1, overlap_init=0.5, **TINY)
    assert low.settings["overlap_init"] == 0.5
    full = train_teacher("pdm", rank="full", seed=0, max_epochs=1, **TINY)
    assert full.settings["overlap_init"] is None
    with pytest.raises(LrfitError, match="overlap_init"):
        train_teacher("pdm", rank=1, max_epochs=1, overlap_init=float("nan"), **TINY)


@pytest.mark.slow
def test_rank2_dms_teacher_learns():
    # 128 units reach 100% after ~55 epochs (~40 s on one idle thread); 512 units: 52 epochs, 167 s
    result = train_teacher("dms", n_units=128, rank=2, seed=0, max_epochs=100, target_accuracy=0.95, progress=False)
    assert result.accuracy >= 0.9


def test_checkpoint_from_before_overlap_init_resumes(tmp_path):
    out = tmp_path / "old"
    train_teacher("pdm", rank=1, seed=0, out=out, max_epochs=1, **TINY)
    meta = json.loads((out / "checkpoint.json").read_text())
    del meta["settings"]["overlap_init"]  # as written by earlier versions (independent m, n)
    (out / "checkpoint.json").write_text(json.dumps(meta))
    resumed = train_teacher("pdm", rank=1, seed=0, out=out, max_epochs=2, resume=True, **TINY)
    assert resumed.metrics["epochs"] == 2 and resumed.settings["overlap_init"] == 0.0


def test_diverging_teacher_rolls_back_and_ends_in_one_sentence(caplog):
    # lr 1e38 overflows Adam's step: each rollback halves the rate once more, the last one is an LrfitError
    with caplog.at_level("WARNING"), pytest.raises(LrfitError, match=r"after 20 rollbacks .* lower 'lr'"):
        train_teacher("pdm", rank=1, max_epochs=2, lr=1e38, **TINY)
    assert "halved the learning rate to 9.54e+31 (rollback 20 of at most 20)" in caplog.text
