"""The ``lrfit fit`` pipeline: config -> data -> preprocessing -> fit(s) -> run directory.

:func:`run_fit` writes a fit run, or a rank-list run for a list of ranks (layouts in
:mod:`lrfit.runs.layout`); the data come from :func:`lrfit.runs.data.prepare_data`.
``resume=True`` skips ranks already finished and continues an interrupted fit from
its checkpoint.
"""

from __future__ import annotations

import copy
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError
from ..fitting.baselines import compute_baselines, compute_count_baselines, noise_ceiling
from ..fitting.estimator import LowRankFit
from ..fitting.heldout import heldout_neuron_bits_per_spike, heldout_neuron_r2
from ..fitting.rank_selection import RankSelection, choose_rank
from .config_params import check_fit_config, params_from_config
from .data import PreparedData, prepare_data, prepare_folds
from .layout import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    FIT_FILES,
    HISTORY_FILE,
    LOCK_FILE,
    META_FILE,
    METRICS_FILE,
    RANK_SELECTION_FILE,
    SPLIT_FILE,
    RunDir,
)
from .metrics import baseline_verdict, fit_summary, fold_summary, score_key, score_label
from .run import Run

log = logging.getLogger(__name__)

__all__ = ["PreparedData", "fit_metrics", "load_run", "make_fit", "prepare_data", "resolved_copy", "run_fit"]


# -- fitting ------------------------------------------------------------------------------
#: How the activity of neurons withheld from the fit (``preprocess.heldout_neurons``) is predicted.
HELDOUT_PREDICTION = (
    "each held-out neuron's current (atanh of its rate for rate targets) is regressed (ridge) on the fitted "
    "network's latent coordinates and inputs [kappa, v, 1] on the training trials, and predicted from them on the "
    "test trials: the fit never sees these neurons, so heldout_r2 measures how well its latents explain new neurons"
)
#: The same for a counts fit (co-smoothing).
HELDOUT_COUNTS_PREDICTION = (
    "each held-out neuron is read out of the fitted network's latent coordinates and inputs [kappa, v] as one more "
    "unit would be (its current affine in them, its expected count through the fit's Poisson readout), fitted on the "
    "training trials by the Poisson likelihood (co-smoothing); co_bps is their held-out bits per spike, co_bps_pca "
    "that of a Poisson GLM on the top principal components of the held-in neurons' smoothed counts"
)


def make_fit(
    config: dict[str, Any], rank: int, checkpoint_dir: Path | None = None, progress: bool = True
) -> LowRankFit:
    """An unfitted :class:`LowRankFit` with the settings of *config* (:data:`lrfit.runs.config_params.CONFIG_KEYS`)."""
    return LowRankFit(**params_from_config(config, rank=int(rank)), progress=progress, checkpoint_dir=checkpoint_dir)


