"""Bad inputs and faults, each run through the ``lrfit`` command line (shared by tests/test_bad_inputs.py and
benchmarks/bad_inputs.py): one sentence on stderr, exit code 2, and no file that was there before changes.

A case is ``(name, prepare)``: ``prepare(tmp)`` writes what the case needs under *tmp* (a tiny recording
``data.h5`` and a valid ``fit.yaml`` are already there) and returns the command line and a fragment the
one-line message must contain.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

Case = tuple[str, Callable[[Path], tuple[list[str], str]]]


def make_recording(tmp: Path) -> None:
    """A tiny recording (rates in tanh's range, two input channels) and a valid fit config beside it."""
    from data_adapters import TrialData, write_hdf5

    rng = np.random.default_rng(0)
    act = np.tanh(rng.normal(0, 0.3, (12, 10, 6))).astype(np.float32)
    cond = {"stim": np.repeat([0, 1, 2], 4)}
    import pandas as pd

    write_hdf5(TrialData(activity=act, inputs=rng.normal(size=(12, 10, 2)).astype(np.float32), dt=0.02,
                         conditions=pd.DataFrame(cond)), tmp / "data.h5")
    config = {"data": {"path": str(tmp / "data.h5")}, "model": {"rank": 1},
              "optim": {"max_epochs": 2, "batch_size": 8}}
    (tmp / "fit.yaml").write_text(yaml.safe_dump(config))


def _fit(*overrides: str, fragment: str) -> Callable[[Path], tuple[list[str], str]]:
    def prepare(tmp: Path) -> tuple[list[str], str]:
        argv = ["fit", str(tmp / "fit.yaml"), "--out", str(tmp / "run"), "--no-progress"]
        for item in overrides:
            argv += ["--set", item]
        return argv, fragment
    return prepare


def _config_text(text: str, fragment: str) -> Callable[[Path], tuple[list[str], str]]:
    def prepare(tmp: Path) -> tuple[list[str], str]:
        (tmp / "bad.yaml").write_text(text.replace("DATA", str(tmp / "data.h5")))
        return ["fit", str(tmp / "bad.yaml"), "--out", str(tmp / "run"), "--no-progress"], fragment
    return prepare


def _finished_run(tmp: Path) -> Path:
    from lrfit.cli import main

    out = tmp / "done"
    assert main(["fit", str(tmp / "fit.yaml"), "--out", str(out), "--no-progress"]) == 0
    return out


def _overwrite_with_bad_config(tmp: Path) -> tuple[list[str], str]:
    out = _finished_run(tmp)
    return ["fit", str(tmp / "fit.yaml"), "--out", str(out), "--overwrite", "--set", "model.rank=500"], "model.rank=500"


def _overwrite_user_folder(tmp: Path) -> tuple[list[str], str]:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "recording.nwb").write_text("precious")
    return [
        "fit",
        str(tmp / "fit.yaml"),
        "--out",
        str(tmp / "mine"),
        "--overwrite",
        "--no-progress",
    ], "not an lrfit run"


def _resume_finished_with_more_epochs(tmp: Path) -> tuple[list[str], str]:
    out = _finished_run(tmp)
    return ["fit", str(tmp / "fit.yaml"), "--out", str(out), "--resume", "--set", "optim.max_epochs=9"], "finished fit"


def _broken_run(
    edit: Callable[[Path], None], fragment: str, command: str = "analyze"
) -> Callable[[Path], tuple[list[str], str]]:
    """A finished run with one file broken by *edit*, then ``lrfit COMMAND RUN``."""
    def prepare(tmp: Path) -> tuple[list[str], str]:
        out = _finished_run(tmp)
        edit(out)
        return [command, str(out)], fragment
    return prepare


