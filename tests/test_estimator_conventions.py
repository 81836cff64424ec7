"""LowRankFit and LowRankEnsembleFit follow scikit-learn's estimator conventions.

clone / get_params / set_params, NotFittedError before fit, seeding through private
generators (same seed -> same network, the global torch RNG untouched), and the fit
config's model/optim/seed/device keys derived from the estimator's own defaults.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sklearn.base
import sklearn.exceptions
import torch
from conftest import planted_data

from lrfit import LowRankEnsembleFit, LowRankFit, LrfitError, NotFittedError
from lrfit.fitting.starts import AUTO_LR
from lrfit.runs.config import DEFAULTS, load_config
from lrfit.runs.config_params import CONFIG_KEYS, COUNTS_FROM_KEY, params_from_config
from lrfit.runs.fit import make_fit


def tiny_data():
    return planted_data(n_trials=16, n_time=12, n_units=12)


def test_clone_gives_equal_params():
    fit = LowRankFit(rank=2)
    copy = sklearn.base.clone(fit)
    assert copy is not fit and copy.get_params() == fit.get_params()
    assert copy.get_params()["rank"] == 2


def test_get_set_params_round_trip():
    fit = LowRankFit(rank=2, lr=1e-2, condition_columns=["stim"])
    params = fit.get_params()
    other = LowRankFit().set_params(**params)
    assert other.get_params() == params
    assert fit.set_params(rank=3) is fit and fit.rank == 3
    with pytest.raises(ValueError):
        fit.set_params(rnak=3)


def test_ensemble_is_a_clonable_estimator():
    ensemble = LowRankEnsembleFit(LowRankFit(max_epochs=5, batch_size=8), seeds=[0, 1], ranks=[1, 2])
    params = ensemble.get_params()
    assert params["seeds"] == [0, 1] and params["estimator__max_epochs"] == 5
    assert params["estimator__tau"] == LowRankFit().tau
    assert "checkpoint_dir" not in params and "random_state" not in params
    clone = sklearn.base.clone(ensemble)
    assert clone.get_params()["estimator"] is not ensemble.estimator
    assert {k: v for k, v in clone.get_params().items() if k != "estimator"} == {
        k: v for k, v in params.items() if k != "estimator"}
    with pytest.raises(TypeError, match="checkpoint_dir"):
        LowRankEnsembleFit(seeds=[0], checkpoint_dir="x")


@pytest.mark.parametrize("call", ["predict", "score", "latents", "simulate", "evaluate", "save"])
def test_not_fitted_error_before_fit(call, tmp_path):
    fit = LowRankFit()
    arg = tmp_path if call == "save" else tiny_data()
    with pytest.raises(NotFittedError, match="not fitted yet") as info:
        getattr(fit, call)(arg)
    assert isinstance(info.value, LrfitError)
    assert isinstance(info.value, sklearn.exceptions.NotFittedError)


def test_same_seed_same_network_and_global_rng_untouched():
    data = tiny_data()
    settings = dict(rank=1, hidden_units=2, max_epochs=3, batch_size=8, progress=False, random_state=4)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = LowRankFit(**settings).fit(data)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = LowRankFit(**settings).fit(data)
    for name, value in first.model_.state_dict().items():
        assert torch.equal(value, second.model_.state_dict()[name]), name
    ensemble = LowRankEnsembleFit(LowRankFit(**settings), seeds=[4], ranks=1)
    ensemble.fit(data)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_config_defaults_come_from_the_estimator():
    signature = inspect.signature(LowRankFit.__init__).parameters
    for name, key in CONFIG_KEYS.items():
        node = DEFAULTS
        for part in key.split("."):
            node = node[part]
        assert node == signature[name].default, key
    keys = {*CONFIG_KEYS.values(), COUNTS_FROM_KEY}  # every model/optim key sets an estimator parameter
    assert {f"model.{k}" for k in DEFAULTS["model"]} - {"model.inputs"} <= keys
    assert {f"optim.{k}" for k in DEFAULTS["optim"]} <= keys


def test_make_fit_reads_every_config_key(tmp_path):
    config = load_config(extra={"data": {"path": "x.h5"}, "model": {"rank": [1, 2], "tau": 0.2, "x0": "per_condition"},
                                "optim": {"lr": "1.0e-2", "batch_size": 8.0}, "seed": 7})
    fit = make_fit(config, rank=2, checkpoint_dir=tmp_path, progress=False)
    params = fit.get_params()
    expected = {**LowRankFit().get_params(), "rank": 2, "tau": 0.2, "x0": "per_condition", "lr": 0.01, "batch_size": 8,
                "random_state": 7, "checkpoint_dir": tmp_path, "progress": False}
    assert params == expected
    assert isinstance(params["batch_size"], int) and isinstance(params["lr"], float)
    with pytest.raises(LrfitError, match="optim.lr"):
        params_from_config({**config, "optim": {**config["optim"], "lr": "fast"}}, rank=1)


def test_auto_learning_rate_is_the_starts():
    """lr='auto' (the default) trains exactly as the start's rate given by hand; fits record the rate used."""
    data = tiny_data()
    assert LowRankFit().lr == "auto" and AUTO_LR["random"] > AUTO_LR["regression"]
    for init in ("regression", "random"):
        auto = LowRankFit(rank=1, init=init, max_epochs=3, tol=0, progress=False).fit(data)
        by_hand = LowRankFit(rank=1, init=init, max_epochs=3, tol=0, lr=AUTO_LR[init], progress=False).fit(data)
        assert auto.lr_ == by_hand.lr_ == AUTO_LR[init]
        assert [r["train_loss"] for r in auto.history_] == [r["train_loss"] for r in by_hand.history_]
    other = LowRankFit(rank=1, init="random", max_epochs=3, tol=0, lr=AUTO_LR["regression"], progress=False).fit(data)
    assert other.history_[-1]["train_loss"] != auto.history_[-1]["train_loss"]
    ensemble = LowRankEnsembleFit(LowRankFit(init="random", max_epochs=1, progress=False), seeds=[0, 1]).fit(data)
    assert [m.lr_ for m in ensemble.fits_] == [AUTO_LR["random"]] * 2
    assert params_from_config(DEFAULTS, rank=1)["lr"] == "auto"
    with pytest.raises(LrfitError, match=r"optim\.lr.*or 'auto'"):
        params_from_config({**DEFAULTS, "optim": {**DEFAULTS["optim"], "lr": "fast"}}, rank=1)
    with pytest.raises(LrfitError, match=r"lr .*or 'auto'"):
        LowRankFit(lr="fast").fit(data)


def test_validation_happens_in_fit_not_init():
    fit = LowRankFit(rank=0, observation="spikes")  # stored unchanged, as scikit-learn requires
    assert fit.rank == 0 and fit.observation == "spikes"
    with pytest.raises(LrfitError, match="observation"):
        fit.fit(tiny_data())
    ensemble = LowRankEnsembleFit(seeds=[0, 1], ranks=[1, 2, 3])
    assert ensemble.ranks == [1, 2, 3]
    with pytest.raises(LrfitError, match="one rank per seed"):
        ensemble.fit(tiny_data())
    assert np.isfinite(LowRankFit(max_epochs=1, progress=False).fit(tiny_data()).score(tiny_data()))
