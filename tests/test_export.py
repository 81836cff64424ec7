"""``lrfit compare``'s dynamics metrics and ``lrfit export --format ayna`` on a tiny teacher and student."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from lrfit.cli import main
from lrfit.errors import LrfitError

#: ayna's bundle keys (ayna 0.2, ``ayna.bundle.ARRAY_KEYS``) and what lrfit writes of them.
AYNA_KEYS = {"spikes", "rates", "latents", "heldout", "val", "trial_lens", "inputs", "true_latents", "true_rates",
             "true_inputs"}


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> tuple[Path, Path]:
    """A 32-unit rank-1 CDM teacher and a rank-1 student fitted to its rates (a few epochs each)."""
    root = tmp_path_factory.mktemp("export")
    teacher = root / "teacher"
    assert main(["teacher", "--task", "cdm", "--units", "32", "--rank", "1", "--epochs", "3", "--seed", "0",
                 "--out", str(teacher), "--no-progress"]) == 0
    config = root / "student.yaml"
    config.write_text(yaml.safe_dump({"data": {"teacher": str(teacher), "trials": 64, "test_trials": 32},
                                      "model": {"rank": 1}, "optim": {"max_epochs": 3, "batch_size": 16}}))
    out = root / "student"
    assert main(["fit", str(config), "--out", str(out), "--no-progress"]) == 0
    return out, teacher


def test_compare_reports_the_dynamics_metrics_and_a_failure_mode_line(student, capsys):
    out, teacher = student
    assert main(["compare", str(out), str(teacher), "--trials", "60"]) == 0
    printed = capsys.readouterr().out
    assert "State R^2" in printed and "failure mode:" in printed
    result = json.loads((out / "compare.json").read_text())
    for key in ("rate_r2", "state_r2", "cycle_consistency", "state_r2_recurrent", "cycle_consistency_recurrent",
                "fixed_points", "failure_modes", "dynamics_verdict", "input_r2", "input_r2_note", "state"):
        assert key in result
    assert result["input_r2"] is None and "supplied" in result["input_r2_note"]
    assert result["state_r2"] > 0.9 and result["cycle_consistency"] > 0.9
    assert result["dims_teacher"] == {"recurrent": 1, "inputs": 4} and result["n_test_trials"] == 12
    fp = result["fixed_points"]
    assert {"counts_teacher", "counts_student", "pairs", "stable_matched", "agrees", "summary"} <= set(fp)
    assert isinstance(result["failure_modes"], list)
    # the report shows the comparison (its section alone: the whole page would compute every analysis)
    from lrfit.runs.report import _against_teacher, _Page
    from lrfit.runs.run import Run

    page = _Page()
    _against_teacher(page, Run(out))
    text = "".join(page.parts)
    assert "Against the teacher: are the dynamics real?" in text and "cycle consistency" in text
    assert "State R²" in text and ("Failure mode" in text or "no failure mode" in text)


def test_export_writes_an_ayna_bundle_with_lrfits_numbers(student, capsys):
    out, teacher = student
    assert main(["compare", str(out), str(teacher), "--trials", "60"]) == 0
    capsys.readouterr()
    assert main(["export", str(out), "--format", "ayna", "--trials", "60"]) == 0
    assert "ayna scan" in capsys.readouterr().out
    path = out / "ayna_bundle.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    assert set(arrays) <= AYNA_KEYS and {"spikes", "rates", "latents", "val", "true_latents", "true_rates"} <= set(
        arrays
    )
    r, t, n = arrays["spikes"].shape
    assert (r, n) == (60, 32) and arrays["rates"].shape == (r, t, n) and arrays["latents"].shape == (r, t, 1 + 4)
    assert arrays["true_latents"].shape == (r, t, 1 + 4) and arrays["inputs"].shape == (r, t, 4)
    assert arrays["spikes"].min() >= 0 and arrays["rates"].min() >= 0 and arrays["val"].sum() == 12
    assert meta["inputs_kind"] == "supplied" and meta["bin_ms"] == pytest.approx(20.0)
    # the same trials and split as lrfit compare: the same State R² and cycle consistency
    compared = json.loads((out / "compare.json").read_text())
    assert meta["lrfit"]["state_r2"] == pytest.approx(compared["state_r2"], abs=1e-9)
    assert meta["lrfit"]["cycle_consistency"] == pytest.approx(compared["cycle_consistency"], abs=1e-9)
    # an explicit --out is never replaced without --overwrite
    other = out.parent / "bundle.npz"
    assert main(["export", str(out), "--out", str(other), "--trials", "20"]) == 0
    assert main(["export", str(out), "--out", str(other), "--trials", "20"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_exported_spikes_are_those_lrfit_simulate_records(student, tmp_path):
    """Same trials seed, spike seed and noise-free teacher: the bundle's spikes are `lrfit simulate`'s spikes."""
    import data_adapters

    out, teacher = student
    assert main(["simulate", str(teacher), "--trials", "12", "--seed", "7", "--noise-std", "0", "--record", "spikes",
                 "--out", str(tmp_path / "sim.h5")]) == 0
    assert main(["export", str(out), "--out", str(tmp_path / "b.npz"), "--trials", "12", "--seed", "7",
                 "--spike-seed", "7"]) == 0
    simulated = np.asarray(data_adapters.load(tmp_path / "sim.h5").activity)
    np.testing.assert_array_equal(np.load(tmp_path / "b.npz")["spikes"], simulated.astype(np.int64))


def test_export_refuses_runs_without_counts_in_one_sentence(student, tmp_path, capsys):
    from lrfit import LowRankFit
    from lrfit.runs.export import ayna_bundle
    from lrfit.teachers import simulate_teacher

    _, teacher = student
    assert main(["export", str(teacher)]) == 2
    assert "holds no fitted network" in capsys.readouterr().err
    fit = LowRankFit(rank=1, max_epochs=1, progress=False).fit(simulate_teacher(teacher, 16, seed=3))
    alone = fit.save(tmp_path / "alone")  # no config, no teacher recorded: rates of an unknown recording
    with pytest.raises(LrfitError, match="without a known teacher"):
        ayna_bundle(alone)
    with pytest.raises(SystemExit):  # argparse: not a format
        main(["export", str(alone), "--format", "nwb"])
    with pytest.raises(LrfitError, match="export format"):
        __import__("lrfit.runs.export", fromlist=["export_run"]).export_run(alone, "nwb")


def test_a_counts_fit_exports_its_own_trials(student, tmp_path):
    """A fit of spike counts (model.target: counts): recorded counts, predicted counts, test trials as val, and the
    teacher's true state and expected counts behind the spikes."""
    from lrfit.fitting.estimator import LowRankFit
    from lrfit.fitting.metrics import r2_score
    from lrfit.runs.export import ayna_bundle
    from lrfit.runs.run import Run

    _, teacher = student
    config = tmp_path / "spikes.yaml"
    config.write_text(yaml.safe_dump({"data": {"teacher": str(teacher), "trials": 64, "test_trials": 32,
                                               "record": "spikes", "max_rate_hz": [20, 50], "noise_std": 0.0},
                                      "model": {"rank": 1, "target": "counts"},
                                      "optim": {"max_epochs": 5, "batch_size": 16}}))
    out = tmp_path / "counts"
    assert main(["fit", str(config), "--out", str(out), "--no-progress"]) == 0
    run = Run.open(out)
    data = run.data
    bundle = ayna_bundle(run)
    k_train, k_test = data.train.n_trials, data.test.n_trials
    assert bundle["spikes"].shape[0] == k_train + k_test
    np.testing.assert_array_equal(bundle["spikes"][:k_train], data.train.activity)
    assert bundle["val"].sum() == k_test and not bundle["val"][:k_train].any()
    fit = LowRankFit.load(out)
    np.testing.assert_allclose(bundle["rates"][k_train:], fit.predict(data.test).activity, rtol=1e-6)
    assert bundle["latents"].shape[-1] == 1 + 4 and "true_latents" in bundle  # the teacher behind the data is known
    # noise-free recording: the true expected counts are what the spikes were drawn from, and the fit is near them
    assert bundle["true_rates"].shape == bundle["rates"].shape and bundle["true_rates"].min() >= 0
    assert r2_score(bundle["true_rates"], bundle["rates"]) > 0.5
    assert abs(bundle["spikes"].mean() - bundle["true_rates"].mean()) < 0.05 * bundle["true_rates"].mean()
    assert "state_r2" in bundle["meta"]["lrfit"]
    # compare judges a counts student where it is observed: Rate R² and fixed points as expected counts per bin
    assert main(["compare", str(out), str(teacher), "--trials", "60"]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert "expected counts" in result["rate_r2_of"] and result["rate_r2"] > 0.5
    peak_count = 50 * float(data.train.dt)  # the fastest neuron's count per bin at its peak rate
    assert 0 < result["fixed_points"]["scale"] < peak_count


@pytest.mark.slow
def test_ayna_reads_the_bundle_and_agrees_with_lrfits_state_r2(student, tmp_path):
    """ayna (an optional extra: pip install -e ".[ayna]") computes the same State R², recovery (lrfit's cycle
    consistency) and Rate R² on the exported bundle as lrfit does."""
    ayna = pytest.importorskip(
        "ayna",
        reason="ayna is not installed (pip install -e '.[ayna]'); the bundle's agreement "
        "with ayna's State R² cannot be checked",
    )
    out, _ = student
    path = tmp_path / "bundle.npz"
    assert main(["export", str(out), "--out", str(path), "--trials", "100"]) == 0
    meta = json.loads(str(np.load(path)["meta"]))
    report = ayna.scan(ayna.load_bundle(path))
    assert report.metrics["state_r2"] == pytest.approx(meta["lrfit"]["state_r2"], abs=1e-6)
    assert report.metrics["recovery_r2"] == pytest.approx(meta["lrfit"]["cycle_consistency"], abs=1e-6)
    assert report.metrics["rate_r2"] == pytest.approx(meta["lrfit"]["rate_r2_val"], abs=1e-5)
