"""One entry point, :func:`load`, that picks the reader from the file type.

The type comes from the file's first bytes (magic numbers), not only its suffix:

=====================  ==========================================  ====================
format                 recognised by                                reader
=====================  ==========================================  ====================
``nwb``                HDF5 with root attribute ``nwb_version``     :func:`load_nwb`
``hdf5``               other HDF5 (TrialData or lfads layout)       :func:`load_hdf5`
``npz`` / ``npy``      zip / ``\\x93NUMPY`` header                   :func:`load_npz`, :func:`load_npy`
``mat`` (v5, v7.3)     ``MATLAB 5.0`` / ``MATLAB 7.3`` header       :func:`load_mat`
=====================  ==========================================  ====================

``format=`` overrides the detection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from os import PathLike
from typing import Any

from .errors import DataError
from .formats import FORMATS, detect_format
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
