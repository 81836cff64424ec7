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
