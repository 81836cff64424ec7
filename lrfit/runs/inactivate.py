"""``lrfit inactivate``: silence groups of units in a run's network and predict the effect.

Silencing a set ``S`` clamps the units' rates to zero (``J -> J D_S``,
``W_out -> D_S W_out``, ``D_S = diag(1 - 1[i in S])``; :func:`lrfit.analysis.silence`).
The network is scored on task trials with each group silenced
(:func:`lrfit.analysis.predict_inactivation`); when the run was fitted to a teacher,
the same neurons are silenced in the teacher and the predicted accuracies are
compared with the actual ones (:func:`lrfit.analysis.compare_inactivation`: sign
agreement of ``delta = acc_S - acc`` per group and context, a change counting when it
exceeds 0.01 and the exact paired test on the same trials gives ``p < 0.05``; mean
``|acc_pred - acc_true|``).

Files written to ``RUN/analysis/`` (names in :mod:`lrfit.runs.layout`):

``inactivation.csv``
    One row per (group, context): ``group``, ``context``, ``n_silenced``, ``accuracy``,
    ``accuracy_control``, ``delta_accuracy``, ``output_change``, ``latent_change``,
    ``n_trials``, ``trials_lost``, ``trials_gained``, ``p_value`` (paired test of the change)
    and, with a teacher, ``accuracy_teacher``, ``delta_teacher``, ``p_value_teacher``,
    ``sign_agree``, ``gap``.
``inactivation.json``
    ``groups`` (neuron ids), ``fraction``, ``n_trials``, ``predicted`` and ``teacher``
    (tables and psychometric curves), ``agreement`` (``sign_agreement``,
    ``mean_abs_gap``, ``mean_abs_delta_gap``, per-row table) or ``null``, ``rank`` (the
    rank used and why) and ``rank_check`` (below) or ``null`` with ``rank_check_note``.

The rank.  On a rank list (``model.rank: [1, 2, ...]``) the network silenced is the rank
chosen on held-out data (``rank_selection.json``) unless ``--rank`` names another.  A
rank-1 student is known to mispredict silencing a sub-population whose drive the teacher
spreads over more than one direction (it funnels it through its one latent), so when the
list holds ranks 1 and 2 the same groups are silenced on the same trials in both, and
``rank_check`` (``sign_agreement`` and per-row table of :func:`lrfit.analysis.compare_inactivation`
with rank 1 as "pred" and rank 2 as "true", plus ``disagreements``: the rows whose sign of
change differs) says where the rank-1 prediction disagrees in sign with the rank-2 one.
``inactivation.png``
    Predicted accuracy per group and context, the teacher's actual accuracy as diamonds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError
from .analyze import populations_json
from .groups import read_group_file
from .layout import (
    ANALYSIS_DIR,
    INACTIVATION_CSV,
    INACTIVATION_JSON,
    INACTIVATION_PNG,
    POPULATIONS_FILE,
    RANK_SELECTION_FILE,
    RunDir,
)
from .run import Run, load_context

log = logging.getLogger(__name__)

__all__ = [
    "INACTIVATION_CSV",
    "INACTIVATION_JSON",
    "INACTIVATION_PNG",
    "TEACHER_COLUMNS",
    "inactivate_run",
    "merged_table",
    "population_labels",
    "resolve_run_groups",
]


def population_labels(run: Run, seed: int = 0) -> np.ndarray:
    """Population label per unit: from ``analysis/populations.json`` if it matches the run, else fitted (and saved)."""
    saved = run.read_analysis(POPULATIONS_FILE)
    if saved and saved.get("neuron_ids") == run.neuron_ids and len(saved.get("labels", [])) == len(run.neuron_ids):
        return np.asarray(saved["labels"], int)
    if not run.is_lowrank:
        raise LrfitError(
            f"--groups populations needs a low-rank network but '{run.model_dir}' holds a {run.kind} one; pass a "
            "group FILE instead."
        )
    log.info("no matching %s; fitting populations", POPULATIONS_FILE)
    pops, d = populations_json(run, seed=seed)
    run.write_analysis(POPULATIONS_FILE, d)
    return np.asarray(pops.labels, int)


def resolve_run_groups(run: Run, groups: str, fraction: float | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Unit indices per group for ``--groups populations|FILE`` and ``--fraction``."""
    from ..analysis import groups_from_labels
    from ..analysis.network_inactivation import random_subset

    n = int(run.model.n_units)
    if groups == "populations":
        labels = population_labels(run, seed=seed)
        out = groups_from_labels(labels, prefix="pop")
    else:
        labels = None
        saved = run.read_analysis(POPULATIONS_FILE)
        if saved and len(saved.get("labels", [])) == n:
            labels = saved["labels"]
        out = read_group_file(groups, run.neuron_ids, n, labels=labels, seed=seed)
    if fraction is not None:
        out = {k: random_subset(v, float(fraction), seed=seed + 17 * i) for i, (k, v) in enumerate(out.items())}
    return out


