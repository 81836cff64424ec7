"""MATLAB reader: v5 and v7.3 files, the arrays / Mante unit / TDR layouts, pseudo-populations, bad input."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.io as sio

import data_adapters as da
from data_adapters import DataError
from data_adapters.mat import read_mat

T = 6
TIME = -0.1 + 0.05 * np.arange(T)
LEVELS = {"context": [-1.0, 1.0], "stim_dir": [-0.5, 0.5], "stim_col": [-0.2, 0.2]}


# ---------------------------------------------------------------------- a minimal MATLAB v7.3 writer
class Cell(list):
    """A MATLAB cell array (plain lists of dicts are written as struct arrays)."""


def write_v73(path: Path, variables: dict[str, Any]) -> Path:
    """Write ``variables`` the way MATLAB's ``save -v7.3`` lays them out.

    512-byte userblock with the MATLAB header; arrays stored transposed (column-major);
    strings as uint16 with ``MATLAB_class="char"``; structs as groups; struct arrays as
    groups whose fields are (n, 1) reference datasets; cells as reference datasets with
    ``MATLAB_class="cell"``; referenced objects live in ``#refs#``.
    """
    counter = itertools.count()

    def put(g: h5py.Group, name: str, value: Any, f: h5py.File) -> h5py.HLObject:
        if isinstance(value, dict):
            grp = g.create_group(name)
            grp.attrs["MATLAB_class"] = np.bytes_("struct")
            for k, v in value.items():
                put(grp, k, v, f)
            return grp
        if isinstance(value, list) and not isinstance(value, Cell):  # struct array (1 x n)
            grp = g.create_group(name)
            grp.attrs["MATLAB_class"] = np.bytes_("struct")
            for k in value[0]:
                ds = grp.create_dataset(k, shape=(len(value), 1), dtype=h5py.ref_dtype)
                for i, elem in enumerate(value):
                    ds[i, 0] = put(f["#refs#"], f"r{next(counter)}", elem[k], f).ref
            return grp
        if isinstance(value, Cell):
            ds = g.create_dataset(name, shape=(len(value), 1), dtype=h5py.ref_dtype)
            for i, elem in enumerate(value):
                ds[i, 0] = put(f["#refs#"], f"r{next(counter)}", elem, f).ref
            ds.attrs["MATLAB_class"] = np.bytes_("cell")
            return ds
        if isinstance(value, str):
            ds = g.create_dataset(name, data=np.array([[ord(c)] for c in value], dtype=np.uint16))
            ds.attrs["MATLAB_class"] = np.bytes_("char")
            return ds
        arr = np.atleast_2d(np.asarray(value))  # MATLAB vectors are 1 x n
        cls = "logical" if arr.dtype == bool else "double"
        ds = g.create_dataset(name, data=arr.astype(np.uint8 if cls == "logical" else np.float64).T)
        ds.attrs["MATLAB_class"] = np.bytes_(cls)
        return ds

    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_group("#refs#")
        for k, v in variables.items():
            put(f, k, v, f)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + bytes(8) + b"\x00\x02IM")
    return path


def write(path: Path, variables: dict[str, Any], version: str) -> Path:
    """Write a v5 file with scipy (struct arrays as record arrays) or a v7.3 file with :func:`write_v73`."""
    if version == "7.3":
        return write_v73(path, variables)

    def v5(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: v5(v) for k, v in x.items()}
        if isinstance(x, Cell):
            return np.array([v5(v) for v in x], dtype=object)
        if isinstance(x, list):  # struct array
            rec = np.zeros((1, len(x)), dtype=[(k, object) for k in x[0]])
            for i, e in enumerate(x):
                for k in e:
                    rec[0, i][k] = v5(e[k])
            return rec
        return x

    sio.savemat(path, {k: v5(v) for k, v in variables.items()})
    return path


# ---------------------------------------------------------------------- synthetic units
def make_unit(seed: int, repeats: int = 3, drop: tuple | None = None) -> dict[str, Any]:
    """A Mante-style unit: every condition ``repeats`` times (shuffled), about a third of trials wrong."""
    rng = np.random.default_rng(seed)
    combos = [c for c in itertools.product(*LEVELS.values()) if c != drop] * repeats
    K = len(combos)
    correct = (rng.random(K) > 0.3).astype(float)
    correct[:K // repeats] = 1.0  # every condition keeps a correct trial
    order = rng.permutation(K)
    tv = {name: np.array([combos[i][j] for i in order]) for j, name in enumerate(LEVELS)}
    tv["correct"] = correct[order]
    return {"response": rng.normal(10.0, 3.0, size=(K, T)), "task_variable": tv, "time": TIME}


def expected_average(units: list[dict[str, Any]], only_correct: bool = False) -> tuple[np.ndarray, list[tuple]]:
    """Pseudo-population computed directly: (conditions, time, neurons) and the sorted condition keys."""
    keys = sorted(itertools.product(*LEVELS.values()))
    out = np.zeros((len(keys), T, len(units)))
    for n, u in enumerate(units):
        tv = u["task_variable"]
        for c, key in enumerate(keys):
            sel = np.all([tv[name] == v for name, v in zip(LEVELS, key)], axis=0)
            if only_correct:
                sel &= tv["correct"] == 1
            out[c, :, n] = u["response"][sel].mean(0)
    return out, keys


def check_population(d: da.TrialData, units: list[dict[str, Any]], only_correct: bool = False) -> None:
    want, keys = expected_average(units, only_correct)
    np.testing.assert_allclose(d.activity, want, rtol=1e-6)
    assert [tuple(r) for r in d.conditions[list(LEVELS)].itertuples(index=False)] == keys
    np.testing.assert_allclose(d.time, TIME)
    assert d.dt == pytest.approx(0.05)


# ---------------------------------------------------------------------- tree reading
@pytest.mark.parametrize("version", ["5", "7.3"])
def test_read_mat_tree(tmp_path, version):
    x = np.arange(12.0).reshape(3, 4)
    p = write(tmp_path / "t.mat", {"x": x, "s": {"name": "hello", "flag": np.array([True, False, True]),
                                                 "labels": Cell(["ab", "cde"]), "inner": {"v": 2.5}},
                                   "sa": [{"a": np.ones((2, 3))}, {"a": np.zeros((1, 2))}]}, version)
    tree = read_mat(p)
    np.testing.assert_array_equal(tree["x"], x)  # MATLAB shape, not transposed
    assert tree["s"]["name"] == "hello" and tree["s"]["labels"] == ["ab", "cde"]
    assert np.asarray(tree["s"]["flag"]).ravel().astype(bool).tolist() == [True, False, True]
    assert float(np.asarray(tree["s"]["inner"]["v"]).squeeze()) == 2.5
    assert [e["a"].shape for e in tree["sa"]] == [(2, 3), (1, 2)]


# ---------------------------------------------------------------------- layouts
@pytest.mark.parametrize("version", ["5", "7.3"])
def test_arrays_layout(tmp_path, version):
    rng = np.random.default_rng(0)
    rates = rng.normal(size=(4, 5, 3))  # neuron, cond, time in MATLAB
    p = write(tmp_path / "a.mat", {"data": {"rates": rates, "t": np.arange(3) * 20.0, "coh": np.arange(5.0),
                                            "ctx": Cell(["m", "c", "m", "c", "m"])}}, version)
    d = da.load(p, activity_key="data.rates", axis_order="neuron,cond,time", time_key="data.t", time_units="ms",
                condition_keys={"coh": "data.coh", "ctx": "data.ctx"},
                inputs=[{"name": "coh", "column": "coh"}, {"name": "motion", "column": "ctx", "equals": "m"}])
    np.testing.assert_allclose(d.activity, rates.transpose(1, 2, 0), rtol=1e-6)
    assert d.dt == pytest.approx(0.02) and d.meta["layout"] == "arrays"
    assert d.conditions["ctx"].tolist() == ["m", "c", "m", "c", "m"]
    np.testing.assert_array_equal(d.inputs[:, 0, 1], [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(d.inputs[:, 1, 0], np.arange(5.0))


def test_arrays_layout_trailing_singleton_and_errors(tmp_path):
    p = write(tmp_path / "a.mat", {"rates": np.ones((4, 5)), "t": np.arange(5) * 0.01}, "5")
    d = da.load(p, activity_key="rates", axis_order="trial,time,neuron", time_key="t")
    assert (d.n_trials, d.n_time, d.n_neurons) == (4, 5, 1)  # MATLAB dropped the neuron axis of size 1
    with pytest.raises(DataError, match="did you mean 'rates'") as e:
        da.load(p, activity_key="rate", time_key="t")
    assert str(p) in str(e.value) and e.value.field == "activity_key"
    with pytest.raises(DataError, match="axis_order"):
        da.load(p, activity_key="rates", axis_order="trial,tme,neuron", time_key="t")
    with pytest.raises(DataError, match="axis_order"):
        da.load(p, activity_key="rates", axis_order="time,neuron", time_key="t")  # 5 time bins vs 4 trials
    with pytest.raises(DataError, match="unit layouts"):
        da.load(p, activity_key="rates", time_key="t", conditions=["x"])


@pytest.mark.parametrize("version", ["5", "7.3"])
@pytest.mark.parametrize("only_correct", [False, True])
def test_mante_unit_files(tmp_path, version, only_correct):
    units = [make_unit(s, repeats=2 + s) for s in range(3)]
    paths = [write(tmp_path / f"unit{i}.mat", {"unit": u}, version) for i, u in enumerate(units)]
    d = da.load(paths, conditions=["context", "stim_dir", "stim_col"], only_correct=only_correct,
                inputs=[{"name": "ctx", "column": "context"}, {"name": "dir", "column": "stim_dir", "start": 0.0}])
    check_population(d, units, only_correct)
    assert d.neuron_ids.tolist() == ["unit0", "unit1", "unit2"] and d.meta["layout"] == "mante_unit"
    np.testing.assert_array_equal(d.inputs[:, 0, 0], d.conditions["context"])
    np.testing.assert_array_equal(d.inputs[:, :, 1] != 0, np.broadcast_to(TIME >= -1e-9, (8, T)))
    if not only_correct:
        assert d.conditions["min_trials"].tolist() == [2] * 8
    same = da.load(tmp_path, conditions=["context", "stim_dir", "stim_col"], only_correct=only_correct)  # folder
    np.testing.assert_array_equal(same.activity, d.activity)


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_tdr_layout(tmp_path, version):
    units = [make_unit(10 + s) for s in range(4)]
    data = {"unit": [{"response": u["response"], "task_variable": u["task_variable"]} for u in units],
            "time": TIME}
    p = write(tmp_path / "dataT.mat", {"dataT": data}, version)
    d = da.load(p, conditions=["context", "stim_dir", "stim_col"], units="Hz")
    check_population(d, units)
    assert d.neuron_ids.tolist() == [0, 1, 2, 3] and d.meta["units"] == "Hz" and d.meta["layout"] == "tdr"
    d1 = da.load(p, layout="tdr", variable="dataT", conditions="context", only_correct=True)
    if version == "7.3":  # a struct array whose fields were read as cells is turned back into units
        cells = {"unit": {"response": Cell(u["response"] for u in units),
                          "task_variable": Cell(u["task_variable"] for u in units)}, "time": TIME}
        p2 = write_v73(tmp_path / "cells.mat", {"data": cells})
        np.testing.assert_array_equal(da.load(p2, conditions=list(LEVELS)).activity, d.activity)
    assert d1.conditions["context"].tolist() == [-1.0, 1.0]


def test_missing_condition_warns_or_errors(tmp_path):
    units = [make_unit(0), make_unit(1, drop=(1.0, 0.5, 0.2)), make_unit(2)]
    paths = [write(tmp_path / f"u{i}.mat", {"unit": u}, "5") for i, u in enumerate(units)]
    conds = ["context", "stim_dir", "stim_col"]
    with pytest.warns(UserWarning, match=r"1 of 3 units lack.*'u1' lacks \(context=1.0, stim_dir=0.5"):
        d = da.load(paths, conditions=conds)
    assert d.n_trials == 7 and (1.0, 0.5, 0.2) not in set(d.conditions[conds].itertuples(index=False, name=None))
    assert d.meta["pseudo_population"]["dropped_conditions"] == 1
    with pytest.raises(DataError, match="on_missing='warn'"):
        da.load(paths, conditions=conds, on_missing="error")
    with pytest.raises(DataError, match="no condition .* every unit"):  # 3 repeats per condition: none has 4
        da.load(paths, conditions=conds, min_trials=4)


# ---------------------------------------------------------------------- bad input
def test_unit_layout_errors(tmp_path):
    u = make_unit(0)
    p0 = write(tmp_path / "u0.mat", {"unit": u}, "5")
    with pytest.raises(DataError, match="did you mean 'stim_dir'") as e:
        da.load(p0, conditions=["stim_dri"])
    assert str(p0) in str(e.value) and e.value.field == "stim_dri"
    with pytest.raises(DataError, match="conditions=") as e:
        da.load(p0)
    assert "stim_col" in str(e.value)
    short = dict(u, response=u["response"][:, :4], time=TIME[:4])
    p1 = write(tmp_path / "u1.mat", {"unit": short}, "5")
    with pytest.raises(DataError, match="has 4 time bins but unit 'u0' has 6"):
        da.load([p0, p1], conditions=["context"])
    shifted = dict(u, time=TIME + 0.01)
    p2 = write(tmp_path / "u2.mat", {"unit": shifted}, "5")
    with pytest.raises(DataError, match="time vector of unit 'u2'"):
        da.load([p0, p2], conditions=["context"])
    disjoint = dict(u, task_variable={**u["task_variable"], "stim_dir": u["task_variable"]["stim_dir"] + 5})
    p3 = write(tmp_path / "u3.mat", {"unit": disjoint}, "5")
    with pytest.raises(DataError, match="no condition .* every unit.*'u0' lacks 2 of the 4"):
        da.load([p0, p3], conditions=["stim_dir"])
    bad_len = dict(u, task_variable={**u["task_variable"], "context": np.ones(3)})
    with pytest.raises(DataError, match="one value per trial"):
        da.load(write(tmp_path / "u4.mat", {"unit": bad_len}, "5"), conditions=["context"])
    with pytest.raises(DataError, match="layout 'arrays' only"):
        da.load(p0, conditions=["context"], activity_key="x")
    with pytest.raises(DataError, match="did you mean 'tdr'"):
        da.load(p0, layout="tdx")


def test_not_a_mat_file(tmp_path):
    txt = tmp_path / "notes.mat"
    txt.write_text("just some text, not MATLAB")
    with pytest.raises(DataError, match="not a MATLAB MAT-file") as e:
        da.load_mat(txt)
    assert str(txt) in str(e.value)
    with pytest.raises(DataError, match="not a MATLAB"):
        da.load(txt)  # detection by content names the expected type from the suffix
    with pytest.raises(DataError, match="does not exist"):
        da.load_mat(tmp_path / "missing.mat")
    with pytest.raises(DataError, match="no .mat files"):
        da.load_mat((tmp_path / "empty").mkdir() or tmp_path / "empty")
    good = write(tmp_path / "g.mat", {"unit": make_unit(0)}, "5")
    broken = tmp_path / "broken.mat"
    broken.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated or corrupt"):
        da.load_mat(broken, conditions=["context"])
