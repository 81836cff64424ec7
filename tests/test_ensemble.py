"""Batched ensembles: the batched rollout's gradients and each member against its single fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import planted_data

from lrfit import LowRankFit
from lrfit.errors import LrfitError
from lrfit.fitting.ensemble import LowRankEnsembleFit
from lrfit.models.ensemble_rollout import ensemble_rollout
from lrfit.models.rollout import rollout


def test_batched_rollout_matches_each_member_with_gradients():
    gen = torch.Generator().manual_seed(0)
    k, b, t, n, r = 3, 4, 7, 16, 2
    m = torch.randn(k, n, r, generator=gen)
    nn_ = torch.randn(k, n, r, generator=gen)
    m[0, :, 1] = nn_[0, :, 1] = 0.0  # member 0 has rank 1 (a zero-padded column)
    x0 = 0.3 * torch.randn(k, b, n, generator=gen)
    drive = 0.1 * torch.randn(t, k, b, n, generator=gen)
    weights = torch.randn(t, k, b, n, generator=gen)
    leaves = [v.clone().requires_grad_(True) for v in (x0, drive, m, nn_)]
    states, rates = ensemble_rollout(leaves[0], leaves[1], 0.2, "tanh", leaves[2], leaves[3], float(n))
    ((rates * weights).sum() + 0.5 * states.square().sum()).backward()
    for i in range(k):
        single = [v[i].clone().requires_grad_(True) for v in (x0, m, nn_)]
        d = drive[:, i].clone().requires_grad_(True)
        s, rr = rollout(single[0], d, "lowrank", 0.2, "tanh", single[1], single[2], float(n))
        ((rr * weights[:, i].transpose(0, 1)).sum() + 0.5 * s.square().sum()).backward()
        torch.testing.assert_close(rates[:, i], rr.transpose(0, 1), atol=1e-6, rtol=1e-5)
        for ens_leaf, one in zip((leaves[0], leaves[2], leaves[3]), single):
            torch.testing.assert_close(ens_leaf.grad[i], one.grad, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(leaves[1].grad[:, i], d.grad, atol=1e-5, rtol=1e-4)
    assert torch.all(leaves[2].grad[0, :, 1] == 0) and torch.all(leaves[3].grad[0, :, 1] == 0)


SETTINGS = dict(max_epochs=4, batch_size=16, lr=3e-3, patience=2, progress=False, hidden_units=2)
SEEDS, RANKS = [0, 1, 2], [1, 2, 2]


@pytest.fixture(scope="module")
def single_fits():
    """The planted data and the single fits every ensemble member must reproduce."""
    train = planted_data(n_trials=32, n_units=16)
    return train, [LowRankFit(rank=r, random_state=s, **SETTINGS).fit(train) for s, r in zip(SEEDS, RANKS)]


@pytest.mark.parametrize("batched, group_bytes", [(True, None), (False, None), (False, 1)])
def test_each_member_equals_its_single_fit(single_fits, batched, group_bytes, monkeypatch):
    """Batched rollout, all members in one latent kernel, and one member per kernel (group_bytes=1)."""
    if group_bytes is not None:
        monkeypatch.setattr("lrfit.fitting.ensemble._GROUP_BYTES", group_bytes)
    train, singles = single_fits
    ensemble = LowRankEnsembleFit(LowRankFit(**SETTINGS), seeds=SEEDS, ranks=RANKS, batched=batched).fit(train)
    assert len(ensemble.fits_) == 3
    for member, single, rank in zip(ensemble.fits_, singles, RANKS):
        assert member.rank == rank and member.epochs_ == single.epochs_ and member.best_epoch_ == single.best_epoch_
        np.testing.assert_allclose([h["train_loss"] for h in member.history_],
                                   [h["train_loss"] for h in single.history_], rtol=1e-4)
        for name, value in single.model_.state_dict().items():
            np.testing.assert_allclose(member.model_.state_dict()[name].numpy(), value.numpy(), atol=2e-5,
                                       err_msg=name)
        assert abs(member.score(train) - single.score(train)) < 1e-5


def test_members_stop_at_convergence_as_their_single_fits():
    train = planted_data(n_trials=160, n_units=16)
    settings = dict(max_epochs=100, batch_size=8, lr=3e-3, progress=False)  # 20 steps per epoch: window 13
    singles = [LowRankFit(rank=1, random_state=s, **settings).fit(train) for s in (0, 1)]
    members = LowRankEnsembleFit(LowRankFit(**settings), seeds=[0, 1], ranks=1).fit(train).fits_
    for member, single in zip(members, singles):
        assert member.stopped_ == single.stopped_ == "converged"
        assert member.epochs_ == single.epochs_ < 100


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seeds=[0, 1], ranks=[1]), "one rank per seed"),
        (dict(seeds=[0], x0="per_condition"), "x0='shared'"),
    ],
)
def test_unsupported_ensembles_are_one_sentence(kwargs, match):
    with pytest.raises(LrfitError, match=match):
        estimator = LowRankFit(**{k: v for k, v in kwargs.items() if k not in ("seeds", "ranks")})
        LowRankEnsembleFit(estimator, seeds=kwargs["seeds"], ranks=kwargs.get("ranks")).fit(
            planted_data(n_trials=8, n_units=16))


def test_non_finite_ensemble_loss_is_one_sentence():
    with pytest.raises(LrfitError, match=r"became non-finite; the data scaling or the learning rate .* 'optim.lr'"):
        LowRankEnsembleFit(LowRankFit(lr=1e38, observation="currents", max_epochs=2, batch_size=8, progress=False),
                           seeds=[0, 1]).fit(planted_data(n_trials=16, n_time=10, n_units=16))
