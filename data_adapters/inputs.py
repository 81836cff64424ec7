"""Declarative task-input specification: trial columns -> ``(trials, time, channels)``.

A spec is a list of channel dicts (plain YAML)::

    inputs:
      - name: cue_x                # channel name (required, unique)
        column: reach_angle_deg    # per-trial amplitude from a condition column ...
        transform: cos_deg         # ... optionally transformed
      - name: go
        value: 1.0                 # ... or a constant amplitude (default 1.0)
        start: -0.3                # epoch start: seconds relative to the alignment event,
                                   #   or the name of an event-time column, or null = window start
        stop: null                 # epoch end (exclusive), same forms, null = window end
      - name: context_motion
        column: context
        equals: motion             # amplitude 1 where the column equals this value, else 0

Keys
----
``name``
    Channel name.
``value`` / ``column``
    Constant amplitude, or a per-trial amplitude from ``conditions[column]``.
    Neither given: amplitude 1.
``transform``
    Applied to the column value: ``identity``, ``cos``, ``sin`` (radians),
    ``cos_deg``, ``sin_deg`` (degrees), ``abs``, ``neg``, ``sign``.
``equals``
    Amplitude is 1 where ``conditions[column] == equals`` and 0 otherwise (one-hot).
``start`` / ``stop``
    Epoch in which the channel is on: a bin is on when ``start <= centre < stop``.
    A number is seconds relative to the alignment event (the ``time`` axis);
    a string names a column of event times.  Event columns hold *absolute*
    times in the recording's clock when reading NWB (the alignment time of the
    trial is subtracted), or times relative to the alignment event for
    NPZ/HDF5/MAT data (no alignment offset).  A NaN event time switches the
    channel off for that trial.
``start_offset`` / ``stop_offset``
    Seconds added to ``start`` / ``stop`` (e.g. ``start: go_cue_time, start_offset: 0.05``).
``scale``
    Multiplies the amplitude (default 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, where

TRANSFORMS = {
    "identity": lambda x: x,
    "cos": np.cos,
    "sin": np.sin,
    "cos_deg": lambda x: np.cos(np.deg2rad(x)),
    "sin_deg": lambda x: np.sin(np.deg2rad(x)),
    "abs": np.abs,
    "neg": np.negative,
    "sign": np.sign,
}


@dataclass(frozen=True)
class InputChannel:
    """One task-input channel (see the module docstring for the meaning of each key)."""

    name: str
    value: float | None = None
    column: str | None = None
    transform: str | None = None
    equals: Any = None
    start: float | str | None = None
    stop: float | str | None = None
    start_offset: float = 0.0
    stop_offset: float = 0.0
    scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with the non-default keys (YAML/JSON friendly)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "name" or v != f.default:
                out[f.name] = v
        return out


_KEYS = tuple(f.name for f in fields(InputChannel))


def parse_input_spec(spec: Iterable[Any] | Mapping[str, Any] | None,
                     source: str | PathLike | None = None) -> list[InputChannel]:
    """Validate an input spec and return :class:`InputChannel` objects.

    Parameters
    ----------
    spec
        List of channel dicts / :class:`InputChannel`, or a mapping ``name -> dict``.
    source
        File the spec belongs to (for messages).

    Returns
    -------
    list of InputChannel
    """
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        spec = [{"name": k, **(v or {})} for k, v in spec.items()]
    out: list[InputChannel] = []
    for i, ch in enumerate(spec):
        if isinstance(ch, InputChannel):
            out.append(ch)
            continue
        if not isinstance(ch, Mapping):
            raise DataError(f"input channel #{i}{where(source)} must be a mapping like "
                            "{name: go, value: 1, start: -0.3}", field="inputs")
        unknown = sorted(set(ch) - set(_KEYS))
        if unknown:
            raise DataError(f"input channel #{i} ({ch.get('name')!r}){where(source)} has unknown keys {unknown}; "
                            f"allowed keys are {list(_KEYS)}", field="inputs")
        if "name" not in ch:
            raise DataError(f"input channel #{i}{where(source)} has no 'name'; give each channel a name",
                            field="inputs")
        if ch.get("value") is not None and ch.get("column") is not None:
            raise DataError(f"input channel {ch['name']!r}{where(source)} gives both 'value' and 'column'; "
                            "give one of them", field="inputs")
        tr = ch.get("transform")
        if tr is not None and tr not in TRANSFORMS:
            raise DataError(f"input channel {ch['name']!r}{where(source)} has unknown transform {tr!r}; "
                            f"use one of {sorted(TRANSFORMS)}", field="inputs")
        if (tr is not None or ch.get("equals") is not None) and ch.get("column") is None:
            raise DataError(f"input channel {ch['name']!r}{where(source)} uses transform/equals without a "
                            "'column'; name the condition column they apply to", field="inputs")
        out.append(InputChannel(**ch))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise DataError(f"input spec{where(source)} repeats channel names {names}; make them unique", field="inputs")
    return out


def _column(conditions: pd.DataFrame, col: str, ch: str, source: Any) -> pd.Series:
    if col not in conditions.columns:
        raise DataError(f"input channel {ch!r} refers to column {col!r} which does not exist{where(source)}; "
                        f"available columns: {list(conditions.columns)}", field=col)
    return conditions[col]


def _edge(v: float | str | None, offset: float, default: float, conditions: pd.DataFrame,
          align: np.ndarray, ch: str, source: Any) -> np.ndarray:
    K = len(conditions)
    if v is None:
        return np.full(K, default) + offset
    if isinstance(v, str):
        col = _column(conditions, v, ch, source)
        try:
            t = col.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"event column {v!r} used by input channel {ch!r}{where(source)} is not numeric; "
                            "name a column of event times in seconds", field=v) from None
        return t - align + offset
    return np.full(K, float(v)) + offset


def build_inputs(spec: Iterable[Any] | Mapping[str, Any] | None, conditions: pd.DataFrame, time: np.ndarray,
                 dt: float, align_times: np.ndarray | None = None,
                 source: str | PathLike | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Build task inputs from trial columns.

    Parameters
    ----------
    spec
        Input spec (see module docstring).
    conditions
        One row per trial.
    time
        ``(time,)`` bin centres in seconds relative to the alignment event.
    dt
        Bin width (s); ``null`` edges extend half a bin beyond the first/last centre.
    align_times
        ``(trials,)`` absolute alignment time per trial, subtracted from event columns
        (NWB); ``None`` means event columns are already relative.
    source
        File (for messages).

    Returns
    -------
    inputs : ndarray
        ``(trials, time, channels)`` float32.
    names : tuple of str
    """
    channels = parse_input_spec(spec, source)
    K, T = len(conditions), len(time)
    align = np.zeros(K) if align_times is None else np.asarray(align_times, dtype=np.float64)
    out = np.zeros((K, T, len(channels)), dtype=np.float32)
    t = np.asarray(time, dtype=np.float64)
    tol = 1e-9 * max(dt, 1e-12)
    for c, ch in enumerate(channels):
        if ch.column is not None:
            col = _column(conditions, ch.column, ch.name, source)
            if ch.equals is not None:
                amp = (col == ch.equals).to_numpy(dtype=np.float64)
            else:
                try:
                    x = col.to_numpy(dtype=np.float64)
                except (TypeError, ValueError):
                    raise DataError(
                        f"column {ch.column!r} used by input channel {ch.name!r}{where(source)} is not "
                        "numeric; use 'equals: <value>' for a categorical column",
                        field=ch.column,
                    ) from None
                amp = TRANSFORMS[ch.transform or "identity"](x)
        else:
            amp = np.full(K, 1.0 if ch.value is None else float(ch.value))
        amp = amp * float(ch.scale)
        start = _edge(ch.start, ch.start_offset, t[0] - dt / 2, conditions, align, ch.name, source)
        stop = _edge(ch.stop, ch.stop_offset, t[-1] + dt, conditions, align, ch.name, source)
        on = (t[None, :] >= start[:, None] - tol) & (t[None, :] < stop[:, None] - tol)
        on &= np.isfinite(start)[:, None] & np.isfinite(stop)[:, None]
        bad = ~np.isfinite(amp) & on.any(1)
        if bad.any():
            raise DataError(f"input channel {ch.name!r}{where(source)} has a NaN amplitude in {int(bad.sum())} "
                            f"trials (column {ch.column!r}); fill or drop those trials", field=ch.column)
        out[:, :, c] = np.where(on, amp[:, None], 0.0)
    return out, tuple(ch.name for ch in channels)
