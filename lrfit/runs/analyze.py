"""``lrfit analyze``: write the analyses of a low-rank run into ``RUN/analysis/``.

File names and the run layouts are in :mod:`lrfit.runs.layout`.  Keys of each file (all latent
coordinates refer to the SVD-normalised network, ``M = U sqrt(S)``, ``N = V sqrt(S)`` with
``U S V^T = svd(M N^T)``, which leaves ``J`` unchanged and makes the axes unique up to sign;
see :class:`lrfit.runs.run.Run`):

``fixed_points.json``
    ``{"rank", "input_names", "inputs": {NAME: {"input": {channel: value}, "source",
    "stability_counts", "fixed_points": [...], "slow_points": [...]}}}``: for each constant input
    ``u`` the zeros of ``F(kappa) = -kappa + n^T phi(m kappa + W_in u) / N``; each point
    has ``kappa`` (coordinates on the columns of ``m``), ``eigenvalues_real`` /
    ``eigenvalues_imag`` of ``DF = -I + n^T diag(phi') m / N`` and ``stability``
    (stable / saddle / source / marginal); see :func:`lrfit.analysis.find_fixed_points`.
``populations.json``
    ``n_populations`` and the ``rule`` that chose it: ``"task"`` (networks with a task
    and a readout: the fewest seed-stable populations whose resampled networks perform
    the task, with the accuracies tried in ``task_accuracy``; see
    :func:`lrfit.analysis.choose_populations_by_task`) or ``"bic"`` (lowest BIC among
    seed-stable candidates); mixtures are fitted on sign-folded loadings for tanh
    networks (``fold_signs``, ``signs``); ``n_bic``, ``candidates``, ``bic``, ``ari``, ``labels`` (one per
    unit, in unit order), ``neuron_ids`` and ``labels_by_neuron`` ({id: label}), ``weights``, ``means``,
    ``covariances``, ``features``; see :func:`lrfit.analysis.fit_populations`.  For a
    counts fit also ``readout_by_population``: per population the mean and s.d. of the
    recorded units' Poisson readout gain size ``|a_i|`` and offset ``b_i`` (the mixture
    itself is fitted on the connectivity, which alone sets the dynamics).
``overlaps.json``
    ``overlaps`` ``sigma_{n_k m_l}`` (rows ``n_k``, columns ``m_l``), ``input_overlaps``
    (rows ``n_k``, columns ``input_names``), ``readout_overlaps``, ``mm``, ``nn``,
    ``eigenvalues``; see :func:`lrfit.analysis.connectivity_stats`.
``loadings.csv``
    One row per unit: ``neuron`` id, ``m_*, n_*, w_in_*, w_out_*`` and ``population``
    (counts fits: ``readout_gain``, ``readout_offset``; NaN for hidden units).
``latents.npz`` (:data:`LATENT_KEYS`) and ``latents.json`` (variance fractions, shapes)
    Latent trajectories of the activity (:func:`lrfit.analysis.latent_trajectories`);
    skipped, with a logged reason, for a fit saved without ``config.yaml`` (its data
    cannot be rebuilt); the other files need only the network.
``resample.json`` (task known and a readout available)
    Accuracy of the network, of networks resampled from the population mixture and
    from a single moment-matched Gaussian (:func:`lrfit.analysis.sample_network`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError, check_choice, closest
from .layout import (
    FIXED_POINTS_FILE,
    LATENTS_FILE,
    LATENTS_SUMMARY_FILE,
    LOADINGS_FILE,
    OVERLAPS_FILE,
    POPULATIONS_FILE,
    RESAMPLE_FILE,
    RunDir,
)
from .run import SPLITS, Run, RunActivity, load_context

log = logging.getLogger(__name__)

__all__ = [
    "FIXED_POINTS_FILE",
    "LATENTS_FILE",
    "LATENTS_SUMMARY_FILE",
    "LATENT_KEYS",
    "LOADINGS_FILE",
    "OVERLAPS_FILE",
    "POPULATIONS_FILE",
    "RESAMPLE_FILE",
    "analysis_files",
    "analyze_run",
    "latent_conditions",
    "parse_input_specs",
]

#: Keys of ``latents.npz`` and what they hold (``cond_<column>`` repeats per condition column).
LATENT_KEYS: dict[str, str] = {
    "kappa": "(trials, time, R) recurrent latents kappa_r(t) = q_r . x(t) on the orthonormalised columns of m",
    "v": "(trials, time, C') input-driven part: coordinates on the input directions orthogonalised against m",
    "kappa_m": "(trials, time, R) coordinates on the raw columns of m (the variables of fixed_points.json)",
    "basis_rec": "(N, R) orthonormal basis Q_M of span(m)",
    "basis_inp": "(N, C') orthonormal input directions Q_I (orthogonal to Q_M)",
    "time": "(time,) seconds",
    "mask": "(trials, time) valid bins",
    "inputs": "(trials, time, C) inputs that drove the network",
    "input_names": "(C,) input channel names",
    "neuron_ids": "(N,) unit ids",
    "condition_columns": "names of the condition columns, each stored as cond_<column> (trials,)",
    "var_recurrent": "fraction of the (centred) activity variance in span(Q_M)",
    "var_input": "fraction in span(Q_I)",
    "var_total_explained": "var_recurrent + var_input (fraction in span(m, W_in))",
}

def latent_conditions(latents: Any) -> pd.DataFrame:
    """The conditions table stored in a loaded ``latents.npz`` (one row per trial, ``split`` left out)."""
    cols = [str(c) for c in latents["condition_columns"]] if "condition_columns" in latents else []
    return pd.DataFrame({c: latents[f"cond_{c}"] for c in cols if c != "split"})


DEFAULT_CHANNEL_VALUE = 1.0
_NO_INPUT = ("none", "no_input", "off", "0")


@dataclass(frozen=True)
class NamedInput:
    """A constant input vector under which fixed points are found.

    Attributes
    ----------
    name : str
        Label used in ``fixed_points.json``.
    values : ndarray, (C,)
        The input ``u``.
    source : str
        How it was built (``"no input"``, ``"channel"``, ``"explicit"``, ``"condition"``).
    """

    name: str
    values: np.ndarray
    source: str


def _floats(text: str) -> list[float] | None:
    try:
        return [float(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        return None


def _condition_input(column: str, value: str, activity: RunActivity) -> np.ndarray:
    """Mean input of the trials with ``column == value`` over the steps where the input is on.

    ``u = mean_{trials in condition, t in on} u(t)``, with ``on`` the valid steps where
    the condition-averaged input norm is at least half its maximum.
    """
    cond = activity.conditions
    sel = cond[column].astype(str).to_numpy() == str(value)
    if not sel.any():
        values = sorted(set(cond[column].astype(str)))
        raise LrfitError(
            f"No trial has {column}={value}{closest(str(value), values)}; values of '{column}': "
            f"{', '.join(values[:12])}."
        )
    inp = np.asarray(activity.inputs, float)[sel]
    mask = np.asarray(activity.mask, bool)[sel]
    mean = np.where(mask[..., None], inp, 0.0).sum(0) / np.maximum(mask.sum(0), 1)[:, None]  # (T, C)
    norm = np.linalg.norm(mean, axis=1)
    if norm.max() <= 0:
        return np.zeros(inp.shape[-1])
    return mean[norm >= 0.5 * norm.max()].mean(0)


def parse_input_specs(
    specs: list[str] | None, input_names: list[str], activity: RunActivity | None = None
) -> list[NamedInput]:
    """Turn ``--input`` values into named constant inputs.

    Each spec is one of: ``none`` (no input); ``CHANNEL`` (that channel alone at
    ``1.0``); ``CHANNEL=v`` (that channel alone at ``v``); ``NAME=v1,...,vC`` (an explicit
    vector, one value per channel); ``COLUMN=VALUE`` for a condition column of the
    trials (the mean input of those trials while the input is on, see
    :func:`_condition_input`).  Without specs: no input, then each channel alone at 1.0.

    Parameters
    ----------
    specs : list of str or None
        The ``--input`` values.
    input_names : list of str
        The network's input channels.
    activity : RunActivity, optional
        Trials, needed for ``COLUMN=VALUE`` specs.

    Returns
    -------
    list of NamedInput
    """
    c = len(input_names)
    if not specs:
        out = [NamedInput("no_input", np.zeros(c), "no input")]
        for i, name in enumerate(input_names):
            u = np.zeros(c)
            u[i] = DEFAULT_CHANNEL_VALUE
            out.append(NamedInput(name, u, "channel"))
        return out
    out = []
    for spec in specs:
        spec = spec.strip()
        if spec.lower() in _NO_INPUT:
            out.append(NamedInput("no_input", np.zeros(c), "no input"))
            continue
        if spec in input_names:
            u = np.zeros(c)
            u[input_names.index(spec)] = DEFAULT_CHANNEL_VALUE
            out.append(NamedInput(spec, u, "channel"))
            continue
        key, sep, rest = spec.partition("=")
        key, rest = key.strip(), rest.strip()
        if not sep or not key or not rest:
            raise LrfitError(
                f"Unknown --input '{spec}'{closest(spec, input_names)}; give an input channel "
                f"({', '.join(input_names) or 'none'}), "
                f"NAME=v1,...,v{c} or a condition COLUMN=VALUE."
            )
        cols = list(activity.conditions.columns) if activity is not None else []
        vals = _floats(rest)
        if key in input_names and vals is not None and len(vals) == 1:
            u = np.zeros(c)
            u[input_names.index(key)] = vals[0]
            out.append(NamedInput(spec, u, "channel"))
        elif vals is not None and len(vals) == c and key not in cols:
            out.append(NamedInput(key, np.asarray(vals, float), "explicit"))
        elif key in cols:
            out.append(NamedInput(spec, _condition_input(key, rest, activity), "condition"))
        else:
            raise LrfitError(
                f"--input '{spec}': '{key}' is neither a condition column ({', '.join(map(str, cols)) or 'none'}) nor "
                "followed by "
                f"{c} comma-separated values (one per channel: {', '.join(input_names)})."
            )
    names = [n.name for n in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise LrfitError(f"--input names {dup} appear twice; give each constant input once.")
    return out


def fixed_points_json(run: Run, inputs: list[NamedInput], seed: int = 0) -> dict[str, Any]:
    """Fixed points of the latent dynamics under each named input (see the module docstring)."""
    from ..analysis import find_fixed_points

    names = run.input_names
    result: dict[str, Any] = {
        "rank": int(run.model.rank),
        "input_names": names,
        "coordinates": "kappa on the columns of the SVD-normalised m; x* = m kappa + W_in u",
        "time_unit": "tau",
        "inputs": {},
    }
    for item in inputs:
        fp = find_fixed_points(run.model, item.values, seed=seed)
        entry = {"source": item.source, **fp.to_json_dict()}
        entry["input"] = dict(zip(names, item.values.tolist()))
        result["inputs"][item.name] = entry
        log.info("fixed points under %s: %s", item.name, fp.counts())
    return result


POPULATION_RULES = ("auto", "task", "bic")


def populations_json(run: Run, seed: int = 0, rule: str = "auto") -> tuple[Any, dict[str, Any]]:
    """Gaussian-mixture populations of the units' loadings, with neuron ids.

    *rule* chooses the number of populations: ``"bic"`` (lowest BIC among seed-stable
    numbers), ``"task"`` (fewest stable populations whose resampled networks perform the
    task, :func:`lrfit.analysis.choose_populations_by_task`) or ``"auto"`` (``"task"``
    when the run has a task and a readout, else ``"bic"``).
    """
    from ..analysis import choose_populations_by_task, fit_populations

    check_choice(rule, POPULATION_RULES, "population rule")
    can_score = run.task is not None and int(getattr(run.model, "n_outputs", 0)) > 0
    if rule == "task" and not can_score:
        raise LrfitError(
            "The population rule 'task' needs a task and a readout, and this run has "
            f"{'no task' if run.task is None else 'no readout'}; use --population-rule bic or give --teacher DIR."
        )

    fold = str(getattr(run.model, "nonlinearity", "tanh")) in ("tanh", "identity")
    # 10 EM starts per fit: with fewer, the seeds land in different local optima, the ARI
    # stability rule fails and real populations are reported as one (seen on CDM teachers).
    pops = fit_populations(
        run.model, seed=seed, input_names=run.input_names, output_names=run.output_names, fold_signs=fold, n_init=10
    )
    if rule != "bic" and can_score:
        pops = choose_populations_by_task(pops, run.model, run.task, seed=seed)
    d = pops.to_json_dict()
    d["neuron_ids"] = run.neuron_ids
    d["labels_by_neuron"] = {nid: int(lab) for nid, lab in zip(run.neuron_ids, pops.labels)}
    d["readout"] = run.readout
    return pops, d


def overlaps_json(run: Run) -> dict[str, Any]:
    """Overlap matrices with their row/column names."""
    from ..analysis import connectivity_stats

    d = connectivity_stats(run.model).to_json_dict()
    r = int(run.model.rank)
    d.update(
        n_units=int(run.model.n_units),
        rows=[f"n_{k + 1}" for k in range(r)],
        columns=[f"m_{k + 1}" for k in range(r)],
        input_names=run.input_names,
        output_names=run.output_names,
        readout=run.readout,
        definition="sigma_ab = sum_i a_i b_i / N",
    )
    return d


def latent_arrays(run: Run, activity: RunActivity) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays of ``latents.npz`` (:data:`LATENT_KEYS`) and the JSON summary."""
    from ..analysis import latent_trajectories

    lat = latent_trajectories(run.model, activity.currents)
    arrays: dict[str, np.ndarray] = {k: np.asarray(v, np.float32) for k, v in lat.arrays().items()}
    arrays.update(
        time=np.asarray(activity.time, float),
        mask=np.asarray(activity.mask, bool),
        inputs=np.asarray(activity.inputs, np.float32),
        input_names=np.asarray(run.input_names, dtype=str),
        neuron_ids=np.asarray(run.neuron_ids, dtype=str),
        var_recurrent=np.asarray(lat.var_recurrent),
        var_input=np.asarray(lat.var_input),
        var_total_explained=np.asarray(lat.var_total_explained),
    )
    cols = [str(c) for c in activity.conditions.columns]
    arrays["condition_columns"] = np.asarray(cols, dtype=str)
    for col in cols:
        values = activity.conditions[col]
        arrays[f"cond_{col}"] = (
            values.to_numpy() if pd.api.types.is_numeric_dtype(values) else values.astype(str).to_numpy(dtype=str)
        )
    summary = lat.to_json_dict()
    summary.update(source=activity.source, n_trials=int(activity.currents.shape[0]), keys=LATENT_KEYS)
    return arrays, summary


