"""Write :class:`TrialData` (e.g. simulated activity) to an NWB file that :func:`load_nwb` reads back.

Layout written by :func:`write_nwb`
-----------------------------------
Trials are laid end to end on the file's clock: trial ``k`` occupies
``[offset + k * T * dt, offset + (k + 1) * T * dt)`` where ``T`` is the number of
time bins (bins masked at the end of a trial shorten its ``stop_time``) and
``offset = max(0, time[0] - dt/2)`` keeps every time column non-negative.

``/intervals/trials``
    ``start_time``, ``stop_time``; ``align_time`` (the time that ``TrialData.time``
    is relative to, so that ``time[0] - dt/2`` after ``align_time`` is the start
    of the trial); one column per condition column (categorical and other
    non-numeric columns as strings); for each epoch given in ``epochs``,
    ``<epoch>_start_time`` and ``<epoch>_stop_time`` (absolute seconds).
``/processing/<module>/rates``
    (``rates=True``) ``TimeSeries`` ``(trials * time, neurons)`` float32 with
    ``rate = 1 / dt`` and ``starting_time = offset + dt / 2``: each sample is stamped
    at the centre of its bin.  ``unit`` is ``meta["units"]`` (``"a.u."`` if absent);
    ``comments`` hold ``{"neuron_ids": [...]}`` as JSON.
``/processing/<module>/inputs``
    (when there are input channels) ``TimeSeries`` ``(trials * time, channels)``,
    stamped like ``rates``; its ``comments`` hold ``{"channels": [names]}`` as JSON.
``/units``
    (``spikes=True``) one row per neuron with ``spike_times``, ``obs_intervals``
    (the trials) and a ``neuron_id`` column (the id as a string; integer ids are
    also the table's ids); spikes are Poisson samples of ``activity`` read as rates
    in Hz (``spikes="poisson"`` or ``True``, or of ``rates_hz``), or ``activity``
    used as counts (``spikes="counts"``).  Each spike sits at a uniformly random
    position inside its bin, at least 1e-3 bins away from the edges, so re-binning
    at ``dt`` gives back exactly the counts.

Reading it back (:func:`data_adapters.nwb.load_nwb`)::

    load_nwb(path, source="lrfit/rates", align_to="align_time", inputs="lrfit/inputs")  # rates, exactly
    load_nwb(path, dt=dt, align_to="align_time", inputs="lrfit/inputs")                 # spike counts

Condition columns whose names end in ``_time`` are written, but ``load_nwb``
treats them as event columns and copies them into ``conditions`` only when named
in ``condition_columns``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError
from .trialdata import TrialData

log = logging.getLogger(__name__)

RESERVED_TRIAL_COLUMNS = ("start_time", "stop_time", "tags", "timeseries", "id", "align_time")
EDGE_MARGIN = 1e-3  # spikes are kept this fraction of a bin away from bin edges


def poisson_spikes(rates_hz: np.ndarray, dt: float, seed: int = 0) -> np.ndarray:
    """Poisson spike counts for rates given in Hz.

    Parameters
    ----------
    rates_hz
        ``(trials, time, neurons)`` non-negative rates in spikes per second.
    dt
        Bin width in seconds.
    seed
        Seed of the ``numpy.random.Generator``.

    Returns
    -------
    ndarray
        int64 counts, same shape, drawn as ``Poisson(rates_hz * dt)``.

    Raises
    ------
    DataError
        If a rate is negative or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> poisson_spikes(np.full((1, 3, 2), 10.0), dt=0.01, seed=0).shape
    (1, 3, 2)
    """
    r = np.asarray(rates_hz, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise DataError("rates for Poisson spikes contain NaN/Inf; pass finite rates in Hz", field="rates_hz")
    if r.size and r.min() < 0:
        raise DataError(f"rates for Poisson spikes must be >= 0 Hz but the smallest is {r.min():.3g}; convert the "
                        "activity to firing rates in Hz first (e.g. lrfit simulate --max-rate-hz)", field="rates_hz")
    if not dt > 0:
        raise DataError(f"dt must be a positive bin width in seconds, got {dt}", field="dt")
    return np.random.default_rng(seed).poisson(r * float(dt)).astype(np.int64)


def counts_to_spike_times(counts: np.ndarray, trial_starts: np.ndarray, dt: float,
                          seed: int = 0) -> list[np.ndarray]:
    """Turn binned counts into sorted spike times, one array per neuron.

    Parameters
    ----------
    counts
        ``(trials, time, neurons)`` non-negative integer counts.
    trial_starts
        ``(trials,)`` absolute time of the start of each trial's first bin (s).
    dt
        Bin width (s).
    seed
        Seed of the positions of the spikes inside their bins.

    Returns
    -------
    list of ndarray
        Strictly increasing float64 spike times for each neuron; each spike lies at
        least ``EDGE_MARGIN * dt`` inside its bin, so binning at ``dt`` returns ``counts``.
    """
    c = np.asarray(counts)
    K, T, N = c.shape
    rng = np.random.default_rng(seed)
    bin_start = (np.asarray(trial_starts, dtype=np.float64)[:, None] + np.arange(T)[None, :] * dt).reshape(-1)
    out = []
    for n in range(N):  # loop over neurons only; spikes and bins are vectorised
        cn = c[:, :, n].reshape(-1).astype(np.int64)
        which = np.repeat(np.arange(K * T), cn)
        u = rng.uniform(EDGE_MARGIN, 1.0 - EDGE_MARGIN, size=which.size)
        t = np.sort(bin_start[which] + u * dt)
        out.append(t)
    return out


def _units_table(times: list[np.ndarray], neuron_ids: np.ndarray, intervals: np.ndarray) -> Any:
    """Units table built from whole numpy columns (``add_unit`` row by row is slow for millions of spikes)."""
    from hdmf.common import ElementIdentifiers, VectorData, VectorIndex
    from pynwb.misc import Units

    N = len(times)
    ids = neuron_ids.astype(np.int64) if neuron_ids.dtype.kind in "iu" else np.arange(N)
    spike_times = VectorData(name="spike_times", description="spike times (s) of each unit",
                             data=np.concatenate(times) if N else np.zeros(0))
    spike_index = VectorIndex(name="spike_times_index", target=spike_times,
                              data=np.cumsum([t.size for t in times]).astype(np.int64))
    obs = VectorData(name="obs_intervals", description="observation intervals (the trials) of each unit",
                     data=np.tile(intervals, (N, 1)))
    obs_index = VectorIndex(name="obs_intervals_index", target=obs,
                            data=(np.arange(1, N + 1) * len(intervals)).astype(np.int64))
    neuron_id = VectorData(name="neuron_id", description="neuron id in the TrialData",
                           data=[str(i) for i in neuron_ids])
    return Units(name="units", description="simulated units written by data_adapters.write_nwb",
                 id=ElementIdentifiers(name="id", data=ids),
                 columns=[spike_times, spike_index, obs, obs_index, neuron_id])


def _condition_column(col: pd.Series) -> tuple[np.ndarray, str]:
    if col.dtype.kind in "biuf":
        return col.to_numpy(), str(col.dtype)
    return col.astype(str).to_numpy().astype(object), "str"


def write_nwb(data: TrialData, path: str | PathLike, *, rates: bool = True, spikes: bool | str = False,
              seed: int = 0, epochs: Mapping[str, Any] | None = None, module: str = "lrfit",
              rates_hz: np.ndarray | None = None, session_description: str | None = None,
              identifier: str | None = None, session_start_time: datetime | None = None,
              subject: Mapping[str, Any] | None = None, experimenter: str | None = None,
              institution: str | None = None, compression: str | None = "gzip") -> Path:
    """Write ``data`` to NWB: rates as a TimeSeries and/or spikes in ``Units``, plus the trials table.

    Parameters
    ----------
    data
        Trials to write.  Masked bins must be at the end of a trial (they shorten it).
    path
        Output ``.nwb`` file (overwritten).
    rates
        Write ``activity`` as ``/processing/<module>/rates``.
    spikes
        ``False``; ``True`` or ``"poisson"``: Poisson spikes with rates ``rates_hz``
        (default ``activity``, read as Hz) drawn with ``seed``
        (:func:`poisson_spikes`); ``"counts"``: ``activity`` holds spike counts.
    seed
        Seed of the spike counts and of the spike positions within bins.
    epochs
        Optional epochs, ``name -> (start_step, stop_step)`` (same in every trial) or
        ``name -> (starts, stops)`` arrays of shape ``(trials,)`` (bins from trial start,
        stop exclusive), as in ``lrfit.tasks.TaskTrials.epochs``; written as
        ``<name>_start_time`` / ``<name>_stop_time`` trial columns.
    module
        Name of the processing module holding ``rates`` and ``inputs``.
    rates_hz
        ``(trials, time, neurons)`` rates in Hz for the spikes, when ``activity`` is not
        in Hz (e.g. a network's tanh rates mapped to Hz).
    session_description, identifier, session_start_time, subject, experimenter, institution
        NWB session metadata.  Defaults describe a simulated session; ``subject`` is a
        dict of :class:`pynwb.file.Subject` fields (default: ``subject_id="simulated"``,
        ``sex="U"``, ``age="P0D"`` placeholders so that nwbinspector finds no critical issue).
    compression
        HDF5 compression of the series (``None`` for none).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DataError
        For condition columns with reserved names, rates that cannot be Poisson rates,
        or nothing to write.
    """
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.file import Subject

    p = Path(path)
    spikes_mode = {False: None, None: None, True: "poisson", "poisson": "poisson", "counts": "counts"}.get(spikes, "?")
    if spikes_mode == "?":
        raise DataError(f"spikes={spikes!r} is not understood; use False, True/'poisson' or 'counts'", field="spikes")
    if not rates and spikes_mode is None:
        raise DataError(f"nothing to write to '{p}': pass rates=True and/or spikes=True", field="rates")
    K, T, N = data.activity.shape
    dt = float(data.dt)
    bad = [c for c in data.conditions.columns if str(c) in RESERVED_TRIAL_COLUMNS or "/" in str(c)]
    if bad:
        raise DataError(f"condition columns {bad} of the data for '{p}' clash with NWB trial-table names "
                        f"{list(RESERVED_TRIAL_COLUMNS)}; rename them before writing", field=str(bad[0]))
    if len(data.time) > 1 and not np.allclose(np.diff(data.time), dt, rtol=1e-6, atol=1e-9):
        raise DataError(f"time of the data for '{p}' is not evenly spaced at dt={dt}; rebin or pass matching time",
                        field="time")

    # trial geometry: end to end, masked tail shortens a trial
    starts = np.arange(K, dtype=np.float64) * T * dt  # before the offset below
    n_valid = data.mask.sum(1)
    prefix = np.all(data.mask == (np.arange(T)[None, :] < n_valid[:, None]), axis=1)
    if not prefix.all():
        log.warning("%d trials of the data for %s have masked bins that are not at the trial end; the trials table "
                    "can only end trials early, so those bins are written as valid", int((~prefix).sum()), p)
        n_valid = np.where(prefix, n_valid, T)
    if np.any(n_valid == 0):
        raise DataError(f"{int((n_valid == 0).sum())} trials of the data for '{p}' have no valid bin; drop them "
                        "with data.select(trials=...)", field="mask")
    t0 = float(data.time[0]) - dt / 2
    offset = max(0.0, t0)  # keeps align_time >= 0 (nwbinspector: no negative times)
    starts = offset + starts
    stops = starts + n_valid * dt
    align = starts - t0
    timed = [str(c) for c in data.conditions.columns if str(c).endswith("_time")]
    if timed:
        log.warning("condition columns %s of the data for %s end in '_time': load_nwb reads them back only when "
                    "named in condition_columns", timed, p)

    nwb = NWBFile(
        session_description=session_description or f"simulated recording written by data_adapters "
                                                   f"({data.meta.get('source') or 'TrialData'})",
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=session_start_time or datetime(2024, 1, 1, tzinfo=UTC),
        experimenter=[experimenter] if experimenter else None, institution=institution,
        subject=Subject(**{"subject_id": "simulated", "sex": "U", "age": "P0D",
                           "description": "simulated network; sex and age are placeholders",
                           **dict(subject or {})}),
    )
    nwb.add_trial_column("align_time", "time (s) that TrialData.time is relative to (the alignment event)")
    cols: dict[str, np.ndarray] = {}
    for c in data.conditions.columns:
        v, kind = _condition_column(data.conditions[c])
        cols[str(c)] = v
        nwb.add_trial_column(str(c), f"condition column {c!r} ({kind})")
    ep_cols: dict[str, np.ndarray] = {}
    for name, (a, b) in (epochs or {}).items():
        a = np.broadcast_to(np.asarray(a, dtype=np.float64), (K,))
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), (K,))
        for suffix, steps in (("start", a), ("stop", b)):
            col = f"{name}_{suffix}_time"
            ep_cols[col] = starts + steps * dt
            nwb.add_trial_column(col, f"{suffix} of epoch {name!r} (s)")
    for k in range(K):
        row = {c: v[k] for c, v in cols.items()}
        row.update({c: float(v[k]) for c, v in ep_cols.items()})
        nwb.add_trial(start_time=float(starts[k]), stop_time=float(stops[k]), align_time=float(align[k]), **row)

    def wrap(x: np.ndarray) -> Any:
        return H5DataIO(x, compression=compression) if compression else x

    if rates or data.n_inputs:
        pm = nwb.create_processing_module(name=module, description="binned activity and task inputs written by "
                                                                   "data_adapters.write_nwb")
        if rates:
            pm.add(TimeSeries(name="rates", data=wrap(np.ascontiguousarray(data.activity.reshape(K * T, N))),
                              unit=str(data.meta.get("units") or "a.u."), starting_time=offset + dt / 2, rate=1.0 / dt,
                              description=f"activity, (trials * time, neurons), bins of {dt} s; trials end to end "
                                          "as in the trials table", comments=json.dumps(
                                  {"neuron_ids": [i.item() if isinstance(i, np.generic) else i
                                                  for i in data.neuron_ids]})))
        if data.n_inputs:
            pm.add(TimeSeries(name="inputs", data=wrap(np.ascontiguousarray(data.inputs.reshape(K * T, -1))),
                              unit="a.u.", starting_time=offset + dt / 2, rate=1.0 / dt,
                              description="task inputs, (trials * time, channels)",
                              comments=json.dumps({"channels": list(data.input_names)})))
        if K * T < max(N, data.n_inputs):
            log.warning("only %d samples for %d neurons in %s: nwbinspector will report the series' orientation",
                        K * T, N, p)

    if spikes_mode is not None:
        if spikes_mode == "counts":
            a = np.asarray(data.activity)
            if np.any(a < 0) or not np.allclose(a, np.round(a)):
                raise DataError(f"spikes='counts' needs non-negative integer activity but the data for '{p}' is not; "
                                "use spikes='poisson' for rates in Hz", field="activity")
            counts = np.round(a).astype(np.int64)
        else:
            counts = poisson_spikes(data.activity if rates_hz is None else rates_hz, dt, seed)
        counts = counts * data.mask[:, :, None]
        times = counts_to_spike_times(counts, starts, dt, seed=seed + 1)
        nwb.units = _units_table(times, data.neuron_ids, np.stack([starts, stops], 1))
    p.parent.mkdir(parents=True, exist_ok=True)
    with NWBHDF5IO(str(p), "w") as io:
        io.write(nwb)
    return p
