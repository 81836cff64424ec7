"""Inactivation: silence groups of neurons and predict the effect on behaviour and dynamics.

Silencing a set ``S`` of units clamps their output rates to zero, ``r_i = phi(x_i) -> 0``
for ``i in S``, which is the same as removing their columns from the recurrent
connectivity and their rows from the readout.  With ``D_S = diag(1 - 1[i in S])``:

    x_dot = -x + J D_S phi(x) + W_in u,      z = W_out^T D_S phi(x) / N

For a low-rank network ``J D_S = m (D_S n)^T / N``: the silenced units' rows of ``n``
(and of ``W_out``) are zeroed, so the network stays low-rank with the same ``m``
(the latent space does not move) and overlaps
``sigma^S_{n_k m_l} = sum_{i not in S} n_ik m_il / N``.  For a full-rank network the
columns ``J[:, S]`` are zeroed.  The silenced units still receive input; their own
currents just no longer reach anyone.

The prediction is the change of the task readout, the accuracy per context and the
psychometric curves, and the change of the latent trajectories ``kappa(t)``.  When
the network was fitted to a teacher, the same silencing applied to the teacher gives
the ground truth, and :func:`compare_inactivation` reports their agreement.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import binomtest

from ..errors import LrfitError
from ._common import jsonable, to_numpy
from .resample import run_network

__all__ = [
    "InactivationAgreement",
    "InactivationResult",
    "attach_teacher_readout",
    "compare_inactivation",
    "groups_from_labels",
    "map_groups",
    "paired_change_pvalue",
    "predict_inactivation",
    "random_subset",
    "resolve_groups",
    "silence",
]

#: Name of the reference (nothing silenced) row of the tables.
CONTROL = "control"


def _check_units(units: Any, n_units: int, what: str = "group") -> np.ndarray:
    idx = np.unique(np.asarray(list(units) if not isinstance(units, np.ndarray) else units, dtype=np.int64).ravel())
    if idx.size and (idx.min() < 0 or idx.max() >= n_units):
        raise LrfitError(
            f"The {what} lists unit indices {idx.min()}..{idx.max()} but the network has units 0..{n_units - 1}; use "
            "indices in that range."
        )
    return idx


@torch.no_grad()
def silence(model: Any, units: Any) -> Any:
    """A copy of *model* with the rates of *units* clamped to zero.

    Implements ``J -> J D_S`` and ``W_out -> D_S W_out`` with
    ``D_S = diag(1 - 1[i in S])``: for a :class:`~lrfit.models.LowRankRNN` the rows
    ``n[S]`` and ``w_out[S]`` are zeroed (``J D_S = m (D_S n)^T / N``); for a
    :class:`~lrfit.models.FullRankRNN` the columns ``J[:, S]`` and rows ``w_out[S]``.
    The original network is not modified.

    Parameters
    ----------
    model : RNNBase
        The network.
    units : sequence of int
        Indices of the silenced units (may be empty: an unchanged copy).

    Returns
    -------
    RNNBase
        The silenced copy.
    """
    idx = _check_units(units, int(model.n_units))
    out = copy.deepcopy(model)
    if idx.size == 0:
        return out
    t = torch.as_tensor(idx, device=out.w_in.device)
    if hasattr(out, "n") and hasattr(out, "m"):
        out.n[t] = 0.0
    elif hasattr(out, "j"):
        out.j[:, t] = 0.0
    else:
        raise LrfitError(
            f"Cannot silence units of a '{type(model).__name__}': it has neither low-rank factors nor a dense J."
        )
    if out.n_outputs:
        out.w_out[t] = 0.0
    return out


def random_subset(units: Sequence[int] | np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """A random ``fraction`` of *units* (``round(fraction * len(units))`` of them, sorted), seeded.

    Parameters
    ----------
    units : sequence of int
        Candidate units (e.g. one population).
    fraction : float
        In ``[0, 1]``.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    ndarray of int
    """
    if not 0.0 <= float(fraction) <= 1.0:
        raise LrfitError(f"fraction must lie in [0, 1], got {fraction}.")
    units = np.asarray(units, dtype=np.int64)
    k = int(round(float(fraction) * units.size))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(units, size=k, replace=False)) if k else np.zeros(0, np.int64)


def groups_from_labels(labels: Any, prefix: str = "pop") -> dict[str, np.ndarray]:
    """One group per population label: ``{"pop0": units with label 0, ...}``."""
    lab = np.asarray(labels).astype(int)
    return {f"{prefix}{p}": np.flatnonzero(lab == p) for p in np.unique(lab)}


def resolve_groups(
    spec: Mapping[str, Any], n_units: int, labels: Any = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Turn a group specification into ``{name: unit indices}``.

    Each value of *spec* is one of

    - a list of unit indices;
    - ``{"units": [...]}``;
    - ``{"population": p}`` — every unit whose label is ``p`` (needs *labels*);
    - ``{"population": p, "fraction": f}`` or ``{"units": [...], "fraction": f}`` — a
      random fraction ``f`` of those units (seeded by ``seed`` plus an optional
      ``"seed"`` in the entry).

    Parameters
    ----------
    spec : mapping
        Group name -> specification.
    n_units : int
        Size of the network (indices are checked against it).
    labels : array-like of int, optional
        Population label per unit.
    seed : int
        Base seed of the random fractions.

    Returns
    -------
    dict of str to ndarray
    """
    out: dict[str, np.ndarray] = {}
    lab = None if labels is None else np.asarray(labels).astype(int)
    for i, (name, value) in enumerate(spec.items()):
        if isinstance(value, Mapping):
            unknown = set(value) - {"units", "population", "fraction", "seed"}
            if unknown:
                raise LrfitError(
                    f"Group '{name}' has unknown key(s) {sorted(unknown)}; use 'units', 'population', 'fraction', "
                    "'seed'."
                )
            if "population" in value:
                if lab is None:
                    raise LrfitError(
                        f"Group '{name}' names population {value['population']} but no population labels are "
                        "available; run 'lrfit analyze' first or list the units."
                    )
                units = np.flatnonzero(lab == int(value["population"]))
                if units.size == 0:
                    raise LrfitError(
                        f"Group '{name}': population {value['population']} has no units; populations are "
                        f"{sorted(set(lab.tolist()))}."
                    )
            elif "units" in value:
                units = _check_units(value["units"], n_units, f"group '{name}'")
            else:
                raise LrfitError(f"Group '{name}' needs 'units' or 'population'.")
            if "fraction" in value:
                units = random_subset(units, float(value["fraction"]), seed=seed + 1000 * i + int(value.get("seed", 0)))
            out[str(name)] = units
        else:
            out[str(name)] = _check_units(value, n_units, f"group '{name}'")
    if not out:
        raise LrfitError("No groups to silence; give at least one group.")
    return out


