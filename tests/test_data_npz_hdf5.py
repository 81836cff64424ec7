"""NPZ/NPY readers, the M1 dataset and config, HDF5 layouts, format detection, file errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

import data_adapters as da
from data_adapters import DataError, TrialData

REPO = Path(__file__).resolve().parents[1]


def make_data(K: int = 6, T: int = 15, N: int = 7) -> TrialData:
    rng = np.random.default_rng(1)
    cond = pd.DataFrame({"coh": rng.normal(size=K), "ctx": pd.Categorical(["m", "c"] * (K // 2)),
                         "ok": [True, False] * (K // 2), "n": np.arange(K), "label": [f"t{k}" for k in range(K)]})
    mask = np.ones((K, T), bool)
    mask[0, -3:] = False
    return TrialData(activity=rng.poisson(3.0, size=(K, T, N)), inputs=rng.normal(size=(K, T, 2)),
                     input_names=("stim", "ctx"), mask=mask, conditions=cond, dt=0.005,
                     time=-0.02 + 0.005 * np.arange(T), neuron_ids=[f"u{i}" for i in range(N)],
                     meta={"units": "counts", "note": {"a": [1, 2]}})


def assert_same(a: TrialData, b: TrialData) -> None:
    np.testing.assert_array_equal(a.activity, b.activity)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.neuron_ids, b.neuron_ids)
    assert a.input_names == b.input_names and a.dt == b.dt


def test_hdf5_roundtrip_lossless(tmp_path):
    d = make_data()
    p = da.write_hdf5(d, tmp_path / "d.h5")
    back = da.load(p)
    assert_same(d, back)
    pd.testing.assert_frame_equal(d.conditions, back.conditions)
    assert back.meta["note"] == {"a": [1, 2]} and back.meta["source"] == str(p)


def test_lfads_layout_roundtrip(tmp_path):
    d = make_data()
    p = da.write_lfads_hdf5(d, tmp_path / "lfads.h5", valid_fraction=0.34, seed=0)
    with h5py.File(p) as f:
        assert {"train_recon_data", "valid_recon_data", "train_ext_input", "valid_ext_input"} <= set(f)
    back = da.load(p)
    np.testing.assert_array_equal(back.activity, d.activity)
    np.testing.assert_array_equal(back.inputs, d.inputs)
    assert back.dt == d.dt and list(back.conditions["trial_index"]) == list(range(6))
    assert da.read_lfads_hdf5(p, split="valid").n_trials == 2
    with h5py.File(tmp_path / "nodt.h5", "w") as f:
        f["train_recon_data"] = np.zeros((2, 3, 4))
    with pytest.raises(DataError, match="dt="):
        da.load(tmp_path / "nodt.h5")
    assert da.load(tmp_path / "nodt.h5", dt=0.01).n_trials == 2


def test_generic_hdf5_arrays(tmp_path):
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["rates"] = np.ones((5, 3, 4))  # neuron, cond, time
        f["t"] = np.arange(4) * 20.0
        f["coh"] = np.arange(3.0)
    d = da.load(tmp_path / "g.h5", activity_key="rates", axis_order="neuron,cond,time", time_key="t",
                time_units="ms", condition_keys=["coh"])
    assert (d.n_trials, d.n_time, d.n_neurons) == (3, 4, 5) and d.dt == pytest.approx(0.02)


def test_npz_axis_order_time_and_inputs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 3))  # time, cond, neuron... stored as (time, neuron, cond)
    np.savez(tmp_path / "a.npz", act=x.transpose(0, 2, 1), tt=np.arange(6) * 0.0 + np.arange(4)[:, None].sum() * 0,
             t=np.linspace(-0.1, 0.05, 4), angle=np.array([0, 90, 180, 270, 0, 90.0]),
             go=np.array([0.0, 0.0, 0.05, 0.05, np.nan, 0.0]))
    spec = [{"name": "cx", "column": "angle", "transform": "cos_deg"},
            {"name": "go", "start": "go", "scale": 2.0},
            {"name": "early", "value": 1.0, "stop": -0.05}]
    d = da.load(tmp_path / "a.npz", activity_key="act", axis_order="time,neuron,cond", time_key="t",
                condition_keys=["angle", "go"], inputs=spec)
    assert (d.n_trials, d.n_time, d.n_neurons) == (6, 4, 3) and d.dt == pytest.approx(0.05)
    np.testing.assert_allclose(d.activity[:, :, 0], x[:, :, 0].T, rtol=1e-6)
    np.testing.assert_allclose(d.inputs[:, 0, 0], np.cos(np.deg2rad([0, 90, 180, 270, 0, 90.0])), atol=1e-6)
    # go (event column, relative times) times scale 2; NaN event -> off
    np.testing.assert_array_equal(d.inputs[0, :, 1], [0, 0, 2, 2])
    np.testing.assert_array_equal(d.inputs[2, :, 1], [0, 0, 0, 2])
    np.testing.assert_array_equal(d.inputs[4, :, 1], [0, 0, 0, 0])
    np.testing.assert_array_equal(d.inputs[0, :, 2], [1, 0, 0, 0])


def test_npy_and_input_spec_errors(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((10, 3)))
    d = da.load(tmp_path / "x.npy", axis_order="time,neuron", dt=0.01)
    assert (d.n_trials, d.n_time, d.n_neurons) == (1, 10, 3)
    with pytest.raises(DataError, match="dt="):
        da.load(tmp_path / "x.npy", axis_order="time,neuron")
    with pytest.raises(DataError, match="axis_order"):
        da.load(tmp_path / "x.npy", axis_order="time,time")
    np.savez(tmp_path / "c.npz", activity=np.ones((2, 3, 4)), c=np.array([1.0, 2.0]))
    with pytest.raises(DataError, match=r"'nope'.*available columns"):
        da.load(tmp_path / "c.npz", dt=0.1, condition_keys=["c"], inputs=[{"name": "a", "column": "nope"}])
    with pytest.raises(DataError, match="unknown keys"):
        da.load(tmp_path / "c.npz", dt=0.1, inputs=[{"name": "a", "colum": "c"}])
    with pytest.raises(DataError, match="no array 'missing'"):
        da.load(tmp_path / "c.npz", dt=0.1, condition_keys=["missing"])
    with pytest.raises(DataError, match="not understood"):
        da.load(tmp_path / "c.npz", dt=0.1, windw=(0, 1))


def test_m1_loads_with_cue_and_go_inputs(m1_path):
    cfg = REPO / "configs" / "data_m1_reaching.yaml"
    section = yaml.safe_load(cfg.read_text())["data"]
    d = da.load_config(section, base_dir=cfg.parent)
    assert (d.n_trials, d.n_time, d.n_neurons) == (8, 121, 141)
    assert d.input_names == ("cue_x", "cue_y", "go") and d.dt == pytest.approx(0.01)
    assert d.time[0] == pytest.approx(-0.8) and d.time[-1] == pytest.approx(0.4)
    ang = np.deg2rad(d.conditions["reach_angle_deg"].to_numpy())
    np.testing.assert_allclose(d.inputs[:, 50, 0], np.cos(ang), atol=1e-6)
    np.testing.assert_allclose(d.inputs[:, 0, 1], np.sin(ang), atol=1e-6)
    go = d.inputs[0, :, 2]
    assert go[d.time < -0.3 - 1e-9].sum() == 0 and (go[d.time >= -0.3 - 1e-9] == 1).all()
    assert Path(d.source).resolve() == m1_path.resolve()
    # the same through plain load options and the recommended normalisation on a train split
    opts = {k: v for k, v in section.items() if k != "path"}
    d2 = da.load(m1_path, **opts)
    np.testing.assert_array_equal(d.activity, d2.activity)
    tr, te = d.split("conditions", column="reach_angle_deg", test_fraction=0.25, seed=0)
    te_n = te.normalise("centre_global", reference=tr)
    assert te_n.n_trials == 2 and np.isfinite(te_n.activity).all()


def test_env_var_fallback(tmp_path, monkeypatch, m1_path):
    monkeypatch.setenv("LRFIT_SHARED_DATA", str(m1_path.parent))
    p = da.resolve_data_path("nowhere/" + m1_path.name, base_dir=tmp_path)
    assert p == m1_path
    monkeypatch.delenv("LRFIT_SHARED_DATA")
    assert da.resolve_data_path("x.npz", base_dir=tmp_path) == tmp_path / "x.npz"


def test_missing_and_wrong_files(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*check the path"):
        da.load(tmp_path / "nope.nwb")
    (tmp_path / "text.nwb").write_text("hello, not a recording\n")
    with pytest.raises(DataError, match=r"text\.nwb' is not an NWB \(HDF5\) file"):
        da.load(tmp_path / "text.nwb")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DataError, match="is not an HDF5 file"):
        da.load(tmp_path / "text.h5")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        da.load(tmp_path / "empty.h5")


@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_hdf5(tmp_path, keep):
    p = da.write_hdf5(make_data(K=40, T=50, N=30), tmp_path / "full.h5", compression=None)
    raw = p.read_bytes()
    bad = tmp_path / "trunc.h5"
    bad.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(DataError, match=r"trunc\.h5.*(truncated|corrupt)") as e:
        da.load(bad)
    assert "\n" not in str(e.value)


def test_corrupt_hdf5_body(tmp_path):
    p = da.write_hdf5(make_data(), tmp_path / "c.h5", compression=None)
    raw = bytearray(p.read_bytes())
    raw[200:] = bytes(len(raw) - 200)
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"c\.h5.*(truncated|corrupt)"):
        da.load(p)
