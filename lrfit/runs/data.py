"""The data of a fit: load the recording (or simulate the teacher), preprocess, split.

:func:`prepare_data` turns the ``data`` and ``preprocess`` sections of a resolved fit
config into the train/test splits a fit uses (:class:`PreparedData`); every seed is in
the config, so a run directory's splits are rebuilt from its ``config.yaml``
(:attr:`lrfit.runs.run.Run.data`, once per run) instead of being stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data_adapters import TrialData

from ..errors import LrfitError
from ..fitting.observation import recorded_observation
from ..jsonable import jsonable
from ..models.io import META_FILE
from ..teachers.record import simulate_teacher
from .config import TEACHER_DATA_KEYS


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
    ceiling : NoiseCeiling or None
        For split halves, the split-half ceiling of the single trials behind them.
    """

    train: TrialData
    test: TrialData
    heldout_train: TrialData | None = None
    heldout_test: TrialData | None = None
    info: dict[str, Any] = field(default_factory=dict)
    ceiling: Any = None  # the noise ceiling known from the single trials behind the splits (split halves)


# -- data ---------------------------------------------------------------------------------
def _teacher_data(section: dict[str, Any], base_dir: Path) -> tuple[TrialData, TrialData]:
    unknown = set(section) - TEACHER_DATA_KEYS
    if unknown:
        from ..errors import closest

        key = sorted(unknown)[0]
        raise LrfitError(
            f"Unknown key 'data.{key}' for a teacher simulation{closest(key, TEACHER_DATA_KEYS)}; "
            f"valid keys: {', '.join(sorted(TEACHER_DATA_KEYS))}."
        )
    teacher = Path(str(section["teacher"])).expanduser()
    if not teacher.is_absolute():
        teacher = (base_dir / teacher).resolve()
    if not (teacher / META_FILE).is_file():
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
        **({"max_rate_hz": section["max_rate_hz"]} if "max_rate_hz" in section else {}),
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


def _split_pairs(
    data: TrialData, split_cfg: dict[str, Any]
) -> tuple[list[tuple[TrialData, TrialData]], dict[str, Any]]:
    """The ``(train, test)`` pairs of ``preprocess.split`` (one, or one per fold) and what was done."""
    by, folds = split_cfg["by"], split_cfg.get("folds")
    if folds:
        kwargs: dict[str, Any] = {"seed": int(split_cfg["seed"])}
        if by == "conditions":
            kwargs["column"] = split_cfg["column"]
        elif split_cfg["column"] is not None:
            kwargs["stratify"] = split_cfg["column"]
        pairs = data.kfold(int(folds), by=by, **kwargs)
        return pairs, {"by": by, "folds": int(folds), **{k: v for k, v in kwargs.items() if v is not None}}
    kwargs = dict(test_fraction=float(split_cfg["test_fraction"]), seed=int(split_cfg["seed"]))
    if by == "conditions":
        kwargs.update(column=split_cfg["column"], test_values=split_cfg["test_values"])
    elif split_cfg["column"] is not None:
        kwargs.update(stratify=split_cfg["column"])
    return [data.split(by, **kwargs)], {"by": by, **{k: v for k, v in kwargs.items() if v is not None}}