def map_groups(groups: Mapping[str, Any], neuron_ids: Sequence[Any] | None, n_target: int) -> dict[str, np.ndarray]:
    """Translate groups of student units into the teacher's unit indices.

    Student unit ``i < len(neuron_ids)`` is teacher unit ``int(neuron_ids[i])``; hidden
    student units (``i >= len(neuron_ids)``) have no counterpart and are dropped.
    Without ids the indices are kept (same network size assumed).

    Returns
    -------
    dict of str to ndarray
        Teacher unit indices per group.
    """
    out = {}
    for name, units in groups.items():
        units = np.asarray(units, dtype=np.int64)
        if neuron_ids is None:
            mapped = units
        else:
            ids = np.asarray([int(v) for v in neuron_ids], dtype=np.int64)
            mapped = ids[units[units < ids.size]]
        out[str(name)] = _check_units(mapped, n_target, f"teacher group '{name}'")
    return out


@torch.no_grad()
def attach_teacher_readout(student: Any, teacher: Any, neuron_ids: Sequence[Any] | None = None) -> Any:
    """A copy of *student* that reads out the task through the teacher's readout.

    Student unit ``i`` stands for teacher unit ``id_i``; with the library's ``1/N``
    readout ``z = W_out^T r / N``, the student gets
    ``w_out^s_i = (N_s / N_t) w_out^t_{id_i}`` for its recorded units and 0 for hidden
    units, so that ``z^s = z^t`` when the student's rates equal the teacher's.

    Parameters
    ----------
    student, teacher : RNNBase
        Fitted network and the network it was fitted to.
    neuron_ids : sequence, optional
        Teacher index of each recorded student unit (default ``0..N_t-1``, capped at
        the student size).

    Returns
    -------
    RNNBase
        The student copy with ``n_outputs = teacher.n_outputs``.
    """
    ids = (
        np.arange(min(student.n_units, teacher.n_units))
        if neuron_ids is None
        else np.asarray([int(v) for v in neuron_ids])
    )
    if ids.size > student.n_units or (ids.size and (ids.min() < 0 or ids.max() >= teacher.n_units)):
        raise LrfitError(
            f"neuron ids do not map the student's units onto the teacher's {teacher.n_units} units; check the fit's "
            "neuron_ids."
        )
    cfg = student.config()
    cfg["n_outputs"] = int(teacher.n_outputs)
    new = type(student)(**cfg, device=student.device)
    state = {k: v for k, v in student.state_dict().items() if k != "w_out"}
    new.load_state_dict(state, strict=False)
    w = torch.zeros(student.n_units, teacher.n_outputs, device=student.device)
    w[: ids.size] = teacher.w_out.detach()[torch.as_tensor(ids)].to(student.device) * (
        student.n_units / teacher.n_units
    )
    new.w_out.copy_(w)
    new.eval()
    return new


