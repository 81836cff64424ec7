"""MATLAB MAT files (v5 and v7.3) -> :class:`TrialData`.

Files are first read into a plain Python tree (:func:`read_mat`), the same for
both versions: a struct is a ``dict``, a struct array or cell array is a
``list`` (MATLAB's linear, column-major order), a char array is a ``str`` (a list
of ``str`` for several rows), and a numeric or logical array is an ndarray in
MATLAB's own shape (at least 2-D; v7.3 arrays are transposed back).

Layouts (``layout=``; ``"auto"`` picks one from the variables in the file)
--------------------------------------------------------------------------
``"arrays"``
    Named arrays, as for NPZ (:mod:`data_adapters.npz`): ``activity_key``,
    ``axis_order`` (in MATLAB's shape, e.g. ``"trial,time,neuron"``), ``time_key``,
    ``time_units``, ``dt``, ``t_start``, ``condition_keys``, ``input_keys``,
    ``inputs``, ``mask_key``, ``neuron_ids_key``, ``units``.  Fields of structs are
    addressed with dots (``activity_key="data.rates"``).  MATLAB drops trailing
    singleton axes, so an activity array with fewer axes than ``axis_order`` gets
    them back (e.g. one neuron).
``"mante_unit"``
    Mante et al. (2013) unit files, one per neuron: ``unit.response`` (trials x
    time), ``unit.task_variable.<name>`` (one value per trial), ``unit.time``.
    Pass a list of files or a folder (every ``*.mat`` in it, sorted by name).
    Neuron ids are the file names without suffix.
``"tdr"``
    One file with ``data.unit(i).response``, ``data.unit(i).task_variable.<name>``
    and ``data.time`` (the TDR toolbox's ``dataT``).  Neuron ids are positions
    in ``data.unit`` (0-based); ids are prefixed with the file name when several
    files are combined.

Neurons of the unit layouts were recorded in different sessions, so they are
combined into a condition-averaged pseudo-population (:func:`pseudo_population`):
each neuron's trials are averaged within each condition (a combination of
the ``conditions`` task variables, optionally correct trials only), and only the
conditions present for every neuron are kept (a warning names the neurons that
lack some; no common condition at all is an error).  The result has one "trial"
per condition, a ``conditions`` table with the task-variable values and
``min_trials`` (fewest trials averaged over neurons), ``dt`` from the time
vector, and inputs from the declarative spec (:mod:`data_adapters.inputs`).
"""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .axes import parse_axis_order
from .errors import DataError
from .inputs import build_inputs
from .neuron_trials import NeuronTrials
from .npz import arrays_to_trialdata
from .paths import require_file
from .timeaxis import log_time_axis, resolve_time
from .trialdata import TrialData

log = logging.getLogger(__name__)

LAYOUTS = ("auto", "arrays", "mante_unit", "tdr")
_ARRAY_KEYS = ("activity_key", "time_key", "mask_key", "neuron_ids_key")


# ---------------------------------------------------------------------- reading files into a tree
def mat_version(path: str | PathLike) -> str:
    """Return ``"5"`` or ``"7.3"`` from the MAT-file header.

    Raises
    ------
    DataError
        If the file is missing or has no MATLAB v5 / v7.3 header.
    """
    p = require_file(path)
    with open(p, "rb") as fh:
        head = fh.read(20)
    if head.startswith(b"MATLAB 7.3"):
        return "7.3"
    if head.startswith(b"MATLAB 5.0"):
        return "5"
    raise DataError(f"'{p}' is not a MATLAB MAT-file (no 'MATLAB 5.0' or 'MATLAB 7.3' header); check the path, "
                    "or re-save the variables in MATLAB with save(file, '-v7') or save(file, '-v7.3')",
                    field="path")


def read_mat(path: str | PathLike) -> dict[str, Any]:
    """Read every variable of a MAT file (v5 or v7.3) into a plain tree (see the module docstring).

    Parameters
    ----------
    path
        MAT file.

    Returns
    -------
    dict
        Variable name -> value.
    """
    p = Path(path)
    version = mat_version(p)
    try:
        if version == "5":
            import scipy.io

            raw = scipy.io.loadmat(p, squeeze_me=False, struct_as_record=False, chars_as_strings=True)
            return {k: _from_v5(v) for k, v in raw.items() if not k.startswith("__")}
        import h5py

        with h5py.File(p, "r") as f:
            return {k: _from_h5(f[k], f) for k in f if not k.startswith("#")}
    except DataError:
        raise
    except Exception as exc:  # scipy and h5py raise many types for damaged files
        raise DataError(f"'{p}' could not be read as a MATLAB v{version} file ({type(exc).__name__}: "
                        f"{str(exc)[:100]}); the file is truncated or corrupt — re-save it in MATLAB",
                        field="path") from None


