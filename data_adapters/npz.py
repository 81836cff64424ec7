"""NPZ / NPY arrays with a declared axis order -> :class:`TrialData`.

Options (all plain values, so a YAML ``data:`` block can hold them):

``activity_key``
    Array holding activity (NPZ/HDF5); default ``"activity"`` or the only array
    with as many axes as ``axis_order``.
``axis_order``
    Comma-separated axis names of that array, e.g. ``"cond,time,neuron"``.
    Trial axis: ``trial``/``cond``/``condition``; time axis: ``time``/``t``/``bin``;
    neuron axis: ``neuron``/``unit``/``cell``.  The trial axis may be absent (one trial).
    Default ``"trial,time,neuron"``.
``time_key`` / ``time_units``
    Array of bin-centre times and its unit (``"s"`` or ``"ms"``; default ``"s"``).
``dt``
    Bin width in seconds; inferred from the time array when omitted.
``t_start``
    Centre of the first bin (s) when there is no time array; default ``dt / 2``.
``condition_keys``
    List of per-trial (length-trials) arrays copied into ``conditions``, or a
    mapping ``column -> key``.
``input_keys``
    Arrays of shape ``(trials, time)`` or ``(trials, time, channels)`` used as input
    channels (named after the key, ``key_0 ...`` for several channels).
``inputs``
    Declarative input spec built from condition columns (see :mod:`data_adapters.inputs`);
    event columns are times relative to the alignment event.
``mask_key`` / ``neuron_ids_key``
    Optional arrays for the mask ``(trials, time)`` and the neuron ids.
``units``
    Free text stored in ``meta["units"]`` (e.g. ``"Hz"``).
``condition_values``
    Values of the condition factor axes ``cond:<name>`` of a multi-factor array,
    e.g. ``axis_order: "neuron,cond:direction,cond:task,time,trial"`` with
    ``condition_values: {direction: [-1, 1], task: [look, nolook]}`` and a
    NaN-padded ``trial`` axis; see :mod:`data_adapters.factors` for the syntax and
    what is returned.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .axes import activity_array, parse_axis_order
from .errors import DataError
from .inputs import build_inputs
from .timeaxis import log_time_axis, resolve_time
from .trialdata import TrialData


def arrays_to_trialdata(arrays: Any, *, source: str | PathLike | None = None, activity_key: str | None = None,
                        axis_order: str | Sequence[str] = "trial,time,neuron", time_key: str | None = None,
                        time_units: str = "s", dt: float | None = None, t_start: float | None = None,
                        condition_keys: Sequence[str] | Mapping[str, str] | None = None,
                        input_keys: Sequence[str] | None = None, inputs: Any = None,
                        mask_key: str | None = None, neuron_ids_key: str | None = None,
                        units: str | None = None,
                        condition_values: Mapping[str, Sequence[Any]] | None = None) -> TrialData:
    """Build :class:`TrialData` from a mapping of named arrays (NPZ, HDF5, MAT structs).

    Parameters
    ----------
    arrays
        Mapping-like with ``keys()``, ``in`` and ``[]``.
    source
        File name (for messages and ``meta``).
    activity_key, axis_order, time_key, time_units, dt, t_start, condition_keys, input_keys, inputs, mask_key,
    neuron_ids_key, units, condition_values
        See the module docstring.

    Returns
    -------
    TrialData
    """
    keys = list(arrays.keys())
    axes = parse_axis_order(axis_order, source)

    def get(key: str, what: str) -> np.ndarray:
        if key not in arrays:
            raise DataError(f"'{source}' has no array {key!r} (given as {what}); available keys: {keys}",
                            field=what)
        return np.asarray(arrays[key])

    activity_key, raw = activity_array(arrays, activity_key, axes, axis_order, source)
    if any(a.startswith("cond:") for a in axes):
        from .factors import factor_block, factor_trialdata

        per_trial = {"condition_keys": condition_keys, "input_keys": input_keys, "mask_key": mask_key}
        bad = sorted(k for k, v in per_trial.items() if v)
        if bad:
            raise DataError(f"option {bad[0]} for '{source}' does not apply to an axis_order with cond:<name> axes; "
                            "conditions come from those axes (condition_values) and inputs from the inputs spec",
                            field=bad[0])
        nt = factor_block(raw, axes, source=source, time=None if time_key is None else get(time_key, "time_key"),
                          time_key=time_key, time_units=time_units, dt=dt, t_start=t_start,
                          condition_values=condition_values,
                          neuron_ids=get(neuron_ids_key, "neuron_ids_key") if neuron_ids_key else None,
                          inputs=inputs, meta={"activity_key": activity_key, "axis_order": ",".join(axes),
                                               **({"units": units} if units else {})})
        return factor_trialdata(nt, "trial" in axes)
    if condition_values:
        raise DataError(f"condition_values for '{source}' need condition factor axes in axis_order (e.g. "
                        f"'neuron,cond:direction,time,trial'), but axis_order is {axis_order!r}",
                        field="condition_values")
    if "trial" not in axes:
        raw, axes = raw[None], ["trial"] + axes
    act = np.transpose(raw, [axes.index(a) for a in ("trial", "time", "neuron")])
    K, T, _ = act.shape

    time, dt = resolve_time(None if time_key is None else get(time_key, "time_key"), T, dt=dt, t_start=t_start,
                            time_units=time_units, source=source, what=f"time array {time_key!r}")

    cond: dict[str, Any] = {}
    if condition_keys is not None:
        mapping = dict(condition_keys) if isinstance(condition_keys, Mapping) else {k: k for k in condition_keys}
        for col, key in mapping.items():
            v = get(key, "condition_keys")
            if v.size == K:
                v = v.reshape(-1)
            if v.ndim != 1 or v.size != K:
                raise DataError(f"condition array {key!r} in '{source}' has shape {np.shape(v)} but there are {K} "
                                "trials; condition keys must hold one value per trial", field=key)
            cond[col] = v
    conditions = pd.DataFrame(cond, index=pd.RangeIndex(K))

    chans, names = [], []
    for key in input_keys or []:
        v = get(key, "input_keys").astype(np.float32)
        if v.ndim == 2:
            v = v[..., None]
        if v.ndim != 3 or v.shape[:2] != (K, T):
            raise DataError(f"input array {key!r} in '{source}' has shape {v.shape} but activity has (trials, time) "
                            f"= {(K, T)}; input arrays must be (trials, time[, channels])", field=key)
        chans.append(v)
        names += [key] if v.shape[2] == 1 else [f"{key}_{i}" for i in range(v.shape[2])]
    if inputs is not None:
        u, n = build_inputs(inputs, conditions, time, dt, source=source)
        chans.append(u)
        names += list(n)
    inp = np.concatenate(chans, axis=2) if chans else None

    mask = get(mask_key, "mask_key") if mask_key else None
    ids = get(neuron_ids_key, "neuron_ids_key") if neuron_ids_key else None
    meta: dict[str, Any] = {"source": None if source is None else str(source), "activity_key": activity_key,
                            "axis_order": ",".join(axes) if isinstance(axis_order, str) else list(axis_order)}
    if units:
        meta["units"] = units
    out = TrialData(activity=act, inputs=inp, input_names=tuple(names) if chans else None, mask=mask,
                    conditions=conditions, dt=dt, time=time, neuron_ids=ids, meta=meta)
    log_time_axis(out.dt, out.time, source)
    return out


def load_npz(path: str | PathLike, **options: Any) -> TrialData:
    """Read an ``.npz`` archive (no pickled objects) into :class:`TrialData`.

    Parameters
    ----------
    path
        NPZ file.
    **options
        See the module docstring (``activity_key``, ``axis_order``, ``time_key``, ``dt``, ...).

    Returns
    -------
    TrialData
    """
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            return arrays_to_trialdata(z, source=p, **options)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"'{p}' could not be read as NPZ ({type(exc).__name__}: {str(exc)[:100]}); the file is "
                        "truncated or corrupt — re-download or re-save it", field="path") from None
    except ValueError as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"'{p}' could not be read as NPZ ({str(exc)[:120]}); re-save it with numpy.savez "
                        "without object arrays", field="path") from None


def load_npy(path: str | PathLike, **options: Any) -> TrialData:
    """Read a single ``.npy`` activity array with a declared ``axis_order`` and ``dt``.

    Parameters
    ----------
    path
        NPY file.
    **options
        ``axis_order``, ``dt`` (required), ``t_start``, ``units``.
    """
    p = Path(path)
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"'{p}' could not be read as NPY ({str(exc)[:120]}); re-save it with numpy.save",
                        field="path") from None
    allowed = {"axis_order", "dt", "t_start", "units"}
    extra = sorted(set(options) - allowed)
    if extra:
        raise DataError(f"options {extra} do not apply to the single-array file '{p}'; allowed: {sorted(allowed)}",
                        field=extra[0])
    return arrays_to_trialdata({"activity": np.asarray(arr)}, source=p, activity_key="activity", **options)
