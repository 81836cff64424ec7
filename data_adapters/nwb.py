"""Read NWB files (pynwb) into :class:`TrialData`: binned spikes, or a binned-rate / fluorescence series.

What is read
------------
``source="spikes"`` (default)
    Spike times of the ``Units`` table, counted in bins of ``dt`` seconds over a
    window aligned to an event column of the ``trials`` table (see
    :mod:`data_adapters.binning` for the exact bin rule: half-open bins, a spike on
    an edge goes to the later bin).  Optional Gaussian smoothing (``smooth_sd``,
    seconds) is applied to a window padded by four standard deviations and then
    cropped, so trial edges see real neighbouring spikes rather than zeros.
``source="<series>"``
    A ``TimeSeries`` / ``RoiResponseSeries`` (binned rates, fluorescence) in a
    processing module (or in acquisition), named by its name (``"rates"``) or its
    path (``"lrfit/rates"``, ``"ophys/Fluorescence/RoiResponseSeries"``).  Each bin
    of the window takes the first sample whose time lies in ``[bin start, bin end)``
    (sample times from ``timestamps`` or ``starting_time + i / rate``); ``dt``
    defaults to the sampling interval and may be an integer multiple of it (samples
    are then averaged).  ``conversion`` and ``offset`` are applied.  Smoothing a series
    pads the trial's ends with zeros (the samples outside the window are not read).

Alignment and window
--------------------
``time`` is relative to ``align_to`` (a column of event times, default
``start_time``).  ``window=(t0, t1)`` in seconds gives ``floor((t1 - t0) / dt)``
bins starting at ``t0``.  A window that leaves a trial's ``[start_time,
stop_time]`` is an error (``outside="error"``) or those bins are masked
(``outside="mask"``).  Without a window, it spans the earliest start to the
latest stop over trials and bins outside each trial are masked.  Trials whose
alignment time is NaN are dropped (logged, listed in ``meta["dropped_trials"]``).

Laziness
--------
The file is opened read-only in a context manager and closed before returning;
only the trial columns needed (alignment, start/stop, conditions, input events)
and the units' filter columns are read; spike times are read unit by unit through
the ragged ``spike_times_index``; series are read one trial span at a time.
Peak memory is the output tensor plus one unit's (or one trial's) data.

Unsorted spike times are sorted (a copy, logged at DEBUG) by default;
``unsorted="error"`` raises instead.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .binning import EDGE_TOL, bin_spike_times, gaussian_smooth
from .errors import DataError
from .formats import detect_format
from .inputs import build_inputs, parse_input_spec
from .trialdata import TrialData

log = logging.getLogger(__name__)

TRIAL_TIME_COLUMNS = ("start_time", "stop_time")
EMPTY_UNITS = ("keep", "flag", "drop", "error")


def _hint(name: str, choices: Sequence[str]) -> str:
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


@contextlib.contextmanager
def open_nwb(path: str | PathLike) -> Iterator[Any]:
    """Open an NWB file read-only and yield the ``NWBFile``; the file is closed on exit.

    Raises
    ------
    DataError
        If the file is missing, is not an NWB file, or cannot be read by pynwb.
    """
    p = Path(path)
    fmt = detect_format(p)
    if fmt != "nwb":
        raise DataError(f"'{p}' is not an NWB file (it looks like {fmt.upper()}); pass an NWB recording or load it "
                        f"with data_adapters.load('{p.name}') which picks the {fmt} reader", field="path")
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(p), "r", load_namespaces=True)
    except Exception as exc:  # pynwb/hdmf raise many types for broken files
        raise DataError(f"'{p}' could not be opened as NWB ({type(exc).__name__}: {str(exc)[:150]}); check that the "
                        "file is complete and was written by an NWB writer", field="path") from None
    try:
        try:
            nwb = io.read()
        except Exception as exc:
            raise DataError(f"'{p}' could not be read as NWB ({type(exc).__name__}: {str(exc)[:150]}); the file is "
                            "corrupt or uses an unsupported NWB extension", field="path") from None
        yield nwb
    finally:
        io.close()


# ---------------------------------------------------------------------------------------------- columns
def _is_ragged(table: Any, col: str) -> bool:
    from hdmf.common.table import VectorIndex

    return isinstance(table[col], VectorIndex)


def _require_flat_column(table: Any, col: str, role: str, table_name: str, p: Path, ragged: str) -> None:
    """One-sentence errors when *col* is missing from *table* or holds several values per row."""
    names = list(table.colnames)
    if col not in names:
        raise DataError(f"{role} column {col!r} is not in the {table_name} table of '{p}'{_hint(col, names)}; "
                        f"available columns: {names}", field=col)
    if _is_ragged(table, col):
        raise DataError(f"{role} column {col!r} in '{p}' is ragged{ragged}", field=col)


def _read_column(table: Any, col: str) -> np.ndarray:
    """Read one flat column of a DynamicTable into a 1-D numpy array (bytes decoded)."""
    values = np.asarray(table[col].data[:])
    if values.dtype.kind == "S" or (values.dtype.kind == "O" and values.size and isinstance(values[0], bytes)):
        values = np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
    return values


def _trial_table(nwb: Any, p: Path, align_to: str, condition_columns: Sequence[str] | None,
                 input_spec: list[Any]) -> tuple[pd.DataFrame, list[str]]:
    """Needed columns of the trials table and the names of the condition columns."""
    trials = nwb.trials
    if trials is None or len(trials) == 0:
        raise DataError(f"'{p}' has no trials table (or it is empty); add one with NWBFile.add_trial(...) "
                        "or load a file that has trials", field="trials")
    names = list(trials.colnames)
    if align_to not in names:
        times = [c for c in names if c.endswith("_time")]
        raise DataError(f"event column {align_to!r} is not in the trials table of '{p}'{_hint(align_to, names)}; "
                        f"use align_to= one of {times}", field=align_to)
    if condition_columns is None:
        conds = [c for c in names if c not in TRIAL_TIME_COLUMNS and not c.endswith("_time")
                 and not _is_ragged(trials, c)]
    else:
        conds = [str(c) for c in condition_columns]
        for c in conds:
            _require_flat_column(trials, c, "condition", "trials", p,
                                 " (several values per trial); leave it out of condition_columns")
    wanted = {align_to, *TRIAL_TIME_COLUMNS, *conds}
    for ch in input_spec:  # event and amplitude columns used by the input spec
        for ref in (ch.column, ch.start, ch.stop):
            if isinstance(ref, str) and ref in names and not _is_ragged(trials, ref):
                wanted.add(ref)
    cols: dict[str, np.ndarray] = {}
    for c in [n for n in names if n in wanted]:
        v = _read_column(trials, c)
        if v.ndim != 1:
            raise DataError(f"trials column {c!r} in '{p}' has {v.ndim} dimensions; condition columns must hold "
                            "one value per trial — leave it out of condition_columns", field=c)
        cols[c] = v
    return pd.DataFrame(cols), conds


# ---------------------------------------------------------------------------------------------- window
def _window(table: pd.DataFrame, align: np.ndarray, window: tuple[float, float] | None, step: float,
            align_to: str, outside: str, p: Path) -> tuple[float, int, np.ndarray]:
    """Window start ``t0``, number of bins and the ``(trials, bins)`` mask of bins inside each trial."""
    start = table["start_time"].to_numpy(np.float64)
    stop = table["stop_time"].to_numpy(np.float64)
    if window is None:
        t0, t1 = float(np.round(np.min(start - align), 9)), float(np.round(np.max(stop - align), 9))
        outside = "mask"
    else:
        try:
            t0, t1 = (float(w) for w in window)
        except (TypeError, ValueError):
            raise DataError(f"window={window!r} for '{p}' must be two numbers (t0, t1) in seconds relative to "
                            f"{align_to!r}", field="window") from None
        if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
            raise DataError(f"window=({t0}, {t1}) for '{p}' is empty or not finite; pass (t0, t1) with t1 > t0 "
                            f"in seconds relative to {align_to!r}", field="window")
    n_bins = int(np.floor((t1 - t0) / step + EDGE_TOL))
    if n_bins < 1:
        raise DataError(f"window ({t0}, {t1}) s of '{p}' is shorter than one bin of {step} s; widen the window "
                        "or use a smaller dt", field="window")
    tol = EDGE_TOL * step
    lo = align[:, None] + t0 + np.arange(n_bins)[None, :] * step
    inside = (lo >= start[:, None] - tol) & (lo + step <= stop[:, None] + tol)
    if outside == "error" and not inside.all():
        bad = np.flatnonzero(~inside.all(1))
        k = int(bad[0])
        raise DataError(
            f"window ({t0:g}, {t1:g}) s around {align_to!r} extends outside {bad.size} of {len(align)} trials in "
            f"'{p}' (trial {k} spans {start[k] - align[k]:.4g} to {stop[k] - align[k]:.4g} s around the event); "
            "shrink the window to fit inside every trial, or pass outside='mask' to mask those bins",
            field="window")
    return t0, n_bins, inside


# ---------------------------------------------------------------------------------------------- units
def _parse_filter(unit_filter: Mapping[str, Any] | str | None, p: Path) -> dict[str, Any]:
    if unit_filter is None:
        return {}
    if isinstance(unit_filter, Mapping):
        return dict(unit_filter)
    if isinstance(unit_filter, str):
        out: dict[str, Any] = {}
        for clause in unit_filter.split(" and "):
            col, sep, val = clause.partition("==")
            if not sep or not col.strip():
                break
            out[col.strip()] = val.strip().strip("'\"")
        else:
            return out
    raise DataError(f"unit_filter={unit_filter!r} for '{p}' is not understood; pass a mapping like "
                    "{'quality': 'good'} or a string like \"quality == good\"", field="unit_filter")


def _matches(values: np.ndarray, want: Any) -> np.ndarray:
    wants = list(want) if isinstance(want, (list, tuple, set, frozenset)) else [want]
    out = np.zeros(values.shape, dtype=bool)
    for w in wants:
        if values.dtype.kind == "b" and isinstance(w, str):
            w = w.strip().lower() in ("true", "1", "yes")
        elif values.dtype.kind in "iuf" and isinstance(w, str):
            try:
                w = float(w)
            except ValueError:
                pass
        elif values.dtype.kind == "O" and not isinstance(w, str):
            w = str(w)
        out |= values == w
    return out


def _select_units(table: Any, p: Path, unit_filter: Mapping[str, Any] | str | None,
                  units: Sequence[Any] | None, what: str) -> np.ndarray:
    """Row indices of the units (or channels) kept by ``units`` ids and ``unit_filter``."""
    ids = np.asarray(table.id.data[:])
    keep = np.ones(ids.size, dtype=bool)
    if units is not None:
        want = np.asarray(list(units))
        missing = want[~np.isin(want, ids)]
        if missing.size:
            raise DataError(f"{what} ids {missing[:5].tolist()} are not in the {what} table of '{p}' (ids run "
                            f"{ids.min() if ids.size else '-'}..{ids.max() if ids.size else '-'}); pass existing ids "
                            "in units=", field="units")
        keep &= np.isin(ids, want)
    for col, want in _parse_filter(unit_filter, p).items():
        _require_flat_column(table, col, "unit_filter", what, p, "; filter on a column with one value per unit")
        keep &= _matches(_read_column(table, col), want)
    if not keep.any():
        raise DataError(f"no unit of the {what} table in '{p}' passes unit_filter={unit_filter!r} / units={units!r}; "
                        "relax the filter (check the column's values)", field="unit_filter")
    return np.flatnonzero(keep)


def _bin_spikes(nwb: Any, p: Path, rows: np.ndarray, align: np.ndarray, t0: float, n_bins: int, dt: float,
                inside: np.ndarray, smooth_sd: float | None, unsorted: str) -> tuple[np.ndarray, np.ndarray]:
    """``(trials, bins, units)`` float32 counts (smoothed if asked) and each unit's spike count in valid bins."""
    units = nwb.units
    if "spike_times" not in units.colnames:
        raise DataError(f"the units table of '{p}' has no spike_times column; load a series with "
                        "source='<module>/<series>' instead", field="spike_times")
    ends = np.asarray(units.spike_times_index.data[:], dtype=np.int64)
    begins = np.concatenate([[0], ends[:-1]])
    data = units.spike_times.data
    sd_bins = float(smooth_sd) / dt if smooth_sd else 0.0
    pad = int(np.ceil(4 * sd_bins)) if sd_bins > 0 else 0
    starts = align + t0 - pad * dt
    out = np.empty((len(align), n_bins, rows.size), dtype=np.float32)
    totals = np.empty(rows.size, dtype=np.int64)
    ids = np.asarray(units.id.data[:])
    for j, r in enumerate(rows):  # one read per unit; spikes within a unit are vectorised
        spikes = np.asarray(data[begins[r]:ends[r]], dtype=np.float64)
        counts = bin_spike_times(spikes, starts, n_bins + 2 * pad, dt, unsorted=unsorted,
                                 name=f"spike times of unit {ids[r]} in '{p}'")
        core = counts[:, pad:pad + n_bins]
        totals[j] = int(core[inside].sum())
        out[:, :, j] = gaussian_smooth(counts, sd_bins)[:, pad:pad + n_bins] if pad else core
    out[~inside] = 0.0
    return out, totals