def _from_v5(x: Any) -> Any:
    """Convert scipy's ``loadmat(struct_as_record=False)`` output to the plain tree."""
    from scipy.io.matlab import mat_struct

    if isinstance(x, mat_struct):
        return {name: _from_v5(getattr(x, name)) for name in x._fieldnames}
    if not isinstance(x, np.ndarray):
        return x
    if x.dtype.kind == "O":
        flat = x.ravel(order="F")
        items = [_from_v5(v) for v in flat]
        if len(items) == 1 and isinstance(flat[0], mat_struct):
            return items[0]  # a 1x1 struct
        return items  # struct array or cell array
    if x.dtype.kind == "U":
        rows = [str(s) for s in x.ravel(order="F")]
        return "" if not rows else rows[0] if len(rows) == 1 else rows
    return x


def _attr(node: Any, name: str) -> str | None:
    v = node.attrs.get(name)
    if v is None:
        return None
    return v.decode() if isinstance(v, bytes) else str(v)


def _is_ref(ds: Any) -> bool:
    import h5py

    return isinstance(ds, h5py.Dataset) and h5py.check_dtype(ref=ds.dtype) is h5py.Reference


def _from_h5(node: Any, f: Any) -> Any:
    """Convert one object of a v7.3 (HDF5) MAT file to the plain tree."""
    import h5py

    cls = _attr(node, "MATLAB_class")
    if isinstance(node, h5py.Group):
        if cls not in (None, "struct"):
            log.debug("skipping MATLAB %s object %s (not supported)", cls, node.name)
            return None
        names = list(node.keys())
        # struct arrays store each field as references, one per element (cells say MATLAB_class="cell")
        per_element = [k for k in names if _is_ref(node[k]) and _attr(node[k], "MATLAB_class") != "cell"]
        if not per_element:
            return {k: _from_h5(node[k], f) for k in names}
        n = node[per_element[0]].size
        refs = {k: node[k][()].ravel() for k in per_element}
        shared = {k: _from_h5(node[k], f) for k in names if k not in refs}
        return [{k: (_from_h5(f[refs[k][i]], f) if k in refs else shared[k]) for k in names} for i in range(n)]
    if node.attrs.get("MATLAB_empty", 0):
        return "" if cls == "char" else [] if cls in ("cell", "struct") else np.zeros((0, 0))
    data = node[()]
    if _is_ref(node):  # cell array: references into #refs#, MATLAB linear order = C order of the HDF5 shape
        return [_from_h5(f[r], f) for r in np.asarray(data).ravel()]
    if cls == "char":
        chars = np.atleast_2d(np.asarray(data).T).astype("<u2")
        rows = [bytes(r).decode("utf-16-le", errors="replace") for r in chars]
        return rows[0] if len(rows) == 1 else rows
    arr = np.asarray(data)
    if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):
        arr = arr["real"] + 1j * arr["imag"]
    arr = arr.T
    return arr.astype(bool) if cls == "logical" else arr


# ---------------------------------------------------------------------- helpers
def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``"did you mean 'x'? "`` for the closest choice, or an empty string."""
    choices = [str(c) for c in choices]
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if not match:
        lower = {c.lower(): c for c in choices}
        match = [lower[m] for m in difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)]
    return f"did you mean {match[0]!r}? " if match else ""


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Arrays of a tree keyed by dotted paths (``data.rates``); cells of strings/scalars become arrays."""
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, np.ndarray):
            out[key] = v
        elif isinstance(v, list) and v and all(isinstance(e, str) or np.ndim(e) == 0 or np.size(e) == 1
                                               for e in v):
            out[key] = np.array([e if isinstance(e, str) else np.asarray(e).reshape(-1)[0] for e in v])
    return out