@dataclass(frozen=True)
class InactivationResult:
    """Predicted effect of silencing groups of units.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (group, context): ``group``, ``context`` (``"all"`` for every
        trial), ``n_silenced``, ``accuracy``, ``accuracy_control``,
        ``delta_accuracy`` (silenced minus control), ``output_change`` (root mean
        square over trials and decision-epoch steps of ``z_S - z``, or over all
        steps when the task has no decision epoch), ``latent_change`` (RMS of
        ``kappa_S(t) - kappa(t)`` over trials and time, ``kappa = Q_M^T x``),
        ``n_trials``, ``trials_lost`` / ``trials_gained`` (correct trials that became
        errors / errors that became correct, ``task.correct``) and ``p_value`` of the
        change (:func:`paired_change_pvalue`).
        The ``control`` group (nothing silenced) is included.
    psychometric : pandas.DataFrame or None
        The task's psychometric table with a ``group`` column (control included).
    groups : dict of str to ndarray
        The silenced units of each group.
    by : str or None
        Condition column the contexts come from.
    outputs : dict of str to ndarray
        Readout ``(K, T, O)`` per group (control included).
    latents : dict of str to ndarray
        ``kappa`` ``(K, T, R)`` per group (low-rank networks only; empty otherwise).
    """

    table: pd.DataFrame
    psychometric: pd.DataFrame | None
    groups: dict[str, np.ndarray]
    by: str | None
    outputs: dict[str, np.ndarray]
    latents: dict[str, np.ndarray]

    def to_json_dict(self) -> dict[str, Any]:
        """Table, psychometric table and groups (no trajectories)."""
        return jsonable(
            {
                "by": self.by,
                "groups": {k: v for k, v in self.groups.items()},
                "table": self.table.to_dict(orient="records"),
                "psychometric": None if self.psychometric is None else self.psychometric.to_dict(orient="records"),
            }
        )


def paired_change_pvalue(lost: int, gained: int) -> float:
    """Two-sided exact McNemar test that silencing changes the accuracy on the same trials.

    Of the trials whose outcome differs between the intact and the silenced network,
    ``lost`` became errors and ``gained`` became correct.  Without an effect each
    discordant trial goes either way with probability 1/2, so

        p = P(|B - k/2| >= |lost - k/2|),   B ~ Binomial(k = lost + gained, 1/2)

    (``scipy.stats.binomtest``); ``p = 1`` when no trial changed.

    Parameters
    ----------
    lost, gained : int
        Discordant trial counts.

    Returns
    -------
    float
        The p-value.
    """
    lost, gained = int(lost), int(gained)
    if lost < 0 or gained < 0:
        raise LrfitError(f"Trial counts must be >= 0, got lost={lost}, gained={gained}.")
    if lost + gained == 0:
        return 1.0
    return float(binomtest(lost, lost + gained, 0.5).pvalue)


def _output_mask(trials: Any) -> np.ndarray:
    try:
        return np.asarray(trials.epoch_mask("decision"), bool)
    except Exception:  # noqa: BLE001 - tasks without a decision epoch: use every valid step
        valid = getattr(trials, "valid", None)
        return np.ones(np.asarray(trials.inputs).shape[:2], bool) if valid is None else np.asarray(valid, bool)


