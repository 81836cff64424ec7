"""Multi-factor arrays: several condition axes and a NaN-padded trial axis (NPZ, HDF5, MAT arrays).

Syntax
------
``axis_order`` names each axis of the activity array once, separated by commas:

- ``neuron`` (``unit``, ``cell``) and ``time`` (``t``, ``bin``) -- required;
- ``cond:<name>`` -- a condition factor; ``<name>`` becomes a column of ``conditions``
  (e.g. ``cond:direction``, ``cond:task``); any number of them;
- ``trial`` -- optional repeats of each condition, NaN-padded: a trial slot with no
  finite bin for a neuron is absent for that neuron.

Example: ``axis_order: "neuron,cond:direction,cond:task,time,trial"`` with
``condition_values: {direction: [-1, 1], task: [look, nolook]}``.  ``condition_values``
gives each factor's values in the order of its axis (default ``0 .. n-1``); a list
whose length differs from the axis, or a name that is no ``cond:`` axis, is an error.
The conditions are every combination of the factors' values (the first factor
varies slowest).  Without factor axes ``axis_order`` keeps its plain meaning
(``trial``/``cond`` is one trial axis; :mod:`data_adapters.npz`).

What :func:`data_adapters.load` returns for such an array
--------------------------------------------------------
- no ``trial`` axis: one trial per condition (the array holds condition means);
  bins where some neuron is NaN are masked;
- a ``trial`` axis where every neuron has the same trial slots (simultaneous
  recording): one trial per present slot, with a ``trial`` column (the slot);
- a ``trial`` axis where neurons have different slots (neurons recorded in
  separate sessions): the condition means of each neuron's trials
  (:meth:`NeuronTrials.average`; conditions where a neuron has no trial are
  dropped with a warning).  :func:`arrays_to_neuron_trials` (or
  :func:`data_adapters.load.load_neuron_trials`) keeps the single trials, for
  :func:`data_adapters.neuron_trials.split_halves`.

Per-trial option arrays (``condition_keys``, ``input_keys``, ``mask_key``) do not
apply: conditions come from the axes, inputs from the ``inputs`` spec over the
factor columns (:mod:`data_adapters.inputs`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from .axes import activity_array, parse_axis_order
from .errors import DataError
from .inputs import build_inputs
from .neuron_trials import NeuronTrials
from .timeaxis import log_time_axis, resolve_time
from .trialdata import TrialData

log = logging.getLogger(__name__)

FACTOR = "cond:"


def factor_names(axes: Sequence[str]) -> list[str]:
    """Names of the ``cond:<name>`` axes of a parsed ``axis_order``, in order."""
    return [a[len(FACTOR):] for a in axes if a.startswith(FACTOR)]


def factor_block(raw: np.ndarray, axes: Sequence[str], *, source: Any, time: Any, time_key: str | None,
                 time_units: str, dt: float | None, t_start: float | None,
                 condition_values: Mapping[str, Sequence[Any]] | None, neuron_ids: Any = None,
                 inputs: Any = None, meta: Mapping[str, Any] | None = None) -> NeuronTrials:
    """The activity array of a factor ``axis_order`` as :class:`NeuronTrials` (conditions x trials).

    Parameters
    ----------
    raw
        Activity array, axes as in ``axes``.
    axes
        Parsed ``axis_order`` (:func:`data_adapters.axes.parse_axis_order`).
    source
        File name (messages).
    time, time_key, time_units, dt, t_start
        Stored time vector (or None) and the time options (:mod:`data_adapters.npz`).
    condition_values
        Factor name -> values along its axis.
    neuron_ids
        Optional ids, one per neuron.
    inputs
        Input spec kept as ``NeuronTrials.input_spec``.
    meta
        Provenance.

    Returns
    -------
    NeuronTrials
    """
    names = factor_names(axes)
    values = dict(condition_values or {})
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise DataError(f"condition_values for '{source}' name {unknown}, which are no cond:<name> axis of "
                        f"axis_order (factors: {names}); rename them or add cond:{unknown[0]} to axis_order",
                        field="condition_values")
    has_trial = "trial" in axes
    order = [a for a in axes if a.startswith(FACTOR)] + (["trial"] if has_trial else []) + ["time", "neuron"]
    x = np.transpose(np.asarray(raw, dtype=np.float64), [list(axes).index(a) for a in order])
    sizes = x.shape[:len(names)]
    levels = []
    for name, n in zip(names, sizes):
        v = values.get(name, list(range(n)))
        v = [v] if isinstance(v, (str, bytes)) or np.ndim(v) == 0 else list(v)
        if len(v) != n:
            raise DataError(f"condition_values.{name} for '{source}' has {len(v)} values but axis cond:{name} of "
                            f"the activity has {n}; give one value per entry of that axis (in its order)",
                            field="condition_values")
        levels.append([x.item() if isinstance(x, np.generic) else x for x in v])
    T, N = x.shape[-2:]
    resp = x.reshape((int(np.prod(sizes, dtype=int)), -1 if has_trial else 1, T, N))
    cond = pd.DataFrame(list(itertools.product(*levels)), columns=names)
    time, dt = resolve_time(time, T, dt=dt, t_start=t_start, time_units=time_units, source=source,
                            what=f"time array {time_key!r}")
    if neuron_ids is not None and np.size(neuron_ids) != N:
        raise DataError(f"neuron ids for '{source}' have {np.size(neuron_ids)} entries but the activity has {N} "
                        "neurons; check neuron_ids_key and axis_order", field="neuron_ids_key")
    return NeuronTrials(responses=resp, conditions=cond, dt=dt, time=time, neuron_ids=neuron_ids,
                        input_spec=inputs, meta={"source": None if source is None else str(source), **dict(meta or {})})


def factor_trialdata(nt: NeuronTrials, has_trial: bool) -> TrialData:
    """:class:`TrialData` of a factor array (rules in the module docstring)."""
    src = nt.meta.get("source")
    present = nt.present
    if has_trial and not (present == present[..., :1]).all():
        log.info("neurons in '%s' have different trials (recorded separately): condition means of each neuron's "
                 "trials; split them by halves (data_adapters.neuron_trials) for hold-out", src)
        out = nt.average()
    else:
        keep = present[..., 0] if has_trial else np.ones(present.shape[:2], dtype=bool)
        c_idx, r_idx = np.nonzero(keep)
        act = nt.responses[c_idx, r_idx]
        cond = nt.conditions.iloc[c_idx].reset_index(drop=True)
        if has_trial:
            cond["trial"] = r_idx
        inp, names = (build_inputs(nt.input_spec, cond, nt.time, nt.dt, source=src)
                      if nt.input_spec is not None else (None, None))
        out = TrialData(activity=act, inputs=inp, input_names=names, mask=np.isfinite(act).all(axis=2),
                        conditions=cond, dt=nt.dt, time=nt.time, neuron_ids=nt.neuron_ids, meta=dict(nt.meta))
    log_time_axis(out.dt, out.time, src)
    return out


def arrays_to_neuron_trials(arrays: Any, *, source: str | PathLike | None = None, activity_key: str | None = None,
                            axis_order: str | Sequence[str] = "cond,trial,time,neuron", time_key: str | None = None,
                            time_units: str = "s", dt: float | None = None, t_start: float | None = None,
                            condition_values: Mapping[str, Sequence[Any]] | None = None, inputs: Any = None,
                            neuron_ids_key: str | None = None, units: str | None = None) -> NeuronTrials:
    """Single trials per neuron from an array with a NaN-padded ``trial`` axis (module docstring).

    Parameters
    ----------
    arrays
        Mapping-like of named arrays (NPZ, HDF5 view, flattened MAT tree).
    source, activity_key, axis_order, time_key, time_units, dt, t_start, condition_values, inputs, neuron_ids_key,
    units
        As for :func:`data_adapters.npz.arrays_to_trialdata`; ``axis_order`` must name a
        ``trial`` axis (a plain ``cond`` axis, without a name, is the factor ``cond``).

    Returns
    -------
    NeuronTrials
    """
    toks = axis_order.split(",") if isinstance(axis_order, str) else list(axis_order)
    toks = [t.strip() for t in toks]
    if not any(t.lower().startswith(FACTOR) for t in toks):  # "cond,trial,..." -> one factor named cond
        toks = [FACTOR + "cond" if t.lower() in ("cond", "condition", "conditions", "conds") else t for t in toks]
    axes = parse_axis_order(toks, source)
    if "trial" not in axes:
        raise DataError(f"axis_order {axis_order!r} for '{source}' has no trial axis, so there are no single trials "
                        "to split; add the (NaN-padded) trial axis, e.g. 'neuron,cond:direction,time,trial'",
                        field="axis_order")
    key, raw = activity_array(arrays, activity_key, axes, axis_order, source)

    def get(k: str | None, what: str) -> Any:
        if k is None:
            return None
        if k not in arrays:
            raise DataError(f"'{source}' has no array {k!r} (given as {what}); available keys: {list(arrays.keys())}",
                            field=what)
        return np.asarray(arrays[k])

    meta = {"activity_key": key, "axis_order": ",".join(axes), **({"units": units} if units else {})}
    return factor_block(raw, axes, source=source, time=get(time_key, "time_key"), time_key=time_key,
                        time_units=time_units, dt=dt, t_start=t_start, condition_values=condition_values,
                        neuron_ids=get(neuron_ids_key, "neuron_ids_key"), inputs=inputs, meta=meta)