def _time_axis(time: Any, T: int, dt: float | None, time_units: str, what: str,
               source: Any) -> tuple[np.ndarray, float]:
    """Bin centres (s) and bin width from a time vector, or from ``dt`` when there is none."""
    if time is None and dt is None:
        raise DataError(f"'{source}' has no {what}; pass dt=<bin width in s>", field="dt")
    return resolve_time(time, T, dt=dt, t_start=None, time_units=time_units, source=source, what=what,
                        field="time", length_fix="responses must be trials x time with one time per bin")


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ---------------------------------------------------------------------- unit records
@dataclass(frozen=True)
class UnitRecord:
    """One neuron of a unit layout, before averaging.

    Attributes
    ----------
    label
        Neuron id (file name or position in ``data.unit``).
    response
        ``(trials, time)`` responses.
    task_variables
        Name -> one value per trial.
    time
        ``(time,)`` times as stored (units of ``time_units``), or None.
    source
        File the unit came from.
    """

    label: Any
    response: np.ndarray
    task_variables: Mapping[str, Any]
    time: np.ndarray | None
    source: str


def _fields(node: Any) -> list[str]:
    """Field names of a struct or of the first element of a struct array (empty for anything else)."""
    if isinstance(node, list) and node:
        node = node[0]
    return list(node) if isinstance(node, dict) else []


def _find_struct(tree: Mapping[str, Any], variable: str | None, names: Sequence[str], has: str,
                 layout: str, source: Any) -> Any:
    """The variable holding a layout's struct (``variable=`` or the first of ``names``, else the only match)."""
    if variable is not None:
        if variable not in tree:
            raise DataError(f"'{source}' has no variable {variable!r}; {_did_you_mean(variable, tree)}"
                            f"variables: {sorted(tree)}", field="variable")
        return tree[variable]
    for n in names:
        if n in tree:
            return tree[n]
    hits = [k for k, v in tree.items() if has in _fields(v)]
    if len(hits) != 1:
        raise DataError(f"'{source}' has no struct with a field {has!r} for layout={layout!r} (variables: "
                        f"{sorted(tree)}); pass variable=<name> or choose another layout", field="variable")
    return tree[hits[0]]


def _records(node: Any, what: str, source: Any) -> list[dict[str, Any]]:
    """A struct array as a list of dicts (also accepts one struct, or a struct of per-element cells)."""
    if isinstance(node, dict):
        resp = node.get("response")
        if isinstance(resp, list) and resp and all(isinstance(r, np.ndarray) for r in resp):
            n = len(resp)  # v7.3 struct array read as a struct of cells
            return [{k: (v[i] if isinstance(v, list) and len(v) == n else v) for k, v in node.items()}
                    for i in range(n)]
        return [node]
    if isinstance(node, list) and all(isinstance(e, dict) for e in node):
        return list(node)
    raise DataError(f"{what} in '{source}' is not a struct or struct array; it must hold one struct per unit "
                    "with response and task_variable", field=what)


def _unit_record(rec: Mapping[str, Any], label: Any, time: Any, source: Any, where_: str) -> UnitRecord:
    for f in ("response", "task_variable"):
        if f not in rec:
            raise DataError(f"{where_} in '{source}' has no field {f!r} ({_did_you_mean(f, rec)}fields: "
                            f"{sorted(rec)}); unit structs need response (trials x time) and task_variable",
                            field=f)
    resp = np.asarray(rec["response"], dtype=np.float64)
    if resp.ndim != 2:
        raise DataError(f"{where_}.response in '{source}' has shape {resp.shape}; it must be a trials x time "
                        "matrix", field="response")
    tv = rec["task_variable"]
    if not isinstance(tv, dict):
        raise DataError(f"{where_}.task_variable in '{source}' is not a struct; it must hold one field per task "
                        "variable with one value per trial", field="task_variable")
    return UnitRecord(label=label, response=resp, task_variables=tv, time=time, source=str(source))