def predict_inactivation(
    model: Any,
    task: Any,
    groups: Mapping[str, Any],
    trials: Any = None,
    n_trials: int = 256,
    seed: int = 0,
    by: str | None = "context",
) -> InactivationResult:
    """Simulate the network with each group silenced and measure the change.

    For each group ``S`` the silenced network (:func:`silence`,
    ``x_dot = -x + J D_S phi(x) + W_in u``, ``z = W_out^T D_S phi(x) / N``) is run
    without private noise on the same trials as the intact network; reported are
    ``acc_S - acc`` per context (the mean of ``task.correct``) with the exact paired test of that
    change (:func:`paired_change_pvalue` on the trials lost and gained), the psychometric curves, the RMS
    readout change ``sqrt(<(z_S - z)^2>)`` over the decision epoch and the RMS
    latent change ``sqrt(<|kappa_S - kappa|^2>)`` with ``kappa = Q_M^T x`` (low-rank
    networks; silencing leaves ``m`` and hence ``Q_M`` unchanged).

    Parameters
    ----------
    model : RNNBase
        Network with a readout.
    task : Task
        Supplies trials, ``correct`` and ``psychometric``.
    groups : mapping of str to sequence of int
        Silenced units per group (see :func:`resolve_groups`).
    trials : TaskTrials, optional
        Trials (default ``task.generate(n_trials, seed)``).
    n_trials, seed : int
        Trials generated when *trials* is not given.
    by : str or None
        Condition column for per-context rows (ignored if the trials lack it).

    Returns
    -------
    InactivationResult
    """
    if getattr(model, "n_outputs", 0) == 0:
        raise LrfitError(
            "The network has no readout, so its behaviour cannot be predicted; give a teacher (--teacher DIR) whose "
            "readout it can borrow."
        )
    if trials is None:
        trials = task.generate(n_trials, seed=seed)
    n = int(model.n_units)
    groups = {str(k): _check_units(v, n, f"group '{k}'") for k, v in groups.items()}
    if CONTROL in groups:
        raise LrfitError(f"'{CONTROL}' is reserved for the intact network; rename that group.")
    cond = trials.conditions
    by = by if by is not None and by in cond.columns else None
    contexts: list[tuple[str, np.ndarray]] = [("all", np.arange(len(cond)))]
    if by is not None:
        contexts += [(str(v), idx) for v, idx in cond.groupby(by, sort=True).indices.items()]
    qm = None
    if hasattr(model, "m"):
        qm = np.linalg.qr(to_numpy(model.m))[0]
    omask = _output_mask(trials)

    def simulate(net: Any) -> tuple[np.ndarray, np.ndarray | None]:
        traj = run_network(net, trials.inputs, noise_std=0.0)
        out = to_numpy(traj.outputs)
        lat = None if qm is None else to_numpy(traj.currents) @ qm
        return out, lat

    outputs: dict[str, np.ndarray] = {}
    latents: dict[str, np.ndarray] = {}
    out0, lat0 = simulate(model)
    outputs[CONTROL] = out0
    if lat0 is not None:
        latents[CONTROL] = lat0
    correct0 = task.correct(out0, trials)
    rows = []
    psy = []
    has_psy = True
    for name, units in [(CONTROL, np.zeros(0, np.int64))] + list(groups.items()):
        if name == CONTROL:
            out, lat, correct = out0, lat0, correct0
        else:
            out, lat = simulate(silence(model, units))
            correct = task.correct(out, trials)
            outputs[name] = out
            if lat is not None:
                latents[name] = lat
        for ctx, idx in contexts:
            acc, acc0 = float(np.mean(correct[idx])), float(np.mean(correct0[idx]))
            lost = int(np.sum(correct0[idx] & ~correct[idx]))
            gained = int(np.sum(~correct0[idx] & correct[idx]))
            diff = (out[idx] - out0[idx])[omask[idx]]
            row = {
                "group": name,
                "context": ctx,
                "n_silenced": int(units.size),
                "accuracy": acc,
                "accuracy_control": acc0,
                "delta_accuracy": acc - acc0,
                "output_change": float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0,
                "latent_change": float(np.sqrt(np.mean(((lat[idx] - lat0[idx]) ** 2).sum(-1))))
                if lat is not None
                else float("nan"),
                "n_trials": int(idx.size),
                "trials_lost": lost,
                "trials_gained": gained,
                "p_value": paired_change_pvalue(lost, gained),
            }
            rows.append(row)
        if has_psy and hasattr(task, "psychometric"):
            try:
                p = task.psychometric(out, trials)
            except LrfitError:
                has_psy = False
            else:
                p.insert(0, "group", name)
                psy.append(p)
    return InactivationResult(
        table=pd.DataFrame(rows),
        psychometric=pd.concat(psy, ignore_index=True) if psy else None,
        groups=groups,
        by=by,
        outputs=outputs,
        latents=latents,
    )


