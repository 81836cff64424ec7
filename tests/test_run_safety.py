"""Run directories keep what is not theirs: symbolic links are replaced, never written through."""

from __future__ import annotations

import numpy as np

from data_adapters import TrialData
from lrfit import LowRankFit
from lrfit.cli import main


def test_writes_replace_symlinks_instead_of_following_them(tmp_path):
    rng = np.random.default_rng(0)
    data = TrialData(activity=np.tanh(rng.normal(0, 0.3, (8, 12, 10))), inputs=rng.normal(size=(8, 12, 1)), dt=0.02)
    run = tmp_path / "run"
    LowRankFit(rank=1, max_epochs=2, progress=False).fit(data).save(run)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    victim = tmp_path / "victim.html"
    victim.write_text("my page")
    (run / "analysis").symlink_to(elsewhere, target_is_directory=True)
    (run / "report.html").symlink_to(victim)
    assert main(["report", str(run)]) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]  # nothing written through the link
    assert victim.read_text() == "my page"
    assert (run / "analysis").is_dir() and not (run / "analysis").is_symlink()
    assert (run / "analysis" / "fixed_points.json").is_file()
    assert (run / "report.html").is_file() and not (run / "report.html").is_symlink()


def test_a_fit_that_ends_worse_than_its_start_returns_the_start_and_says_so(caplog):
    rng = np.random.default_rng(1)
    data = TrialData(activity=np.tanh(rng.normal(0, 0.4, (16, 15, 12))), inputs=rng.normal(size=(16, 15, 2)), dt=0.02)
    good = LowRankFit(rank=1, max_epochs=0, progress=False).fit(data)  # the closed-form start alone
    wild = LowRankFit(rank=1, max_epochs=5, lr=10.0, progress=False, observation="currents")
    wild.fit(data.replace(activity=np.asarray(data.activity) * 3))
    assert wild.ended_worse_than_start_
    assert "ended worse than its regression start" in caplog.text and "optim.lr" in caplog.text
    assert (
        wild.score(data.replace(activity=np.asarray(data.activity) * 3))
        >= LowRankFit(rank=1, max_epochs=0, progress=False, observation="currents")
        .fit(data.replace(activity=np.asarray(data.activity) * 3))
        .score(data.replace(activity=np.asarray(data.activity) * 3))
        - 1e-9
    )
    assert not good.ended_worse_than_start_


def test_a_run_being_written_is_locked(tmp_path):
    import pytest

    from lrfit.errors import LrfitError
    from lrfit.runs.layout import RunDir

    rng = np.random.default_rng(0)
    from data_adapters import write_hdf5
    from lrfit.runs.config import load_config
    from lrfit.runs.fit import run_fit

    write_hdf5(TrialData(activity=np.tanh(rng.normal(0, 0.3, (8, 10, 6))), dt=0.02), tmp_path / "d.h5")
    config = load_config(extra={"data": {"path": str(tmp_path / "d.h5")}, "optim": {"max_epochs": 1}})
    out = tmp_path / "run"
    run_fit(config, out, progress=False)
    with RunDir(out).lock():  # another process writing this run
        with pytest.raises(LrfitError, match="being written by another lrfit process"):
            run_fit(config, out, overwrite=True, progress=False)
    assert (out / "model.pt").is_file()  # the run being written is untouched
    run_fit(config, out, overwrite=True, progress=False)  # the lock is gone with its holder


def test_sweep_refuses_clashing_point_names_and_a_changed_spec(tmp_path):
    import pytest
    import yaml

    from lrfit.errors import LrfitError
    from lrfit.runs.sweep import expand_grid, run_sweep

    with pytest.raises(LrfitError, match="same name 'seed-1'"):
        expand_grid({"seed": [1, 1.0]})
    spec = {"base": {"data": {"path": str(tmp_path / "none.h5")}, "optim": {"max_epochs": 1}}, "grid": {"seed": [0]}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "sweep"
    (out / "points" / "seed-0").mkdir(parents=True)
    (out / "points" / "seed-0" / "metrics.json").write_text("{}")  # a finished point of the first spec
    from lrfit.runs.sweep import _write_spec, load_sweep

    _write_spec(load_sweep(tmp_path / "a.yaml"), out)
    spec["base"]["optim"]["lr"] = 0.1
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec))
    before = (out / "sweep.yaml").read_text()
    with pytest.raises(LrfitError, match="holds points of another sweep"):
        run_sweep(tmp_path / "b.yaml", out, workers=1, threads=1, progress=False)
    assert (out / "sweep.yaml").read_text() == before


def test_sweep_workers_ask_to_die_with_their_parent():
    import multiprocessing

    from lrfit.runs.sweep import die_with_parent

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, initializer=die_with_parent) as pool:  # the call itself must work in a worker
        assert pool.apply(abs, (-3,)) == 3


def _children(pid: int) -> list[int]:
    from pathlib import Path

    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@__import__("pytest").mark.slow
def test_kill_9_of_a_sweep_ends_its_workers(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import pytest
    import yaml

    from data_adapters import write_hdf5

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    rng = np.random.default_rng(0)
    write_hdf5(TrialData(activity=np.tanh(rng.normal(0, 0.3, (40, 30, 30))), dt=0.02), tmp_path / "d.h5")
    spec = {"base": {"data": {"path": str(tmp_path / "d.h5")}, "optim": {"max_epochs": 100000, "patience": 0}},
            "grid": {"seed": [0, 1]}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    proc = subprocess.Popen([sys.executable, "-m", "lrfit", "-q", "sweep", str(tmp_path / "s.yaml"), "--out",
                             str(tmp_path / "out"), "--workers", "1", "--threads", "1", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and not (tmp_path / "out" / "points" / "seed-0" / "config.yaml").exists():
        time.sleep(0.5)
    workers = [p for p in _children(proc.pid) if "multiprocessing" in open(f"/proc/{p}/cmdline").read()
               and "resource_tracker" not in open(f"/proc/{p}/cmdline").read()]
    assert workers, "no sweep worker started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [
            p for p in alive if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]
        ]
    assert not alive, f"workers {alive} outlived the killed sweep"