def resample_json(
    run: Run, pops: Any, n_trials: int = 512, seeds: int = 3, seed: int = 0, n_units: int | None = None
) -> dict[str, Any] | None:
    """Task accuracy of the network and of networks resampled from its populations.

    Networks of ``n_units`` units (default ``max(N, 1024)``: the statistics, not the
    size, are under test, and small draws add finite-size noise) are drawn from the
    population mixture
    (``y_i ~ N(mu^{p_i}, Sigma^{p_i})``) and from the single moment-matched Gaussian
    (:meth:`MixtureStats.merged`), ``seeds`` draws each, and scored without private
    noise on the same ``n_trials`` task trials.  ``None`` without a task or readout.
    """
    from ..analysis import evaluate_on_task, sample_network

    if run.task is None or int(run.model.n_outputs) == 0:
        return None
    trials = run.task.generate(int(n_trials), seed=10_000 + int(seed))
    by = "context" if "context" in trials.conditions.columns else None

    def acc(net: Any) -> dict[str, Any]:
        ev = evaluate_on_task(net, run.task, trials=trials, by=by)
        out = {"accuracy": ev.accuracy}
        if ev.accuracy_by is not None:
            out["accuracy_by"] = {str(r[by]): float(r["accuracy"]) for _, r in ev.accuracy_by.iterrows()}
        return out

    n = int(n_units) if n_units is not None else max(int(run.model.n_units), 1024)
    result: dict[str, Any] = {
        "n_units": n,
        "n_trials": int(n_trials),
        "n_populations": int(pops.n_populations),
        "network": acc(run.model),
    }
    for key, single in (("mixture", False), ("single_gaussian", True)):
        draws = [
            acc(sample_network(pops, n, seed=seed + s, template=run.model, single_gaussian=single))
            for s in range(seeds)
        ]
        result[key] = {
            "accuracy": [d["accuracy"] for d in draws],
            "accuracy_mean": float(np.mean([d["accuracy"] for d in draws])),
            "draws": draws,
        }
    log.info(
        "resampled networks: mixture %.3f, single Gaussian %.3f (network %.3f)",
        result["mixture"]["accuracy_mean"], result["single_gaussian"]["accuracy_mean"], result["network"]["accuracy"],
    )
    return result