#: Columns of an agreement table added to the prediction table, under their CSV names.
TEACHER_COLUMNS = {"accuracy_true": "accuracy_teacher", "delta_true": "delta_teacher", "p_true": "p_value_teacher",
                   "sign_agree": "sign_agree", "gap": "gap"}


def merged_table(predicted: pd.DataFrame, agreement: pd.DataFrame | None) -> pd.DataFrame:
    """The prediction table with the teacher's columns (:data:`TEACHER_COLUMNS`) per (group, context).

    Parameters
    ----------
    predicted : DataFrame
        ``InactivationResult.table`` (or its JSON records).
    agreement : DataFrame or None
        ``InactivationAgreement.table``; columns it lacks (older files) come out empty.

    Returns
    -------
    DataFrame
        The rows of *predicted*; rows without a teacher counterpart (control, ``"all"``) get NaN.
    """
    if agreement is None:
        return predicted.copy()
    extra = agreement.reindex(columns=["group", "context", *TEACHER_COLUMNS]).rename(columns=TEACHER_COLUMNS)
    return predicted.merge(extra, on=["group", "context"], how="left")


def inactivate_run(
    run: RunDir | str | Path,
    groups: str = "populations",
    fraction: float | None = None,
    teacher: str | Path | None = None,
    seed: int = 0,
    n_trials: int = 512,
    rank: int | None = None,
    decode: Sequence[str] = (),
) -> dict[str, Any]:
    """Predict the effect of silencing groups of units of a run's network (see the module docstring).

    With a task (teachers and their students) the change of task accuracy is predicted;
    for a fit to recorded data, the change of each neuron's and each population's
    activity, of the latents and of the decodability of the condition variables in
    *decode* (:func:`lrfit.analysis.predict_activity_inactivation`, on the fit's training
    trials).

    Parameters
    ----------
    run : RunDir, str or Path
        An open run or a run directory.
    groups : str
        ``"populations"`` (one group per population of ``analysis/populations.json``,
        fitted now if missing) or a JSON/CSV group file (:mod:`lrfit.runs.groups`).
    fraction : float, optional
        Silence a random fraction of each group instead of all of it.
    teacher : str or Path, optional
        Teacher directory (overrides the one the run records); only with a path.
    seed : int
        Seed of the trials and of the random fractions.
    n_trials : int
        Task trials scored.
    rank : int, optional
        Rank of a rank list (default the chosen one); only with a path.
    decode : sequence of str
        Fits without a task: condition columns decoded from the activity.

    Returns
    -------
    dict
        ``files`` (paths written), ``table`` (the CSV table), ``agreement`` (or ``None``).
    """
    from ..analysis import compare_inactivation, map_groups, predict_inactivation
    from ..plotting import plot_inactivation, save_figure

    if fraction is not None and not 0.0 < float(fraction) <= 1.0:
        raise LrfitError(f"--fraction must lie in (0, 1], got {fraction}.")
    run = load_context(run, teacher=teacher, rank=rank, require_lowrank=groups == "populations", command="inactivate")
    if run.task is None:
        return _inactivate_recorded(run, groups, fraction, seed, decode)
    if int(run.model.n_outputs) == 0:
        raise LrfitError(
            f"The network of '{run.path}' has no readout and no teacher to borrow one from; pass --teacher DIR."
        )
    unit_groups = resolve_run_groups(run, groups, fraction, seed)
    trials = run.task.generate(int(n_trials), seed=20_000 + int(seed))
    pred = predict_inactivation(run.model, run.task, unit_groups, trials=trials)
    actual = agreement = None
    if run.teacher is not None and run.role != "teacher":
        tgroups = map_groups(unit_groups, run.observed_ids, int(run.teacher.n_units))
        actual = predict_inactivation(run.teacher, run.task, tgroups, trials=trials)
        agreement = compare_inactivation(pred, actual)
        log.info(
            "inactivation agreement: signs %.2f, mean |gap| %.3f", agreement.sign_agreement, agreement.mean_abs_gap
        )
    rank_used = _rank_used(run)
    rank_check, rank_note = _rank_check(run, unit_groups, trials, pred, teacher)
    table = merged_table(pred.table, None if agreement is None else agreement.table)
    files = {"csv": run.write_analysis(INACTIVATION_CSV, table, index=False)}
    record = {
        "rank": rank_used,
        "rank_check": None if rank_check is None else rank_check_json(rank_check),
        "rank_check_note": rank_note,
        "groups": {k: [run.neuron_ids[i] for i in v] for k, v in unit_groups.items()},
        "group_source": groups,
        "fraction": fraction,
        "n_trials": int(n_trials),
        "seed": int(seed),
        "readout": run.readout,
        "teacher_dir": None if run.teacher is None else str(run.teacher_dir),
        "predicted": pred.to_json_dict(),
        "teacher": None if actual is None else actual.to_json_dict(),
        "agreement": None if agreement is None else agreement.to_json_dict(),
    }
    files["json"] = run.write_analysis(INACTIVATION_JSON, record)
    title = "Accuracy after silencing\npredicted (bars)" + (" vs teacher (diamonds)" if actual is not None else "")
    fig = plot_inactivation(pred.table, None if actual is None else actual.table, title=title)
    files["png"] = save_figure(fig, run.target(f"{ANALYSIS_DIR}/{INACTIVATION_PNG}"))
    return {"files": files, "table": table, "agreement": agreement, "rank": rank_used, "rank_check": rank_check,
            "rank_check_note": rank_note}