@dataclass(frozen=True)
class InactivationAgreement:
    """Agreement between predicted (fitted network) and actual (teacher) inactivation effects.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (group, context) excluding the control and the ``"all"`` rows
        when contexts exist: ``accuracy_pred``, ``accuracy_true``, ``delta_pred``,
        ``delta_true``, ``p_pred``, ``p_true`` (paired test of each change, NaN for a
        table without ``p_value``), ``sign_pred``, ``sign_true`` (``-1, 0, +1``: 0 unless
        the change exceeds ``tol`` and is significant at ``alpha``), ``sign_agree``,
        ``gap`` = ``|accuracy_pred - accuracy_true|``.
    sign_agreement : float
        Fraction of rows with the same sign of change.
    mean_abs_gap : float
        Mean of ``gap`` over rows.
    mean_abs_delta_gap : float
        Mean of ``|delta_pred - delta_true|`` (removes any baseline accuracy offset).
    tol : float
        Smallest accuracy change that counts as a change.
    alpha : float
        Significance level of the paired test for a change to count.
    """

    table: pd.DataFrame
    sign_agreement: float
    mean_abs_gap: float
    mean_abs_delta_gap: float
    tol: float
    alpha: float = 0.05

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return jsonable(
            {
                "sign_agreement": self.sign_agreement,
                "mean_abs_gap": self.mean_abs_gap,
                "mean_abs_delta_gap": self.mean_abs_delta_gap,
                "tol": self.tol,
                "alpha": self.alpha,
                "table": self.table.to_dict(orient="records"),
            }
        )


def compare_inactivation(
    predicted: InactivationResult, actual: InactivationResult, tol: float = 0.01, alpha: float = 0.05
) -> InactivationAgreement:
    """Compare a fitted network's predicted inactivation effects with the teacher's actual ones.

    Per group ``g`` and context ``c`` the change ``delta = acc_S - acc`` of each network
    gets the sign ``s = sign(delta)`` if ``|delta| > tol`` and the paired exact test of
    the change (:func:`paired_change_pvalue`, same trials with and without silencing)
    gives ``p < alpha``, else ``s = 0`` (no change); agreement is ``s_pred == s_true`` and
    ``gap = |acc_pred(g, c) - acc_true(g, c)|``.  Summaries are the fraction of agreeing
    signs and ``mean_abs_gap = mean_{g,c} gap``.  Tables without a ``p_value`` column
    use ``tol`` alone.

    Parameters
    ----------
    predicted, actual : InactivationResult
        Results of :func:`predict_inactivation` on the student and on the teacher
        with the same group names and trials.
    tol : float
        Accuracy changes with ``|delta| <= tol`` count as no change.
    alpha : float
        Changes whose paired test gives ``p >= alpha`` count as no change.

    Returns
    -------
    InactivationAgreement
    """
    if not 0.0 < float(alpha) <= 1.0:
        raise LrfitError(f"alpha must lie in (0, 1], got {alpha}.")
    keys = ["group", "context"]
    a = predicted.table[predicted.table["group"] != CONTROL]
    b = actual.table[actual.table["group"] != CONTROL]
    if (a["context"] != "all").any():
        a, b = a[a["context"] != "all"], b[b["context"] != "all"]
    cols = keys + ["accuracy", "delta_accuracy", "p_value"]
    a, b = (t.reindex(columns=cols) for t in (a, b))
    merged = a.merge(b, on=keys, suffixes=("_pred", "_true"))
    if merged.empty:
        raise LrfitError(
            "The predicted and actual inactivation tables share no (group, context) rows; run both with the same "
            "groups and trials."
        )
    merged = merged.rename(columns={"delta_accuracy_pred": "delta_pred", "delta_accuracy_true": "delta_true",
                                    "p_value_pred": "p_pred", "p_value_true": "p_true"})

    def sgn(d: pd.Series, p: pd.Series) -> np.ndarray:
        d, p = d.to_numpy(float), p.to_numpy(float)
        changed = (np.abs(d) > tol) & (np.isnan(p) | (p < alpha))
        return np.where(changed, np.sign(d), 0.0).astype(int)

    merged["sign_pred"] = sgn(merged["delta_pred"], merged["p_pred"])
    merged["sign_true"] = sgn(merged["delta_true"], merged["p_true"])
    merged["sign_agree"] = merged["sign_pred"] == merged["sign_true"]
    merged["gap"] = (merged["accuracy_pred"] - merged["accuracy_true"]).abs()
    return InactivationAgreement(
        table=merged,
        sign_agreement=float(merged["sign_agree"].mean()),
        mean_abs_gap=float(merged["gap"].mean()),
        mean_abs_delta_gap=float((merged["delta_pred"] - merged["delta_true"]).abs().mean()),
        tol=float(tol),
        alpha=float(alpha),
    )