# ---------------------------------------------------------------------------------------------- series
def _series_paths(nwb: Any) -> dict[str, Any]:
    """All TimeSeries in processing modules and acquisition, by path (``module/[container/]name``)."""
    from hdmf.container import MultiContainerInterface
    from pynwb import TimeSeries

    found: dict[str, Any] = {}

    def visit(obj: Any, prefix: str) -> None:
        if isinstance(obj, TimeSeries):
            found[f"{prefix}{obj.name}"] = obj
        elif isinstance(obj, MultiContainerInterface):  # Fluorescence, DfOverF, ... hold several series
            for child in obj.children:
                visit(child, f"{prefix}{obj.name}/")

    for name, module in nwb.processing.items():
        for child in module.data_interfaces.values():
            visit(child, f"{name}/")
    for child in nwb.acquisition.values():
        visit(child, "acquisition/")
    return found


def _find_series(nwb: Any, name: str, p: Path, what: str = "source") -> Any:
    paths = _series_paths(nwb)
    if name in paths:
        return paths[name]
    hits = [k for k in paths if k.endswith("/" + name)]
    if len(hits) == 1:
        return paths[hits[0]]
    if len(hits) > 1:
        raise DataError(f"{what}={name!r} matches several series in '{p}' ({hits}); give the full path",
                        field=what)
    short = {k.rsplit("/", 1)[-1] for k in paths}
    extra = "units table spike times: source='spikes'" if nwb.units is not None else "no units table"
    raise DataError(f"{what}={name!r} names no TimeSeries in the processing modules of '{p}'"
                    f"{_hint(name, list(paths) + sorted(short))}; available series: {sorted(paths) or 'none'} "
                    f"({extra})", field=what)


