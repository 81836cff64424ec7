"""The ``lrfit fit`` pipeline: config -> data -> preprocessing -> fit(s) -> run directory.

Run directory written by :func:`run_fit`::

    DIR/config.yaml            the resolved config (every default filled in)
    DIR/metrics.json           r2_train, r2_test, r2_test_per_neuron_mean, rank,
                               epochs, seconds, ... of the final fit
    DIR/model.pt, model.json   the fitted network (``LowRankFit.load(DIR)``)
    DIR/fit_state.pt           the fit's initial-state table
    DIR/history.csv            one row per epoch
    DIR/split.json             trials / neurons in each split (reproducible from seeds)
    DIR/checkpoint/            optimiser checkpoint while a fit runs (removed after)

With a list of ranks, each rank is fitted into ``DIR/rank_R/`` (same files), the
curve goes to ``DIR/rank_selection.json`` and the chosen rank is copied to the
top level.  ``resume=True`` skips ranks already finished and continues an
interrupted fit from its checkpoint.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from data_adapters import TrialData

from .config import TEACHER_DATA_KEYS, load_config
from .errors import LrfitError
from .fitting.estimator import LowRankFit, dump_json, fit_summary
from .fitting.heldout import heldout_neuron_r2
from .fitting.rank_selection import RankSelection, choose_rank
from .teachers.record import simulate_teacher

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
SPLIT_FILE = "split.json"
RANK_SELECTION_FILE = "rank_selection.json"
CHECKPOINT_DIR = "checkpoint"


@dataclass
class PreparedData:
    """The splits a fit uses.

    Attributes
    ----------
    train, test : TrialData
        Fitted neurons on training and held-out trials.
    heldout_train, heldout_test : TrialData or None
        Neurons withheld from the fit, on the same trials.
    info : dict
        What was done (source, normalisation, split, sizes), saved to ``split.json``.
    """

    train: TrialData
    test: TrialData
    heldout_train: TrialData | None = None
    heldout_test: TrialData | None = None
    info: dict[str, Any] = field(default_factory=dict)


# -- data ---------------------------------------------------------------------------------
def _teacher_data(section: dict[str, Any], base_dir: Path) -> tuple[TrialData, TrialData]:
    unknown = set(section) - TEACHER_DATA_KEYS
    if unknown:
        from .errors import closest

        key = sorted(unknown)[0]
        raise LrfitError(
            f"Unknown key 'data.{key}' for a teacher simulation{closest(key, TEACHER_DATA_KEYS)}; "
            f"valid keys: {', '.join(sorted(TEACHER_DATA_KEYS))}."
        )
    teacher = Path(str(section["teacher"])).expanduser()
    if not teacher.is_absolute():
        teacher = (base_dir / teacher).resolve()
    if not (teacher / "model.json").is_file():
        raise LrfitError(
            f"data.teacher '{teacher}' holds no model.json; train one with 'lrfit teacher --out {teacher}' "
            "or point data.teacher at a teacher run directory."
        )
    seed = int(section.get("seed", 0))
    common = dict(
        record=section.get("record", "rates"),
        noise_std=section.get("noise_std"),
        neurons=section.get("neurons"),
        neuron_seed=seed,
        task_params=section.get("task"),
    )
    train = simulate_teacher(teacher, int(section.get("trials", 800)), seed=2 * seed + 1, **common)
    test = simulate_teacher(teacher, int(section.get("test_trials", 200)), seed=2 * seed + 2, **common)
    return train, test


def _neuron_split(data: TrialData, heldout: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = data.n_neurons
    count = int(round(heldout * n)) if isinstance(heldout, float) and heldout < 1 else int(heldout)
    if count < 0 or count >= n:
        raise LrfitError(
            f"preprocess.heldout_neurons={heldout} leaves no neuron to fit out of {n}; "
            f"withhold fewer than {n} neurons (a count or a fraction below 1)."
        )
    rng = np.random.default_rng(seed + 7919)
    out = np.sort(rng.choice(n, size=count, replace=False)) if count else np.array([], dtype=int)
    keep = np.setdiff1d(np.arange(n), out)
    return keep, out


def prepare_data(config: dict[str, Any]) -> PreparedData:
    """Load, preprocess and split the data of a resolved config.

    Statistics of every preprocessing step (normalisation, condition-independent
    component, PCA) are fitted on the training trials only and applied to both
    splits.

    Parameters
    ----------
    config : dict
        Output of :func:`lrfit.config.load_config`.

    Returns
    -------
    PreparedData
    """
    base_dir = Path(config.get("_base_dir", "."))
    section = dict(config["data"])
    pre = config["preprocess"]
    split_cfg = pre["split"]
    info: dict[str, Any] = {}
    if "teacher" in section:
        train, test = _teacher_data(section, base_dir)
        info["split"] = {"by": "simulation", "train_trials": train.n_trials, "test_trials": test.n_trials}
        info["teacher"] = train.meta["teacher"]
    else:
        import data_adapters

        data = data_adapters.load_config(section, base_dir=base_dir)
        if pre["subsample"] is not None:
            data = data.subsample_neurons(pre["subsample"], seed=int(config["seed"]))
        if data.n_trials < 2:
            raise LrfitError(
                f"The data hold {data.n_trials} trial(s); a fit needs training and test trials "
                "(at least 2), or condition averages of several conditions."
            )
        kwargs: dict[str, Any] = dict(test_fraction=float(split_cfg["test_fraction"]), seed=int(split_cfg["seed"]))
        if split_cfg["by"] == "conditions":
            kwargs.update(column=split_cfg["column"], test_values=split_cfg["test_values"])
        elif split_cfg["column"] is not None:
            kwargs.update(stratify=split_cfg["column"])
        train, test = data.split(split_cfg["by"], **kwargs)
        info["split"] = {"by": split_cfg["by"], **{k: v for k, v in kwargs.items() if v is not None}}
        info["source"] = str(data.meta.get("source", section.get("path")))
    if pre["subsample"] is not None and "teacher" in section:
        raise LrfitError("preprocess.subsample does not apply to teacher data; use data.neurons to record a subset.")
    if train.n_trials == 0:
        raise LrfitError("The training split is empty (0 trials); lower preprocess.split.test_fraction or add trials.")
    if test.n_trials == 0:
        raise LrfitError("The test split is empty (0 trials); raise preprocess.split.test_fraction or add trials.")
    train, test = _preprocess(train, test, pre)
    train, test = _select_inputs(train, test, config["model"].get("inputs"))
    heldout_train = heldout_test = None
    if pre["heldout_neurons"]:
        keep, out = _neuron_split(train, pre["heldout_neurons"], int(config["seed"]))
        heldout_train, heldout_test = train.select(neurons=out), test.select(neurons=out)
        train, test = train.select(neurons=keep), test.select(neurons=keep)
        info["heldout_neuron_ids"] = [_jsonable(v) for v in heldout_train.neuron_ids]
    info.update(
        n_train_trials=train.n_trials,
        n_test_trials=test.n_trials,
        n_neurons=train.n_neurons,
        n_time=train.n_time,
        dt=train.dt,
        input_names=list(train.input_names or []),
        neuron_ids=[_jsonable(v) for v in train.neuron_ids],
        normalise=pre["normalise"],
        scale=pre["scale"],
    )
    if train.conditions is not None and train.conditions.shape[1]:
        info["test_conditions"] = sorted({str(tuple(r)) for r in test.conditions.itertuples(index=False)})
    return PreparedData(train, test, heldout_train, heldout_test, info)


def _preprocess(train: TrialData, test: TrialData, pre: dict[str, Any]) -> tuple[TrialData, TrialData]:
    if pre["remove_condition_independent"]:
        train, test = train.remove_condition_independent(), test.remove_condition_independent(reference=train)
    if pre["normalise"]:
        ref = train
        train, test = train.normalise(pre["normalise"]), test.normalise(pre["normalise"], reference=ref)
    if pre["denoise_pca"]:
        ref = train
        train, test = train.denoise_pca(int(pre["denoise_pca"])), test.denoise_pca(int(pre["denoise_pca"]), reference=ref)
    scale = float(pre["scale"])
    if scale != 1.0:
        train = train.replace(activity=np.asarray(train.activity) * scale)
        test = test.replace(activity=np.asarray(test.activity) * scale)
    return train, test


def _select_inputs(train: TrialData, test: TrialData, names: list[str] | None) -> tuple[TrialData, TrialData]:
    """Keep the input channels the model is driven by (``model.inputs``), in that order."""
    if names is None:
        return train, test
    have = list(train.input_names or [])
    missing = [n for n in names if n not in have]
    if missing:
        raise LrfitError(
            f"The model needs input channel(s) {missing} but the data provide {have or 'none'}; "
            "add them to the data's inputs spec (data.inputs) or change model.inputs."
        )
    index = [have.index(n) for n in names]

    def pick(d: TrialData) -> TrialData:
        return d.replace(inputs=np.asarray(d.inputs)[..., index], input_names=tuple(names))

    return pick(train), pick(test)


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- fitting ------------------------------------------------------------------------------
def make_fit(config: dict[str, Any], rank: int, checkpoint_dir: Path | None = None, progress: bool = True) -> LowRankFit:
    """An unfitted :class:`LowRankFit` with the model and optimiser settings of *config*."""
    model, optim = config["model"], config["optim"]
    return LowRankFit(
        rank=int(rank),
        target=model["target"],
        hidden_units=int(model["hidden_units"]),
        init=model["init"],
        tau=float(model["tau"]),
        x0=model["x0"],
        ridge=float(model["ridge"]),
        fullrank_epochs=int(model["fullrank_epochs"]),
        max_epochs=int(optim["max_epochs"]),
        lr=float(optim["lr"]),
        batch_size=int(optim["batch_size"]),
        clip_grad=float(optim["clip_grad"]),
        patience=int(optim["patience"]),
        weight_decay=float(optim["weight_decay"]),
        random_state=int(config["seed"]),
        device=str(config["device"]),
        progress=progress,
        checkpoint_dir=checkpoint_dir,
    )


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


def _write_fit(fit: LowRankFit, metrics: dict[str, Any], directory: Path) -> None:
    fit.save(directory)
    pd.DataFrame(fit.history_).to_csv(directory / HISTORY_FILE, index=False)
    dump_json(metrics, directory / METRICS_FILE)


def _fit_one(config: dict[str, Any], data: PreparedData, rank: int, directory: Path, resume: bool,
             progress: bool) -> dict[str, Any]:
    """Fit one rank into *directory* (or read it back when a finished fit is there and resume is on)."""
    directory.mkdir(parents=True, exist_ok=True)
    if resume and (directory / METRICS_FILE).is_file() and (directory / "model.json").is_file():
        log.info("rank %d already fitted in %s; skipping", rank, directory)
        return json.loads((directory / METRICS_FILE).read_text())
    checkpoint = directory / CHECKPOINT_DIR
    fit = make_fit(config, rank, checkpoint, progress)
    fit.fit(data.train, resume=resume and checkpoint.exists())
    metrics = fit_metrics(fit, data)
    _write_fit(fit, metrics, directory)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return metrics


def _prepare_out(out: Path, resume: bool, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise LrfitError(
            f"Output directory '{out}' is not empty; pass --resume to continue that run, --overwrite to replace "
            "it, or choose another --out."
        )
    if overwrite and not resume and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _save_config(config: dict[str, Any], out: Path, resume: bool) -> None:
    public = {k: v for k, v in config.items() if not k.startswith("_")}
    public["data"] = dict(public["data"])
    base = Path(config.get("_base_dir", "."))
    for key in ("path", "teacher"):  # make relative paths absolute so the run dir is self-contained
        if key in public["data"] and not Path(str(public["data"][key])).expanduser().is_absolute():
            public["data"][key] = str((base / str(public["data"][key])).resolve())
    target = out / CONFIG_FILE
    if resume and target.is_file():
        saved = yaml.safe_load(target.read_text()) or {}
        ignore = ("optim",)  # more epochs may be asked for when resuming
        diff = [k for k in public if k not in ignore and saved.get(k) != public[k]]
        if diff:
            raise LrfitError(
                f"--resume: the config differs from the one saved in '{target}' in section(s) {diff}; "
                "resume with the same config (only optim.* may change) or start a new --out."
            )
    target.write_text(yaml.safe_dump(public, sort_keys=False))


def run_fit(
    config: dict[str, Any],
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run a fit config end to end and write the run directory.

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
    out = Path(out)
    _prepare_out(out, resume, overwrite)
    start = time.perf_counter()
    data = prepare_data(config)
    _save_config(config, out, resume)
    dump_json(data.info, out / SPLIT_FILE)
    ranks = config["model"]["rank"]
    if isinstance(ranks, (list, tuple)):
        ranks = sorted({int(r) for r in ranks})
        if not ranks:
            raise LrfitError("model.rank is an empty list; give a rank or a list of ranks.")
        _check_rank(max(ranks), data)
        per_rank = {}
        for r in ranks:
            log.info("fitting rank %d of %s", r, ranks)
            per_rank[r] = _fit_one(config, data, r, out / f"rank_{r}", resume, progress)
        r2_test = [per_rank[r]["r2_test"] for r in ranks]
        tol = float(config["rank_selection"]["tolerance"])
        chosen = choose_rank(ranks, r2_test, tol)
        selection = RankSelection(ranks, [per_rank[r]["r2_train"] for r in ranks], r2_test, chosen, tol)
        record = selection.to_dict()
        record["r2_test_per_neuron_mean"] = [per_rank[r]["r2_test_per_neuron_mean"] for r in ranks]
        if data.heldout_train is not None:
            record["heldout_r2"] = [per_rank[r]["heldout_r2"] for r in ranks]
        dump_json(record, out / RANK_SELECTION_FILE)
        for name in ("model.pt", "model.json", "fit_state.pt", HISTORY_FILE):
            shutil.copy2(out / f"rank_{chosen}" / name, out / name)
        metrics = dict(per_rank[chosen])
        metrics["rank_selection"] = {"ranks": ranks, "r2_test": r2_test, "chosen_rank": chosen}
    else:
        _check_rank(int(ranks), data)
        metrics = _fit_one(config, data, int(ranks), out, resume, progress)
    metrics["seconds_total"] = time.perf_counter() - start
    if "teacher" in data.info:
        metrics["teacher"] = data.info["teacher"]
    dump_json(metrics, out / METRICS_FILE)
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
    """Reload a run directory: its config, the fitted estimator and the data splits.

    The splits are rebuilt from the saved config (all seeds are in it), so nothing
    but the config and the model needs to be stored.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise LrfitError(f"'{run_dir}' is not an lrfit fit run (no {CONFIG_FILE}); pass a directory written by 'lrfit fit'.")
    config = load_config(cfg_path)
    return config, LowRankFit.load(run_dir), prepare_data(config)


def resolved_copy(config: dict[str, Any]) -> dict[str, Any]:
    """Deep copy of a config without private keys (for logging/printing)."""
    return {k: copy.deepcopy(v) for k, v in config.items() if not k.startswith("_")}
