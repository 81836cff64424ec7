"""TrialData: validation, selection, splits without leakage, preprocessing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_adapters import DataError, TrialData, fit_normalisation


def make_data(K: int = 12, T: int = 20, N: int = 10, C: int = 2, seed: int = 0) -> TrialData:
    rng = np.random.default_rng(seed)
    cond = pd.DataFrame({"coh": np.repeat([-1.0, 0.0, 1.0], K // 3)[:K], "ctx": ["a", "b"] * (K // 2)})
    act = rng.gamma(2.0, 5.0, size=(K, T, N)).astype(np.float32)
    act[:, :, 0] *= 10
    return TrialData(activity=act, inputs=rng.normal(size=(K, T, C)), input_names=("u", "v")[:C],
                     conditions=cond, dt=0.02, time=-0.1 + 0.02 * np.arange(T),
                     meta={"source": "synthetic.h5"})


def test_construction_defaults_and_readonly():
    d = TrialData(activity=np.ones((3, 4, 5)))
    assert (d.n_trials, d.n_time, d.n_neurons, d.n_inputs) == (3, 4, 5, 0)
    assert d.activity.dtype == np.float32 and d.mask.all() and d.input_names == ()
    np.testing.assert_allclose(d.time, (np.arange(4) + 0.5) * 0.01)
    with pytest.raises(ValueError):
        d.activity[0, 0, 0] = 2.0
    with pytest.raises(AttributeError):
        d.dt = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, field", [
    ({"inputs": np.zeros((3, 5, 1))}, "inputs"),
    ({"mask": np.ones((2, 4), bool)}, "mask"),
    ({"conditions": pd.DataFrame({"a": [1, 2]})}, "conditions"),
    ({"neuron_ids": [1, 1, 2, 3, 4]}, "neuron_ids"),
    ({"dt": -1.0}, "dt"),
    ({"time": np.arange(3)}, "time"),
    ({"inputs": np.zeros((3, 4, 2)), "input_names": ("a",)}, "input_names"),
])
def test_bad_shapes_are_one_clear_sentence(kwargs, field):
    with pytest.raises(DataError) as e:
        TrialData(activity=np.ones((3, 4, 5)), meta={"source": "rec.npz"}, **kwargs)
    assert e.value.field == field
    assert "rec.npz" in str(e.value) and str(e.value).count("\n") == 0


def test_nan_in_activity_named_and_masked_nan_allowed():
    a = np.ones((2, 3, 4))
    a[1, 2, 3] = np.nan
    with pytest.raises(DataError, match=r"NaN/Inf.*trial 1, bin 2, neuron 3.*rec\.nwb|rec\.nwb.*NaN/Inf"):
        TrialData(activity=a, meta={"source": "rec.nwb"})
    a[0, 1, 0] = np.inf
    mask = np.ones((2, 3), bool)
    mask[1, 2] = mask[0, 1] = False
    d = TrialData(activity=a, mask=mask)
    assert np.isfinite(d.activity).all()
    with pytest.raises(DataError, match="inputs"):
        TrialData(activity=np.ones((2, 3, 4)), inputs=np.full((2, 3, 1), np.inf))


def test_select_and_time_window():
    d = make_data()
    s = d.select(trials=[0, 2], neurons=np.arange(10) < 3, time=(0.0, 0.1))
    assert (s.n_trials, s.n_neurons) == (2, 3)
    np.testing.assert_allclose(s.time, [0.0, 0.02, 0.04, 0.06, 0.08, 0.1], atol=1e-12)
    assert list(s.conditions["coh"]) == [-1.0, -1.0]
    assert s.meta["preprocessing"][-1]["step"] == "select" and d.meta["preprocessing"] == []
    with pytest.raises(DataError, match="out of range"):
        d.select(trials=[99])


def test_subsample_reproducible_and_too_large():
    d = make_data()
    a, b, c = d.subsample_neurons(4, seed=3), d.subsample_neurons(4, seed=3), d.subsample_neurons(4, seed=4)
    assert np.array_equal(a.neuron_ids, b.neuron_ids) and not np.array_equal(a.neuron_ids, c.neuron_ids)
    assert d.subsample_neurons(0.5, seed=0).n_neurons == 5
    with pytest.raises(DataError, match=r"cannot subsample 11 neurons from a population of 10.*synthetic\.h5"):
        d.subsample_neurons(11)
    with pytest.raises(DataError):
        d.subsample_neurons(1.5)


def _trial_keys(d: TrialData) -> set[bytes]:
    return {d.activity[k].tobytes() for k in range(d.n_trials)}


def test_split_trials_reproducible_no_leak():
    d = make_data()
    tr, te = d.split("trials", test_fraction=0.25, seed=1)
    tr2, te2 = d.split("trials", test_fraction=0.25, seed=1)
    assert te.meta["split"]["trial_indices"] == te2.meta["split"]["trial_indices"]
    assert tr.n_trials + te.n_trials == d.n_trials and te.n_trials == 3
    assert not (_trial_keys(tr) & _trial_keys(te))
    assert set(tr.meta["split"]["trial_indices"]).isdisjoint(te.meta["split"]["trial_indices"])
    trs, tes = d.split("trials", test_fraction=0.25, seed=0, stratify="coh")
    assert set(tes.conditions["coh"]) == {-1.0, 0.0, 1.0} and set(trs.conditions["coh"]) == {-1.0, 0.0, 1.0}


def test_split_conditions_no_leak():
    d = make_data()
    tr, te = d.split("conditions", column="coh", test_values=[0.0])
    assert set(te.conditions["coh"]) == {0.0} and 0.0 not in set(tr.conditions["coh"])
    tr, te = d.split("conditions", column=["coh", "ctx"], test_fraction=0.34, seed=2)
    train_keys = set(zip(tr.conditions["coh"], tr.conditions["ctx"]))
    test_keys = set(zip(te.conditions["coh"], te.conditions["ctx"]))
    assert train_keys.isdisjoint(test_keys) and len(test_keys) == 2
    assert d.split("conditions", column="coh", seed=5)[1].meta["split"]["test_values"] == \
        d.split("conditions", column="coh", seed=5)[1].meta["split"]["test_values"]
    with pytest.raises(DataError, match="nope"):
        d.split("conditions", column="nope")


def test_split_neurons():
    d = make_data()
    tr, te = d.split("neurons", test_fraction=0.3, seed=0)
    assert tr.n_neurons + te.n_neurons == 10 and te.n_neurons == 3
    assert set(tr.neuron_ids).isdisjoint(te.neuron_ids)
    assert tr.n_trials == te.n_trials == d.n_trials


def test_condition_average():
    d = make_data()
    avg = d.condition_average("coh")
    assert avg.n_trials == 3 and list(avg.conditions["n_trials"]) == [4, 4, 4]
    np.testing.assert_allclose(avg.activity[0], d.activity[:4].mean(0), rtol=1e-5)
    both = d.condition_average(["coh", "ctx"])
    assert both.n_trials == 6 and {"coh", "ctx"} <= set(both.conditions.columns)


def test_condition_average_respects_mask():
    a = np.stack([np.ones((3, 1)), 3 * np.ones((3, 1))])
    m = np.array([[True, True, False], [True, True, True]])
    d = TrialData(activity=a, mask=m, conditions=pd.DataFrame({"c": [0, 0]}))
    avg = d.condition_average("c")
    np.testing.assert_allclose(avg.activity[0, :, 0], [2, 2, 3])


def test_normalise_methods_and_reference():
    d = make_data()
    tr, te = d.split("trials", seed=0)
    z = tr.normalise("zscore")
    x = z.activity.reshape(-1, z.n_neurons)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(x.std(0), 1, atol=1e-4)
    g = tr.normalise("centre_global")
    x = g.activity.reshape(-1, g.n_neurons)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-4)
    assert np.sqrt((x ** 2).mean()) == pytest.approx(1.0, rel=1e-4)
    assert x[:, 0].std() > 3 * x[:, 1].std()  # relative sizes kept
    soft = tr.normalise("soft", soft_const=5.0)
    rng_ = tr.activity.reshape(-1, 10).max(0) - tr.activity.reshape(-1, 10).min(0)
    np.testing.assert_allclose(soft.activity[0, 0], tr.activity[0, 0] / (rng_ + 5), rtol=1e-5)
    assert np.allclose(tr.normalise("centre").activity.reshape(-1, 10).mean(0), 0, atol=1e-3)
    # test set normalised with training statistics
    params = fit_normalisation(tr, "centre_global")
    t1, t2 = te.normalise("centre_global", reference=tr), params.apply(te)
    np.testing.assert_array_equal(t1.activity, t2.activity)
    np.testing.assert_allclose(params.invert(t1.activity), te.activity, rtol=1e-4, atol=1e-3)
    with pytest.raises(DataError, match="same neurons"):
        te.normalise("zscore", reference=tr.subsample_neurons(3))
    with pytest.raises(DataError, match="unknown normalisation"):
        d.normalise("minmax")


def test_remove_condition_independent_and_pca():
    d = make_data()
    r = d.remove_condition_independent()
    np.testing.assert_allclose(r.activity.mean(0), 0, atol=1e-3)
    tr, te = d.split("trials", seed=0)
    p = te.denoise_pca(3, reference=tr)
    assert p.activity.shape == te.activity.shape
    centred = p.activity.reshape(-1, 10) - tr.activity.reshape(-1, 10).mean(0)
    assert np.linalg.matrix_rank(centred, tol=1e-2) == 3
    full = d.denoise_pca(10)
    np.testing.assert_allclose(full.activity, d.activity, rtol=1e-4, atol=1e-3)
    with pytest.raises(DataError):
        d.denoise_pca(11)


def test_rebin_and_torch():
    d = make_data(T=21)
    r = d.rebin(2)
    assert r.n_time == 10 and r.dt == pytest.approx(0.04)
    np.testing.assert_allclose(r.activity[:, 0], d.activity[:, :2].mean(1), rtol=1e-6)
    np.testing.assert_allclose(r.time[0], d.time[:2].mean())
    counts = TrialData(activity=np.ones((1, 4, 1)), meta={"units": "counts"}).rebin(2)
    np.testing.assert_array_equal(counts.activity[0, :, 0], [2, 2])
    t = d.to_torch()
    assert tuple(t.activity.shape) == (12, 21, 10) and str(t.mask.dtype) == "torch.bool"
    assert set(t.as_dict()) == {"activity", "inputs", "mask", "time"}


def test_kfold_conditions_hold_each_condition_out_once_without_leak():
    d = make_data(K=24)
    pairs = d.kfold(3, column="coh", seed=4)
    held = [v for _, test in pairs for v in sorted(set(test.conditions["coh"]))]
    assert sorted(held) == [-1.0, 0.0, 1.0]
    for train, test in pairs:
        assert not set(train.conditions["coh"]) & set(test.conditions["coh"])
        assert not _trial_keys(train) & _trial_keys(test)
        assert train.n_trials + test.n_trials == d.n_trials
    again = d.kfold(3, column="coh", seed=4)
    assert [t.meta["split"]["trial_indices"] for _, t in pairs] == [t.meta["split"]["trial_indices"] for _, t in again]
    with pytest.raises(DataError, match="at most 3 folds"):
        d.kfold(4, column="coh")
    with pytest.raises(DataError, match="folds"):
        d.kfold(1, column="coh")


def test_kfold_trials_cover_every_trial_once_and_stratify():
    d = make_data(K=24)
    pairs = d.kfold(4, by="trials", stratify="coh", seed=1)
    tested = np.concatenate([t.meta["split"]["trial_indices"] for _, t in pairs])
    assert sorted(tested.tolist()) == list(range(d.n_trials))
    for train, test in pairs:
        assert not _trial_keys(train) & _trial_keys(test)
        assert set(train.conditions["coh"]) == set(test.conditions["coh"]) == {-1.0, 0.0, 1.0}


def test_lead_in_zero_is_identity_and_inputs_follow_the_spec():
    d = make_data(K=6, T=5, C=0)
    assert d.with_lead_in(0.0) is d
    spec = [{"name": "cue", "column": "coh"}, {"name": "go", "start": -0.05}]
    from data_adapters import build_inputs

    u, names = build_inputs(spec, d.conditions, d.time, d.dt)
    d = d.replace(inputs=u, input_names=names)
    led = d.with_lead_in(0.1, inputs=spec)
    assert led.n_time == d.n_time + 5 and led.meta["lead_in"] == {"seconds": pytest.approx(0.1), "bins": 5}
    assert not led.mask[:, :5].any() and led.mask[:, 5:].all()
    np.testing.assert_allclose(led.time[5:], d.time)
    np.testing.assert_allclose(np.diff(led.time), d.dt)
    np.testing.assert_array_equal(led.activity[:, 5:], d.activity)
    np.testing.assert_allclose(led.inputs[:, 5:], d.inputs)
    np.testing.assert_allclose(led.inputs[:, :5, 0], np.repeat(d.conditions["coh"].to_numpy()[:, None], 5, 1))
    assert not led.inputs[:, :5, 1].any()  # the go channel starts inside the window
    with pytest.raises(DataError, match="lead_in"):
        d.with_lead_in(-1.0)
    with pytest.raises(DataError, match="already have a lead-in"):
        led.with_lead_in(0.1)
