"""Spike binning and smoothing on hand-made cases with exact answers (data_adapters.binning).

Documented behaviour checked here: bins are half-open ``[edge_j, edge_j+1)``, so a
spike exactly on an inner edge counts in the later bin, a spike exactly at the window
start counts in the first bin and one exactly at the window end is dropped; spikes
outside the window are dropped; unsorted spike times are sorted (default) or rejected
with ``unsorted="error"``.
"""

from __future__ import annotations

import numpy as np
import pytest

from data_adapters import DataError
from data_adapters.binning import bin_spike_times, gaussian_kernel, gaussian_smooth


def test_spikes_inside_bins():
    counts = bin_spike_times(np.array([0.05, 0.15, 0.16, 0.35]), np.array([0.0]), 4, 0.1)
    np.testing.assert_array_equal(counts, [[1, 2, 0, 1]])
    assert counts.dtype == np.int64


def test_spikes_on_edges_go_to_the_later_bin():
    dt, start = 0.1, 0.2
    # window [0.2, 0.6): start edge -> bin 0, inner edges 0.3/0.4/0.5 -> bins 1/2/3, end edge 0.6 -> dropped
    spikes = np.array([0.2, 0.3, 0.4, 0.5, 0.6])
    np.testing.assert_array_equal(bin_spike_times(spikes, np.array([start]), 4, dt), [[1, 1, 1, 1]])


@pytest.mark.parametrize("dt, start", [(0.001, 12.345), (0.01, 0.1), (1 / 3, 7.0), (0.02, -1.7)])
def test_computed_edges_are_exact(dt, start):
    """Spikes at start + k*dt (floating-point rounding included) land in bin k, for every k."""
    n = 50
    edges = start + np.arange(n + 1) * dt
    counts = bin_spike_times(edges, np.array([start]), n, dt)
    np.testing.assert_array_equal(counts, np.ones((1, n)))  # the last edge (window end) is dropped
    centres = start + (np.arange(n) + 0.5) * dt
    np.testing.assert_array_equal(bin_spike_times(centres, np.array([start]), n, dt), np.ones((1, n)))


def test_spikes_outside_the_window_are_dropped():
    spikes = np.array([-5.0, 0.999, 1.0, 1.25, 1.5, 1.5001, 9.0])
    np.testing.assert_array_equal(bin_spike_times(spikes, np.array([1.0]), 2, 0.25), [[1, 1]])


def test_empty_trials_and_no_spikes():
    starts = np.array([0.0, 10.0, 20.0])
    counts = bin_spike_times(np.array([0.5, 20.1, 20.1]), starts, 4, 0.25)
    np.testing.assert_array_equal(counts, [[0, 0, 1, 0], [0, 0, 0, 0], [2, 0, 0, 0]])
    np.testing.assert_array_equal(bin_spike_times(np.array([]), starts, 4, 0.25), np.zeros((3, 4)))
    assert bin_spike_times(np.array([1.0]), np.array([]), 4, 0.25).shape == (0, 4)


def test_overlapping_windows_and_unordered_trials():
    spikes = np.array([0.1, 0.3, 0.55])
    counts = bin_spike_times(spikes, np.array([0.2, 0.0]), 2, 0.25)  # windows [0.2, 0.7) and [0, 0.5)
    np.testing.assert_array_equal(counts, [[1, 1], [1, 1]])


def test_unsorted_spike_times_are_sorted_or_rejected():
    spikes = np.array([0.35, 0.05, 0.15, 0.16])
    before = spikes.copy()
    np.testing.assert_array_equal(bin_spike_times(spikes, np.array([0.0]), 4, 0.1), [[1, 2, 0, 1]])
    np.testing.assert_array_equal(spikes, before)  # the caller's array is not sorted in place
    with pytest.raises(DataError, match="not sorted") as e:
        bin_spike_times(spikes, np.array([0.0]), 4, 0.1, unsorted="error", name="units.spike_times[3]")
    assert e.value.field == "units.spike_times[3]" and "unsorted='sort'" in str(e.value)
    np.testing.assert_array_equal(bin_spike_times(np.sort(spikes), np.array([0.0]), 4, 0.1, unsorted="error"),
                                  [[1, 2, 0, 1]])


def test_smoothing_preserves_counts_away_from_edges():
    counts = np.zeros((2, 60, 3), dtype=np.int64)
    counts[0, 30, 0] = 4
    counts[1, 25:35, 1] = 1
    counts[1, 20, 2] = 7
    sd = 2.0
    sm = gaussian_smooth(counts, sd, axis=1)
    assert sm.dtype == np.float32 and sm.shape == counts.shape
    np.testing.assert_allclose(sm.sum(1), counts.sum(1), rtol=1e-5)
    np.testing.assert_allclose(sm[0, :, 0], 4 * np.pad(gaussian_kernel(sd), (30 - 8, 60 - 31 - 8)), atol=1e-6)
    assert np.argmax(sm[1, :, 2]) == 20 and np.allclose(sm[1, :, 2], sm[1, ::-1, 2][::-1])
    edge = np.zeros((1, 60, 1))
    edge[0, 0, 0] = 1
    assert gaussian_smooth(edge, sd).sum() < 0.6  # zero padding: mass beyond the window is lost
    np.testing.assert_array_equal(gaussian_smooth(counts, 0), counts)  # sd <= 0: unchanged


def test_gaussian_kernel_is_normalised_and_symmetric():
    k = gaussian_kernel(1.5)
    assert k.size == 2 * 6 + 1 and k.sum() == pytest.approx(1.0) and np.allclose(k, k[::-1])