def unit_records(tree: Mapping[str, Any], source: str | PathLike, layout: str,
                 variable: str | None = None) -> list[UnitRecord]:
    """Extract the neurons of a ``"mante_unit"`` or ``"tdr"`` file tree.

    Parameters
    ----------
    tree
        Output of :func:`read_mat`.
    source
        File name (messages and ids).
    layout
        ``"mante_unit"`` or ``"tdr"``.
    variable
        Name of the struct variable (default ``unit`` / ``data`` or ``dataT``).

    Returns
    -------
    list of UnitRecord
    """
    stem = Path(source).stem
    if layout == "mante_unit":
        recs = _records(_find_struct(tree, variable, ("unit",), "response", layout, source), "unit", source)
        return [_unit_record(r, stem if len(recs) == 1 else f"{stem}:{i}", r.get("time"), source,
                             "unit" if len(recs) == 1 else f"unit({i + 1})") for i, r in enumerate(recs)]
    node = _find_struct(tree, variable, ("data", "dataT"), "unit", layout, source)
    if not isinstance(node, dict) or "unit" not in node:
        raise DataError(f"the TDR struct in '{source}' has no field 'unit'; it must be data.unit(i) with "
                        "response and task_variable, plus data.time", field="unit")
    recs = _records(node["unit"], "data.unit", source)
    return [_unit_record(r, i, node.get("time", r.get("time")), source, f"data.unit({i + 1})")
            for i, r in enumerate(recs)]


# ---------------------------------------------------------------------- pseudo-population
def _variable(u: UnitRecord, name: str, K: int) -> np.ndarray:
    tv = u.task_variables
    if name not in tv:
        raise DataError(f"task variable {name!r} does not exist for unit {u.label!r} in '{u.source}'; "
                        f"{_did_you_mean(name, tv)}available: {sorted(tv)}", field=name)
    v = tv[name]
    v = np.array(v, dtype=object) if isinstance(v, list) else np.atleast_1d(np.asarray(v))
    if v.size != K:
        raise DataError(f"task variable {name!r} of unit {u.label!r} in '{u.source}' has {v.size} values but "
                        f"its response has {K} trials; give one value per trial (response is trials x time)",
                        field=name)
    return v.reshape(-1, order="F")


def _average_unit(u: UnitRecord, cols: list[str], keep_correct: str | None, dt: float,
                  time: np.ndarray) -> dict[tuple, tuple[np.ndarray, np.ndarray, int]]:
    """Condition key -> (mean response (T,), valid bins (T,), trials averaged) for one unit."""
    df, keep = _kept_trials(u, cols, keep_correct)
    if not keep.any():
        return {}
    resp = u.response[keep]
    td = TrialData(activity=resp[:, :, None], mask=np.isfinite(resp), conditions=df[keep], dt=dt, time=time,
                   meta={"source": u.source})
    avg = td.condition_average(cols)
    keys = [tuple(_py(v) for v in row) for row in avg.conditions[cols].itertuples(index=False, name=None)]
    return {k: (avg.activity[i, :, 0], avg.mask[i], int(n))
            for i, (k, n) in enumerate(zip(keys, avg.conditions["n_trials"]))}


def _sort_key(key: tuple) -> tuple:
    return tuple((0, v, "") if isinstance(v, (int, float, bool)) else (1, 0, str(v)) for v in key)


def _describe(cols: Sequence[str], key: tuple) -> str:
    return "(" + ", ".join(f"{c}={v!r}" for c, v in zip(cols, key)) + ")"


def _shared_time(units: Sequence[UnitRecord], dt: float | None, time_units: str) -> tuple[np.ndarray, float]:
    """The time axis (s) and bin width shared by all units (an error when they differ)."""
    u0 = units[0]
    T = u0.response.shape[1]
    time, dt = _time_axis(u0.time, T, dt, time_units, f"the time vector of unit {u0.label!r}", u0.source)
    for u in units[1:]:
        if u.response.shape[1] != T:
            raise DataError(f"unit {u.label!r} in '{u.source}' has {u.response.shape[1]} time bins but unit "
                            f"{u0.label!r} has {T}; units must share one time axis — cut all responses to the "
                            "same window (responses are trials x time)", field="response")
        if u.time is not None and u0.time is not None and not np.allclose(
                np.asarray(u.time, dtype=np.float64).reshape(-1), np.asarray(u0.time, dtype=np.float64).reshape(-1)):
            raise DataError(f"the time vector of unit {u.label!r} in '{u.source}' differs from that of unit "
                            f"{u0.label!r}; align all units to the same event and bins", field="time")
    return time, dt


def _unit_labels(units: Sequence[UnitRecord]) -> np.ndarray:
    """Neuron ids of the units (prefixed with the file name when they repeat)."""
    labels = [u.label for u in units]
    if len(set(labels)) != len(labels):
        labels = [f"{Path(u.source).stem}:{u.label}" for u in units]
    return np.asarray([str(v) for v in labels] if any(isinstance(v, str) for v in labels) else labels)


