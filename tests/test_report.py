"""lrfit analyze / inactivate / report on tiny runs: files, keys, content, errors, rendering."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lrfit.analysis import gaussian_lowrank_rnn
from lrfit.cli import main
from lrfit.errors import LrfitError
from lrfit.models import FullRankRNN, save_model
from lrfit.runs.analyze import LATENT_KEYS, analyze_run
from lrfit.runs.config import load_config
from lrfit.runs.fit import run_fit
from lrfit.runs.inactivate import inactivate_run
from lrfit.runs.report import build_report
from lrfit.tasks import get_task
from lrfit.teachers import train_teacher

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "teacher_student.yaml"


def _task():
    return get_task("cdm", context_only_ms=100, stimulus_ms=300)


@pytest.fixture(scope="module")
def gaussian_run(tmp_path_factory) -> Path:
    """A rank-1 Gaussian network with overlap n.m/N = 2 saved as a task-trained run (3 fixed points without input)."""
    task = _task()
    net = gaussian_lowrank_rnn(300, 2.0, seed=1, n_inputs=task.n_inputs, n_outputs=1, tau=0.1, dt=task.dt)
    out = tmp_path_factory.mktemp("gauss")
    save_model(net, out, extra={"role": "teacher", "task": task.to_dict()})
    return out


@pytest.fixture(scope="module")
def student_run(tmp_path_factory) -> tuple[Path, Path]:
    """A 64-unit rank-1 CDM teacher (a few epochs) and a rank-1 student fitted to it by lrfit fit."""
    base = tmp_path_factory.mktemp("ts")
    teacher = base / "teacher"
    train_teacher(
        _task(),
        n_units=64,
        rank=1,
        seed=0,
        out=teacher,
        max_epochs=4,
        batches_per_epoch=2,
        n_val=64,
        n_test=64,
        progress=False,
    )
    config = load_config(
        CONFIG, [f"data.teacher={teacher}", "data.trials=40", "data.test_trials=20", "optim.max_epochs=3"]
    )
    student = base / "student"
    run_fit(config, student, progress=False)
    return teacher, student


def test_analyze_gaussian_rank1_writes_documented_files(gaussian_run):
    files = analyze_run(gaussian_run, n_trials=16, inputs=None, resample=False)
    adir = gaussian_run / "analysis"
    for name in ("fixed_points.json", "populations.json", "overlaps.json", "latents.npz", "loadings.csv"):
        assert (adir / name).is_file()
    fps = json.loads((adir / "fixed_points.json").read_text())
    assert list(fps["inputs"])[:2] == ["no_input", "motion"]  # no input, then each channel alone
    none = fps["inputs"]["no_input"]
    assert none["stability_counts"] == {"stable": 2, "saddle": 0, "source": 1, "marginal": 0}
    kappas = sorted(p["kappa"][0] for p in none["fixed_points"])
    assert kappas[1] == pytest.approx(0.0, abs=1e-6) and kappas[0] == pytest.approx(-kappas[2], rel=1e-4)
    origin = next(p for p in none["fixed_points"] if abs(p["kappa"][0]) < 1e-6)
    assert origin["stability"] == "source" and origin["eigenvalues_real"][0] == pytest.approx(
        1.0, abs=0.02
    )  # -1 + sigma <phi'(0)>
    ov = json.loads((adir / "overlaps.json").read_text())
    assert ov["overlaps"][0][0] == pytest.approx(2.0, rel=1e-4)
    pops = json.loads((adir / "populations.json").read_text())
    for key in ("n_populations", "labels", "neuron_ids", "bic", "ari", "candidates", "labels_by_neuron"):
        assert key in pops
    assert len(pops["labels"]) == len(pops["neuron_ids"]) == 300
    # a task and a readout: the number is chosen by the resampled networks' accuracy (one Gaussian suffices here)
    assert pops["rule"] == "task" and pops["n_populations"] == 1 and list(pops["task_accuracy"]) == ["1"]
    files = analyze_run(gaussian_run, n_trials=16, inputs=None, resample=False, population_rule="bic")
    pops = json.loads(files["populations"].read_text())
    assert pops["rule"] == "bic" and pops["task_accuracy"] is None
    lat = np.load(files["latents"], allow_pickle=False)
    for key in set(LATENT_KEYS) - {"condition_columns"}:
        assert key in lat.files, key
    assert lat["kappa"].shape[0] == 16 and lat["kappa"].shape[2] == 1 and lat["time"].shape == (lat["kappa"].shape[1],)
    assert "context" in list(lat["condition_columns"]) and lat["cond_context"].shape == (16,)
    assert 0.99 <= float(lat["var_total_explained"]) <= 1.0 + 1e-6  # a noiseless network lives in span(m, W_in)



def test_population_rule_task_without_a_readout_is_one_sentence(tmp_path):
    """A task-trained network saved without a readout cannot have its populations chosen by the task."""
    task = _task()
    net = gaussian_lowrank_rnn(60, 2.0, seed=0, n_inputs=task.n_inputs, n_outputs=0, tau=0.1, dt=task.dt)
    save_model(net, tmp_path, extra={"role": "teacher", "task": task.to_dict()})
    with pytest.raises(
        LrfitError, match="population rule 'task' needs a task and a readout.*no readout.*--population-rule bic"
    ):
        analyze_run(tmp_path, n_trials=4, resample=False, population_rule="task")
    with pytest.raises(LrfitError, match="population rule"):
        analyze_run(tmp_path, n_trials=4, resample=False, population_rule="biggest")

def test_analyze_named_inputs(gaussian_run):
    analyze_run(
        gaussian_run, n_trials=16, inputs=["none", "ctx_motion=0.5", "mix=0,0,1,1", "context=color"], resample=False
    )
    fps = json.loads((gaussian_run / "analysis" / "fixed_points.json").read_text())
    assert list(fps["inputs"]) == ["no_input", "ctx_motion=0.5", "mix", "context=color"]
    assert fps["inputs"]["ctx_motion=0.5"]["input"]["ctx_motion"] == 0.5
    assert fps["inputs"]["context=color"]["input"]["ctx_color"] == pytest.approx(1.0)
    with pytest.raises(LrfitError, match="ctx_motoin"):
        analyze_run(gaussian_run, n_trials=8, inputs=["ctx_motoin"], resample=False)


def test_student_analyze_inactivate_report(student_run, tmp_path):
    teacher, student = student_run
    files = analyze_run(student)
    assert "resample" in files  # the teacher's task is known and its readout attached
    pops = json.loads((student / "analysis" / "populations.json").read_text())
    assert pops["readout"] == "teacher" and len(pops["neuron_ids"]) == 64
    assert str(pops["n_populations"]) in pops["task_accuracy"]  # "auto": chosen by resampled task accuracy
    lat = np.load(student / "analysis" / "latents.npz", allow_pickle=False)
    assert set(lat["cond_split"]) == {"train", "test"} and lat["kappa"].shape[0] == 60

    res = inactivate_run(student, groups="populations", n_trials=64)
    table = res["table"]
    assert {"accuracy", "delta_accuracy", "accuracy_teacher", "gap"} <= set(table.columns)
    assert res["agreement"] is not None and 0.0 <= res["agreement"].mean_abs_gap <= 1.0
    for name in ("inactivation.csv", "inactivation.json", "inactivation.png"):
        assert (student / "analysis" / name).is_file()

    ids = pops["neuron_ids"]
    gfile = tmp_path / "groups.json"
    gfile.write_text(json.dumps({"first": ids[:10], "second": {"neurons": ids[10:30], "fraction": 0.5}}))
    res = inactivate_run(student, groups=str(gfile), n_trials=32)
    silenced = res["table"].drop_duplicates("group").set_index("group")["n_silenced"]
    assert silenced["first"] == 10 and silenced["second"] == 10
    recorded = json.loads((student / "analysis" / "inactivation.json").read_text())
    assert recorded["groups"]["first"] == ids[:10]

    cfile = tmp_path / "groups.csv"
    cfile.write_text("group,neuron\n" + "".join(f"a,{i}\n" for i in ids[:5]) + "".join(f"b,{i}\n" for i in ids[5:8]))
    res = inactivate_run(student, groups=str(cfile), n_trials=32, fraction=1.0)
    assert res["table"].drop_duplicates("group").set_index("group")["n_silenced"].to_dict() == {
        "control": 0,
        "a": 5,
        "b": 3,
    }

    page = build_report(student, out=tmp_path / "r.html")
    text = page.read_text()
    assert text.count('src="data:image/png;base64,') >= 6
    for heading in ("Fit quality", "Latent trajectories", "Connectivity and populations", "Dynamics", "Inactivation"):
        assert heading in text
    assert "<script" not in text and "http://" not in text and "https://" not in text  # self-contained


def test_report_computes_missing_analyses(gaussian_run, tmp_path):
    shutil.rmtree(gaussian_run / "analysis", ignore_errors=True)
    page = build_report(gaussian_run, out=tmp_path / "g.html")
    assert (gaussian_run / "analysis" / "fixed_points.json").is_file()
    assert (gaussian_run / "analysis" / "inactivation.json").is_file()
    assert "Phase portrait" in page.read_text() or "phase portrait" in page.read_text()


def test_cli_errors_are_one_sentence(tmp_path, capsys, gaussian_run):
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "\n" not in err and "Traceback" not in err

    full = tmp_path / "full"
    save_model(
        FullRankRNN(32, n_inputs=4, n_outputs=1, seed=0), full, extra={"role": "teacher", "task": _task().to_dict()}
    )
    assert main(["analyze", str(full)]) == 2
    err = capsys.readouterr().err.strip()
    assert "low-rank" in err and "lrfit fit" in err and "\n" not in err

    bad = tmp_path / "groups.txt"
    bad.write_text("a: 1, 2\n")
    assert main(["inactivate", str(gaussian_run), "--groups", str(bad), "--trials", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Unknown group file format" in err and "\n" not in err

    unknown = tmp_path / "unknown_ids.json"
    unknown.write_text(json.dumps({"g": ["no_such_neuron"]}))
    assert main(["inactivate", str(gaussian_run), "--groups", str(unknown), "--trials", "8"]) == 2
    assert "no_such_neuron" in capsys.readouterr().err


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(gaussian_run, tmp_path):
    import matplotlib.image as mpimg

    page = build_report(gaussian_run, out=tmp_path / "page.html")
    shot = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={shot}",
           "--window-size=1200,2400", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), proc.stderr[-2000:]
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] >= 2000
    # Non-blank: many distinct colours (figures, text) and plenty of non-white pixels.
    non_white = float((img.mean(-1) < 0.95).mean())
    assert non_white > 0.05, non_white
    assert len(np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0)) > 50


def _python_fit_dir(tmp_path: Path) -> Path:
    """A rank-1 fit to a small recording, saved from Python with LowRankFit.save (no config.yaml)."""
    from data_adapters import TrialData
    from lrfit import LowRankFit

    rng = np.random.default_rng(0)
    inputs = np.zeros((24, 20, 2), np.float32)
    inputs[:, 4:10] = rng.uniform(-1, 1, size=(24, 1, 2)).astype(np.float32)
    drive = np.cumsum(inputs @ rng.normal(size=(2, 16)).astype(np.float32), axis=1) * 0.1
    data = TrialData(np.tanh(drive).astype(np.float32), inputs=inputs, input_names=("u0", "u1"), dt=0.02)
    fit = LowRankFit(rank=1, max_epochs=2, batch_size=8, progress=False, random_state=0).fit(data)
    return fit.save(tmp_path / "pyfit")


def test_fit_saved_from_python_can_be_analysed_and_reported(tmp_path, capsys, caplog):
    run = _python_fit_dir(tmp_path)
    assert not (run / "config.yaml").exists()
    with caplog.at_level("WARNING", logger="lrfit.runs.analyze"):
        assert main(["analyze", str(run), "--no-resample"]) == 0
    assert (
        "Latent trajectories" in caplog.text and "no config.yaml" in caplog.text
    )  # says which analysis is skipped and why
    for name in ("fixed_points.json", "populations.json", "overlaps.json", "loadings.csv"):
        assert (run / "analysis" / name).is_file(), name
    assert not (run / "analysis" / "latents.npz").exists()
    assert main(["report", str(run)]) == 0
    text = (run / "report.html").read_text()
    assert "Connectivity and populations" in text and "Dynamics" in text
    assert "Example neurons not shown" in text


def test_report_loads_the_run_once(student_run, tmp_path, monkeypatch):
    """lrfit report on a run without analyses: config, estimator and data splits are loaded once for all steps."""
    import lrfit.runs.config
    import lrfit.runs.data
    from lrfit.fitting.estimator import LowRankFit

    _, student = student_run
    run = tmp_path / "student"
    shutil.copytree(student, run, ignore=shutil.ignore_patterns("analysis", "report.html"))
    calls = {"prepare_data": 0, "load": 0, "load_config": 0}

    def counted(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(lrfit.runs.data, "prepare_data", counted("prepare_data", lrfit.runs.data.prepare_data))
    monkeypatch.setattr(lrfit.runs.config, "load_config", counted("load_config", lrfit.runs.config.load_config))
    real_load = LowRankFit.load.__func__
    monkeypatch.setattr(LowRankFit, "load", classmethod(counted("load", real_load)))
    assert main(["report", str(run)]) == 0
    assert (run / "analysis" / "latents.npz").is_file() and (run / "analysis" / "inactivation.json").is_file()
    assert calls == {"prepare_data": 1, "load": 1, "load_config": 1}
