"""NWB reader/writer: round trips, exact binning, bad input, closed files, ``lrfit simulate`` end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

import data_adapters as da
from data_adapters import DataError, TrialData
from data_adapters.nwb import load_nwb
from data_adapters.nwb_write import poisson_spikes, write_nwb

pynwb = pytest.importorskip("pynwb")


# ------------------------------------------------------------------------------------------- helpers
def _data(K: int = 6, T: int = 20, N: int = 5, seed: int = 0, counts: bool = False) -> TrialData:
    rng = np.random.default_rng(seed)
    act = rng.poisson(0.6, (K, T, N)).astype(float) if counts else rng.uniform(0, 40, (K, T, N))
    mask = np.ones((K, T), dtype=bool)
    mask[1, -4:] = False  # a shorter trial
    cond = pd.DataFrame({"coherence": rng.normal(size=K), "context": ["motion", "color"] * (K // 2),
                         "target": np.arange(K) % 2, "correct": np.arange(K) % 3 > 0})
    return TrialData(activity=act, inputs=rng.normal(size=(K, T, 2)), input_names=("stim", "ctx"), mask=mask,
                     conditions=cond, dt=0.01, time=(np.arange(T) + 1) * 0.01,
                     meta={"units": "counts" if counts else "Hz"})


def _nwb(path: Path, trials: list[dict] | None = None, units: list[np.ndarray] | None = None,
         unit_columns: dict[str, list] | None = None) -> Path:
    """A hand-made NWB file: trials rows (start_time, stop_time, extra columns) and units' spike times."""
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="test", identifier="test",
                  session_start_time=datetime(2024, 1, 1, tzinfo=UTC))
    if trials:
        for col in [c for c in trials[0] if c not in ("start_time", "stop_time")]:
            nwb.add_trial_column(col, col)
        for row in trials:
            nwb.add_trial(**row)
    if units is not None:
        for col in unit_columns or {}:
            nwb.add_unit_column(col, col)
        for i, s in enumerate(units):
            nwb.add_unit(spike_times=np.asarray(s, dtype=float), id=10 + i,
                         **{c: v[i] for c, v in (unit_columns or {}).items()})
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


TRIALS = [{"start_time": 0.0, "stop_time": 1.0, "stim_on_time": 0.2, "coherence": 0.5},
          {"start_time": 1.0, "stop_time": 2.0, "stim_on_time": 1.3, "coherence": -0.5}]


@pytest.fixture
def simple(tmp_path: Path) -> Path:
    return _nwb(tmp_path / "simple.nwb", TRIALS, [np.array([0.25, 1.35]), np.array([0.5, 0.6, 1.9]), np.array([])],
                {"quality": ["good", "good", "mua"]})


def _error(match: str, func, *args, **kwargs) -> DataError:
    with pytest.raises(DataError, match=match) as info:
        func(*args, **kwargs)
    return info.value


# ------------------------------------------------------------------------------------------- round trips
def test_rates_round_trip_is_exact(tmp_path):
    d = _data()
    path = write_nwb(d, tmp_path / "rates.nwb", rates=True)
    back = load_nwb(path, source="lrfit/rates", align_to="align_time", inputs="lrfit/inputs")
    assert np.array_equal(back.mask, d.mask)
    assert np.array_equal(back.activity[back.mask], d.activity[d.mask])
    assert np.array_equal(back.inputs[back.mask], d.inputs[d.mask])
    assert back.input_names == d.input_names and back.dt == d.dt
    assert np.allclose(back.time, d.time, atol=1e-12)
    assert np.array_equal(back.neuron_ids, d.neuron_ids)
    pd.testing.assert_frame_equal(back.conditions, d.conditions)
    assert back.meta["units"] == "Hz"
    # the entry point picks the NWB reader
    again = da.load(path, source="rates", align_to="align_time")
    assert np.array_equal(again.activity, back.activity) and again.n_inputs == 0


def test_spike_round_trip_gives_back_the_counts(tmp_path):
    d = _data(counts=True)
    path = write_nwb(d, tmp_path / "counts.nwb", rates=False, spikes="counts")
    back = load_nwb(path, dt=d.dt, align_to="align_time", inputs="lrfit/inputs")
    assert np.array_equal(back.mask, d.mask)
    assert np.array_equal(back.activity[back.mask], d.activity[d.mask])
    assert np.all(back.activity[~back.mask] == 0)
    assert np.array_equal(back.inputs[back.mask], d.inputs[d.mask])
    pd.testing.assert_frame_equal(back.conditions, d.conditions)
    assert back.meta["units"] == "counts" and back.dt == d.dt

    rates = _data()  # Poisson spikes from rates in Hz: the counts drawn with the seed come back
    path = write_nwb(rates, tmp_path / "poisson.nwb", rates=True, spikes=True, seed=3)
    back = load_nwb(path, dt=rates.dt, align_to="align_time")
    expect = poisson_spikes(rates.activity, rates.dt, seed=3) * rates.mask[:, :, None]
    assert np.array_equal(back.activity, expect.astype(np.float32))


