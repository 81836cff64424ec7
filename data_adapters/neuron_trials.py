"""Single trials of neurons recorded in separate sessions, and split-half hold-out of them.

Neurons of the Mante/TDR pseudo-population layout were recorded in different
sessions: each has its own trials, and their number differs between neurons and
conditions.  :class:`NeuronTrials` keeps them as one NaN-padded array

``responses``  ``(conditions, trials, time, neurons)``, float64

where ``responses[c, :, :, n]`` holds neuron ``n``'s trials of condition ``c`` in its
first slots and NaN in the rest.  A trial slot is *present* for a neuron when it
has at least one finite bin (a NaN inside a present trial marks a missing bin).
Slot ``r`` of two neurons are unrelated trials: only the per-neuron averages are
meaningful across neurons.

Readers: :func:`data_adapters.mat.load_mat_trials` (``mante_unit`` / ``tdr`` files, and
MAT arrays) and :func:`data_adapters.factors.arrays_to_neuron_trials` (NPZ/HDF5/MAT
arrays with a NaN-padded ``trial`` axis); :func:`data_adapters.load.load_neuron_trials` picks by file type.

Split halves (``preprocess.split: {by: halves}``)
-------------------------------------------------
:func:`split_halves` shuffles each neuron's present trials of each condition
independently (``numpy.random.default_rng(seed)``) and gives the first
``ceil(m / 2)`` to train and the other ``floor(m / 2)`` to test (with an odd count
``m`` train has one more), then averages each half into condition means:
two :class:`TrialData` with the same conditions, time bins and neurons, and no
trial in both (:func:`half_assignment` is the assignment itself).  A condition in
which some neuron has fewer than ``min_trials`` (>= 2) trials cannot give that
neuron a trial on both sides; it is dropped with a warning (``on_missing="warn"``)
or is an error (``"error"``).  :func:`half_splits` gives ``folds`` such splits:
fold ``f`` is :func:`split_halves` with seed ``seed + f`` -- repeated random half
splits (each fold's test half is half the data; test halves of different folds
overlap), not a K-fold partition, since every fold must keep a test mean per
neuron and condition.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, where
from .inputs import build_inputs
from .trialdata import TrialData, _py

log = logging.getLogger(__name__)

__all__ = ["NeuronTrials", "half_assignment", "half_splits", "split_halves"]

TRAIN, TEST, ABSENT = 0, 1, -1


@dataclass(frozen=True, eq=False)
class NeuronTrials:
    """NaN-padded single trials per neuron and condition (see the module docstring).

    Parameters
    ----------
    responses
        ``(conditions, trials, time, neurons)``; NaN where a neuron has no such trial (or bin).
    conditions
        One row per condition (the condition variables' values).
    dt
        Bin width (s).
    time
        ``(time,)`` bin centres (s).
    neuron_ids
        ``(neurons,)`` ids; default ``arange(neurons)``.
    input_spec
        Declarative input spec (:mod:`data_adapters.inputs`) applied to the condition
        means made from these trials.
    meta
        Provenance (``source``, ``units``, ...), copied to the condition means.
    """

    responses: np.ndarray
    conditions: pd.DataFrame
    dt: float
    time: np.ndarray
    neuron_ids: np.ndarray | None = None
    input_spec: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = where(self.meta.get("source"))
        r = np.asarray(self.responses, dtype=np.float64)
        if r.ndim != 4:
            raise DataError(f"responses{src} have shape {r.shape} but must be (conditions, trials, time, neurons)",
                            field="responses")
        C, _, T, N = r.shape
        if len(self.conditions) != C:
            raise DataError(f"conditions{src} have {len(self.conditions)} rows but responses have {C} conditions; "
                            "give one row per condition", field="conditions")
        time = np.asarray(self.time, dtype=np.float64).reshape(-1)
        if time.size != T:
            raise DataError(f"time{src} has {time.size} entries but responses have {T} bins", field="time")
        ids = np.arange(N) if self.neuron_ids is None else np.asarray(self.neuron_ids).reshape(-1)
        if ids.size != N:
            raise DataError(
                f"neuron_ids{src} has {ids.size} entries but responses have {N} neurons", field="neuron_ids"
            )
        object.__setattr__(self, "responses", r)
        object.__setattr__(self, "conditions", pd.DataFrame(self.conditions).reset_index(drop=True))
        object.__setattr__(self, "time", time)
        object.__setattr__(self, "neuron_ids", ids)
        object.__setattr__(self, "dt", float(self.dt))
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def present(self) -> np.ndarray:
        """``(conditions, trials, neurons)`` bool: the neuron has this trial (some finite bin)."""
        return np.isfinite(self.responses).any(axis=2)

    @property
    def trial_counts(self) -> np.ndarray:
        """``(conditions, neurons)`` number of trials of each neuron in each condition."""
        return self.present.sum(axis=1)

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return int(self.responses.shape[3])

    def average(self, min_trials: int = 1, on_missing: str = "warn") -> TrialData:
        """Condition means over all of each neuron's trials (the pseudo-population).

        Parameters
        ----------
        min_trials
            A condition is kept when every neuron has at least this many trials in it.
        on_missing
            ``"warn"`` drops the other conditions with a warning; ``"error"`` raises.

        Returns
        -------
        TrialData
            One trial per kept condition; ``conditions`` gets ``min_trials`` (fewest
            trials averaged over neurons).
        """
        keep = self._keep(max(1, int(min_trials)), on_missing, "average")
        assign = np.where(self.present, TRAIN, ABSENT)
        return self._means(assign, TRAIN, keep, {"step": "condition_average_per_neuron"})

    # ------------------------------------------------------------------ helpers
    def _keep(self, min_trials: int, on_missing: str, what: str) -> np.ndarray:
        if on_missing not in ("warn", "error"):
            raise DataError(f"on_missing={on_missing!r} is not known; use 'warn' or 'error'", field="on_missing")
        counts = self.trial_counts
        keep = counts.min(axis=1) >= min_trials
        if keep.all():
            return keep
        c = int(np.flatnonzero(~keep)[0])
        n = int(np.argmin(counts[c]))
        row = ", ".join(f"{k}={_py(v)!r}" for k, v in self.conditions.iloc[c].items())
        msg = (
            f"{int((~keep).sum())} of {len(keep)} conditions{where(self.meta.get('source'))} have a neuron with "
            f"fewer than {min_trials} trials for {what} (neuron {_py(self.neuron_ids[n])!r} has {int(counts[c, n])} in "
            f"({row}))"
        )
        if not keep.any():
            raise DataError(msg + "; no condition is left — use fewer condition variables or lower min_trials",
                            field="min_trials")
        if on_missing == "error":
            raise DataError(msg + "; pass on_missing='warn' to drop those conditions", field="min_trials")
        warnings.warn(msg + f"; keeping the other {int(keep.sum())}", stacklevel=3)
        return keep

    def _means(self, assign: np.ndarray, which: int, keep: np.ndarray, step: dict[str, Any]) -> TrialData:
        """Condition means over the trials with ``assign == which`` of the kept conditions."""
        r = self.responses[keep]
        sel = (assign[keep] == which)[:, :, None, :] & np.isfinite(r)
        n = sel.sum(axis=1)  # (C, T, N)
        act = np.where(n > 0, np.where(sel, r, 0.0).sum(axis=1) / np.maximum(n, 1), 0.0)
        mask = (n > 0).all(axis=2)
        cond = self.conditions[keep].reset_index(drop=True)
        cond["min_trials"] = (assign[keep] == which).sum(axis=1).min(axis=1)
        inp, names = (build_inputs(self.input_spec, cond, self.time, self.dt, source=self.meta.get("source"))
                      if self.input_spec is not None else (None, None))
        meta = {**self.meta, "preprocessing": list(self.meta.get("preprocessing", [])) + [step]}
        return TrialData(activity=act, inputs=inp, input_names=names, mask=mask, conditions=cond, dt=self.dt,
                         time=self.time, neuron_ids=self.neuron_ids, meta=meta)


def half_assignment(present: np.ndarray, seed: int = 0) -> np.ndarray:
    """Assign each neuron's trials of each condition at random to train or test halves.

    Parameters
    ----------
    present
        ``(conditions, trials, neurons)`` bool, True where the neuron has the trial.
    seed
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    ndarray of int8
        ``(conditions, trials, neurons)``: 0 train, 1 test, -1 absent.  Of ``m`` present
        trials, ``ceil(m / 2)`` are train and ``floor(m / 2)`` test.
    """
    present = np.asarray(present, dtype=bool)
    keys = np.random.default_rng(seed).random(present.shape)
    keys[~present] = np.inf
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    n_train = (present.sum(axis=1, keepdims=True) + 1) // 2
    out = np.where(rank < n_train, TRAIN, TEST).astype(np.int8)
    out[~present] = ABSENT
    return out


def split_halves(trials: NeuronTrials, *, seed: int = 0, min_trials: int = 2,
                 on_missing: str = "warn") -> tuple[TrialData, TrialData]:
    """Split each neuron's trials of each condition into random halves and average each half.

    Parameters
    ----------
    trials
        Single trials per neuron (:class:`NeuronTrials`).
    seed
        Seed of the assignment (:func:`half_assignment`).
    min_trials
        Fewest trials (>= 2) a neuron needs in a condition for it to be kept.
    on_missing
        ``"warn"``: drop conditions where some neuron has fewer, with a warning; ``"error"``: raise.

    Returns
    -------
    (TrialData, TrialData)
        Train and test condition means (same conditions, bins and neurons);
        ``meta["split"]`` records ``by="halves"``, the seed and the role.
    """
    if int(min_trials) < 2:
        raise DataError(f"split by halves needs min_trials >= 2 (got {min_trials}); a neuron needs a trial on "
                        "each side", field="min_trials")
    keep = trials._keep(int(min_trials), on_missing, "a split into halves")
    assign = half_assignment(trials.present, seed)
    info = {"by": "halves", "seed": int(seed), "dropped_conditions": int((~keep).sum())}
    out = []
    for role, which in (("train", TRAIN), ("test", TEST)):
        td = trials._means(assign, which, keep, {"step": "split_halves", "role": role, "seed": int(seed)})
        td.meta["split"] = {**info, "role": role}
        out.append(td)
    log.info("split halves (seed %d): %d conditions x %d neurons; fewest trials of a neuron in a condition: "
             "train %d, test %d", seed, int(keep.sum()), trials.n_neurons, int(out[0].conditions["min_trials"].min()),
             int(out[1].conditions["min_trials"].min()))
    return out[0], out[1]


def half_splits(trials: NeuronTrials, folds: int, *, seed: int = 0, min_trials: int = 2,
                on_missing: str = "warn") -> list[tuple[TrialData, TrialData]]:
    """``folds`` repeated random half splits (fold ``f`` uses seed ``seed + f``).

    Parameters
    ----------
    trials, min_trials, on_missing
        See :func:`split_halves`.
    folds
        Number of splits (>= 1).
    seed
        Seed of the first fold.

    Returns
    -------
    list of (TrialData, TrialData)
        ``meta["split"]["fold"]`` holds the fold number.
    """
    if int(folds) < 1:
        raise DataError(f"folds={folds} must be at least 1", field="folds")
    out = []
    with warnings.catch_warnings():
        for f in range(int(folds)):
            if f == 1:
                warnings.simplefilter("ignore")  # the same dropped conditions in every fold: warn once
            tr, te = split_halves(trials, seed=seed + f, min_trials=min_trials, on_missing=on_missing)
            tr.meta["split"]["fold"] = te.meta["split"]["fold"] = f
            out.append((tr, te))
    return out
