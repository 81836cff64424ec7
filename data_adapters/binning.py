"""Vectorised spike binning and Gaussian smoothing.

Bins are half-open, ``[start + j*dt, start + (j+1)*dt)``.  To absorb floating-point
rounding of computed bin edges, a spike within ``EDGE_TOL`` (a millionth of a bin)
below an edge is counted in the bin that starts at that edge: a spike exactly on an
edge always goes to the later bin, and a spike exactly at the window end is not
counted.

Spike times must be sorted for :func:`numpy.searchsorted`; unsorted input is
sorted (a copy, logged) or rejected, as ``unsorted=`` says.  The cost per unit is
``O(spikes + trials * log(spikes))`` with no Python loop over spikes or trials.
"""

from __future__ import annotations

import logging

import numpy as np

from .errors import DataError

log = logging.getLogger(__name__)

EDGE_TOL = 1e-6


def is_sorted(x: np.ndarray) -> bool:
    """True if ``x`` is non-decreasing."""
    return bool(x.size < 2 or np.all(x[1:] >= x[:-1]))


def bin_spike_times(spike_times: np.ndarray, starts: np.ndarray, n_bins: int, dt: float, *,
                    unsorted: str = "sort", name: str = "spike_times") -> np.ndarray:
    """Count one unit's spikes in ``n_bins`` bins of width ``dt`` after each start time.

    Parameters
    ----------
    spike_times
        ``(spikes,)`` spike times in seconds (any order, see ``unsorted``).
    starts
        ``(trials,)`` start time of the first bin of each trial (windows may overlap).
    n_bins
        Bins per trial.
    dt
        Bin width in seconds.
    unsorted
        ``"sort"``: sort a copy of unsorted spike times; ``"error"``: raise :class:`DataError`.
    name
        Name used in messages.

    Returns
    -------
    ndarray
        ``(trials, n_bins)`` int64 counts.

    Examples
    --------
    >>> import numpy as np
    >>> bin_spike_times(np.array([0.01, 0.02, 0.15]), np.array([0.0]), n_bins=2, dt=0.1).tolist()
    [[2, 1]]
    """
    s = np.asarray(spike_times, dtype=np.float64).reshape(-1)
    starts = np.asarray(starts, dtype=np.float64).reshape(-1)
    K = starts.size
    if not is_sorted(s):
        if unsorted == "error":
            raise DataError(f"{name} are not sorted in time; sort them or load with unsorted='sort'",
                            field=name)
        log.debug("%s not sorted; sorting a copy", name)
        s = np.sort(s)
    tol = EDGE_TOL * dt
    lo = np.searchsorted(s, starts - tol, side="left")
    hi = np.searchsorted(s, starts + n_bins * dt - tol, side="left")
    n_per = hi - lo
    total = int(n_per.sum())
    if total == 0:
        return np.zeros((K, n_bins), dtype=np.int64)
    trial = np.repeat(np.arange(K), n_per)
    # index of each selected spike in s: lo[trial] + running position within its trial
    first = np.cumsum(n_per) - n_per
    idx = lo[trial] + (np.arange(total) - first[trial])
    b = np.floor((s[idx] - starts[trial]) / dt + EDGE_TOL).astype(np.int64)
    np.clip(b, 0, n_bins - 1, out=b)
    return np.bincount(trial * n_bins + b, minlength=K * n_bins).reshape(K, n_bins)


def gaussian_kernel(sd_bins: float, truncate: float = 4.0) -> np.ndarray:
    """Normalised Gaussian kernel with standard deviation ``sd_bins`` (in bins)."""
    half = max(1, int(np.ceil(truncate * sd_bins)))
    x = np.arange(-half, half + 1)
    k = np.exp(-0.5 * (x / sd_bins) ** 2)
    return k / k.sum()


def gaussian_smooth(x: np.ndarray, sd_bins: float, axis: int = 1) -> np.ndarray:
    """Smooth ``x`` along ``axis`` with a Gaussian of ``sd_bins`` bins (zero padding at the ends).

    Callers that want no edge effects bin a padded window and crop afterwards,
    as :func:`data_adapters.nwb.load_nwb` does.

    Examples
    --------
    >>> import numpy as np
    >>> print(gaussian_smooth(np.array([[0.0, 0.0, 1.0, 0.0, 0.0]]), sd_bins=1.0).round(2))
    [[0.05 0.24 0.4  0.24 0.05]]
    """
    from scipy.ndimage import convolve1d

    if sd_bins <= 0:
        return x
    return convolve1d(np.asarray(x, dtype=np.float32), gaussian_kernel(sd_bins).astype(np.float32),
                      axis=axis, mode="constant")