def _condition_cols(units: Sequence[UnitRecord], conditions: str | Sequence[str] | None, source: Any) -> list[str]:
    cols = [conditions] if isinstance(conditions, str) else list(conditions or [])
    if not cols:
        raise DataError(f"layout needs conditions=[task variables] to average over for '{source}'; available: "
                        f"{sorted(units[0].task_variables)}", field="conditions")
    return cols


def _kept_trials(u: UnitRecord, cols: list[str], keep_correct: str | None) -> tuple[pd.DataFrame, np.ndarray]:
    """Condition values of one unit's trials and which trials are kept (no NaN value; correct if asked)."""
    K = u.response.shape[0]
    df = pd.DataFrame({c: _variable(u, c, K) for c in cols})
    keep = df.notna().all(axis=1).to_numpy(copy=True)
    if keep_correct is not None:
        try:
            ok = np.asarray(_variable(u, keep_correct, K), dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"task variable {keep_correct!r} of unit {u.label!r} in '{u.source}' is not 0/1; "
                            "pass correct_key=<0/1 variable> or only_correct=False", field=keep_correct) from None
        keep &= ok == 1
    return df, keep


def unit_trials(units: Sequence[UnitRecord], conditions: str | Sequence[str], *, only_correct: bool = False,
                correct_key: str = "correct", time_units: str = "s", dt: float | None = None, inputs: Any = None,
                source: str | None = None, units_label: str | None = None,
                meta: Mapping[str, Any] | None = None) -> NeuronTrials:
    """Keep the single trials of neurons recorded in different sessions, NaN-padded per neuron.

    The same units, conditions and trial selection as :func:`pseudo_population`, but
    nothing is averaged: ``responses[c, r, :, n]`` is neuron ``n``'s ``r``-th kept trial
    of condition ``c`` (in file order) and NaN beyond its trial count.  Conditions are
    every combination found in any unit (sorted); a neuron lacking one has no trials
    there.  ``NeuronTrials.average()`` equals :func:`pseudo_population` (conditions
    some neuron lacks are dropped with a warning); :func:`data_adapters.neuron_trials.split_halves`
    splits them into train and test halves.

    Parameters
    ----------
    units, conditions, only_correct, correct_key, time_units, dt, inputs, source, units_label, meta
        As for :func:`pseudo_population`.

    Returns
    -------
    NeuronTrials
    """
    if not units:
        raise DataError(f"no units found in '{source}'; point to MAT unit files or a TDR file", field="path")
    cols = _condition_cols(units, conditions, source)
    time, dt = _shared_time(units, dt, time_units)
    per_unit: list[dict[tuple, np.ndarray]] = []
    for u in units:
        df, keep = _kept_trials(u, cols, correct_key if only_correct else None)
        kept = np.flatnonzero(keep)
        groups = df.iloc[kept].groupby(cols, sort=False, dropna=False).indices
        per_unit.append({tuple(_py(v) for v in (k if isinstance(k, tuple) else (k,))): u.response[kept[idx]]
                         for k, idx in groups.items()})
    keys = sorted(set().union(*per_unit), key=_sort_key)
    if not keys:
        raise DataError(f"no unit in '{source}' has a kept trial; use only_correct=False or check the task "
                        f"variables {cols}", field="conditions")
    R = max(len(v) for d in per_unit for v in d.values())
    resp = np.full((len(keys), R, len(time), len(units)), np.nan)
    for n, d in enumerate(per_unit):
        for c, k in enumerate(keys):
            if k in d:
                resp[c, :len(d[k]), :, n] = d[k]
    info = {"source": source, **dict(meta or {}),
            "unit_trials": {"conditions": cols, "only_correct": bool(only_correct), "n_units": len(units)}}
    if units_label:
        info["units"] = units_label
    out = NeuronTrials(responses=resp, conditions=pd.DataFrame([dict(zip(cols, k)) for k in keys], columns=cols),
                       dt=dt, time=time, neuron_ids=_unit_labels(units), input_spec=inputs, meta=info)
    log_time_axis(dt, time, source)
    return out