def _rank_used(run: Run) -> dict[str, Any]:
    """Which rank is silenced and why (``rank``, ``how``)."""
    rank = int(getattr(run.model, "rank", 0) or 0) or None
    selection = run.rank_selection
    if run.requested_rank is not None:
        how = "asked for with --rank"
    elif selection and selection.get("chosen_rank") is not None:
        how = (f"chosen on held-out data among ranks {selection.get('ranks')} ({RANK_SELECTION_FILE}); pass --rank "
               "for another")
    else:
        how = "the run's only rank"
    return {"rank": rank, "how": how}


def _rank_check(run: Run, unit_groups: dict[str, np.ndarray], trials: Any, pred: Any,
                teacher: str | Path | None) -> tuple[Any, str | None]:
    """Rank-1 against rank-2 predictions of the same silencing, when the run holds both (module docstring)."""
    from ..analysis import compare_inactivation, predict_inactivation

    ranks = (run.rank_selection or {}).get("ranks") or []
    if not {1, 2} <= {int(r) for r in ranks}:
        return None, "the run does not hold both a rank-1 and a rank-2 fit (a rank list with ranks 1 and 2)"
    results = {}
    for rank in (1, 2):
        if int(getattr(run.model, "rank", 0)) == rank and run.requested_rank in (None, rank):
            results[rank] = pred
            continue
        other = load_context(Run.open(run.path, teacher=teacher if teacher is not None else run.teacher_dir, rank=rank),
                             command="inactivate")
        if list(other.neuron_ids) != list(run.neuron_ids):
            return None, f"the rank-{rank} fit's units are not the same neurons as the rank-{int(run.model.rank)} fit's"
        results[rank] = predict_inactivation(other.model, run.task, unit_groups, trials=trials)
    return compare_inactivation(results[1], results[2]), None