def readout_columns(fit: Any, n_units: int) -> dict[str, np.ndarray]:
    """A counts fit's per-unit Poisson readout: ``readout_gain``, ``readout_offset`` (NaN for hidden units).

    Parameters
    ----------
    fit : LowRankFit
        A fit whose observation model has a learnt readout (spike counts).
    n_units : int
        Units of its network (recorded neurons first).

    Returns
    -------
    dict of str to ndarray
        ``(n_units,)`` columns.
    """
    out = {}
    for name, values in (("readout_gain", fit.readout_.gain), ("readout_offset", fit.readout_.bias)):
        column = np.full(int(n_units), np.nan)
        column[: values.shape[0]] = values.detach().cpu().numpy()
        out[name] = column
    return out


def readout_by_population(readout: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of the readout gain size ``|a_i|`` and offset of each population's recorded units.

    The gain's sign is not defined (negating a tanh unit's current, its loadings and its
    gain leaves the fit unchanged), so its size is summarised.
    """
    gain = np.abs(readout["readout_gain"])
    out = {}
    for pop in sorted(set(int(v) for v in labels)):
        sel = (np.asarray(labels) == pop) & np.isfinite(gain)
        if sel.any():
            out[str(pop)] = {"n_recorded": int(sel.sum()), "abs_gain_mean": float(gain[sel].mean()),
                             "abs_gain_std": float(gain[sel].std()),
                             "offset_mean": float(readout["readout_offset"][sel].mean()),
                             "offset_std": float(readout["readout_offset"][sel].std())}
    return out


def analysis_files(run: Run) -> tuple[str, ...]:
    """Files :func:`analyze_run` always writes for this run (``resample.json`` depends on the task)."""
    files = (FIXED_POINTS_FILE, POPULATIONS_FILE, OVERLAPS_FILE, LOADINGS_FILE)
    return files if run.missing_data_reason is not None else (*files, LATENTS_FILE, LATENTS_SUMMARY_FILE)


def analyze_run(
    run: RunDir | str | Path,
    inputs: list[str] | None = None,
    teacher: str | Path | None = None,
    rank: int | None = None,
    split: str = "all",
    n_trials: int = 256,
    seed: int = 0,
    resample: bool = True,
    population_rule: str = "auto",
) -> dict[str, Path]:
    """Run every analysis of a low-rank run and write ``RUN/analysis/`` (see the module docstring).

    Parameters
    ----------
    run : RunDir, str or Path
        An open run or a run directory (``lrfit fit``, ``lrfit teacher``, ``LowRankFit.save``).
    inputs : list of str, optional
        Constant inputs for the fixed points (:func:`parse_input_specs`).
    teacher : str or Path, optional
        Teacher directory (overrides the one the run records); only with a path.
    rank : int, optional
        Rank of a rank list to analyse (default the chosen one); only with a path.
    split : {"all", "train", "test"}
        Fitted runs: trials whose latents are computed.
    n_trials, seed : int
        Task-trained runs: generated trials; seed of every random step.
    resample : bool
        Also score resampled networks on the task (when there is one).
    population_rule : {"auto", "task", "bic"}
        How the number of populations is chosen (:func:`populations_json`).

    Returns
    -------
    dict of str to Path
        File written per key.
    """
    from ..analysis import loading_table

    run = load_context(run, teacher=teacher, rank=rank, command="analyze")
    no_data = run.missing_data_reason
    if no_data is None:
        activity = run.activity(split=split, n_trials=n_trials, seed=seed)
    else:
        check_choice(split, SPLITS, "split")
        activity = None
        log.warning("Latent trajectories (%s, %s) skipped: %s; the fixed points, populations, overlaps and loadings "
                    "need only the network and are written.", LATENTS_FILE, LATENTS_SUMMARY_FILE, no_data)
    named = parse_input_specs(inputs, run.input_names, activity)
    files: dict[str, Path] = {}
    files["fixed_points"] = run.write_analysis(FIXED_POINTS_FILE, fixed_points_json(run, named, seed=seed))
    pops, pop_d = populations_json(run, seed=seed, rule=population_rule)
    files["populations"] = run.write_analysis(POPULATIONS_FILE, pop_d)
    files["overlaps"] = run.write_analysis(OVERLAPS_FILE, overlaps_json(run))
    table = loading_table(run.model, run.neuron_ids, run.input_names, run.output_names)
    table["population"] = pops.labels
    if run.fit is not None and run.fit.readout_ is not None:  # the learnt readout of each recorded neuron
        readout = readout_columns(run.fit, run.model.n_units)
        for column, values in readout.items():
            table[column] = values
        pop_d["readout_by_population"] = readout_by_population(readout, pops.labels)
        files["populations"] = run.write_analysis(POPULATIONS_FILE, pop_d)
    files["loadings"] = run.write_analysis(LOADINGS_FILE, table)
    if activity is not None:
        arrays, summary = latent_arrays(run, activity)
        files["latents"] = run.write_analysis(LATENTS_FILE, arrays)
        files["latents_summary"] = run.write_analysis(LATENTS_SUMMARY_FILE, summary)
    if resample:
        res = resample_json(run, pops, seed=seed)
        if res is not None:
            files["resample"] = run.write_analysis(RESAMPLE_FILE, res)
    return files