def prepare_folds(config: dict[str, Any], only: int | None = None) -> list[PreparedData]:
    """Load, preprocess and split the data of a resolved config: one :class:`PreparedData` per fold.

    Without ``preprocess.split.folds`` there is one split; with ``folds: K`` there are K,
    in which every condition (``by: conditions``) or trial (``by: trials``) is held out
    exactly once.  Statistics of every preprocessing step (normalisation,
    condition-independent component, PCA) are fitted on each fold's training trials only
    and applied to both of its splits; a ``preprocess.lead_in`` is added last (unscored
    bins before the recorded window, inputs from ``data.inputs``).

    Parameters
    ----------
    config : dict
        Output of :func:`lrfit.runs.config.load_config`.
    only : int, optional
        Prepare this fold alone (the list then holds one entry).

    Returns
    -------
    list of PreparedData
        ``info["split"]["fold"]`` is the fold's index when there are folds.
    """
    check_counts_preprocessing(config)
    base_dir = Path(config.get("_base_dir", "."))
    section = dict(config["data"])
    pre = config["preprocess"]
    split_cfg = pre["split"]
    info: dict[str, Any] = {}
    ceiling = None
    if "teacher" in section:
        if split_cfg.get("folds"):
            raise LrfitError(
                "preprocess.split.folds does not apply to teacher data (fresh trials are simulated for the "
                "test split); remove it or fit recorded data."
            )
        pairs = [_teacher_data(section, base_dir)]
        train = pairs[0][0]
        split_info = {"by": "simulation", "train_trials": train.n_trials, "test_trials": pairs[0][1].n_trials}
        info["teacher"] = train.meta["teacher"]
    elif split_cfg["by"] == "halves":
        pairs, split_info, ceiling = _half_pairs(section, base_dir, split_cfg, pre)
        info["source"] = str(section.get("path"))
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
        try:
            pairs, split_info = _split_pairs(data, split_cfg)
        except data_adapters.DataError as exc:
            key = f"preprocess.split.{exc.field}" if exc.field else "preprocess.split"
            raise LrfitError(f"{key}: {exc}; fix it in the config (or with --set {key}=...).") from None
        info["source"] = str(data.meta.get("source", section.get("path")))
    if pre["subsample"] is not None and "teacher" in section:
        raise LrfitError("preprocess.subsample does not apply to teacher data; use data.neurons to record a subset.")
    if only is not None and not 0 <= only < len(pairs):
        raise LrfitError(f"fold {only} does not exist: the config makes {len(pairs)} fold(s) (0..{len(pairs) - 1}).")
    out = []
    for k, (train, test) in enumerate(pairs):
        if only is not None and k != only:
            continue
        fold_info = {**info, "split": {**split_info, "fold": k} if len(pairs) > 1 else dict(split_info)}
        prepared = _prepare_pair(train, test, config, section, fold_info)
        prepared.ceiling = ceiling
        out.append(prepared)
    return out


def _half_pairs(section: dict[str, Any], base_dir: Path, split_cfg: dict[str, Any],
                pre: dict[str, Any]) -> tuple[list[tuple[TrialData, TrialData]], dict[str, Any], Any]:
    """Split halves of separately recorded neurons, averaged into condition means.

    Each neuron's trials of each condition are split at random into a training and a test half
    (``folds``: repeated random half splits).
    """
    import data_adapters
    from data_adapters.neuron_trials import half_splits, split_halves

    from ..fitting.baselines import split_half_ceiling

    if pre["subsample"] is not None:
        raise LrfitError("preprocess.subsample does not apply with split by: halves; select the neurons in the file.")
    options = dict(section)
    options.pop("format", None)
    if "path" not in options:
        raise LrfitError("The data: section has no 'path'; split by: halves reads single trials from a file.")
    path = data_adapters.resolve_data_path(options.pop("path"), base_dir)
    trials = data_adapters.load_neuron_trials(path, **options)
    seed, folds = int(split_cfg["seed"]), split_cfg.get("folds")
    pairs = half_splits(trials, int(folds), seed=seed) if folds else [split_halves(trials, seed=seed)]
    info = {"by": "halves", "seed": seed, **({"folds": int(folds)} if folds else {})}
    return pairs, info, split_half_ceiling(trials.responses, seed=seed, scored_on="halves")


