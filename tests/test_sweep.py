"""Sweeps: results.csv per point, resume after a crash, bad sweep files, local vs Ray backends."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import yaml

from lrfit.cli import main
from lrfit.errors import LrfitError
from lrfit.runs.sweep import load_sweep, run_sweep
from lrfit.teachers import train_teacher

METRICS = ["r2_train", "r2_test", "r2_test_per_neuron_mean", "rank", "epochs"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A 32-unit rank-1 CDM teacher (a few epochs: only its activity matters here)."""
    out = tmp_path_factory.mktemp("sweep") / "teacher"
    train_teacher("cdm", n_units=32, rank=1, seed=0, out=out, max_epochs=3, n_val=64, n_test=64, progress=False)
    return out


def write_sweep(folder, teacher, grid, **extra):
    """A sweep file with an inline base config (tiny data, few epochs)."""
    spec = {
        "base": {"data": {"teacher": str(teacher), "trials": 48, "test_trials": 24},
                 "model": {"rank": 1}, "optim": {"max_epochs": 2, "batch_size": 16}},
        "grid": grid,
        **extra,
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def mtimes(out):
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "points").glob("*/metrics.json")}


def test_tiny_sweep_writes_one_row_per_point(tmp_path, teacher):
    path = write_sweep(tmp_path, teacher, {"model.rank": [1, 2], "seed": [0, 1]}, compare=True, compare_trials=64)
    out = tmp_path / "out"
    frame = run_sweep(path, out, workers=1, threads=1, progress=False)
    assert len(frame) == 4
    saved = pd.read_csv(out / "results.csv")
    assert list(saved["point"]) == ["rank-1_seed-0", "rank-1_seed-1", "rank-2_seed-0", "rank-2_seed-1"]
    assert list(saved["model.rank"]) == [1, 1, 2, 2] and list(saved["seed"]) == [0, 1, 0, 1]
    for key in METRICS + ["seconds", "accuracy_student", "accuracy_teacher", "r2_activity"]:
        assert saved[key].notna().all(), key
    assert (saved["r2_test"] > 0.9).all()
    assert (out / "summary.png").stat().st_size > 0
    assert (out / "points" / "rank-2_seed-1" / "compare.json").is_file()


def test_rerun_finishes_only_the_missing_points(tmp_path, teacher, caplog):
    out = tmp_path / "out"
    # A crash after two points: here, a sweep over part of the grid, then the full grid.
    run_sweep(write_sweep(tmp_path, teacher, {"seed": [0, 1]}), out, workers=1, threads=1, progress=False)
    before = mtimes(out)
    assert set(before) == {"seed-0", "seed-1"}
    with caplog.at_level("INFO", logger="lrfit.runs.sweep"):
        frame = run_sweep(
            write_sweep(tmp_path, teacher, {"seed": [0, 1, 2]}), out, workers=1, threads=1, progress=False
        )
    after = mtimes(out)
    assert {k: after[k] for k in before} == before  # finished points were not touched
    assert set(after) == {"seed-0", "seed-1", "seed-2"} and len(frame) == 3
    assert "2 of 3 points already finished" in caplog.text


def test_a_failing_point_keeps_the_others_and_rerun_skips_them(tmp_path, teacher):
    out = tmp_path / "out"
    with pytest.raises(LrfitError, match=r"1 of 2 sweep points failed \(first: rank-40: .*larger than"):
        run_sweep(write_sweep(tmp_path, teacher, {"model.rank": [1, 40]}), out, workers=1, threads=1, progress=False)
    assert list(pd.read_csv(out / "results.csv")["point"]) == ["rank-1"]
    before = mtimes(out)
    frame = run_sweep(write_sweep(tmp_path, teacher, {"model.rank": [1, 2]}), out, workers=1, threads=1, progress=False)
    assert mtimes(out)["rank-1"] == before["rank-1"] and list(frame["point"]) == ["rank-1", "rank-2"]