def rank_check_json(check: Any) -> dict[str, Any]:
    """``rank_check`` of ``inactivation.json``: the agreement of rank 1 ("pred") with rank 2 ("true").

    Also the rows whose sign of change differs (``group``, ``context``, ``delta_rank1``, ``p_rank1``,
    ``delta_rank2``, ``p_rank2``).
    """
    d = check.to_json_dict()
    rows = check.table[~check.table["sign_agree"]]
    d["disagreements"] = [
        {
            "group": r["group"],
            "context": r["context"],
            "delta_rank1": float(r["delta_pred"]),
            "p_rank1": float(r["p_pred"]),
            "delta_rank2": float(r["delta_true"]),
            "p_rank2": float(r["p_true"]),
        }
        for _, r in rows.iterrows()
    ]
    return d


def _inactivate_recorded(run: Run, groups: str, fraction: float | None, seed: int,
                         decode: Sequence[str]) -> dict[str, Any]:
    """Inactivation of a fit to recorded data: activity, latents and decoding on the fit's training trials."""
    from ..analysis.decoding_inactivation import predict_activity_inactivation
    from ..plotting import plot_activity_inactivation, save_figure

    data = run.data
    if data is None or run.fit is None:
        raise LrfitError(f"'{run.path}' holds a fitted network but not the data it was fitted to (no config.yaml), "
                         "so the activity under silencing has no trials to run on; fit it with 'lrfit fit'.")
    train = data.train
    unit_groups = resolve_run_groups(run, groups, fraction, seed)
    # a counts fit's activity is its expected firing rate (Hz), what the recording measures
    observe = (lambda traj: run.fit.observe(traj) / float(train.dt)) if run.fit.observation_.counts else None
    result = predict_activity_inactivation(
        run.model, np.asarray(train.inputs), unit_groups, x0=run.fit.initial_states(train),
        mask=np.asarray(train.mask), n_observed=run.n_observed, conditions=train.conditions, decode=decode,
        observe=observe)
    table = result.table
    files = {"csv": run.write_analysis(INACTIVATION_CSV, table, index=False)}
    saved = run.read_analysis(POPULATIONS_FILE)
    labels = saved.get("labels") if saved else None
    record = {
        "kind": "activity",
        "rank": _rank_used(run),
        "rank_check": None,
        "rank_check_note": "the rank-1 against rank-2 check compares signs of accuracy changes, which need a task",
        "groups": {k: [run.neuron_ids[i] for i in v] for k, v in unit_groups.items()},
        "group_source": groups,
        "fraction": fraction,
        "seed": int(seed),
        "trials": "the fit's training trials",
        "activity_unit": "expected rate (Hz)" if observe is not None else "network rate phi(x)",
        "decode": list(decode),
        "predicted": result.to_json_dict(),
        "population_change": None if labels is None else result.population_change(labels).to_dict(orient="index"),
    }
    files["json"] = run.write_analysis(INACTIVATION_JSON, record)
    fig = plot_activity_inactivation(table, title="Silencing each group (fit to recorded data)")
    files["png"] = save_figure(fig, run.target(f"{ANALYSIS_DIR}/{INACTIVATION_PNG}"))
    return {"files": files, "table": table, "agreement": None, "rank": record["rank"], "rank_check": None,
            "rank_check_note": record["rank_check_note"]}