def pseudo_population(units: Sequence[UnitRecord], conditions: str | Sequence[str], *,
                      only_correct: bool = False, correct_key: str = "correct", min_trials: int = 1,
                      on_missing: str = "warn", time_units: str = "s", dt: float | None = None,
                      inputs: Any = None, source: str | None = None, units_label: str | None = None,
                      meta: Mapping[str, Any] | None = None) -> TrialData:
    """Condition-average neurons recorded in different sessions into one pseudo-population.

    Parameters
    ----------
    units
        Neurons (:func:`unit_records`), each with its own trials.
    conditions
        Task variable(s) whose value combinations define the conditions.
    only_correct
        Average correct trials only (``task_variable.<correct_key> == 1``).
    correct_key
        Task variable marking correct trials.
    min_trials
        A condition counts as present for a neuron with at least this many trials.
    on_missing
        ``"warn"``: drop conditions some neuron lacks, with a warning; ``"error"``: raise.
    time_units
        Unit of the stored time vectors, ``"s"`` or ``"ms"``.
    dt
        Bin width (s); default from the time vector.
    inputs
        Input spec built from the condition columns (:mod:`data_adapters.inputs`).
    source
        Where the data came from (``meta["source"]``).
    units_label
        Stored as ``meta["units"]`` (e.g. ``"Hz"``).
    meta
        Extra metadata.

    Returns
    -------
    TrialData
        ``(conditions, time, neurons)``; ``conditions`` holds the task-variable values and ``min_trials``.

    Raises
    ------
    DataError
        Unknown task variable, responses of different lengths or times, or no condition common to all units.
    """
    if not units:
        raise DataError(f"no units found in '{source}'; point to MAT unit files or a TDR file", field="path")
    if on_missing not in ("warn", "error"):
        raise DataError(f"on_missing={on_missing!r} is not known; use 'warn' or 'error'", field="on_missing")
    cols = _condition_cols(units, conditions, source)
    u0 = units[0]
    time, dt = _shared_time(units, dt, time_units)
    per_unit = [_average_unit(u, cols, correct_key if only_correct else None, dt, time) for u in units]
    present = [{k for k, v in d.items() if v[2] >= max(1, int(min_trials))} for d in per_unit]
    common, found = set.intersection(*present), set.union(*present)
    lacking = [(u, sorted(found - s, key=_sort_key)) for u, s in zip(units, present)]
    lacking = [(u, miss) for u, miss in lacking if miss]
    if not common:
        u, miss = lacking[0] if lacking else (u0, [])
        raise DataError(
            f"no condition of {cols} is present (with >= {min_trials} trials) for every unit in "
            f"'{source}' (unit {u.label!r} lacks {len(miss)} of the {len(found)} found); average over fewer task "
            "variables, use only_correct=False or lower min_trials",
            field="conditions",
        )
    if lacking:
        u, miss = lacking[0]
        msg = (f"{len(lacking)} of {len(units)} units lack some conditions of {cols} in '{source}' (unit "
               f"{u.label!r} lacks {_describe(cols, miss[0])}"
               f"{f' and {len(miss) - 1} more' if len(miss) > 1 else ''}); keeping the {len(common)} conditions "
               "present for every unit")
        if on_missing == "error":
            raise DataError(msg + "; pass on_missing='warn' to drop the others", field="conditions")
        warnings.warn(msg, stacklevel=3)
    keys = sorted(common, key=_sort_key)
    act = np.stack([np.stack([d[k][0] for d in per_unit], axis=-1) for k in keys])
    mask = np.stack([np.all([d[k][1] for d in per_unit], axis=0) for k in keys])
    cond = pd.DataFrame([dict(zip(cols, k)) for k in keys], columns=cols)
    cond["min_trials"] = [min(d[k][2] for d in per_unit) for k in keys]
    inp, names = build_inputs(inputs, cond, time, dt, source=source) if inputs is not None else (None, None)
    info = {"source": source, **dict(meta or {}),
            "pseudo_population": {"conditions": cols, "only_correct": bool(only_correct),
                                  "min_trials": int(min_trials), "n_units": len(units),
                                  "dropped_conditions": len(found) - len(common)}}
    if units_label:
        info["units"] = units_label
    out = TrialData(activity=act, inputs=inp, input_names=names, mask=mask, conditions=cond, dt=dt, time=time,
                    neuron_ids=_unit_labels(units), meta=info)
    log_time_axis(out.dt, out.time, source)
    return out


