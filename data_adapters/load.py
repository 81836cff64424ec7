r"""One entry point, :func:`load`, that picks the reader from the file type.

The type comes from the file's first bytes (magic numbers), not only its suffix:

=====================  ==========================================  ====================
format                 recognised by                                reader
=====================  ==========================================  ====================
``nwb``                HDF5 with root attribute ``nwb_version``     :func:`load_nwb`
``hdf5``               other HDF5 (TrialData or lfads layout)       :func:`load_hdf5`
``npz`` / ``npy``      zip / ``\x93NUMPY`` header                   :func:`load_npz`, :func:`load_npy`
``mat`` (v5, v7.3)     ``MATLAB 5.0`` / ``MATLAB 7.3`` header       :func:`load_mat`
=====================  ==========================================  ====================

``format=`` overrides the detection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .formats import FORMATS, detect_format
from .neuron_trials import NeuronTrials
from .paths import resolve_data_path
from .trialdata import TrialData

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "detect_format", "load", "load_config"]


def load(path: str | PathLike | list[str | PathLike], *, format: str | None = None,
         base_dir: str | PathLike | None = None, **options: Any) -> TrialData:
    """Load a recording into :class:`TrialData`, choosing the reader from the file type.

    Parameters
    ----------
    path
        File to read; relative paths are resolved against ``base_dir`` (see
        :func:`data_adapters.paths.resolve_data_path`).  A list of files or a
        folder is read as MAT unit files (:func:`load_mat`).
    format
        Force a reader: ``"nwb"``, ``"hdf5"``, ``"npz"``, ``"npy"`` or ``"mat"``.
    base_dir
        Folder relative paths are taken from (the config file's folder).
    **options
        Passed to the reader (:func:`load_nwb`, :func:`load_hdf5`, :func:`load_npz`,
        :func:`load_npy`, :func:`load_mat`).

    Returns
    -------
    TrialData

    Examples
    --------
    A file written by :func:`data_adapters.write_hdf5` reads back unchanged:

    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from data_adapters import TrialData, load, write_hdf5
    >>> data = TrialData(activity=np.ones((2, 5, 3)), dt=0.01)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_hdf5(data, Path(tmp) / "rec.h5")
    ...     back = load(path)
    >>> back.n_trials, back.n_neurons, bool(np.array_equal(back.activity, data.activity))
    (2, 3, True)
    """
    if isinstance(path, (list, tuple)):  # MAT unit files, one per neuron (Mante et al. 2013)
        p: Any = [resolve_data_path(q, base_dir) for q in path]
        fmt = format or "mat"
    else:
        p = resolve_data_path(path, base_dir)
        fmt = format or ("mat" if p.is_dir() else detect_format(p))  # a folder of MAT unit files
    if fmt not in FORMATS:
        raise DataError(f"format={fmt!r} is not known; use one of {FORMATS}", field="format")
    if fmt == "nwb":
        from .nwb import load_nwb as reader
    elif fmt == "hdf5":
        from .hdf5 import load_hdf5 as reader
    elif fmt == "npz":
        from .npz import load_npz as reader
    elif fmt == "npy":
        from .npz import load_npy as reader
    else:
        from .mat import load_mat as reader
    try:
        return reader(p, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            bad = str(exc).split("'")[-2] if "'" in str(exc) else str(exc)
            raise DataError(f"option {bad!r} is not understood by the {fmt} reader for '{p}'; see "
                            f"help(data_adapters.{reader.__module__.split('.')[-1]}) for its options",
                            field=bad) from None
        raise


def load_config(data_section: Mapping[str, Any], base_dir: str | PathLike | None = None) -> TrialData:
    """Load from a config ``data:`` block ``{path: ..., <load options>}``.

    Parameters
    ----------
    data_section
        Mapping with ``path`` and any :func:`load` options (``format`` included).
    base_dir
        Folder of the config file (relative ``path`` is resolved from there).
    """
    opts = dict(data_section)
    if "path" not in opts:
        raise DataError("the data: section of the config has no 'path'; add path: <recording file>", field="path")
    path = opts.pop("path")
    return load(path, base_dir=base_dir, **opts)

def load_neuron_trials(path: str | PathLike | list[str | PathLike], **options: Any) -> NeuronTrials:
    """Read single trials per neuron from MAT unit files / a TDR file or from arrays with a trial axis.

    Parameters
    ----------
    path
        MAT file(s) or folder (:func:`data_adapters.mat.load_mat_trials`), or an NPZ / HDF5
        file with a NaN-padded ``trial`` axis (:func:`data_adapters.factors.arrays_to_neuron_trials`).
    **options
        The reader's options (as for :func:`data_adapters.load`).

    Returns
    -------
    NeuronTrials
    """
    if isinstance(path, (list, tuple)) or Path(path).is_dir() or detect_format(path) == "mat":
        from .mat import load_mat_trials

        return load_mat_trials(path, **options)
    fmt = detect_format(path)
    from .factors import arrays_to_neuron_trials

    if fmt == "npz":
        with np.load(path, allow_pickle=False) as z:
            return arrays_to_neuron_trials(z, source=Path(path), **options)
    if fmt == "hdf5":
        from .hdf5 import _H5Arrays, open_h5

        with open_h5(path) as f:
            return arrays_to_neuron_trials(_H5Arrays(f), source=Path(path), **options)
    raise DataError(f"'{path}' ({fmt}) holds no per-neuron single trials; use MAT unit/TDR files or an NPZ/HDF5 "
                    "array with a trial axis (axis_order with 'trial')", field="path")