def test_inputs_rebuilt_from_epoch_columns(tmp_path):
    d = _data()
    epochs = {"stimulus": (np.array([3, 4, 5, 3, 4, 5]), np.array([10, 12, 14, 10, 12, 14]))}
    path = write_nwb(d, tmp_path / "epochs.nwb", epochs=epochs)
    spec = [{"name": "stim", "column": "coherence", "start": "stimulus_start_time", "stop": "stimulus_stop_time"}]
    back = load_nwb(path, source="rates", align_to="align_time", inputs=spec)
    expect = np.zeros((6, 20))
    for k in range(6):
        expect[k, epochs["stimulus"][0][k]:epochs["stimulus"][1][k]] = d.conditions["coherence"][k]
    assert np.allclose(back.inputs[..., 0], expect, atol=1e-7)
    assert "stimulus_start_time" not in back.conditions  # event columns are not conditions


def test_written_files_pass_nwbinspector(tmp_path):
    from nwbinspector import Importance, inspect_nwbfile

    path = write_nwb(_data(), tmp_path / "inspect.nwb", rates=True, spikes=True)
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    critical = [m for m in messages if m.importance == Importance.CRITICAL]
    assert not critical, [m.message for m in critical]


# ------------------------------------------------------------------------------------------- exact binning
def test_spikes_on_bin_edges_empty_trials_and_window_end(tmp_path):
    trials = [{"start_time": 0.1 * k, "stop_time": 0.1 * (k + 1)} for k in range(3)]
    # bins are [j*dt, (j+1)*dt): a spike on an edge goes to the later bin, also when the edge is computed
    # (0.03 is not exact in binary); a spike within a millionth of a bin below an edge counts as on it;
    # 0.1 is the end of trial 0's window and the start of trial 1's
    spikes = np.array([0.0, 0.01, 0.02, 0.025, 0.03 - 1e-6, 0.03 - 1e-12, 0.0999999, 0.1])
    path = _nwb(tmp_path / "edges.nwb", trials, [spikes, np.array([0.25])])
    d = load_nwb(path, dt=0.01, window=(0.0, 0.1))
    assert d.activity[0, :, 0].tolist() == [1, 1, 3, 1, 0, 0, 0, 0, 0, 1]
    assert d.activity[1, :, 0].tolist() == [1] + [0] * 9
    assert d.activity[2, :, 0].tolist() == [0] * 10  # an empty trial: zeros
    assert d.activity[2, 5, 1] == 1 and d.activity[:, :, 1].sum() == 1
    # dt that does not divide the window: whole bins only
    assert load_nwb(path, dt=0.03, window=(0.0, 0.1)).n_time == 3


def test_unsorted_spike_times_are_sorted_or_rejected(tmp_path):
    trials = [{"start_time": 0.0, "stop_time": 0.1}]
    spikes = np.array([0.05, 0.01, 0.091, 0.011])
    path = _nwb(tmp_path / "unsorted.nwb", trials, [spikes, np.sort(spikes)])
    d = load_nwb(path, dt=0.01)
    assert np.array_equal(d.activity[..., 0], d.activity[..., 1])
    assert d.activity[0, :, 0].tolist() == [0, 2, 0, 0, 0, 1, 0, 0, 0, 1]
    e = _error("not sorted", load_nwb, path, dt=0.01, unsorted="error")
    assert "unsorted.nwb" in str(e)


def test_alignment_window_rate_and_smoothing(simple):
    d = load_nwb(simple, dt=0.05, align_to="stim_on_time", window=(-0.1, 0.3), rate=True)
    assert d.n_time == 8 and np.allclose(d.time, -0.1 + 0.025 + 0.05 * np.arange(8))
    # unit 10: spike 0.05 s after stim in trial 0 and trial 1; unit 11: 0.3/0.4 s (outside) and 0.6 s
    assert d.activity[0, 3, 0] == pytest.approx(20.0) and d.activity[1, 3, 0] == pytest.approx(20.0)
    assert d.meta["units"] == "Hz" and list(d.conditions.columns) == ["coherence"]
    assert d.conditions["coherence"].tolist() == [0.5, -0.5]
    # smoothing sees spikes just outside the window (padded, then cropped) and conserves mass inside it
    sm = load_nwb(simple, dt=0.01, align_to="stim_on_time", window=(0.1, 0.5), smooth_sd=0.02)
    raw = load_nwb(simple, dt=0.01, align_to="stim_on_time", window=(0.1, 0.5))
    assert raw.activity[0, :, 0].sum() == 0 and sm.activity[0, 0, 0] > 0  # spike at 0.05 leaks in
    assert sm.activity[0, :, 1].sum() == pytest.approx(2.0, abs=1e-3)  # spikes 0.3 and 0.4 s after stim