def _prepare_pair(train: TrialData, test: TrialData, config: dict[str, Any], section: dict[str, Any],
                  info: dict[str, Any]) -> PreparedData:
    pre = config["preprocess"]
    if train.n_trials == 0:
        raise LrfitError("The training split is empty (0 trials); lower preprocess.split.test_fraction or add trials.")
    if test.n_trials == 0:
        raise LrfitError("The test split is empty (0 trials); raise preprocess.split.test_fraction or add trials.")
    train, test = _preprocess(train, test, pre)
    lead_in = float(pre.get("lead_in") or 0.0)
    if lead_in:
        spec = section.get("inputs")
        train, test = train.with_lead_in(lead_in, inputs=spec), test.with_lead_in(lead_in, inputs=spec)
    train, test = _select_inputs(train, test, config["model"].get("inputs"))
    heldout_train = heldout_test = None
    if pre["heldout_neurons"]:
        keep, out = _neuron_split(train, pre["heldout_neurons"], int(config["seed"]))
        heldout_train, heldout_test = train.select(neurons=out), test.select(neurons=out)
        train, test = train.select(neurons=keep), test.select(neurons=keep)
        info["heldout_neuron_ids"] = [jsonable(v) for v in heldout_train.neuron_ids]
    info.update(
        n_train_trials=train.n_trials,
        n_test_trials=test.n_trials,
        n_neurons=train.n_neurons,
        n_time=train.n_time,
        dt=train.dt,
        lead_in_bins=int(train.meta.get("lead_in", {}).get("bins", 0)),
        input_names=list(train.input_names or []),
        neuron_ids=[jsonable(v) for v in train.neuron_ids],
        normalise=pre["normalise"],
        scale=pre["scale"],
    )
    if train.conditions is not None and train.conditions.shape[1]:
        info["test_conditions"] = condition_names(test.conditions)
    return PreparedData(train, test, heldout_train, heldout_test, info)


def prepare_data(config: dict[str, Any], fold: int = 0) -> PreparedData:
    """The splits of one fold of a resolved config (the only one without folds); see :func:`prepare_folds`.

    Parameters
    ----------
    config : dict
        Output of :func:`lrfit.runs.config.load_config`.
    fold : int
        Which fold (0 without ``preprocess.split.folds``).

    Returns
    -------
    PreparedData
    """
    return prepare_folds(config, only=fold)[0]


#: Preprocessing steps that change the values of the activity: spike counts are fitted as they are.
VALUE_STEPS = ("normalise", "remove_condition_independent", "denoise_pca")


def check_counts_preprocessing(config: dict[str, Any]) -> None:
    """A counts fit takes raw counts per bin: one sentence for a preprocessing step that would change them."""
    if not recorded_observation(config["model"]).counts:
        return
    pre = config["preprocess"]
    steps = [f"preprocess.{k}" for k in VALUE_STEPS if pre.get(k)] + (
        ["preprocess.scale"] if float(pre.get("scale", 1.0)) != 1.0 else [])
    if steps:
        raise LrfitError(
            f"model.target: counts fits raw spike counts per bin, but {', '.join(steps)} would change them; remove "
            f"{'it' if len(steps) == 1 else 'them'} (the Poisson readout's gain and offset set each neuron's scale), "
            "or fit target rates or currents.")


def _preprocess(train: TrialData, test: TrialData, pre: dict[str, Any]) -> tuple[TrialData, TrialData]:
    if pre["remove_condition_independent"]:
        train, test = train.remove_condition_independent(), test.remove_condition_independent(reference=train)
    if pre["normalise"]:
        ref = train
        train, test = train.normalise(pre["normalise"]), test.normalise(pre["normalise"], reference=ref)
    if pre["denoise_pca"]:
        ref = train
        train, test = (
            train.denoise_pca(int(pre["denoise_pca"])),
            test.denoise_pca(int(pre["denoise_pca"]), reference=ref),
        )
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


def condition_names(conditions: Any) -> list[str]:
    """The distinct conditions of a conditions table as readable names, e.g. ``"reach_angle_deg=-45.19"``.

    Examples
    --------
    >>> import pandas as pd
    >>> condition_names(pd.DataFrame({"context": ["a", "a", "b"], "coh": [0.1, 0.1, -0.123456]}))
    ['context=a, coh=0.1', 'context=b, coh=-0.1235']
    """
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)

    rows = {", ".join(f"{c}={fmt(v)}" for c, v in zip(conditions.columns, r))
            for r in conditions.itertuples(index=False)}
    return sorted(rows)