# ---------------------------------------------------------------------- entry point
def _mat_files(path: str | PathLike | Sequence[str | PathLike], layout: str = "auto") -> list[Path]:
    if layout not in LAYOUTS:
        raise DataError(f"layout={layout!r} is not known for '{path}'; {_did_you_mean(str(layout), LAYOUTS)}"
                        f"use one of {LAYOUTS}", field="layout")
    if isinstance(path, (list, tuple)):
        files = [Path(q) for q in path]
    elif Path(path).is_dir():
        files = sorted(Path(path).glob("*.mat"))
        if not files:
            raise DataError(f"folder '{path}' holds no .mat files; point to the folder of unit files",
                            field="path")
    else:
        files = [Path(path)]
    if not files:
        raise DataError("an empty list of MAT files was given; pass at least one file", field="path")
    return files


def _trees(files: Sequence[Path], layout: str) -> Iterable[tuple[Path, dict[str, Any], str]]:
    """Each file, its tree and its layout (detected when ``layout="auto"``)."""
    for q in files:
        tree = read_mat(q)
        yield q, tree, _detect_layout(tree) if layout == "auto" else layout


def _source_of(path: Any, files: Sequence[Path]) -> str:
    """``meta["source"]`` of MAT files: the file, or the folder they are in."""
    if len(files) == 1:
        return str(files[0])
    return str(Path(files[0]).parent) if isinstance(path, (list, tuple)) else str(Path(path))


def _detect_layout(tree: Mapping[str, Any]) -> str:
    fields = [set(_fields(v)) for v in tree.values()]
    if any("unit" in f for f in fields):
        return "tdr"
    if any({"response", "task_variable"} <= f for f in fields):
        return "mante_unit"
    return "arrays"


def _load_arrays(tree: Mapping[str, Any], p: Path, options: dict[str, Any]) -> TrialData:
    flat = _flatten(tree)
    for opt in _ARRAY_KEYS:
        key = options.get(opt)
        if key is not None and key not in flat:
            raise DataError(f"'{p}' has no array {key!r} (given as {opt}); {_did_you_mean(key, flat)}available: "
                            f"{sorted(flat)}", field=opt)
    ck = options.get("condition_keys") or []
    for key in [*(ck.values() if isinstance(ck, Mapping) else ck), *(options.get("input_keys") or [])]:
        if key not in flat:
            raise DataError(f"'{p}' has no array {key!r}; {_did_you_mean(key, flat)}available: {sorted(flat)}",
                            field=key)
    key = options.get("activity_key") or ("activity" if "activity" in flat else None)
    if key is not None:
        n_axes = len(parse_axis_order(options.get("axis_order", "trial,time,neuron"), p))
        a = flat[key]
        if 2 <= a.ndim < n_axes:  # MATLAB drops trailing singleton axes
            flat[key] = a.reshape(a.shape + (1,) * (n_axes - a.ndim))
    td = arrays_to_trialdata(flat, source=p, **options)
    td.meta["layout"] = "arrays"
    return td