def test_unit_filter_ids_and_empty_units(simple, caplog):
    assert load_nwb(simple, dt=0.1, unit_filter={"quality": "good"}).neuron_ids.tolist() == [10, 11]
    assert load_nwb(simple, dt=0.1, unit_filter="quality == mua").neuron_ids.tolist() == [12]
    assert load_nwb(simple, dt=0.1, unit_filter={"quality": ["mua", "good"]}, units=[11, 12]).neuron_ids.tolist() \
        == [11, 12]
    kept = load_nwb(simple, dt=0.1)
    assert kept.n_neurons == 3 and kept.meta["empty_units"] == [12]
    with caplog.at_level("WARNING"):
        assert load_nwb(simple, dt=0.1, empty_units="flag").n_neurons == 3
    assert "no spike" in caplog.text
    assert load_nwb(simple, dt=0.1, empty_units="drop").neuron_ids.tolist() == [10, 11]
    _error("no spike", load_nwb, simple, dt=0.1, empty_units="error")


def test_nan_alignment_trials_are_dropped(tmp_path):
    trials = [dict(TRIALS[0]), {**TRIALS[1], "stim_on_time": np.nan}]
    path = _nwb(tmp_path / "nan.nwb", trials, [np.array([0.25])])
    d = load_nwb(path, dt=0.1, align_to="stim_on_time", window=(0.0, 0.5))
    assert d.n_trials == 1 and d.meta["dropped_trials"] == [1]


def test_fluorescence_series_with_timestamps_and_coarser_dt(tmp_path):
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import Fluorescence, ImageSegmentation, OpticalChannel

    nwb = NWBFile(session_description="ophys", identifier="o", session_start_time=datetime(2024, 1, 1,
                                                                                           tzinfo=UTC))
    for k in range(3):
        nwb.add_trial(start_time=k * 1.0, stop_time=k * 1.0 + 1.0)
    dev = nwb.create_device("scope")
    channel = OpticalChannel(name="ch", description="green", emission_lambda=500.0)
    plane = nwb.create_imaging_plane("plane", channel, description="p", device=dev, excitation_lambda=900.0,
                                     indicator="GCaMP", location="V1")
    ophys = nwb.create_processing_module("ophys", "fluorescence")
    segmentation = ImageSegmentation()
    ophys.add(segmentation)
    seg = segmentation.create_plane_segmentation(name="rois", imaging_plane=plane, description="seg")
    for _ in range(4):
        seg.add_roi(image_mask=np.ones((2, 2)))
    ts = np.arange(300) * 0.01 + 0.005  # 100 Hz frames stamped at bin centres
    values = np.arange(300 * 4, dtype=np.float32).reshape(300, 4)
    fl = Fluorescence()
    ophys.add(fl)
    fl.create_roi_response_series(name="RoiResponseSeries", data=values, unit="a.u.", timestamps=ts,
                                  rois=seg.create_roi_table_region(description="all", region=[0, 1, 2, 3]))
    path = tmp_path / "ophys.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    d = load_nwb(path, source="RoiResponseSeries")
    assert d.dt == pytest.approx(0.01) and d.activity.shape == (3, 100, 4)
    assert np.array_equal(d.activity.reshape(300, 4), values)
    coarse = load_nwb(path, source="ophys/Fluorescence/RoiResponseSeries", dt=0.05, units=[1, 3])
    assert coarse.dt == pytest.approx(0.05) and coarse.activity.shape == (3, 20, 2)
    assert np.allclose(coarse.activity[0, 0], values[:5, [1, 3]].mean(0))
    _error("integer multiple", load_nwb, path, source="RoiResponseSeries", dt=0.015)


# ------------------------------------------------------------------------------------------- bad input
def test_missing_and_non_nwb_files(tmp_path):
    _error("does not exist", load_nwb, tmp_path / "missing.nwb", dt=0.01)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    e = _error("is not an NWB file", load_nwb, plain, dt=0.01)
    assert "plain.h5" in str(e) and e.field == "path"
    text = tmp_path / "notes.nwb"
    text.write_text("hello")
    _error("notes.nwb", load_nwb, text, dt=0.01)


def test_missing_tables(tmp_path):
    no_trials = _nwb(tmp_path / "no_trials.nwb", None, [np.array([0.1])])
    e = _error("no trials table", load_nwb, no_trials, dt=0.01)
    assert "no_trials.nwb" in str(e) and e.field == "trials"
    no_units = _nwb(tmp_path / "no_units.nwb", TRIALS, None)
    e = _error("no units table", load_nwb, no_units, dt=0.01)
    assert "no_units.nwb" in str(e) and "source=" in str(e)


