"""HDF5 files: the loss-free ``TrialData`` layout and the lfads-torch layout.

TrialData layout (``format = "data_adapters.trialdata"``, version 1)
---------------------------------------------------------------------
::

    /                      attrs: format="data_adapters.trialdata", format_version=1,
                                  dt (float, s), meta (JSON string)
    /activity              float32 (trials, time, neurons)
    /inputs                float32 (trials, time, channels)      (channels may be 0)
    /mask                  bool    (trials, time)
    /time                  float64 (time,)   bin centres, s, relative to alignment
    /neuron_ids            int64 or UTF-8 strings (neurons,)
    /input_names           UTF-8 strings (channels,)
    /conditions/           group, attr columns = JSON list of column names in order
    /conditions/<column>   1-D (trials,) dataset per column; numeric and bool columns keep
                           their dtype, everything else is stored as UTF-8 strings; attr
                           pandas_dtype records the pandas dtype ("category" restored)

lfads-torch layout
------------------
``train_recon_data`` / ``valid_recon_data`` (trials, time, neurons) counts, optional
``train_encod_data``, ``*_ext_input`` (trials, time, channels), ``train_inds`` /
``valid_inds`` (original trial order).  ``dt`` is read from a root attribute ``dt``
or must be passed.  The result has condition columns ``split`` and ``trial_index``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .errors import DataError
from .paths import require_file
from .timeaxis import check_bin_width, log_time_axis, time_from_vector
from .trialdata import TrialData

log = logging.getLogger(__name__)

FORMAT = "data_adapters.trialdata"
FORMAT_VERSION = 1
_STR = h5py.string_dtype("utf-8")


@contextlib.contextmanager
def open_h5(path: str | PathLike, mode: str = "r") -> Iterator[h5py.File]:
    """Open an HDF5 file, turning h5py's low-level errors into one-sentence :class:`DataError`."""
    p = require_file(path) if mode == "r" else Path(path)
    try:
        f = h5py.File(p, mode)
    except OSError as exc:
        msg = str(exc).split("(")[0].strip().rstrip(",")
        raise DataError(f"'{p}' could not be opened as HDF5 ({msg}); the file is truncated, corrupt or not HDF5 — "
                        "re-download or re-write it", field="path") from None
    try:
        yield f
    except (OSError, KeyError, RuntimeError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"'{p}' could not be read ({type(exc).__name__}: {str(exc)[:120]}); the file is probably "
                        "truncated or corrupt — re-download or re-write it", field="path") from None
    finally:
        f.close()


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (Path, PathLike)):
        return str(o)
    return repr(o)


def _write_strings(g: h5py.Group, name: str, values: Any) -> None:
    g.create_dataset(name, data=np.asarray([str(v) for v in values], dtype=object), dtype=_STR)


