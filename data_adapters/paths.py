"""Resolving data paths given in configs.

Rules, in order (documented for users in ``configs/data_m1_reaching.yaml``):

1. ``~`` and environment variables (``$LRFIT_SHARED_DATA/...``) are expanded.
2. A relative path is resolved against ``base_dir`` (the folder of the config
   file that names it), or the current directory when there is no config.
3. If that file does not exist and the environment variable ``LRFIT_SHARED_DATA``
   is set, ``$LRFIT_SHARED_DATA/<file name>`` is tried as a fallback.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from .errors import DataError

SHARED_DATA_ENV = "LRFIT_SHARED_DATA"


def resolve_data_path(path: str | PathLike, base_dir: str | PathLike | None = None) -> Path:
    """Resolve a data path from a config (see the module docstring for the rules).

    Parameters
    ----------
    path
        Path as written in the config.
    base_dir
        Folder of the config file; relative paths are taken from there.

    Returns
    -------
    Path
        The resolved path (which may not exist; the reader reports that clearly).
    """
    p = Path(os.path.expandvars(os.path.expanduser(str(path))))
    if not p.is_absolute():
        p = (Path(base_dir) if base_dir is not None else Path.cwd()) / p
    p = Path(os.path.abspath(p))
    if not p.exists():
        shared = os.environ.get(SHARED_DATA_ENV)
        if shared:
            alt = Path(shared).expanduser() / p.name
            if alt.exists():
                return alt
    return p


def require_file(path: str | PathLike) -> Path:
    """*path* as a :class:`Path`, or a one-sentence :class:`DataError` when no such file exists."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file '{p}' does not exist; check the path (relative paths in configs are resolved "
                        f"against the config file's folder, or set {SHARED_DATA_ENV})", field="path")
    return p
