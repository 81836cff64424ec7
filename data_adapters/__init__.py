"""data_adapters: recordings (NWB, HDF5, NPZ/NPY, MAT) in and out of the :class:`TrialData` contract.

Independent of ``lrfit``; depends on numpy, pandas, scipy, h5py and (for NWB) pynwb.

Main entry points
-----------------
load(path, **options)            read any supported file (reader chosen from the file type)
load_config(data_section, base)  the same from a config ``data:`` block
TrialData                        the container (activity, inputs, mask, conditions, dt, time, ...)
write_hdf5 / write_nwb           writers that ``load`` reads back
load_nwb / load_hdf5 / load_npz / load_npy / load_mat / read_lfads_hdf5   the readers
read_mat / pseudo_population      MAT files as plain trees; condition-averaged pseudo-populations
NeuronTrials / load_neuron_trials single trials of separately recorded neurons (NaN-padded)
split_halves / half_splits        train/test halves of each neuron's trials, averaged per condition
fit_normalisation / Normalisation  per-neuron normalisation fitted on one split, applied to another
bin_spike_times / gaussian_smooth  spike counts per bin and Gaussian smoothing along time

``__all__`` is the public API; the submodules are internal.

Examples
--------
>>> import numpy as np
>>> import data_adapters as da
>>> data = da.TrialData(activity=np.zeros((3, 4, 2)), dt=0.05)
>>> data.n_trials, data.n_time, data.n_neurons
(3, 4, 2)
"""

from __future__ import annotations

from typing import Any

from .binning import bin_spike_times, gaussian_smooth
from .errors import DataError
from .hdf5 import load_hdf5, read_lfads_hdf5, write_hdf5, write_lfads_hdf5
from .inputs import InputChannel, build_inputs, parse_input_spec
from .load import detect_format, load, load_config, load_neuron_trials
from .neuron_trials import NeuronTrials, half_splits, split_halves
from .npz import load_npy, load_npz
from .paths import resolve_data_path
from .preprocessing import Normalisation, fit_normalisation
from .trialdata import TorchTrialData, TrialData

_LAZY = {"load_nwb": "nwb", "write_nwb": "nwb_write", "poisson_spikes": "nwb_write", "load_mat": "mat",
         "read_mat": "mat", "pseudo_population": "mat"}

__all__ = [
    "DataError",
    "TrialData",
    "TorchTrialData",
    "NeuronTrials",
    "load_neuron_trials",
    "split_halves",
    "half_splits",
    "InputChannel",
    "Normalisation",
    "bin_spike_times",
    "build_inputs",
    "detect_format",
    "gaussian_smooth",
    "fit_normalisation",
    "load",
    "load_config",
    "load_hdf5",
    "load_mat",
    "load_npy",
    "load_npz",
    "load_nwb",
    "parse_input_spec",
    "poisson_spikes",
    "pseudo_population",
    "read_lfads_hdf5",
    "read_mat",
    "resolve_data_path",
    "write_hdf5",
    "write_lfads_hdf5",
    "write_nwb",
]


def __getattr__(name: str) -> Any:  # lazy: pynwb is slow to import
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'data_adapters' has no attribute {name!r}")