def test_bad_options_name_file_field_and_fix(simple):
    e = _error("did you mean 'stim_on_time'", load_nwb, simple, dt=0.01, align_to="stim_onset_time")
    assert e.field == "stim_onset_time" and "simple.nwb" in str(e)
    e = _error("outside 2 of 2 trials", load_nwb, simple, dt=0.01, align_to="stim_on_time", window=(-0.5, 0.5))
    assert "outside='mask'" in str(e) and e.field == "window"
    masked = load_nwb(simple, dt=0.1, align_to="stim_on_time", window=(-0.5, 0.5), outside="mask")
    assert masked.mask[0].tolist() == [False] * 3 + [True] * 7  # trial 0 starts 0.2 s before stim_on
    e = _error("did you mean 'quality'", load_nwb, simple, dt=0.01, unit_filter={"qualty": "good"})
    assert e.field == "qualty"
    e = _error("no unit", load_nwb, simple, dt=0.01, unit_filter={"quality": "excellent"})
    assert "simple.nwb" in str(e)
    _error("names no TimeSeries", load_nwb, simple, source="lrfit/rates")
    _error("needs dt", load_nwb, simple)
    _error("not in the units table", load_nwb, simple, dt=0.01, units=[99])
    _error("did you mean 'coherence'", load_nwb, simple, dt=0.01, condition_columns=["coherense"])
    _error("not understood by the nwb reader", da.load, simple, dt=0.01, bin_size=0.01)


def test_file_is_closed_after_load_and_errors(simple):
    d = load_nwb(simple, dt=0.1)
    _error("did you mean", load_nwb, simple, dt=0.1, align_to="stop_tme")
    with h5py.File(simple, "r+") as f:  # fails if an open read handle were left behind
        f.attrs["touched"] = 1
    simple.unlink()
    assert isinstance(d.activity, np.ndarray) and d.activity.sum() == 5


# ------------------------------------------------------------------------------------------- lrfit simulate
@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    from lrfit.teachers import train_teacher

    out = tmp_path_factory.mktemp("teacher") / "pdm"
    train_teacher("pdm", n_units=32, rank=1, seed=0, out=out, max_epochs=1, batch_size=16, batches_per_epoch=1,
                  n_val=16, n_test=16, progress=False)
    return out


def test_lrfit_simulate_end_to_end(teacher, tmp_path, capsys):
    from lrfit.cli import main
    from lrfit.teachers import simulate_teacher

    out = tmp_path / "sim.nwb"
    assert main(["simulate", str(teacher), "--trials", "6", "--out", str(out), "--record", "both",
                 "--neurons", "8", "--seed", "2"]) == 0
    assert "6 trials" in capsys.readouterr().out
    ref = simulate_teacher(teacher, 6, seed=2, neurons=8)
    rates = da.load(out, source="lrfit/rates", align_to="align_time", inputs="lrfit/inputs")
    assert np.array_equal(rates.activity, ref.activity) and np.array_equal(rates.inputs, ref.inputs)
    assert np.array_equal(rates.neuron_ids, ref.neuron_ids) and rates.input_names == ref.input_names
    assert np.allclose(rates.time, ref.time) and rates.dt == pytest.approx(ref.dt)
    pd.testing.assert_frame_equal(rates.conditions, ref.conditions)
    spikes = da.load(out, dt=ref.dt, align_to="align_time",
                     inputs=[{"name": "stim", "column": "coherence", "start": "stimulus_start_time",
                              "stop": "stimulus_stop_time"}])
    assert spikes.activity.shape == ref.activity.shape and spikes.activity.sum() > 0
    assert np.all(spikes.activity == np.round(spikes.activity))
    from lrfit.tasks import get_task

    a, b = get_task(**ref.meta["task"]).generate(6, seed=2).epochs["stimulus"]
    expect = np.zeros(ref.activity.shape[:2])
    expect[:, a:b] = ref.conditions["coherence"].to_numpy()[:, None]
    assert np.allclose(spikes.inputs[..., 0], expect)  # inputs rebuilt from the epoch columns

    h5 = tmp_path / "sim.h5"
    assert main(["simulate", str(teacher), "--trials", "4", "--out", str(h5), "--record", "spikes"]) == 0
    counts = da.load(h5)
    assert counts.meta["units"] == "counts" and np.all(counts.activity == np.round(counts.activity))
    # user errors: one line, exit status 2
    assert main(["simulate", str(teacher), "--trials", "4", "--out", str(h5)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "nope"), "--trials", "4", "--out", str(tmp_path / "x.nwb")]) == 2