def load_mat(path: str | PathLike | Sequence[str | PathLike], *, layout: str = "auto",
             variable: str | None = None, conditions: str | Sequence[str] | None = None,
             only_correct: bool = False, correct_key: str = "correct", min_trials: int = 1,
             on_missing: str = "warn", time_units: str = "s", dt: float | None = None, inputs: Any = None,
             units: str | None = None, **array_options: Any) -> TrialData:
    """Read MATLAB v5 / v7.3 files into :class:`TrialData` (layouts in the module docstring).

    Parameters
    ----------
    path
        A MAT file, a list of MAT files, or a folder of ``*.mat`` unit files.
    layout
        ``"auto"``, ``"arrays"``, ``"mante_unit"`` or ``"tdr"``.
    variable
        Struct variable of the unit layouts (default ``unit``, or ``data`` / ``dataT``).
    conditions
        Task variables defining the conditions of the pseudo-population (unit layouts).
    only_correct, correct_key, min_trials, on_missing
        See :func:`pseudo_population`.
    time_units
        ``"s"`` or ``"ms"``, the unit of the stored time vector.
    dt
        Bin width (s); inferred from the time vector when omitted.
    inputs
        Declarative input spec over the condition columns (:mod:`data_adapters.inputs`).
    units
        Stored as ``meta["units"]`` (e.g. ``"Hz"``).
    **array_options
        Layout ``"arrays"`` only: ``activity_key``, ``axis_order``, ``time_key``, ``t_start``,
        ``condition_keys``, ``input_keys``, ``mask_key``, ``neuron_ids_key`` (see :mod:`data_adapters.npz`).

    Returns
    -------
    TrialData
    """
    files = _mat_files(path, layout)
    records: list[UnitRecord] = []
    for q, tree, lay in _trees(files, layout):
        if lay == "arrays":
            if len(files) > 1:
                raise DataError(f"'{q}' holds plain arrays, but layout 'arrays' reads one file at a time; pass "
                                "one file, or layout='mante_unit' for unit files", field="layout")
            pseudo = {"variable": variable, "conditions": conditions, "only_correct": only_correct or None,
                      "min_trials": None if min_trials == 1 else min_trials,
                      "on_missing": None if on_missing == "warn" else on_missing,
                      "correct_key": None if correct_key == "correct" else correct_key}
            wrong = sorted(k for k, v in pseudo.items() if v is not None)
            if wrong:
                raise DataError(f"options {wrong} apply to the unit layouts, but '{q}' is read with layout "
                                "'arrays'; pass layout='mante_unit' or 'tdr', or drop them", field=wrong[0])
            opts = {"time_units": time_units, "dt": dt, "inputs": inputs, "units": units, **array_options}
            return _load_arrays(tree, q, opts)
        if array_options:
            bad = sorted(array_options)
            raise DataError(f"options {bad} apply to layout 'arrays' only, but '{q}' is read with layout "
                            f"{lay!r}; drop them (time comes from the file, conditions from conditions=[...])",
                            field=bad[0])
        records += unit_records(tree, q, lay, variable)
    source = _source_of(path, files)
    return pseudo_population(records, conditions or [], only_correct=only_correct, correct_key=correct_key,
                             min_trials=min_trials, on_missing=on_missing, time_units=time_units, dt=dt,
                             inputs=inputs, source=source, units_label=units,
                             meta={"layout": lay, "files": [str(q) for q in files]})


def load_mat_trials(path: str | PathLike | Sequence[str | PathLike], *, layout: str = "auto",
                    variable: str | None = None, conditions: str | Sequence[str] | None = None,
                    only_correct: bool = False, correct_key: str = "correct", time_units: str = "s",
                    dt: float | None = None, inputs: Any = None, units: str | None = None,
                    **array_options: Any) -> NeuronTrials:
    """Read MAT files keeping each neuron's single trials (for split halves), not condition means.

    Parameters
    ----------
    path, layout, variable, conditions, only_correct, correct_key, time_units, dt, inputs, units
        As for :func:`load_mat`.
    **array_options
        Layout ``"arrays"`` only: the options of
        :func:`data_adapters.factors.arrays_to_neuron_trials` (an activity array whose
        ``axis_order`` has a NaN-padded ``trial`` axis).

    Returns
    -------
    NeuronTrials
        See :func:`unit_trials`.
    """
    files = _mat_files(path, layout)
    records: list[UnitRecord] = []
    for q, tree, lay in _trees(files, layout):
        if lay == "arrays":
            if len(files) > 1 or conditions is not None:
                raise DataError(f"'{q}' holds plain arrays; read one file with axis_order naming a trial axis "
                                "(conditions come from cond:<name> axes), or use layout='mante_unit' / 'tdr'",
                                field="layout")
            from .factors import arrays_to_neuron_trials

            out = arrays_to_neuron_trials(_flatten(tree), source=q, time_units=time_units, dt=dt, inputs=inputs,
                                          units=units, **array_options)
            out.meta["layout"] = "arrays"
            return out
        if array_options:
            bad = sorted(array_options)
            raise DataError(f"options {bad} apply to layout 'arrays' only, but '{q}' is read with layout "
                            f"{lay!r}; drop them", field=bad[0])
        records += unit_records(tree, q, lay, variable)
    source = _source_of(path, files)
    return unit_trials(records, conditions or [], only_correct=only_correct, correct_key=correct_key,
                       time_units=time_units, dt=dt, inputs=inputs, source=source, units_label=units,
                       meta={"layout": lay, "files": [str(q) for q in files]})