def _edit_weights(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """An edit of a run's ``model.pt`` state dict."""
    def edit(out: Path) -> None:
        import torch

        state = torch.load(out / "model.pt", weights_only=True)
        change(state)
        torch.save(state, out / "model.pt")
    return edit


def _unknown_model_json_key(out: Path) -> None:
    meta = json.loads((out / "model.json").read_text())
    meta["config"]["colour"] = "red"
    (out / "model.json").write_text(json.dumps(meta))


def _nan_in_m(state: dict) -> None:
    state["m"][0, 0] = float("nan")


def _m_of_wrong_shape(state: dict) -> None:
    import torch

    state["m"] = torch.zeros(3, 1)


def _corrupt_checkpoint_on_resume(tmp: Path) -> tuple[list[str], str]:
    out = tmp / "run"
    (out / "checkpoint").mkdir(parents=True)
    import yaml as _yaml

    from lrfit.runs.config import load_config
    from lrfit.runs.fit import _save_config
    from lrfit.runs.layout import RunDir

    _save_config(load_config(tmp / "fit.yaml"), RunDir(out), resume=False)
    (out / "checkpoint" / "checkpoint.pt").write_bytes(b"garbage")
    (out / "checkpoint" / "checkpoint.json").write_text(_yaml.safe_dump({"epoch": 1}))
    return ["fit", str(tmp / "fit.yaml"), "--out", str(out), "--resume", "--no-progress"], "checkpoint"


def _decreasing_time(tmp: Path) -> tuple[list[str], str]:
    np.savez(tmp / "rev.npz", rates=np.zeros((3, 5, 2)), t=np.arange(5)[::-1] * 0.01)
    (tmp / "rev.yaml").write_text(yaml.safe_dump({"data": {"path": str(tmp / "rev.npz"), "activity_key": "rates",
                                                          "time_key": "t"}}))
    return ["fit", str(tmp / "rev.yaml"), "--out", str(tmp / "run"), "--no-progress"], "decreasing"


def _time_in_ms_without_units(tmp: Path) -> tuple[list[str], str]:
    np.savez(tmp / "ms.npz", rates=np.zeros((3, 5, 2)), t=np.arange(5) * 50.0)
    (tmp / "ms.yaml").write_text(yaml.safe_dump({"data": {"path": str(tmp / "ms.npz"), "activity_key": "rates",
                                                         "time_key": "t"}}))
    return ["fit", str(tmp / "ms.yaml"), "--out", str(tmp / "run"), "--no-progress"], "time_units"


def _axes_contradict_time(tmp: Path) -> tuple[list[str], str]:
    np.savez(tmp / "perm.npz", rates=np.zeros((4, 6, 4)), t=np.arange(4) * 0.01)  # time has 4 bins, axis 1 has 6
    (tmp / "perm.yaml").write_text(yaml.safe_dump({"data": {"path": str(tmp / "perm.npz"), "activity_key": "rates",
                                                           "axis_order": "trial,time,neuron", "time_key": "t"}}))
    return ["fit", str(tmp / "perm.yaml"), "--out", str(tmp / "run"), "--no-progress"], "t"


def _dt_fast(tmp: Path) -> tuple[list[str], str]:
    np.savez(tmp / "nodt.npz", rates=np.zeros((3, 5, 2)))
    (tmp / "dt.yaml").write_text(yaml.safe_dump({"data": {"path": str(tmp / "nodt.npz"), "activity_key": "rates",
                                                         "dt": "fast"}}))
    return ["fit", str(tmp / "dt.yaml"), "--out", str(tmp / "run"), "--no-progress"], "dt"


def _nan_counts(tmp: Path) -> tuple[list[str], str]:
    counts = np.random.default_rng(0).poisson(1.0, (4, 6, 3)).astype(np.float32)
    counts[1, 2, 0] = np.nan
    np.savez(tmp / "nan_counts.npz", counts=counts)
    (tmp / "nan.yaml").write_text(
        yaml.safe_dump(
            {
                "data": {"path": str(tmp / "nan_counts.npz"), "activity_key": "counts", "dt": 0.02},
                "model": {"target": "counts"},
            }
        )
    )
    return ["fit", str(tmp / "nan.yaml"), "--out", str(tmp / "run"), "--no-progress"], "NaN"


CASES: list[Case] = [
    ("rank 1.7", _fit("model.rank=1.7", fragment="model.rank must be a positive integer")),
    ("rank two", _fit("model.rank=two", fragment="model.rank must be a positive integer")),
    ("rank [1, x]", _fit("model.rank=[1, x]", fragment="model.rank must be a positive integer")),
    ("rank 500", _fit("model.rank=500", fragment="model.rank=500")),
    ("max_epochs -5", _fit("optim.max_epochs=-5", fragment="max_epochs")),
    ("lr fast", _fit("optim.lr=fast", fragment="optim.lr")),
    ("lr -0.01", _fit("optim.lr=-0.01", fragment="optim.lr")),
    ("lr nan", _fit("optim.lr=.nan", fragment="optim.lr")),
    ("batch_size 0", _fit("optim.batch_size=0", fragment="batch_size")),
    ("tau fast", _fit("model.tau=fast", fragment="model.tau")),
    ("device cuda on a CPU build", _fit("device=cuda", fragment="device")),
    ("device tpu", _fit("device=tpu", fragment="device")),
    ("optim.learning_rate", _fit("optim.learning_rate=0.1", fragment="did you mean 'lr'")),
    ("test_fraction 1.5", _fit("preprocess.split.test_fraction=1.5", fragment="preprocess.split.test_fraction")),
    ("folds 1", _fit("preprocess.split.folds=1", fragment="folds")),
    ("lead_in -1", _fit("preprocess.lead_in=-1", fragment="lead_in")),
    ("model as a list", _config_text("data: {path: DATA}\nmodel: [1, 2]\n", fragment="'model'")),
    ("data as a list", _config_text("data: [DATA]\n", fragment="'data'")),
    ("missing data file", _config_text("data: {path: /nonexistent/rec.h5}\n", fragment="rec.h5")),
    ("--overwrite with an invalid config", _overwrite_with_bad_config),
    ("--overwrite of a folder lrfit did not write", _overwrite_user_folder),
    ("--resume of a finished run with more epochs", _resume_finished_with_more_epochs),
    (
        "corrupt config.yaml in a run",
        _broken_run(
            lambda out: (out / "config.yaml").write_text("model: [rank: 1\n  bad: {"), "config.yaml", command="report"
        ),
    ),
    ("model.json with an unknown key", _broken_run(_unknown_model_json_key, "model.json")),
    (
        "model.pt that is not a torch file",
        _broken_run(lambda out: (out / "model.pt").write_bytes(b"not a torch file"), "model.pt"),
    ),
    ("model.pt with NaN weights", _broken_run(_edit_weights(_nan_in_m), "non-finite")),
    ("model.pt with a wrong shape", _broken_run(_edit_weights(_m_of_wrong_shape), "shape")),
    ("missing fit_state.pt", _broken_run(lambda out: (out / "fit_state.pt").unlink(), "fit_state.pt")),
    ("corrupt fit_state.pt", _broken_run(lambda out: (out / "fit_state.pt").write_bytes(b"garbage"), "fit_state.pt")),
    (
        "export of a rates fit without a teacher",
        _broken_run(lambda out: None, "without a known teacher", command="export"),
    ),
    ("corrupt checkpoint on --resume", _corrupt_checkpoint_on_resume),
    ("decreasing time axis", _decreasing_time),
    ("time in ms without time_units", _time_in_ms_without_units),
    ("time array contradicting the time axis", _axes_contradict_time),
    ("dt: fast", _dt_fast),
    ("rank 0 list", _fit("model.rank=[]", fragment="empty list")),
    ("batch_size two", _fit("optim.batch_size=two", fragment="optim.batch_size")),
    ("unknown target", _fit("model.target=spikes", fragment="spikes")),
    ("hidden_units -1", _fit("model.hidden_units=-1", fragment="hidden_units")),
    ("negative counts", _fit("model.target=counts", fragment="negative values")),
    (
        "counts with a normalisation",
        _fit("model.target=counts", "preprocess.normalise=zscore", fragment="preprocess.normalise would change them"),
    ),
    ("counts_from unknown", _fit("model.target=counts", "model.counts_from=spikes", fragment="counts_from")),
    ("NaN counts", _nan_counts),
]


def snapshot(tmp: Path) -> dict[str, bytes]:
    """Every file under *tmp* and its bytes (to check that nothing that was there changed)."""
    return {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(tmp.rglob("*")) if p.is_file()}
