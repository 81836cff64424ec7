"""Which reader a file needs: :func:`detect_format` reads its first bytes (magic numbers).

Kept apart from :mod:`data_adapters.load`, which imports the readers, so that a reader
(e.g. :mod:`data_adapters.nwb`) can check a file's type without an import cycle.
"""

from __future__ import annotations

from os import PathLike

from .errors import DataError
from .paths import require_file

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
FORMATS = ("nwb", "hdf5", "npz", "npy", "mat")
_SUFFIX = {".nwb": "nwb", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".npz": "npz", ".npy": "npy",
           ".mat": "mat"}


def detect_format(path: str | PathLike) -> str:
    """Return ``"nwb"``, ``"hdf5"``, ``"npz"``, ``"npy"`` or ``"mat"`` from the file's content.

    Raises
    ------
    DataError
        If the file is missing, empty or of no supported type.
    """
    p = require_file(path)
    with open(p, "rb") as fh:
        head = fh.read(1100)
    suffix_fmt = _SUFFIX.get(p.suffix.lower())
    if not head:
        raise DataError(f"'{p}' is empty; re-download or re-write it", field="path")
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "npz"
    if head.startswith(b"MATLAB 5.0") or head.startswith(b"MATLAB 7.3"):
        return "mat"
    if any(head[o:o + 8] == HDF5_MAGIC for o in (0, 512, 1024)):
        import h5py

        try:
            with h5py.File(p, "r") as f:
                attrs = dict(f.attrs)
        except (OSError, KeyError, RuntimeError):
            raise DataError(f"'{p}' has an HDF5 header but cannot be opened; the file is truncated or corrupt — "
                            "re-download or re-write it", field="path") from None
        if "nwb_version" in attrs or attrs.get("neurodata_type") in ("NWBFile", b"NWBFile"):
            return "nwb"
        return "hdf5"
    kind = {"nwb": "an NWB (HDF5)", "hdf5": "an HDF5", "npz": "an NPZ", "npy": "an NPY",
            "mat": "a MATLAB"}.get(suffix_fmt or "", "a supported")
    raise DataError(f"'{p}' is not {kind} file (its first bytes match no known format); check that the path "
                    "points to the recording and that the file is not truncated or corrupt", field="path")
