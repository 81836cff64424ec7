"""Time axes read from files: unit conversion, checks and the one log line per load.

Every reader that takes bin times from a file (NPZ/NPY, HDF5 arrays and the TrialData
layout, MAT arrays and unit layouts) goes through :func:`time_from_vector` and
:func:`check_bin_width`, so a time vector in the wrong unit fails the same way
everywhere:

- the vector must be finite and strictly increasing (a decreasing or unsorted time
  axis is an error, not silently reordered);
- the bin width ``dt`` must lie in ``[MIN_DT, MAX_DT]`` = ``[1e-5 s, 1 s]``; outside,
  the error names ``time_units`` (e.g. a vector in ms read as seconds gives bins of
  50 s: "if it is in milliseconds, set time_units: ms").

:func:`log_time_axis` writes ``dt`` and the time span at INFO, once per load.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .errors import DataError

log = logging.getLogger(__name__)

TIME_UNITS = {"s": 1.0, "ms": 1e-3}
MIN_DT = 1e-5
MAX_DT = 1.0


def time_scale(time_units: str, source: Any) -> float:
    """Seconds per stored time unit (``"s"`` -> 1, ``"ms"`` -> 1e-3).

    Raises
    ------
    DataError
        For an unknown unit.
    """
    scale = TIME_UNITS.get(time_units)
    if scale is None:
        raise DataError(f"time_units={time_units!r} for '{source}' is not known; use 's' or 'ms'",
                        field="time_units")
    return scale


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.4g} ms" if abs(seconds) < 1 else f"{seconds:.4g} s"


def check_bin_width(dt: float, *, source: Any, what: str, from_time: bool, time_units: str = "s") -> float:
    """Return ``dt`` (s) if it is a plausible bin width, else raise naming the fix.

    Parameters
    ----------
    dt
        Bin width in seconds.
    source
        File name, for the message.
    what
        What the bin width came from (``"time array 't'"``, ``"dt"``).
    from_time
        True when ``dt`` was inferred from a time vector (the fix is ``time_units``),
        False when it was given (the fix is ``dt`` in seconds).
    time_units
        The unit the time vector was read in.

    Raises
    ------
    DataError
        If ``dt`` is outside ``[MIN_DT, MAX_DT]``.
    """
    dt = float(dt)
    if MIN_DT <= dt <= MAX_DT:
        return dt
    if from_time:
        if dt > MAX_DT:
            fix = ("if it is in milliseconds, set time_units: ms" if time_units == "s" else
                   f"check time_units (now {time_units!r}) and the time array")
        else:
            fix = ("if it is in seconds, set time_units: s" if time_units == "ms" else
                   "check the time array's unit (time_units: s or ms)")
        raise DataError(f"{what} in '{source}' has bins of {_fmt(dt)} (read with time_units: {time_units}); "
                        f"{fix}", field="time_units")
    raise DataError(f"{what} for '{source}' is {dt:g} s, not a plausible bin width (between {MIN_DT:g} and "
                    f"{MAX_DT:g} s); dt is in seconds, e.g. dt: 0.02 for 20 ms bins", field="dt")


def time_from_vector(time: Any, n_bins: int, *, dt: float | None, time_units: str, source: Any, what: str,
                     field: str = "time_key", length_fix: str = "check time_key and axis_order"
                     ) -> tuple[np.ndarray, float]:
    """Bin centres (s) and bin width from a stored time vector.

    Parameters
    ----------
    time
        Stored times, one per bin, in ``time_units``.
    n_bins
        Number of time bins of the activity.
    dt
        Bin width in seconds; inferred from the (evenly spaced) vector when None.
    time_units
        ``"s"`` or ``"ms"``.
    source
        File name, for messages.
    what
        The vector's name in messages (``"time array 't'"``).
    field
        Option that names the vector (``DataError.field`` of the errors about it).
    length_fix
        The fix named when the vector's length differs from ``n_bins``.

    Returns
    -------
    (ndarray, float)
        Times in seconds and the bin width in seconds.

    Raises
    ------
    DataError
        Wrong length, NaN, not strictly increasing, uneven spacing without ``dt``, or an
        implausible bin width (see :func:`check_bin_width`).
    """
    t = np.asarray(time, dtype=np.float64).reshape(-1) * time_scale(time_units, source)
    if t.size != n_bins:
        raise DataError(f"{what} in '{source}' has {t.size} entries but the activity has {n_bins} time bins; "
                        f"{length_fix}", field=field)
    if not np.all(np.isfinite(t)):
        raise DataError(f"{what} in '{source}' contains NaN/Inf; store one finite time per bin", field=field)
    d = np.diff(t)
    if np.any(d <= 0):
        i = int(np.flatnonzero(d <= 0)[0])
        kind = "decreasing" if np.all(d < 0) else "not strictly increasing"
        raise DataError(f"{what} in '{source}' is {kind} (entry {i + 1} is {t[i + 1]:g} s after {t[i]:g} s); "
                        "store bins in time order, or reorder the activity's time axis with it", field=field)
    if dt is None:
        if d.size == 0:
            raise DataError(f"{what} in '{source}' has a single bin, so it gives no bin width; "
                            "pass dt=<bin width in s>", field="dt")
        if not np.allclose(d, d[0], rtol=1e-6, atol=1e-12):
            raise DataError(f"{what} in '{source}' is not evenly spaced; pass dt=<bin width in s>", field="dt")
        dt = check_bin_width(float(f"{np.mean(d):.10g}"), source=source, what=what, from_time=True,
                             time_units=time_units)
    else:
        dt = check_bin_width(dt, source=source, what="dt", from_time=False)
        span = float(np.median(d)) if d.size else dt
        check_bin_width(span, source=source, what=what, from_time=True, time_units=time_units)
    return t, float(dt)


def resolve_time(time: Any, n_bins: int, *, dt: float | None, t_start: float | None, time_units: str,
                 source: Any, what: str, field: str = "time_key",
                 length_fix: str = "check time_key and axis_order") -> tuple[np.ndarray, float]:
    """Bin centres (s) and bin width from a time vector (:func:`time_from_vector`) or from ``dt``.

    Without a vector the bins start at ``t_start`` (default ``dt / 2``) and ``dt`` is required.

    Raises
    ------
    DataError
        As :func:`time_from_vector`; or no ``dt`` and no vector; or an implausible ``dt``.
    """
    time_scale(time_units, source)
    if time is not None:
        return time_from_vector(time, n_bins, dt=dt, time_units=time_units, source=source, what=what,
                                field=field, length_fix=length_fix)
    if dt is None:
        raise DataError(f"'{source}' gives no bin width; pass dt=<bin width in s> or time_key=<time array>",
                        field="dt")
    dt = check_bin_width(dt, source=source, what="dt", from_time=False)
    return (t_start if t_start is not None else dt / 2) + np.arange(n_bins) * dt, dt


def log_time_axis(dt: float, time: np.ndarray, source: Any) -> None:
    """Log ``dt`` and the time span of a loaded recording at INFO (one line)."""
    t = np.asarray(time, dtype=np.float64)
    log.info("loaded '%s': dt = %s, %d bins from %s to %s (span %s)", source, _fmt(dt), t.size,
             _fmt(float(t[0])) if t.size else "-", _fmt(float(t[-1])) if t.size else "-",
             _fmt(float(t[-1] - t[0] + dt)) if t.size else "-")