def series_step(series: Any) -> float:
    """Sampling interval (s) of a TimeSeries: ``1 / rate``, or the median timestamp difference."""
    if series.rate is not None:
        return float(f"{1.0 / float(series.rate):.12g}")
    ts = np.asarray(series.timestamps[: min(len(series.timestamps), 10_001)], dtype=np.float64)
    if ts.size < 2:
        return float("nan")
    return float(f"{float(np.median(np.diff(ts))):.12g}")


def _sample_series(series: Any, p: Path, align: np.ndarray, t0: float, n_bins: int, step: float,
                   inside: np.ndarray, outside: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Sample a series at the window bins: ``(trials, bins, channels)`` float32 and the bins that had a sample."""
    data = series.data
    n = data.shape[0]
    if series.timestamps is not None:
        st = np.asarray(series.timestamps[:], dtype=np.float64)
    else:
        st = float(series.starting_time or 0.0) + np.arange(n) / float(series.rate)
    tol = EDGE_TOL * step
    lo = align[:, None] + t0 + np.arange(n_bins)[None, :] * step
    idx = np.searchsorted(st, lo - tol, side="left")
    has = idx < n
    has[has] &= st[idx[has]] < lo[has] + step - tol
    missing = inside & ~has
    if missing.any() and outside == "error":
        k = int(np.flatnonzero(missing.any(1))[0])
        raise DataError(f"series {name!r} in '{p}' has no sample in {int(missing.sum())} bins inside the trials "
                        f"(first in trial {k}); use a window the series covers, dt >= its sampling interval "
                        f"({series_step(series):g} s), or outside='mask'", field="source")
    has &= inside
    C = int(np.prod(data.shape[1:])) if len(data.shape) > 1 else 1
    out = np.zeros((len(align), n_bins, C), dtype=np.float32)
    conv, off = float(series.conversion or 1.0), float(getattr(series, "offset", 0.0) or 0.0)
    for k in range(len(align)):  # one contiguous read per trial
        if not has[k].any():
            continue
        rows = idx[k, has[k]]
        a, b = int(rows.min()), int(rows.max()) + 1
        block = np.asarray(data[a:b], dtype=np.float64).reshape(b - a, C)
        vals = block[rows - a]
        if conv != 1.0 or off != 0.0:
            vals = vals * conv + off
        out[k, has[k]] = vals
    return out, has


def _series_ids(series: Any, C: int, key: str) -> list[Any] | None:
    rois = getattr(series, "rois", None)
    if rois is not None:
        return np.asarray(rois.table.id.data[:])[np.asarray(rois.data[:])].tolist()
    try:
        ids = json.loads(series.comments or "{}").get(key)
    except (json.JSONDecodeError, AttributeError):
        ids = None
    return ids if isinstance(ids, list) and len(ids) == C else None


# ---------------------------------------------------------------------------------------------- entry point
def load_nwb(path: str | PathLike, *, dt: float | None = None, align_to: str = "start_time",
             window: tuple[float, float] | None = None, smooth_sd: float | None = None, rate: bool = False,
             source: str = "spikes", unit_filter: Mapping[str, Any] | str | None = None,
             units: Sequence[Any] | None = None, condition_columns: Sequence[str] | None = None,
             inputs: Sequence[Any] | Mapping[str, Any] | str | None = None, empty_units: str = "keep",
             unsorted: str = "sort", outside: str = "error") -> TrialData:
    """Read trials from an NWB file: binned spikes of the Units table, or a processing-module series.

    Parameters
    ----------
    path
        ``.nwb`` file.
    dt
        Bin width in seconds.  Required for ``source="spikes"``; for a series it
        defaults to the sampling interval and may be an integer multiple of it.
    align_to
        Trials column of event times that ``time`` is relative to (``"stim_on_time"``,
        ``"start_time"``, ...).
    window
        ``(t0, t1)`` seconds relative to the event; default: the span of all trials
        (bins outside a trial masked).
    smooth_sd
        Standard deviation (s) of a Gaussian smoothing kernel; ``None`` for none.
    rate
        Divide counts by ``dt`` (spikes per second) instead of returning counts.
    source
        ``"spikes"`` or the name / path of a TimeSeries or RoiResponseSeries
        (e.g. ``"lrfit/rates"``, ``"ophys/Fluorescence/RoiResponseSeries"``).
    unit_filter
        Keep units whose columns match: ``{"quality": "good"}`` (a list of values
        means any of them), or ``"quality == good"``.  Spikes only.
    units
        Ids of the units (spikes) or channels' ids (series) to keep, in file order.
    condition_columns
        Trials columns copied into ``conditions``; default every column with one
        value per trial except ``start_time``, ``stop_time`` and ``*_time`` event columns.
    inputs
        Input spec (list of channel dicts, see :mod:`data_adapters.inputs`) whose
        event columns hold absolute times of the trials table, or the name / path of
        a TimeSeries of stored inputs (e.g. ``"lrfit/inputs"``).
    empty_units
        Units with no spike in the loaded bins: ``"keep"``, ``"flag"`` (keep, log a
        warning), ``"drop"`` or ``"error"``; always listed in ``meta["empty_units"]``.
    unsorted
        Unsorted spike times: ``"sort"`` (sort a copy) or ``"error"``.
    outside
        Window bins outside a trial's ``[start_time, stop_time]``: ``"error"`` or ``"mask"``.

    Returns
    -------
    TrialData
        ``activity`` ``(trials, time, units)`` (counts, rates or the series' values),
        ``neuron_ids`` the units' ids, ``meta`` with ``source``, ``units``, ``align_to``,
        ``window``, ``empty_units``, ``dropped_trials``.

    Raises
    ------
    DataError
        For a missing or non-NWB file, no trials or units table, an unknown event,
        condition, filter or series name, a window outside the trials, no unit
        passing the filter, unsorted spikes with ``unsorted="error"``, empty units
        with ``empty_units="error"``.
    """
    p = Path(path)
    for opt, val, allowed in (("empty_units", empty_units, EMPTY_UNITS), ("unsorted", unsorted, ("sort", "error")),
                              ("outside", outside, ("error", "mask"))):
        if val not in allowed:
            raise DataError(f"{opt}={val!r} is not known (reading '{p}'); use one of {allowed}", field=opt)
    spikes = source == "spikes"
    if spikes and (dt is None or not float(dt) > 0):
        raise DataError(f"binning the spikes of '{p}' needs dt=<bin width in s> (e.g. dt=0.01)", field="dt")
    if not spikes and unit_filter is not None:
        raise DataError(f"unit_filter applies to source='spikes' only (reading {source!r} from '{p}'); pick "
                        "channels of a series with units=[ids]", field="unit_filter")
    spec = [] if inputs is None or isinstance(inputs, str) else parse_input_spec(inputs, p)

    with open_nwb(p) as nwb:
        table, conds = _trial_table(nwb, p, align_to, condition_columns, spec)
        align = table[align_to].to_numpy(np.float64)
        dropped = np.flatnonzero(~np.isfinite(align))
        if dropped.size:
            log.warning("%d trials of %s have no %s (NaN) and are dropped", dropped.size, p, align_to)
            keep = np.isfinite(align)
            table, align = table[keep].reset_index(drop=True), align[keep]
            if not len(table):
                raise DataError(f"every trial of '{p}' has NaN in {align_to!r}; align to another event column",
                                field=align_to)
        if spikes:
            step, factor = float(dt), 1
            if nwb.units is None or len(nwb.units) == 0:
                raise DataError(f"'{p}' has no units table (or it is empty), so there are no spikes to bin; load a "
                                "series instead with source='<module>/<series>'", field="units")
        else:
            series = _find_series(nwb, source, p)
            step = series_step(series)
            factor = 1
            if dt is not None:
                ratio = float(dt) / step
                factor = int(round(ratio))
                if factor < 1 or abs(ratio - factor) > 1e-6:
                    raise DataError(f"dt={dt} is not an integer multiple of the sampling interval {step:g} s of "
                                    f"series {source!r} in '{p}'; pass dt=k*{step:g} or leave dt out", field="dt")
        t0, n_bins, inside = _window(table, align, window, step, align_to, outside, p)

        if spikes:
            rows = _select_units(nwb.units, p, unit_filter, units, "units")
            activity, totals = _bin_spikes(nwb, p, rows, align, t0, n_bins, step, inside, smooth_sd, unsorted)
            ids = np.asarray(nwb.units.id.data[:])[rows]
            unit_label = "Hz" if rate else "counts"
            if rate:
                activity /= np.float32(step)
        else:
            activity, has = _sample_series(series, p, align, t0, n_bins, step, inside, outside, source)
            inside = has
            all_ids = _series_ids(series, activity.shape[2], "neuron_ids") or list(range(activity.shape[2]))
            ids = np.asarray(all_ids)
            if units is not None:
                want = np.asarray(list(units))
                missing = want[~np.isin(want, ids)]
                if missing.size:
                    raise DataError(f"channel ids {missing[:5].tolist()} are not in series {source!r} of '{p}' "
                                    f"(ids: {ids[:10].tolist()}...); pass existing ids in units=", field="units")
                sel = np.flatnonzero(np.isin(ids, want))
                activity, ids = activity[:, :, sel], ids[sel]
            if smooth_sd:
                activity = gaussian_smooth(activity, float(smooth_sd) / step)
                activity[~inside] = 0.0
            totals = np.abs(activity).sum((0, 1))
            unit_label = str(series.unit)

        time = t0 + (np.arange(n_bins) + 0.5) * step
        if isinstance(inputs, str):
            in_series = _find_series(nwb, inputs, p, what="inputs")
            u, _ = _sample_series(in_series, p, align, t0, n_bins, step, inside, "mask", inputs)
            names = _series_ids(in_series, u.shape[2], "channels") or [f"{in_series.name}{i}" for i in
                                                                        range(u.shape[2])]
            input_names = tuple(str(n) for n in names)
        else:
            u, input_names = build_inputs(spec, table, time, step, align_times=align, source=p)

    empty = ids[totals == 0]
    if empty.size:
        msg = (f"{empty.size} of {ids.size} units in '{p}' have no spike (or only zeros) in the loaded bins "
               f"(ids {empty[:10].tolist()})")
        if empty_units == "error":
            raise DataError(f"{msg}; drop them with empty_units='drop' or keep them with empty_units='keep'",
                            field="units")
        if empty_units == "flag":
            log.warning("%s; kept (empty_units='flag')", msg)
        elif empty_units == "drop":
            if empty.size == ids.size:
                raise DataError(f"{msg}, so nothing is left after empty_units='drop'; check the window, the "
                                "alignment and unit_filter", field="units")
            keep = totals > 0
            activity, ids = activity[:, :, keep], ids[keep]
            log.info("%s; dropped", msg)
    meta = {"source": str(p), "format": "nwb", "units": unit_label, "nwb_source": source, "align_to": align_to,
            "window": [float(t0), float(t0 + n_bins * step)], "smooth_sd": smooth_sd,
            "unit_filter": unit_filter if not isinstance(unit_filter, Mapping) else dict(unit_filter),
            "empty_units": empty.tolist(), "empty_units_policy": empty_units, "dropped_trials": dropped.tolist()}
    data = TrialData(activity=activity, inputs=u, input_names=input_names, mask=inside,
                     conditions=table[conds].reset_index(drop=True), dt=step, time=time, neuron_ids=ids, meta=meta)
    return data.rebin(factor, how="mean") if factor > 1 else data