def fit_metrics(fit: LowRankFit, data: PreparedData) -> dict[str, Any]:
    """Everything ``metrics.json`` reports for one fitted rank."""
    train, test = fit.evaluate(data.train, "train"), fit.evaluate(data.test, "test")
    metrics: dict[str, Any] = {
        "r2_train": train["r2_train"],
        "r2_test": test["r2_test"],
        "r2_train_per_neuron_mean": train["r2_train_per_neuron_mean"],
        "r2_test_per_neuron_mean": test["r2_test_per_neuron_mean"],
        **fit_summary(fit),
        "target": fit.observation_.name,
        "init": fit.init,
        "n_neurons": data.train.n_neurons,
        "n_train_trials": data.train.n_trials,
        "n_test_trials": data.test.n_trials,
        "split": data.info.get("split"),
        "test_conditions": data.info.get("test_conditions"),
        "lead_in_bins": data.info.get("lead_in_bins", 0),
        "r2_test_per_condition": test["r2_test_per_condition"],
        "r2_test_per_neuron": test["r2_test_per_neuron"],
    }
    counts = fit.observation_.counts
    if counts:
        metrics.update(
            bits_per_spike_train=train["bits_per_spike_train"],
            bits_per_spike_test=test["bits_per_spike_test"],
            psth_r2_train=train["psth_r2_train"],
            psth_r2_test=test["psth_r2_test"],
            bits_per_spike_test_per_neuron=test["bits_per_spike_test_per_neuron"],
            counts_from=fit.observation_.signal,
        )
    if data.heldout_train is not None:
        heldout = heldout_neuron_bits_per_spike if counts else heldout_neuron_r2
        metrics.update(heldout(fit, data.train, data.test, data.heldout_train, data.heldout_test))
        metrics["heldout_prediction"] = HELDOUT_COUNTS_PREDICTION if counts else HELDOUT_PREDICTION
    # The ceiling is the data's reliability: from the test trials' repeats, else from the training trials'.
    # Simulated teacher trials vary through their own (noisy) inputs, which the model receives: no ceiling there.
    simulated = "teacher" in data.info
    ceiling = None if simulated else data.ceiling or noise_ceiling(data.test) or noise_ceiling(data.train)
    reason = ("simulated teacher trials differ through their own inputs, which the network receives: a split-half "
              "reliability of condition means is no upper bound for them" if simulated else
              None if ceiling is not None else
              "no condition has two trials for every neuron in the test or training data (e.g. condition means)")
    baselines = compute_baselines(data.train, data.test, k=int(fit.rank) + data.train.n_inputs, ceiling=ceiling,
                                  no_ceiling=reason)
    metrics["baselines"] = baselines.to_dict()
    ceiling_value = baselines.ceiling and baselines.ceiling.value
    if not counts:
        metrics.update(baseline_verdict(metrics["r2_test"], baselines.scores, ceiling_value))
        return metrics
    # counts: the verdict is in bits per spike, beside the smoothed PSTH and each neuron's mean rate
    count_baselines = compute_count_baselines(data.train, data.test)
    metrics["count_baselines"] = count_baselines.to_dict()
    metrics.update(baseline_verdict(metrics["bits_per_spike_test"], count_baselines.bits_per_spike, None,
                                    metric="bits_per_spike"))
    return metrics


def _write_fit(fit: LowRankFit, metrics: dict[str, Any], run: RunDir) -> None:
    fit.save(run.path)
    run.write(HISTORY_FILE, pd.DataFrame(fit.history_), index=False)
    run.write(METRICS_FILE, metrics)


def _fit_one(config: dict[str, Any], data: PreparedData, rank: int, run: RunDir, resume: bool,
             progress: bool) -> dict[str, Any]:
    """Fit one rank into *run* (or read it back when a finished fit is there and resume is on)."""
    run.path.mkdir(parents=True, exist_ok=True)
    if resume and run.has(METRICS_FILE, META_FILE):
        log.info("rank %d already fitted in %s; skipping", rank, run.path)
        return run.read(METRICS_FILE)
    checkpoint = run.file(CHECKPOINT_DIR)
    fit = make_fit(config, rank, checkpoint, progress)
    fit.fit(data.train, resume=resume and checkpoint.exists())
    metrics = fit_metrics(fit, data)
    _write_fit(fit, metrics, run)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return metrics


def _save_config(config: dict[str, Any], run: RunDir, resume: bool) -> None:
    public = {k: v for k, v in config.items() if not k.startswith("_")}
    public["data"] = dict(public["data"])
    base = Path(config.get("_base_dir", "."))
    for key in ("path", "teacher"):  # make relative paths absolute so the run dir is self-contained
        if key in public["data"] and not Path(str(public["data"][key])).expanduser().is_absolute():
            public["data"][key] = str((base / str(public["data"][key])).resolve())
    if resume and run.has(CONFIG_FILE):
        saved = run.read(CONFIG_FILE) or {}
        diff = _differences(saved, public)
        # optim.* may change to continue an interrupted fit; a finished fit was made with the saved settings
        finished = any(run.path.rglob(METRICS_FILE))
        blocking = [d for d in diff if finished or not d.startswith("optim.")]
        if blocking:
            what = "a finished fit" if finished else "an interrupted fit"
            raise LrfitError(
                f"--resume: '{run.path}' holds {what} made with another config ({'; '.join(blocking[:3])}); "
                "resume with the config saved in its config.yaml, or pass --overwrite (or a new --out) to fit anew."
            )
    run.write(CONFIG_FILE, public)


