"""The ``lrfit fit`` pipeline: config -> data -> preprocessing -> fit(s) -> run directory.

:func:`run_fit` writes a fit run, or a rank-list run for a list of ranks (layouts in
:mod:`lrfit.rundir`); the data come from :func:`lrfit.fit_data.prepare_data`.
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

import pandas as pd

from .errors import LrfitError
from .fit_data import PreparedData, prepare_data, run_data
from .fitting.estimator import LowRankFit, fit_summary, params_from_config
from .fitting.heldout import heldout_neuron_r2
from .fitting.rank_selection import RankSelection, choose_rank
from .rundir import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    FIT_FILES,
    HISTORY_FILE,
    META_FILE,
    METRICS_FILE,
    RANK_SELECTION_FILE,
    SPLIT_FILE,
    RunDir,
)

log = logging.getLogger(__name__)

__all__ = ["PreparedData", "fit_metrics", "load_run", "make_fit", "prepare_data", "resolved_copy", "run_fit"]


# -- fitting ------------------------------------------------------------------------------
def make_fit(config: dict[str, Any], rank: int, checkpoint_dir: Path | None = None, progress: bool = True) -> LowRankFit:
    """An unfitted :class:`LowRankFit` with the settings of *config* (see ``lrfit.fitting.estimator.CONFIG_KEYS``)."""
    return LowRankFit(**params_from_config(config, rank=int(rank)), progress=progress, checkpoint_dir=checkpoint_dir)


def fit_metrics(fit: LowRankFit, data: PreparedData) -> dict[str, Any]:
    """Everything ``metrics.json`` reports for one fitted rank."""
    train, test = fit.evaluate(data.train, "train_"), fit.evaluate(data.test, "test_")
    metrics: dict[str, Any] = {
        "r2_train": train["train_r2"],
        "r2_test": test["test_r2"],
        "r2_train_per_neuron_mean": train["train_r2_per_neuron_mean"],
        "r2_test_per_neuron_mean": test["test_r2_per_neuron_mean"],
        **fit_summary(fit),
        "target": fit.target,
        "init": fit.init,
        "n_neurons": data.train.n_neurons,
        "n_train_trials": data.train.n_trials,
        "n_test_trials": data.test.n_trials,
        "r2_test_per_condition": test["test_r2_per_condition"],
        "r2_test_per_neuron": test["test_r2_per_neuron"],
    }
    if data.heldout_train is not None:
        metrics.update(heldout_neuron_r2(fit, data.train, data.test, data.heldout_train, data.heldout_test))
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
        ignore = ("optim",)  # more epochs may be asked for when resuming
        diff = [k for k in public if k not in ignore and saved.get(k) != public[k]]
        if diff:
            raise LrfitError(
                f"--resume: the config differs from the one saved in '{run.file(CONFIG_FILE)}' in section(s) {diff}; "
                "resume with the same config (only optim.* may change) or start a new --out."
            )
    run.write(CONFIG_FILE, public)


def run_fit(
    config: dict[str, Any],
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run a fit config end to end and write the run directory (layouts in :mod:`lrfit.rundir`).

    Parameters
    ----------
    config : dict
        Output of :func:`lrfit.config.load_config`.
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
    """
    run = RunDir.create(out, resume=resume, overwrite=overwrite)
    start = time.perf_counter()
    data = prepare_data(config)
    _save_config(config, run, resume)
    run.write(SPLIT_FILE, data.info)
    ranks = config["model"]["rank"]
    if isinstance(ranks, (list, tuple)):
        ranks = sorted({int(r) for r in ranks})
        if not ranks:
            raise LrfitError("model.rank is an empty list; give a rank or a list of ranks.")
        _check_rank(max(ranks), data)
        per_rank = {}
        for r in ranks:
            log.info("fitting rank %d of %s", r, ranks)
            per_rank[r] = _fit_one(config, data, r, run.rank_run(r), resume, progress)
        r2_test = [per_rank[r]["r2_test"] for r in ranks]
        tol = float(config["rank_selection"]["tolerance"])
        chosen = choose_rank(ranks, r2_test, tol)
        selection = RankSelection(ranks, [per_rank[r]["r2_train"] for r in ranks], r2_test, chosen, tol)
        record = selection.to_dict()
        record["r2_test_per_neuron_mean"] = [per_rank[r]["r2_test_per_neuron_mean"] for r in ranks]
        if data.heldout_train is not None:
            record["heldout_r2"] = [per_rank[r]["heldout_r2"] for r in ranks]
        run.write(RANK_SELECTION_FILE, record)
        run.copy_files(run.rank_run(chosen), (*FIT_FILES, HISTORY_FILE))
        metrics = dict(per_rank[chosen])
        metrics["rank_selection"] = {"ranks": ranks, "r2_test": r2_test, "chosen_rank": chosen}
    else:
        _check_rank(int(ranks), data)
        metrics = _fit_one(config, data, int(ranks), run, resume, progress)
    metrics["seconds_total"] = time.perf_counter() - start
    if "teacher" in data.info:
        metrics["teacher"] = data.info["teacher"]
    run.write(METRICS_FILE, metrics)
    return metrics


def _check_rank(rank: int, data: PreparedData) -> None:
    if rank < 1:
        raise LrfitError(f"model.rank must be a positive integer, got {rank}.")
    if rank > data.train.n_neurons:
        raise LrfitError(
            f"model.rank={rank} is larger than the number of fitted neurons ({data.train.n_neurons}); "
            f"choose a rank <= {data.train.n_neurons} (or add model.hidden_units)."
        )


# -- reading runs back --------------------------------------------------------------------
def load_run(run_dir: str | Path) -> tuple[dict[str, Any], LowRankFit, PreparedData]:
    """Reload a fit run: its config, the fitted estimator and the data splits (see :class:`lrfit.rundir.RunDir`).

    The splits are rebuilt from the saved config (all seeds are in it), so nothing
    but the config and the model needs to be stored.
    """
    run = RunDir.open(run_dir)
    if run.config is None:
        raise LrfitError(f"'{run.path}' is not an lrfit fit run (no {CONFIG_FILE}); pass a directory written by 'lrfit fit'.")
    return run.config, run.estimator, run_data(run)


def resolved_copy(config: dict[str, Any]) -> dict[str, Any]:
    """Deep copy of a config without private keys (for logging/printing)."""
    return {k: copy.deepcopy(v) for k, v in config.items() if not k.startswith("_")}