def write_hdf5(data: TrialData, path: str | PathLike, *, compression: str | None = "gzip") -> Path:
    """Write ``data`` to the documented TrialData HDF5 layout (loss-free).

    Parameters
    ----------
    data
        Data to write.
    path
        Output file (overwritten).
    compression
        h5py compression for the big arrays (``None`` for none).

    Returns
    -------
    Path
    """
    p = Path(path)
    for c in data.conditions.columns:
        if "/" in str(c) or str(c) in ("", "."):
            raise DataError(f"condition column {c!r} cannot be an HDF5 dataset name; rename it without '/'",
                            field=str(c))
    with h5py.File(p, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["dt"] = float(data.dt)
        f.attrs["meta"] = json.dumps(data.meta, default=_json_default)
        kw = {"compression": compression} if compression else {}
        f.create_dataset("activity", data=data.activity, **kw)
        f.create_dataset("inputs", data=data.inputs, **kw)
        f.create_dataset("mask", data=data.mask)
        f.create_dataset("time", data=data.time)
        if data.neuron_ids.dtype.kind in "iu":
            f.create_dataset("neuron_ids", data=data.neuron_ids.astype(np.int64))
        else:
            _write_strings(f, "neuron_ids", data.neuron_ids)
        _write_strings(f, "input_names", data.input_names)
        g = f.create_group("conditions")
        g.attrs["columns"] = json.dumps([str(c) for c in data.conditions.columns])
        for c in data.conditions.columns:
            col = data.conditions[c]
            if col.dtype.kind in "biuf":
                ds = g.create_dataset(str(c), data=col.to_numpy())
            else:
                _write_strings(g, str(c), col.astype(str).to_numpy())
                ds = g[str(c)]
            ds.attrs["pandas_dtype"] = str(col.dtype)
    return p


def read_trialdata_hdf5(path: str | PathLike) -> TrialData:
    """Read a file in the TrialData HDF5 layout written by :func:`write_hdf5`.

    Parameters
    ----------
    path
        HDF5 file.

    Returns
    -------
    TrialData
    """
    p = Path(path)
    with open_h5(p) as f:
        missing = [k for k in ("activity", "inputs", "mask", "time", "neuron_ids", "input_names", "conditions")
                   if k not in f]
        if missing:
            raise DataError(f"'{p}' is missing {missing} of the TrialData HDF5 layout; re-write it with "
                            "data_adapters.write_hdf5", field=missing[0])
        ids = f["neuron_ids"][()]
        if ids.dtype.kind in "OS":
            ids = f["neuron_ids"].asstr()[()]
        g = f["conditions"]
        cols = json.loads(g.attrs.get("columns", "[]"))
        cond = {}
        for c in cols:
            ds = g[c]
            dt = ds.attrs.get("pandas_dtype", "")
            if ds.dtype.kind in "OS":
                s = pd.Series(ds.asstr()[()], dtype=object)
                try:
                    cond[c] = s.astype(dt) if dt else s
                except (TypeError, ValueError):
                    cond[c] = s
            else:
                cond[c] = ds[()]
        n_trials = f["activity"].shape[0]
        meta = json.loads(f.attrs.get("meta", "{}"))
        meta["source"] = str(p)
        time, dt = time_from_vector(f["time"][()], f["activity"].shape[1], dt=float(f.attrs["dt"]), time_units="s",
                                    source=p, what="time array '/time'", field="time")
        out = TrialData(activity=f["activity"][()], inputs=f["inputs"][()], mask=f["mask"][()].astype(bool),
                        input_names=tuple(f["input_names"].asstr()[()]),
                        conditions=pd.DataFrame(cond, index=pd.RangeIndex(n_trials)),
                        dt=dt, time=time, neuron_ids=ids, meta=meta)
    log_time_axis(out.dt, out.time, p)
    return out


def write_lfads_hdf5(data: TrialData, path: str | PathLike, *, valid_fraction: float = 0.2,
                     seed: int = 0) -> Path:
    """Write ``data`` in the lfads-torch layout (random train/valid split of trials).

    Parameters
    ----------
    data
        Data to write; ``activity`` should be spike counts for LFADS.
    path
        Output file.
    valid_fraction
        Fraction of trials in the validation split.
    seed
        Seed of the split.
    """
    p = Path(path)
    train, valid = data.split("trials", test_fraction=valid_fraction, seed=seed)
    with h5py.File(p, "w") as f:
        f.attrs["dt"] = float(data.dt)
        for name, part in (("train", train), ("valid", valid)):
            f.create_dataset(f"{name}_encod_data", data=part.activity)
            f.create_dataset(f"{name}_recon_data", data=part.activity)
            f.create_dataset(f"{name}_inds", data=np.asarray(part.meta["split"]["trial_indices"], dtype=np.int64))
            if data.n_inputs:
                f.create_dataset(f"{name}_ext_input", data=part.inputs)
    return p


def read_lfads_hdf5(path: str | PathLike, *, dt: float | None = None, split: str = "all",
                    data_key: str = "recon") -> TrialData:
    """Read an lfads-torch HDF5 file (``train_recon_data``, ``valid_recon_data``, ``*_ext_input``).

    Parameters
    ----------
    path
        HDF5 file.
    dt
        Bin width in seconds (overrides a ``dt`` root attribute; required if there is none).
    split
        ``"all"`` (train and valid, in original order when ``*_inds`` exist), ``"train"`` or ``"valid"``.
    data_key
        ``"recon"`` or ``"encod"``.

    Returns
    -------
    TrialData
        With condition columns ``split`` and ``trial_index``.
    """
    p = Path(path)
    if split not in ("all", "train", "valid"):
        raise DataError(f"split={split!r} is not known for lfads file '{p}'; use 'all', 'train' or 'valid'",
                        field="split")
    with open_h5(p) as f:
        if dt is None:
            dt = f.attrs.get("dt")
        if dt is None:
            raise DataError(f"lfads file '{p}' stores no bin width; pass dt=<bin width in s>", field="dt")
        parts = ["train", "valid"] if split == "all" else [split]
        acts, inps, rows = [], [], []
        for s in parts:
            key = f"{s}_{data_key}_data"
            if key not in f:
                if split == "all" and s == "valid":
                    continue
                raise DataError(f"lfads file '{p}' has no dataset {key!r} (keys: {list(f.keys())}); "
                                "pick another split or data_key", field=key)
            a = f[key][()]
            acts.append(a)
            ext = f"{s}_ext_input"
            inps.append(f[ext][()] if ext in f else np.zeros(a.shape[:2] + (0,), np.float32))
            inds = f[f"{s}_inds"][()] if f"{s}_inds" in f else np.arange(len(a)) + sum(len(x) for x in acts[:-1])
            rows.append(pd.DataFrame({"split": s, "trial_index": np.asarray(inds, dtype=np.int64)}))
    if len({x.shape[2] for x in inps}) > 1:
        raise DataError(f"lfads file '{p}' has ext_input for only some splits; write *_ext_input for all splits",
                        field="ext_input")
    act = np.concatenate(acts)
    inp = np.concatenate(inps)
    cond = pd.concat(rows, ignore_index=True)
    if split == "all":
        order = np.argsort(cond["trial_index"].to_numpy(), kind="stable")
        act, inp, cond = act[order], inp[order], cond.iloc[order].reset_index(drop=True)
    dt = check_bin_width(float(dt), source=p, what="dt", from_time=False)
    out = TrialData(activity=act, inputs=inp, conditions=cond, dt=dt,
                    meta={"source": str(p), "format": "lfads", "units": "counts"})
    log_time_axis(out.dt, out.time, p)
    return out


def is_lfads(keys: list[str]) -> bool:
    """True if the HDF5 root keys look like an lfads-torch data file."""
    return any(k.endswith("_recon_data") or k.endswith("_encod_data") for k in keys)


def load_hdf5(path: str | PathLike, **options: Any) -> TrialData:
    """Read an HDF5 file: TrialData layout, lfads-torch layout, or named arrays.

    Parameters
    ----------
    path
        HDF5 file.
    **options
        For lfads files: ``dt``, ``split``, ``data_key``.  For other HDF5 files,
        the array options of :func:`data_adapters.npz.load_npz` (``activity_key``,
        ``axis_order``, ``time_key``, ``dt``, ``condition_keys``, ``inputs``, ...).

    Returns
    -------
    TrialData
    """
    p = Path(path)
    with open_h5(p) as f:
        fmt = f.attrs.get("format")
        keys = list(f.keys())
    if fmt == FORMAT:
        if options:
            log.info("options %s ignored for TrialData HDF5 file %s", sorted(options), p)
        return read_trialdata_hdf5(p)
    if is_lfads(keys):
        return read_lfads_hdf5(p, **options)
    from .npz import arrays_to_trialdata

    with open_h5(p) as f:
        return arrays_to_trialdata(_H5Arrays(f), source=p, **options)


class _H5Arrays:
    """Mapping-like lazy view of datasets in an HDF5 file (paths allowed as keys)."""

    def __init__(self, f: h5py.File):
        self.f = f

    def __contains__(self, key: str) -> bool:
        return key in self.f and isinstance(self.f[key], h5py.Dataset)

    def __getitem__(self, key: str) -> np.ndarray:
        ds = self.f[key]
        return ds.asstr()[()] if ds.dtype.kind in "OS" else ds[()]

    def keys(self) -> list[str]:
        out: list[str] = []
        self.f.visit(lambda n: out.append(n) if isinstance(self.f[n], h5py.Dataset) else None)
        return out
