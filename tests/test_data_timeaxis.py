"""Time axes read from files: implausible bins name time_units, unsorted axes fail, dt is logged."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
import scipy.io as sio

import data_adapters as da
from data_adapters import DataError
from data_adapters.timeaxis import check_bin_width, time_from_vector


def _npz(tmp_path, t, name="f.npz"):
    np.savez(tmp_path / name, activity=np.ones((2, len(t), 3)), t=np.asarray(t, dtype=float))
    return tmp_path / name


def test_ms_vector_read_as_seconds_names_time_units(tmp_path):
    p = _npz(tmp_path, np.arange(10) * 50.0)
    with pytest.raises(DataError, match=r"time array 't' in '.*f\.npz' has bins of 50 s.*set time_units: ms") as e:
        da.load(p, time_key="t")
    assert e.value.field == "time_units"
    assert da.load(p, time_key="t", time_units="ms").dt == pytest.approx(0.05)


def test_tiny_bins_and_explicit_dt(tmp_path):
    p = _npz(tmp_path, np.arange(10) * 1e-3)
    with pytest.raises(DataError, match=r"bins of 0.001 ms .*time_units: s"):
        da.load(p, time_key="t", time_units="ms")
    with pytest.raises(DataError, match=r"dt for .* is 50 s.*dt is in seconds") as e:
        da.load(p, dt=50.0)
    assert e.value.field == "dt"
    with pytest.raises(DataError, match="time_units: ms"):  # dt given, but the vector is in ms
        da.load(_npz(tmp_path, np.arange(10) * 20.0, "g.npz"), time_key="t", dt=0.02)


@pytest.mark.parametrize("t, what", [(np.arange(5)[::-1] * 0.01, "decreasing"),
                                     (np.array([0.0, 0.01, 0.03, 0.02, 0.04]), "not strictly increasing"),
                                     (np.array([0.0, 0.01, 0.01, 0.02, 0.03]), "not strictly increasing")])
def test_unsorted_time_axis_is_an_error(tmp_path, t, what):
    with pytest.raises(DataError, match=what):
        da.load(_npz(tmp_path, t), time_key="t", dt=0.01)


def test_hdf5_arrays_and_trialdata_layout(tmp_path):
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["rates"] = np.ones((2, 4, 3))
        f["t"] = np.arange(4) * 20.0
    with pytest.raises(DataError, match="set time_units: ms"):
        da.load(tmp_path / "g.h5", activity_key="rates", time_key="t")
    d = da.TrialData(activity=np.ones((2, 4, 3)), dt=0.02)
    da.write_hdf5(d, tmp_path / "td.h5")
    assert da.load(tmp_path / "td.h5").dt == pytest.approx(0.02)
    with h5py.File(tmp_path / "td.h5", "a") as f:
        f["time"][...] = f["time"][()][::-1]
    with pytest.raises(DataError, match="time array '/time' .* decreasing"):
        da.load(tmp_path / "td.h5")


def test_mat_unit_layout_time_in_ms(tmp_path):
    rng = np.random.default_rng(0)
    unit = {"response": rng.normal(size=(4, 5)), "task_variable": {"ctx": np.array([1.0, 1.0, -1.0, -1.0])},
            "time": np.arange(5) * 50.0}
    sio.savemat(tmp_path / "u0.mat", {"unit": unit})
    with pytest.raises(DataError, match="time vector of unit 'u0' in .* has bins of 50 s.*time_units: ms"):
        da.load(tmp_path / "u0.mat", conditions="ctx")
    assert da.load(tmp_path / "u0.mat", conditions="ctx", time_units="ms").dt == pytest.approx(0.05)


def test_dt_and_span_logged_once_per_load(tmp_path, caplog):
    p = _npz(tmp_path, np.arange(10) * 0.05 - 0.2)
    with caplog.at_level(logging.INFO, logger="data_adapters"):
        da.load(p, time_key="t")
    lines = [r.getMessage() for r in caplog.records if "dt =" in r.getMessage()]
    assert len(lines) == 1 and "dt = 50 ms" in lines[0] and "-200 ms" in lines[0] and "span 500 ms" in lines[0]


def test_check_functions_directly():
    assert check_bin_width(0.01, source="x", what="dt", from_time=False) == 0.01
    t, dt = time_from_vector([0, 10, 20], 3, dt=None, time_units="ms", source="x", what="t")
    np.testing.assert_allclose(t, [0, 0.01, 0.02])
    assert dt == pytest.approx(0.01)
    with pytest.raises(DataError, match="3 entries but the activity has 4"):
        time_from_vector([0, 10, 20], 4, dt=None, time_units="ms", source="x", what="t")
    with pytest.raises(DataError, match="time_units='us'"):
        time_from_vector([0, 10, 20], 3, dt=None, time_units="us", source="x", what="t")