def _differences(saved: Any, new: Any, prefix: str = "") -> list[str]:
    """``"key: saved -> new"`` for every dotted key whose value differs."""
    if isinstance(saved, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(dict.fromkeys([*saved, *new])):
            out += _differences(saved.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if saved == new else [f"{prefix[:-1]}: {saved!r} -> {new!r}"]


def run_fit(
    config: dict[str, Any],
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run a fit config end to end and write the run directory (layouts in :mod:`lrfit.runs.layout`).

    Parameters
    ----------
    config : dict
        Output of :func:`lrfit.runs.config.load_config`.
    out : str or Path
        Run directory.
    resume : bool
        Continue an interrupted run in *out* (finished ranks are kept).
    overwrite : bool
        Replace a non-empty *out*.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The top-level ``metrics.json`` content.

    Examples
    --------
    Fit a student to trials simulated from a (one-epoch) teacher:

    >>> import tempfile
    >>> from lrfit import load_config, train_teacher
    >>> work = tempfile.mkdtemp()
    >>> _ = train_teacher("cdm", n_units=16, rank=1, max_epochs=1, n_val=32, n_test=32, out=f"{work}/teacher",
    ...                   progress=False)
    >>> config = load_config(extra={"data": {"teacher": f"{work}/teacher", "trials": 40, "test_trials": 20},
    ...                             "optim": {"max_epochs": 2}})
    >>> metrics = run_fit(config, f"{work}/student", progress=False)
    >>> metrics["rank"], metrics["n_test_trials"], "r2_test" in metrics
    (1, 20, True)
    """
    start = time.perf_counter()
    # Everything that can be checked is checked before the run directory is touched.
    folds = prepare_folds(config)
    ranks = config["model"]["rank"]
    rank_list = _rank_list(ranks)
    for r in rank_list:
        for fold in folds:
            check_fit_config(make_fit(config, r), fold.train)
    out = Path(out)
    fresh = not out.exists() or not any(out.iterdir())
    if (out / LOCK_FILE).is_file():
        with RunDir(out).lock():  # refuse before replacing a run another process is writing
            pass
    run = RunDir.create(out, resume=resume, overwrite=overwrite)
    try:
        with run.lock():
            return _run_fits(config, run, folds, ranks, resume, progress, start)
    except LrfitError:
        if fresh:  # a failed start leaves the directory as it was
            shutil.rmtree(run.path, ignore_errors=True)
        raise


def _run_fits(config: dict[str, Any], run: RunDir, folds: list[PreparedData], ranks: Any, resume: bool,
              progress: bool, start: float) -> dict[str, Any]:
    data = folds[0]
    _save_config(config, run, resume)
    run.write(SPLIT_FILE, data.info if len(folds) == 1 else {**data.info, "folds": [f.info for f in folds]})
    if isinstance(ranks, (list, tuple)):
        ranks = _rank_list(ranks)
        per_rank = {}
        for r in ranks:
            log.info("fitting rank %d of %s", r, ranks)
            per_rank[r] = _fit_rank(config, folds, r, run.rank_run(r), resume, progress)
        r2_test = [per_rank[r]["r2_test"] for r in ranks]
        key = score_key(per_rank[ranks[0]])
        scores = [per_rank[r][key] for r in ranks]
        tol = float(config["rank_selection"]["tolerance"])
        floors = [(per_rank[r].get("best_baseline") or {}).get("value") for r in ranks]
        chosen = choose_rank(ranks, scores, tol, baseline=[-np.inf if f is None else f for f in floors])
        selection = RankSelection(ranks, [per_rank[r]["r2_train"] for r in ranks], r2_test, chosen, tol)
        record = selection.to_dict()
        record["chosen_by"] = key
        if key != "r2_test":
            record[key] = scores
            record[key.replace("_test", "_train")] = [per_rank[r][key.replace("_test", "_train")] for r in ranks]
        record["r2_test_per_neuron_mean"] = [per_rank[r]["r2_test_per_neuron_mean"] for r in ranks]
        if len(folds) > 1:
            record["r2_test_folds"] = [per_rank[r]["r2_test_folds"] for r in ranks]
            record["r2_test_std"] = [per_rank[r]["r2_test_std"] for r in ranks]
        if data.heldout_train is not None:
            record["heldout_r2"] = [per_rank[r]["heldout_r2"] for r in ranks]
        record["best_baseline"] = [per_rank[r].get("best_baseline") for r in ranks]
        record["beats_baselines"] = [bool(per_rank[r].get("beats_baselines", True)) for r in ranks]
        record["no_rank_beats_baselines"] = not any(record["beats_baselines"])
        if record["no_rank_beats_baselines"]:
            log.warning("No rank beats the trivial baselines on the held-out data (best baseline %s); rank %d is the "
                        "best of the fits, but none has learnt more than the baseline.",
                        per_rank[chosen].get("best_baseline"), chosen)
        run.write(RANK_SELECTION_FILE, record)
        run.copy_files(run.rank_run(chosen), (*FIT_FILES, HISTORY_FILE))
        metrics = dict(per_rank[chosen])
        metrics["rank_selection"] = {"ranks": ranks, "r2_test": r2_test, "chosen_rank": chosen, "chosen_by": key,
                                     key: scores, "no_rank_beats_baselines": record["no_rank_beats_baselines"]}
    else:
        metrics = _fit_rank(config, folds, int(ranks), run, resume, progress)
    metrics["seconds_total"] = time.perf_counter() - start
    if not metrics.get("beats_baselines", True):
        best, label = metrics["best_baseline"], score_label(metrics)
        log.warning("The fit's held-out %s %.3f does not beat the trivial baseline '%s' (%s %.3f) on the same test "
                    "data: it has learnt nothing the baseline does not already predict; treat its analyses with care.",
                    label, metrics[score_key(metrics)], best["name"], label, best["value"])
    if "teacher" in data.info:
        metrics["teacher"] = data.info["teacher"]
    run.write(METRICS_FILE, metrics)
    return metrics


def _fit_rank(config: dict[str, Any], folds: list[PreparedData], rank: int, run: RunDir, resume: bool,
              progress: bool) -> dict[str, Any]:
    """Fit one rank into *run*: directly, or once per fold into ``fold_<k>/`` with the fold means on top."""
    if len(folds) == 1:
        return _fit_one(config, folds[0], rank, run, resume, progress)
    per_fold = []
    for k, data in enumerate(folds):
        log.info("rank %d: fold %d of %d", rank, k + 1, len(folds))
        per_fold.append(_fit_one(config, data, rank, run.fold_run(k), resume, progress))
    run.copy_files(run.fold_run(0), (*FIT_FILES, HISTORY_FILE))
    metrics = {**per_fold[0], **fold_summary(per_fold)}
    run.write(METRICS_FILE, metrics)
    return metrics


def _rank_list(ranks: Any) -> list[int]:
    """The sorted distinct ranks of ``model.rank`` (an integer or a list of them), or one sentence."""
    values = list(ranks) if isinstance(ranks, (list, tuple)) else [ranks]
    if not values:
        raise LrfitError("model.rank is an empty list; give a rank or a list of ranks.")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 1:
            raise LrfitError(
                f"model.rank must be a positive integer or a list of them (e.g. [1, 2, 3]), got {ranks!r}."
            )
    return sorted({int(v) for v in values})


# -- reading runs back --------------------------------------------------------------------
def load_run(run_dir: str | Path) -> tuple[dict[str, Any], LowRankFit, PreparedData]:
    """Reload a fit run: its config, the fitted estimator and the data splits (see :class:`lrfit.runs.layout.RunDir`).

    The splits are rebuilt from the saved config (all seeds are in it), so nothing
    but the config and the model needs to be stored.

    Examples
    --------
    >>> import tempfile
    >>> from lrfit import load_config, run_fit, train_teacher
    >>> work = tempfile.mkdtemp()
    >>> _ = train_teacher("cdm", n_units=16, rank=1, max_epochs=1, n_val=32, n_test=32, out=f"{work}/teacher",
    ...                   progress=False)
    >>> config = load_config(extra={"data": {"teacher": f"{work}/teacher", "trials": 40, "test_trials": 20},
    ...                             "optim": {"max_epochs": 2}})
    >>> _ = run_fit(config, f"{work}/student", progress=False)
    >>> config, fit, data = load_run(f"{work}/student")
    >>> fit.rank, data.test.n_trials, fit.score(data.test) <= 1.0
    (1, 20, True)
    """
    run = Run.open(run_dir)
    if run.config is None:
        raise LrfitError(
            f"'{run.path}' is not an lrfit fit run (no {CONFIG_FILE}); pass a directory written by 'lrfit fit'."
        )
    return run.config, run.fit, run.data


def resolved_copy(config: dict[str, Any]) -> dict[str, Any]:
    """Deep copy of a config without private keys (for logging/printing)."""
    return {k: copy.deepcopy(v) for k, v in config.items() if not k.startswith("_")}
