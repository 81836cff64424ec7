"""The :class:`TrialData` container: the one contract between data and models.

Shapes are explicit: ``activity`` is ``(trials, time, neurons)``, ``inputs`` is
``(trials, time, channels)``, ``mask`` is ``(trials, time)``.  Every method
returns a new object and appends a record to ``meta["preprocessing"]``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import preprocessing
from .errors import DataError, where
from .inputs import build_inputs

log = logging.getLogger(__name__)

IndexLike = int | slice | Sequence[int] | Sequence[bool] | np.ndarray

#: ``meta["units"]`` of spike counts per bin (summed, not averaged, when bins are merged).
COUNT_UNITS = "counts"


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class TrialData:
    """Trial-structured neural activity with task inputs, validated on construction.

    Parameters
    ----------
    activity
        ``(trials, time, neurons)`` rates, currents or counts; stored as float32.
    inputs
        ``(trials, time, channels)`` task inputs, float32; ``None`` means no channels.
    input_names
        One name per input channel; defaults to ``u0, u1, ...``.
    mask
        ``(trials, time)`` bool, True where a bin is valid; ``None`` means all valid.
    conditions
        One row per trial (context, coherence, reach angle, event times, ...).
    dt
        Bin width in seconds.
    time
        ``(time,)`` bin centres in seconds relative to the alignment event;
        defaults to ``(arange(T) + 0.5) * dt``.
    neuron_ids
        ``(neurons,)`` unique ids (int or str); defaults to ``arange(neurons)``.
    meta
        Free-form provenance: ``source`` (file), ``units``, ``preprocessing``
        (list of steps applied), ...

    Raises
    ------
    DataError
        If shapes disagree, values are NaN/Inf in valid bins, ``dt`` is not
        positive, or ids are not unique.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> data = TrialData(activity=rng.poisson(3.0, size=(8, 20, 5)), inputs=rng.normal(size=(8, 20, 1)),
    ...                  conditions=pd.DataFrame({"stim": [0, 1] * 4}), dt=0.02)
    >>> data
    TrialData(trials=8, time=20, neurons=5, inputs=['u0'], dt=0.02, conditions=['stim'], source=None)
    >>> train, test = data.split("trials", test_fraction=0.25, seed=0)
    >>> train.n_trials, test.n_trials
    (6, 2)
    >>> centred = test.normalise("zscore", reference=train)  # statistics from the training trials only
    >>> [step["step"] for step in centred.meta["preprocessing"]]
    ['select', 'normalise']
    """

    activity: np.ndarray
    inputs: np.ndarray | None = None
    input_names: tuple[str, ...] | None = None
    mask: np.ndarray | None = None
    conditions: pd.DataFrame | None = None
    dt: float = 0.01
    time: np.ndarray | None = None
    neuron_ids: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:  # noqa: C901 - one place for all checks
        meta = dict(self.meta or {})
        meta.setdefault("source", None)
        meta["preprocessing"] = list(meta.get("preprocessing", []))
        src = where(meta["source"])
        set_ = object.__setattr__

        act = np.array(self.activity, dtype=np.float32, copy=True)
        if act.ndim != 3:
            raise DataError(
                f"activity{src} has shape {act.shape} but must be 3-D (trials, time, neurons); "
                "reshape it or declare the axis order when loading (e.g. axis_order='cond,time,neuron')",
                field="activity")
        K, T, N = act.shape
        if K == 0 or T == 0 or N == 0:
            raise DataError(f"activity{src} has an empty axis (shape {act.shape}); "
                            "check the trial/unit selection and the time window", field="activity")

        if self.mask is None:
            mask = np.ones((K, T), dtype=bool)
        else:
            mask = np.array(self.mask, dtype=bool, copy=True)
            if mask.shape != (K, T):
                raise DataError(f"mask{src} has shape {mask.shape} but activity has (trials, time) = {(K, T)}; "
                                "pass a (trials, time) boolean mask", field="mask")

        if self.inputs is None:
            inp = np.zeros((K, T, 0), dtype=np.float32)
        else:
            inp = np.array(self.inputs, dtype=np.float32, copy=True)
            if inp.ndim == 2 and inp.shape == (K, T):
                inp = inp[..., None]
            if inp.ndim != 3 or inp.shape[:2] != (K, T):
                raise DataError(
                    f"inputs{src} have shape {inp.shape} but activity has shape {act.shape}; inputs must be "
                    f"(trials, time, channels) = ({K}, {T}, C) — align them to the same trials and time bins",
                    field="inputs")
        C = inp.shape[2]
        names = (
            tuple(f"u{i}" for i in range(C)) if self.input_names is None else tuple(str(n) for n in self.input_names)
        )
        if len(names) != C:
            raise DataError(f"input_names{src} has {len(names)} names but inputs have {C} channels; "
                            "give one name per input channel", field="input_names")
        if len(set(names)) != len(names):
            raise DataError(f"input_names{src} contain duplicates {names}; give each channel a unique name",
                            field="input_names")

        step = max(1, (1 << 20) // max(1, T * max(N, C)))  # trials per block: checks without data-sized temporaries
        for name, arr in (("activity", act), ("inputs", inp)):
            if all(np.isfinite(arr[i : i + step][mask[i : i + step]]).all() for i in range(0, K, step)):
                bad = None
            else:
                bad = ~np.isfinite(arr) & mask[:, :, None]
            if bad is not None and bad.any():
                k, t, n = np.argwhere(bad)[0]
                what = "neuron" if name == "activity" else "channel"
                raise DataError(
                    f"{name}{src} contains {int(bad.sum())} NaN/Inf values in valid bins (first at trial {k}, "
                    f"bin {t}, {what} {n}); drop or interpolate those values, or set mask=False for those bins",
                    field=name)
            if not mask.all():
                arr[~mask] = np.where(np.isfinite(arr[~mask]), arr[~mask], 0.0)

        try:
            dt = float(self.dt)
        except (TypeError, ValueError):
            raise DataError(f"dt{src} must be a number of seconds, got {self.dt!r}; pass dt=<bin width in s>",
                            field="dt") from None
        if not np.isfinite(dt) or dt <= 0:
            raise DataError(f"dt{src} must be a positive bin width in seconds, got {dt}; pass dt=<bin width in s>",
                            field="dt")

        if self.time is None:
            time = (np.arange(T) + 0.5) * dt
        else:
            time = np.array(self.time, dtype=np.float64, copy=True).reshape(-1)
            if time.shape != (T,):
                raise DataError(f"time{src} has {time.size} entries but activity has {T} time bins; "
                                "pass one bin centre (s) per time bin", field="time")
            if not np.all(np.isfinite(time)):
                raise DataError(f"time{src} contains NaN/Inf; pass finite bin centres in seconds", field="time")

        if self.neuron_ids is None:
            ids = np.arange(N)
        else:
            ids = np.asarray(self.neuron_ids).reshape(-1).copy()
            if ids.dtype.kind == "O" or ids.dtype.kind == "S":
                ids = ids.astype(str)
            if ids.shape != (N,):
                raise DataError(f"neuron_ids{src} has {ids.size} entries but activity has {N} neurons; "
                                "pass one id per neuron", field="neuron_ids")
            if len(np.unique(ids)) != N:
                raise DataError(f"neuron_ids{src} are not unique; give each neuron a unique id", field="neuron_ids")

        if self.conditions is None:
            cond = pd.DataFrame(index=pd.RangeIndex(K))
        else:
            cond = pd.DataFrame(self.conditions).copy()
            if len(cond) != K:
                raise DataError(f"conditions{src} have {len(cond)} rows but activity has {K} trials; "
                                "give one row per trial", field="conditions")
            cond = cond.reset_index(drop=True)

        set_(self, "activity", _readonly(act))
        set_(self, "inputs", _readonly(inp))
        set_(self, "input_names", names)
        set_(self, "mask", _readonly(mask))
        set_(self, "dt", dt)
        set_(self, "time", _readonly(time))
        set_(self, "neuron_ids", _readonly(ids))
        set_(self, "conditions", cond)
        set_(self, "meta", meta)

    # ------------------------------------------------------------------ basics
    @property
    def n_trials(self) -> int:
        """Number of trials (first axis)."""
        return int(self.activity.shape[0])

    @property
    def n_time(self) -> int:
        """Number of time bins (second axis)."""
        return int(self.activity.shape[1])

    @property
    def n_neurons(self) -> int:
        """Number of neurons (last axis of ``activity``)."""
        return int(self.activity.shape[2])

    @property
    def n_inputs(self) -> int:
        """Number of input channels (last axis of ``inputs``; may be 0)."""
        return int(self.inputs.shape[2])

    @property
    def source(self) -> str | None:
        """File the data came from, if known."""
        return self.meta.get("source")

    def __repr__(self) -> str:
        return (f"TrialData(trials={self.n_trials}, time={self.n_time}, neurons={self.n_neurons}, "
                f"inputs={list(self.input_names)}, dt={self.dt:g}, conditions={list(self.conditions.columns)}, "
                f"source={self.source!r})")

    def replace(self, *, step: dict[str, Any] | None = None, **changes: Any) -> TrialData:
        """Return a copy with fields replaced (re-validated), optionally logging a preprocessing step.

        Parameters
        ----------
        step
            Record appended to ``meta["preprocessing"]`` (e.g. ``{"step": "rebin", "factor": 2}``).
        **changes
            Field values to replace (``activity=...``, ``dt=...``, ...).
        """
        meta = copy.deepcopy(changes.pop("meta", self.meta))
        if step is not None:
            meta["preprocessing"] = list(meta.get("preprocessing", [])) + [step]
        return dataclasses.replace(self, meta=meta, **changes)

    def _check_same_neurons(self, reference: TrialData, what: str) -> None:
        if reference.n_neurons != self.n_neurons or not np.array_equal(reference.neuron_ids, self.neuron_ids):
            raise DataError(
                f"the reference passed to {what} has {reference.n_neurons} neurons but the data{where(self.source)} "
                f"has {self.n_neurons} (or different neuron_ids); use a reference with the same neurons "
                "(e.g. the training split by trials or conditions)", field="reference")

    # ------------------------------------------------------------------ selection
    def select(self, trials: IndexLike | None = None, neurons: IndexLike | None = None,
               time: IndexLike | tuple[float, float] | None = None) -> TrialData:
        """Return a subset of trials, neurons and/or time bins.

        Parameters
        ----------
        trials, neurons
            Integer indices, boolean masks or slices (``None`` keeps all).
        time
            Integer indices / boolean mask / slice of bins, or a tuple
            ``(t_start, t_stop)`` in seconds keeping bins whose centre lies in
            ``[t_start, t_stop]``.

        Returns
        -------
        TrialData
        """
        ti = self._index(trials, self.n_trials, "trials")
        ni = self._index(neurons, self.n_neurons, "neurons")
        if isinstance(time, tuple) and len(time) == 2:
            t0, t1 = float(time[0]), float(time[1])
            tol = 1e-9 * max(1.0, abs(self.dt))
            bi = np.flatnonzero((self.time >= t0 - tol) & (self.time <= t1 + tol))
            if bi.size == 0:
                raise DataError(f"time window ({t0}, {t1}) s selects no bins{where(self.source)} "
                                f"(bins span {self.time[0]:g} to {self.time[-1]:g} s); choose a window inside it",
                                field="time")
        else:
            bi = self._index(time, self.n_time, "time")
        return self.replace(
            activity=self.activity[ti][:, bi][:, :, ni], inputs=self.inputs[ti][:, bi], mask=self.mask[ti][:, bi],
            conditions=self.conditions.iloc[ti], time=self.time[bi], neuron_ids=self.neuron_ids[ni],
            step={"step": "select", "n_trials": int(len(ti)), "n_time": int(len(bi)), "n_neurons": int(len(ni))})

    def _index(self, idx: Any, n: int, what: str) -> np.ndarray:
        if idx is None:
            return np.arange(n)
        if isinstance(idx, slice):
            return np.arange(n)[idx]
        arr = np.asarray(idx)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise DataError(f"boolean {what} selection has length {arr.size} but the data{where(self.source)} "
                                f"has {n} {what}; pass one flag per {what[:-1] if what != 'time' else 'bin'}",
                                field=what)
            return np.flatnonzero(arr)
        if arr.dtype.kind not in "iu":
            raise DataError(f"{what} selection must be integer indices, a boolean mask or a slice, "
                            f"got dtype {arr.dtype}; convert it to indices", field=what)
        if arr.size and (arr.max() >= n or arr.min() < -n):
            raise DataError(f"{what} index {int(arr.max())} is out of range for {n} {what}{where(self.source)}; "
                            f"use indices below {n}", field=what)
        return arr % n if arr.size else arr.astype(int)

    def subsample_neurons(self, n_or_fraction: int | float, seed: int = 0) -> TrialData:
        """Keep a random subset of neurons (order preserved), reproducible from ``seed``.

        Parameters
        ----------
        n_or_fraction
            Number of neurons (int >= 1) or fraction of the population (float in (0, 1]).
        seed
            Seed of the ``numpy.random.Generator``.

        Raises
        ------
        DataError
            If more neurons are asked for than recorded.
        """
        N = self.n_neurons
        if isinstance(n_or_fraction, (bool, np.bool_)):
            raise DataError("subsample_neurons expects a count or a fraction, got a bool", field="n_or_fraction")
        if isinstance(n_or_fraction, (float, np.floating)) and not float(n_or_fraction).is_integer() \
                or isinstance(n_or_fraction, (float, np.floating)) and float(n_or_fraction) <= 1.0:
            frac = float(n_or_fraction)
            if not 0 < frac <= 1:
                raise DataError(f"subsample fraction {frac} is outside (0, 1]; pass a fraction in (0, 1] "
                                "or an integer count", field="n_or_fraction")
            n = max(1, int(round(frac * N)))
        else:
            n = int(n_or_fraction)
        if n > N:
            raise DataError(f"cannot subsample {n} neurons from a population of {N}{where(self.source)}; "
                            f"ask for at most {N} neurons (or a fraction <= 1)", field="n_or_fraction")
        if n < 1:
            raise DataError(f"cannot subsample {n} neurons; ask for at least 1", field="n_or_fraction")
        idx = np.sort(np.random.default_rng(seed).choice(N, size=n, replace=False))
        out = self.select(neurons=idx)
        meta = copy.deepcopy(out.meta)
        meta["preprocessing"][-1] = {"step": "subsample_neurons", "n": n, "seed": seed,
                                     "neuron_ids": [_py(v) for v in self.neuron_ids[idx]]}
        return dataclasses.replace(out, meta=meta)

    def split(self, by: str = "trials", *, test_fraction: float = 0.2, seed: int = 0,
              column: str | Sequence[str] | None = None, test_values: Sequence[Any] | None = None,
              stratify: str | Sequence[str] | None = None) -> tuple[TrialData, TrialData]:
        """Split into ``(train, test)`` without leakage, reproducible from ``seed``.

        Parameters
        ----------
        by
            ``"trials"``: random trials go to test (optionally stratified by condition
            columns so each condition keeps trials on both sides).
            ``"conditions"``: whole conditions (unique values of ``column``) go to test,
            either ``test_values`` or a random ``test_fraction`` of them; no trial of a
            test condition is in train.
            ``"neurons"``: held-out neurons; train keeps the other neurons, test keeps
            the held-out ones, both over all trials.
        test_fraction
            Fraction of trials / conditions / neurons held out (at least one, at most all but one).
        seed
            Seed of the ``numpy.random.Generator``.
        column
            Condition column(s) defining conditions for ``by="conditions"``.
        test_values
            Explicit held-out condition values (tuples when ``column`` is a list).
        stratify
            Condition column(s) to stratify a ``by="trials"`` split.

        Returns
        -------
        (TrialData, TrialData)
            Train and test sets; ``meta["split"]`` records the original indices.
        """
        rng = np.random.default_rng(seed)
        if by in ("trials", "trial"):
            if stratify is not None:
                keys = self._condition_keys(stratify, "stratify")
                test = []
                for _, grp in pd.Series(range(self.n_trials)).groupby(keys, sort=True):
                    idx = grp.to_numpy()
                    n_test = _n_held(len(idx), test_fraction, allow_all=False) if len(idx) > 1 else 0
                    test.extend(rng.choice(idx, size=n_test, replace=False).tolist())
                test_idx = np.sort(np.asarray(test, dtype=int))
            else:
                n_test = self._n_held_checked(self.n_trials, test_fraction, "trials")
                test_idx = np.sort(rng.choice(self.n_trials, size=n_test, replace=False))
            train_idx = np.setdiff1d(np.arange(self.n_trials), test_idx)
            return self._split_trials(train_idx, test_idx, {"by": "trials", "seed": seed})
        if by in ("conditions", "condition"):
            labels, uniq = self._condition_values(column, "split")
            if test_values is not None:
                tv = [tuple(v) if isinstance(v, (list, tuple)) else v for v in test_values]
                missing = [v for v in tv if v not in uniq]
                if missing:
                    raise DataError(f"test_values {missing} are not values of {column}{where(self.source)} "
                                    f"(values: {uniq[:20]}); pick held-out values from that list", field="test_values")
                test_set = tv
            else:
                n_test = self._n_held_checked(len(uniq), test_fraction, "conditions")
                pick = rng.choice(len(uniq), size=n_test, replace=False)
                test_set = [uniq[i] for i in sorted(pick)]
            is_test = np.array([lab in test_set for lab in labels], dtype=bool)
            test_idx = np.flatnonzero(is_test)
            train_idx = np.flatnonzero(~is_test)
            if train_idx.size == 0:
                raise DataError(f"split by {column} holds out every condition{where(self.source)}; "
                                "leave at least one condition for training", field="test_values")
            return self._split_trials(train_idx, test_idx, {"by": "conditions", "column": column, "seed": seed,
                                                            "test_values": [_py(v) for v in test_set]})
        if by in ("neurons", "neuron"):
            n_test = self._n_held_checked(self.n_neurons, test_fraction, "neurons")
            test_n = np.sort(rng.choice(self.n_neurons, size=n_test, replace=False))
            train_n = np.setdiff1d(np.arange(self.n_neurons), test_n)
            info = {"by": "neurons", "seed": seed}
            tr, te = self.select(neurons=train_n), self.select(neurons=test_n)
            tr.meta["split"] = {**info, "role": "train", "neuron_indices": train_n.tolist()}
            te.meta["split"] = {**info, "role": "test", "neuron_indices": test_n.tolist()}
            return tr, te
        raise DataError(f"unknown split by={by!r}; use 'trials', 'conditions' or 'neurons'", field="by")

    def kfold(self, folds: int, by: str = "conditions", *, seed: int = 0,
              column: str | Sequence[str] | None = None,
              stratify: str | Sequence[str] | None = None) -> list[tuple[TrialData, TrialData]]:
        """``folds`` train/test pairs in which every condition (or trial) is held out exactly once.

        Parameters
        ----------
        folds
            Number of folds K (2 <= K <= number of conditions / trials).
        by
            ``"conditions"``: the unique values of ``column`` are shuffled (seeded) and dealt
            into K groups of near-equal size; fold k holds out group k, so no trial of a
            held-out condition is ever in that fold's train set.
            ``"trials"``: trials are shuffled and dealt into K groups (within each
            condition of ``stratify`` when given, so every condition keeps trials on both sides).
        seed
            Seed of the ``numpy.random.Generator`` that shuffles.
        column
            Condition column(s) for ``by="conditions"``.
        stratify
            Condition column(s) to stratify ``by="trials"``.

        Returns
        -------
        list of (TrialData, TrialData)
            One ``(train, test)`` pair per fold; ``meta["split"]`` records the fold and the indices.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> d = TrialData(activity=np.zeros((8, 3, 2)), dt=0.05,
        ...               conditions=pd.DataFrame({"angle": np.arange(8) * 45}))
        >>> pairs = d.kfold(4, column="angle", seed=0)
        >>> sorted(v for _, test in pairs for v in test.conditions["angle"])
        [0, 45, 90, 135, 180, 225, 270, 315]
        """
        if isinstance(folds, bool) or int(folds) != folds or folds < 2:
            raise DataError(f"folds={folds!r}{where(self.source)} must be an integer >= 2; "
                            "use a plain split for a single hold-out", field="folds")
        folds = int(folds)
        rng = np.random.default_rng(seed)
        if by in ("conditions", "condition"):
            _, uniq = self._condition_values(column, "kfold")
            if folds > len(uniq):
                raise DataError(f"folds={folds} is more than the {len(uniq)} conditions of {column}"
                                f"{where(self.source)}; use at most {len(uniq)} folds", field="folds")
            groups = np.array_split(rng.permutation(len(uniq)), folds)
            out = []
            for k, group in enumerate(groups):
                test_set = [uniq[i] for i in sorted(group)]
                train, test = self.split("conditions", column=column, test_values=test_set, seed=seed)
                for part in (train, test):
                    part.meta["split"] = {**part.meta["split"], "fold": k, "folds": folds}
                out.append((train, test))
            return out
        if by in ("trials", "trial"):
            if folds > self.n_trials:
                raise DataError(f"folds={folds} is more than the {self.n_trials} trials{where(self.source)}; "
                                f"use at most {self.n_trials} folds", field="folds")
            assign = np.empty(self.n_trials, dtype=int)
            if stratify is not None:
                keys = self._condition_keys(stratify, "stratify")
                offset = 0
                for _, grp in pd.Series(range(self.n_trials)).groupby(keys, sort=True):
                    idx = rng.permutation(grp.to_numpy())
                    assign[idx] = (np.arange(len(idx)) + offset) % folds
                    offset += len(idx)
            else:
                assign[rng.permutation(self.n_trials)] = np.arange(self.n_trials) % folds
            out = []
            for k in range(folds):
                test_idx, train_idx = np.flatnonzero(assign == k), np.flatnonzero(assign != k)
                out.append(self._split_trials(train_idx, test_idx, {"by": "trials", "seed": seed, "fold": k,
                                                                    "folds": folds}))
            return out
        raise DataError(f"unknown kfold by={by!r}; use 'conditions' or 'trials'", field="by")

    def _condition_values(self, column: str | Sequence[str] | None, method: str) -> tuple[pd.Series, list[Any]]:
        """Each trial's condition (a value, or a tuple over several columns) and the distinct conditions."""
        if column is None:
            raise DataError(f"{method}(by='conditions') needs column=<condition column(s)>; "
                            f"available columns: {list(self.conditions.columns)}", field="column")
        keys = self._condition_keys(column, "column")
        labels = keys[0].reset_index(drop=True) if len(keys) == 1 else pd.Series(list(zip(*keys)))
        return labels, list(pd.unique(labels))

    def _n_held_checked(self, n: int, frac: float, what: str) -> int:
        if n < 2:
            raise DataError(f"cannot split {n} {what}{where(self.source)} into train and test; "
                            f"at least 2 {what} are needed", field="test_fraction")
        if not 0 < frac < 1:
            raise DataError(f"test_fraction {frac} must be in (0, 1); pass e.g. test_fraction=0.2",
                            field="test_fraction")
        return _n_held(n, frac)

    def _split_trials(self, train_idx: np.ndarray, test_idx: np.ndarray,
                      info: dict[str, Any]) -> tuple[TrialData, TrialData]:
        tr, te = self.select(trials=train_idx), self.select(trials=test_idx)
        tr.meta["split"] = {**info, "role": "train", "trial_indices": train_idx.tolist()}
        te.meta["split"] = {**info, "role": "test", "trial_indices": test_idx.tolist()}
        return tr, te

    def _condition_keys(self, cols: str | Sequence[str], what: str) -> list[pd.Series]:
        cols = [cols] if isinstance(cols, str) else list(cols)
        missing = [c for c in cols if c not in self.conditions.columns]
        if missing:
            raise DataError(f"condition column(s) {missing} given as {what} do not exist{where(self.source)}; "
                            f"available columns: {list(self.conditions.columns)}", field=what)
        return [self.conditions[c] for c in cols]

    # ------------------------------------------------------------------ averaging / resampling
    def condition_average(self, by: str | Sequence[str]) -> TrialData:
        """Average trials within each condition (unique combination of ``by`` columns).

        Masked bins are excluded from the mean; a bin is valid in the average when at
        least one trial of the condition is valid there.  ``conditions`` of the result
        holds the ``by`` columns, every other column that is constant within each
        condition, and ``n_trials``.

        Parameters
        ----------
        by
            Condition column name(s).
        """
        keys = self._condition_keys(by, "by")
        cols = [k.name for k in keys]
        groups = self.conditions.groupby(cols, sort=True, dropna=False).indices
        acts, inps, masks, rows = [], [], [], []
        m = self.mask[:, :, None].astype(np.float64)
        for key, idx in groups.items():
            w = m[idx]
            n = w.sum(0)
            acts.append(np.where(n > 0, (self.activity[idx] * w).sum(0) / np.maximum(n, 1), 0.0))
            inps.append(np.where(n > 0, (self.inputs[idx] * w).sum(0) / np.maximum(n, 1), 0.0))
            masks.append(n[:, 0] > 0)
            sub = self.conditions.iloc[idx]
            row = {c: v for c, v in zip(cols, key if isinstance(key, tuple) else (key,))}
            for c in sub.columns:
                if c not in row and sub[c].nunique(dropna=False) <= 1:
                    row[c] = sub[c].iloc[0]
            row["n_trials"] = len(idx)
            rows.append(row)
        cond = pd.DataFrame(rows)
        keep = [c for c in cond.columns if cond[c].notna().all() or c in cols]
        return self.replace(activity=np.stack(acts), inputs=np.stack(inps), mask=np.stack(masks),
                            conditions=cond[keep], step={"step": "condition_average", "by": cols})

    def rebin(self, factor: int, how: str | None = None) -> TrialData:
        """Merge ``factor`` consecutive bins (trailing bins that do not fill a new bin are dropped).

        Parameters
        ----------
        factor
            Integer number of bins merged into one.
        how
            ``"mean"`` (rates) or ``"sum"`` (counts); default ``"sum"`` when
            ``meta["units"] == "counts"``, else ``"mean"``.  Inputs are always averaged;
            a new bin is valid when all its bins are valid.
        """
        factor = int(factor)
        if factor < 1 or factor > self.n_time:
            raise DataError(f"rebin factor {factor} must be between 1 and the number of bins ({self.n_time})",
                            field="factor")
        how = how or ("sum" if self.meta.get("units") == COUNT_UNITS else "mean")
        if how not in ("mean", "sum"):
            raise DataError(f"rebin how={how!r} is not known; use 'mean' or 'sum'", field="how")
        Tn = self.n_time // factor
        cut = Tn * factor
        K = self.n_trials
        a = self.activity[:, :cut].reshape(K, Tn, factor, -1)
        a = a.sum(2) if how == "sum" else a.mean(2)
        return self.replace(
            activity=a,
            inputs=self.inputs[:, :cut].reshape(K, Tn, factor, -1).mean(2),
            mask=self.mask[:, :cut].reshape(K, Tn, factor).all(2),
            time=self.time[:cut].reshape(Tn, factor).mean(1),
            dt=self.dt * factor,
            step={"step": "rebin", "factor": factor, "how": how, "dropped_bins": self.n_time - cut},
        )

    def with_lead_in(self, seconds: float, inputs: Any = None) -> TrialData:
        """Prepend an unscored lead-in: ``round(seconds / dt)`` bins before the recorded window.

        A network fitted to the result runs through the lead-in from its initial state
        with the task inputs already on (e.g. a context or target cue), so that every
        condition, held out or not, reaches the recorded window from a state its own
        inputs produced; only the recorded window is scored, because the lead-in bins
        are invalid (``mask`` False, activity 0).

        Parameters
        ----------
        seconds
            Length of the lead-in (>= 0); 0 returns the data unchanged.
        inputs
            Input spec (:mod:`data_adapters.inputs`) evaluated on the extended time
            axis, so a channel with ``start: null`` is on during the lead-in and one
            with ``start: -0.3`` is not; event columns must hold times relative to the
            alignment event.  ``None`` holds each trial's first-bin inputs over the lead-in.

        Returns
        -------
        TrialData
            ``n_time`` grows by the lead-in bins; ``meta["lead_in"]`` holds ``seconds`` and ``bins``.

        Examples
        --------
        >>> import numpy as np
        >>> d = TrialData(activity=np.ones((2, 3, 1)), dt=0.1, inputs=np.ones((2, 3, 1)))
        >>> led = d.with_lead_in(0.2)
        >>> led.n_time, led.mask[0].tolist(), led.meta["lead_in"]["bins"]
        (5, [False, False, True, True, True], 2)
        """
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            raise DataError(f"lead_in={seconds!r} must be a number of seconds >= 0", field="lead_in") from None
        if not np.isfinite(seconds) or seconds < 0:
            raise DataError(f"lead_in={seconds} must be a finite number of seconds >= 0", field="lead_in")
        bins = int(round(seconds / self.dt))
        if bins == 0:
            return self
        if "lead_in" in self.meta:
            raise DataError(f"the data{where(self.source)} already have a lead-in of {self.meta['lead_in']['bins']} "
                            "bins; add the lead-in once", field="lead_in")
        K = self.n_trials
        time = np.concatenate([self.time[0] - self.dt * np.arange(bins, 0, -1), self.time])
        if inputs is not None:
            u, names = build_inputs(inputs, self.conditions, time, self.dt, source=self.source)
            if tuple(names) != tuple(self.input_names or ()):
                raise DataError(f"the lead-in input spec gives channels {list(names)} but the data{where(self.source)} "
                                f"have {list(self.input_names or ())}; pass the spec the data were built with",
                                field="inputs")
        else:
            u = np.concatenate([np.repeat(self.inputs[:, :1], bins, axis=1), self.inputs], 1)
        activity = np.concatenate([np.zeros((K, bins, self.n_neurons), dtype=self.activity.dtype), self.activity], 1)
        mask = np.concatenate([np.zeros((K, bins), dtype=bool), self.mask], 1)
        out = self.replace(activity=activity, inputs=u.astype(np.float32), mask=mask, time=time,
                           step={"step": "lead_in", "seconds": bins * self.dt, "bins": bins})
        out.meta["lead_in"] = {"seconds": bins * self.dt, "bins": bins}
        return out

    # ------------------------------------------------------------------ preprocessing (see preprocessing.py)
    def normalise(self, method: str = "centre_global", reference: TrialData | None = None,
                  **kwargs: Any) -> TrialData:
        """Normalise each neuron; statistics come from ``reference`` (e.g. the training set) or self.

        Parameters
        ----------
        method
            ``"zscore"`` (per-neuron mean and std), ``"soft"`` (rate / (range + soft_const),
            Churchland et al. 2012, ``soft_const`` default 5), ``"centre"`` (subtract each
            neuron's mean), ``"centre_global"`` (subtract each neuron's mean, divide by ONE
            global scale: the std of all centred values; keeps neurons' relative sizes).
        reference
            Data whose statistics are used (must have the same neurons).
        **kwargs
            ``soft_const`` for ``"soft"``, ``eps`` for ``"zscore"``.

        See Also
        --------
        data_adapters.preprocessing.fit_normalisation : the parameters themselves.
        """
        return preprocessing.fit_normalisation(reference if reference is not None else self, method, **kwargs).apply(
            self
        )

    def remove_condition_independent(self, reference: TrialData | None = None) -> TrialData:
        """Subtract the time course shared by all trials/conditions (mean over trials per bin).

        Parameters
        ----------
        reference
            Data whose across-trial mean is subtracted (same neurons and time bins); default self.
        """
        return preprocessing.remove_condition_independent(self, reference)

    def denoise_pca(self, k: int, reference: TrialData | None = None) -> TrialData:
        """Project activity onto its top-``k`` principal components fitted on ``reference`` (or self).

        Parameters
        ----------
        k
            Number of components kept.
        reference
            Training data the PCs are fitted on (same neurons); never fit on test data.
        """
        return preprocessing.denoise_pca(self, k, reference)

    # ------------------------------------------------------------------ export
    def to_torch(self, device: Any = None, dtype: Any = None) -> TorchTrialData:
        """Return the arrays as torch tensors (``activity``, ``inputs``, ``mask``, ``time``).

        Parameters
        ----------
        device
            Torch device (default CPU).
        dtype
            Floating dtype of activity/inputs (default ``torch.float32``).
        """
        import torch

        dtype = dtype or torch.float32
        return TorchTrialData(
            activity=torch.as_tensor(np.array(self.activity), dtype=dtype, device=device),
            inputs=torch.as_tensor(np.array(self.inputs), dtype=dtype, device=device),
            mask=torch.as_tensor(np.array(self.mask), dtype=torch.bool, device=device),
            time=torch.as_tensor(np.array(self.time), dtype=dtype, device=device),
            dt=self.dt, input_names=self.input_names)


@dataclass(frozen=True)
class TorchTrialData:
    """Torch view of a :class:`TrialData`: ``activity`` (K, T, N), ``inputs`` (K, T, C), ``mask`` (K, T)."""

    activity: Any
    inputs: Any
    mask: Any
    time: Any
    dt: float
    input_names: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """Return the tensors as a plain dict."""
        return {"activity": self.activity, "inputs": self.inputs, "mask": self.mask, "time": self.time}


def _n_held(n: int, frac: float, allow_all: bool = False) -> int:
    k = int(round(frac * n))
    return int(min(max(k, 1), n if allow_all else n - 1))


def _py(v: Any) -> Any:
    """Convert numpy scalars (and tuples of them) to plain Python for JSON metadata."""
    if isinstance(v, tuple):
        return [_py(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v