@pytest.mark.parametrize(
    "grid, extra, match",
    [
        ({"model.rnak": [1, 2]}, {}, r"Unknown grid key 'model.rnak'.*did you mean 'model.rank'"),
        ({"data.nuerons": [10]}, {}, r"Unknown grid key 'data.nuerons'.*did you mean 'data.neurons'"),
        ({}, {}, "grid of .* is empty"),
        ({"seed": []}, {}, "non-empty list"),
        ({"seed": [0]}, {"comapre": True}, "Unknown sweep key 'comapre'.*did you mean 'compare'"),
    ],
)
def test_bad_sweep_files_are_one_sentence(tmp_path, teacher, grid, extra, match):
    with pytest.raises(LrfitError, match=match):
        load_sweep(write_sweep(tmp_path, teacher, grid, **extra))


def test_bad_base_and_missing_ray_are_one_sentence(tmp_path, teacher, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"base": "missing.yaml", "grid": {"seed": [0]}}))
    with pytest.raises(LrfitError, match="base config 'missing.yaml'.*does not exist"):
        load_sweep(path)
    (tmp_path / "broken.yaml").write_text("data: [1,\n")
    path.write_text(yaml.safe_dump({"base": "broken.yaml", "grid": {"seed": [0]}}))
    with pytest.raises(LrfitError, match=r"base config '.*broken.yaml' is not valid YAML at line 2"):
        load_sweep(path)
    sweep = write_sweep(tmp_path, teacher, {"seed": [0]})
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(LrfitError, match=r"needs the 'ray' package.*pip install 'lrfit\[ray\]'"):
        run_sweep(sweep, tmp_path / "out", backend="ray", progress=False)


def test_cli_sweep_and_errors(tmp_path, teacher, capsys):
    path = write_sweep(tmp_path, teacher, {"seed": [0, 1]})
    assert (
        main(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1", "--threads", "1", "--no-progress"])
        == 0
    )
    assert "2 of 2 points finished" in capsys.readouterr().out
    bad = write_sweep(tmp_path, teacher, {"model.rnak": [1]})
    assert main(["sweep", str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert "did you mean 'model.rank'" in capsys.readouterr().err


def test_base_config_file_relative_to_the_sweep(tmp_path, teacher):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "fit.yaml").write_text(yaml.safe_dump({
        "data": {"teacher": str(teacher), "trials": 32, "test_trials": 16}, "optim": {"max_epochs": 1}}))
    (tmp_path / "configs" / "sweep.yaml").write_text(yaml.safe_dump(
        {"base": "fit.yaml", "grid": {"data.neurons": [8, 16], "seed+data.seed": [3]}}))
    sweep = load_sweep(tmp_path / "configs" / "sweep.yaml")
    assert [p.name for p in sweep.points] == ["neurons-8_seed-3", "neurons-16_seed-3"]
    assert sweep.points[0].overrides == {"data.neurons": 8, "seed": 3, "data.seed": 3}
    frame = run_sweep(sweep, tmp_path / "out", workers=1, threads=1, progress=False)
    assert list(frame["n_neurons"]) == [8, 16]


@pytest.mark.slow
def test_local_and_ray_backends_give_identical_metrics(tmp_path, teacher):
    pytest.importorskip("ray")
    path = write_sweep(tmp_path, teacher, {"model.rank": [1, 2, 3], "seed": [0, 1, 2, 3]})
    local = run_sweep(path, tmp_path / "local", backend="local", workers=2, progress=False)
    ray_frame = run_sweep(path, tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert len(local) == len(ray_frame) == 12
    pd.testing.assert_frame_equal(local[["point", *METRICS]], ray_frame[["point", *METRICS]], check_exact=True)


def test_shipped_subsampling_sweep_is_valid():
    from pathlib import Path

    sweep = load_sweep(Path(__file__).resolve().parents[1] / "configs" / "sweep_subsampling.yaml")
    assert sweep.compare and sweep.keys[0] == "data.neurons"
    assert {p.values["data.neurons"] for p in sweep.points} == {10, 30, 100, 300, 1000}
