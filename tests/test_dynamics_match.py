"""The Computation-through-Dynamics metrics: State R² both ways, network states, fixed points, failure modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrfit import LowRankRNN
from lrfit.analysis import compare_states, failure_modes, gaussian_lowrank_rnn, network_state, pair_fixed_points
from lrfit.analysis.teacher_dynamics import (
    FixedPointAgreement,
    NetworkState,
    affine_r2,
    latent_step,
    leaky_inputs,
    rms_activity,
)
from lrfit.errors import LrfitError
from lrfit.models import FullRankRNN


def test_affine_r2_is_sklearns_variance_weighted_r2_of_a_linear_regression():
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = x @ rng.normal(size=(3, 2)) + rng.normal(size=(300, 2)) * np.array([0.1, 2.0]) + 5.0
    ours = affine_r2(x[:200], y[:200], x[200:], y[200:])
    ref = r2_score(y[200:], LinearRegression().fit(x[:200], y[:200]).predict(x[200:]), multioutput="variance_weighted")
    assert ours == pytest.approx(ref, abs=1e-12)
    # (trials, time, D) arrays with a mask: only the valid bins count
    x3, y3 = x.reshape(30, 10, 3), y.reshape(30, 10, 2)
    mask = np.ones((30, 10), bool)
    mask[:, -2:] = False
    y3 = y3.copy()
    y3[:, -2:] = 1e6  # garbage in masked bins changes nothing
    flat = affine_r2(x3[:20][mask[:20]], y3[:20][mask[:20]], x3[20:][mask[20:]], y3[20:][mask[20:]])
    assert affine_r2(x3[:20], y3[:20], x3[20:], y3[20:], mask[:20], mask[20:]) == pytest.approx(flat)
    with pytest.raises(LrfitError, match="disagree in samples"):
        affine_r2(x[:10], y[:9], x[10:], y[10:])


def test_network_state_splits_the_currents_exactly():
    """x = M kappa + W_in v + (1 - alpha)^t x0 for a low-rank network; v are the leaky-integrated inputs."""
    net = LowRankRNN(60, rank=2, n_inputs=2, seed=1, noise_std=0.0, train_x0=True)
    with torch.no_grad():
        net.x0.normal_()
    u = np.random.default_rng(2).normal(size=(5, 30, 2)).astype(np.float32)
    traj = net(torch.from_numpy(u), noise_std=0.0)
    state = network_state(net, traj.currents, u)
    assert state.recurrent.shape == (5, 30, 2) and state.inputs.shape == (5, 30, 2)
    decay = (1 - net.alpha) ** np.arange(1, 31)
    rebuilt = (state.recurrent @ net.m.detach().double().numpy().T + state.inputs @ net.w_in.detach().double().numpy().T
               + decay[None, :, None] * net.x0.detach().double().numpy())
    np.testing.assert_allclose(rebuilt, traj.currents.detach().double().numpy(), atol=1e-4)
    np.testing.assert_allclose(leaky_inputs(u, net.alpha)[:, 0], net.alpha * u[:, 0], rtol=1e-6)
    assert state.dims == {"recurrent": 2, "inputs": 2} and "columns of M" in state.definition
    # the latent step (ayna's dynamics callable) advances the state as the network does, once x0 has decayed
    net0 = LowRankRNN(60, rank=2, n_inputs=2, seed=1, noise_std=0.0)
    zero = network_state(net0, net0(torch.from_numpy(u), noise_std=0.0).currents, u)
    z = zero.full
    np.testing.assert_allclose(latent_step(net0)(z[:, 10], u[:, 11]), z[:, 11], atol=1e-5)


def test_full_rank_state_keeps_the_components_of_99_percent():
    net = FullRankRNN(40, n_inputs=1, rho=1.5, seed=0, noise_std=0.0)
    u = np.random.default_rng(0).normal(size=(20, 25, 1)).astype(np.float32)
    state = network_state(net, net(torch.from_numpy(u), noise_std=0.0).currents, u, fit_trials=np.arange(15))
    assert 1 <= state.recurrent.shape[-1] < 40 and state.variance_kept >= 0.99
    assert "principal components" in state.definition
    # a full state predicts itself
    assert compare_states(state, state, np.arange(15)).state_r2 == pytest.approx(1.0)


def test_state_r2_flags_invented_and_missed_latents():
    rng = np.random.default_rng(3)
    kappa = np.cumsum(rng.normal(size=(40, 50, 2)), axis=1)
    v = rng.normal(size=(40, 50, 1)) * 0.1
    teacher = NetworkState(kappa, v, "teacher")
    same = NetworkState(kappa @ np.array([[1.0, 0.3], [-0.5, 2.0]]) + 1.0, v, "mixed")
    invented = NetworkState(np.concatenate([kappa, np.cumsum(rng.normal(size=(40, 50, 1)), 1)], -1), v, "extra")
    missed = NetworkState(kappa[..., :1], v, "one")
    train = np.arange(40) < 32
    good = compare_states(teacher, same, train)
    assert good.state_r2 > 0.999 and good.cycle_consistency > 0.999
    inv = compare_states(teacher, invented, train)
    assert inv.state_r2 < 0.9 and inv.cycle_consistency > 0.999
    mis = compare_states(teacher, missed, train)
    assert mis.state_r2 > 0.999 and mis.cycle_consistency < 0.9
    assert mis.n_train_trials == 32 and mis.n_test_trials == 8
    assert failure_modes(1.0, inv)[0] == ["feature invention"]
    modes, line = failure_modes(0.95, mis)
    assert modes == ["underfitting"] and "cycle consistency" in line
    with pytest.raises(LrfitError, match="neither empty nor every trial"):
        compare_states(teacher, same, np.ones(40, bool))


def test_fixed_points_are_paired_in_activity_space():
    bistable = gaussian_lowrank_rnn(300, [[2.0]], seed=0)
    monostable = gaussian_lowrank_rnn(300, [[0.5]], seed=0)
    ids = np.arange(300)
    scale = 1.0
    same = pair_fixed_points(bistable, bistable, ids, scale)
    assert isinstance(same, FixedPointAgreement)
    assert same.counts_teacher == same.counts_student and same.agrees and same.stable_matched == 2
    assert all(p["matched"] and p["distance"] < 1e-6 for p in same.pairs)
    lost = pair_fixed_points(bistable, monostable, ids, scale)
    assert not lost.agrees and lost.missing["stable"] == 2 and lost.spurious["stable"] == 1
    assert "0 of 2 stable teacher points matched" in lost.summary()
    modes, line = failure_modes(0.99, None, lost)
    assert modes == [] or "fixed points" in line  # without states, a landscape alone names no mode
    # a student fitted to half of the units: its unit i stands for teacher unit ids[i]
    half = gaussian_lowrank_rnn(150, [[2.0]], seed=0)
    part = pair_fixed_points(bistable, half, np.arange(0, 300, 2), scale)
    assert part.counts_student["stable"] == 2
    with pytest.raises(LrfitError, match="neuron ids"):
        pair_fixed_points(bistable, half, np.arange(290, 310), scale)


def test_misattribution_is_read_from_the_landscape_when_the_states_agree():
    rng = np.random.default_rng(0)
    kappa = rng.normal(size=(10, 20, 1))
    state = compare_states(NetworkState(kappa, kappa * 0, "t"), NetworkState(kappa, kappa * 0, "s"), np.arange(8))
    lost = pair_fixed_points(gaussian_lowrank_rnn(200, [[2.0]], seed=0), gaussian_lowrank_rnn(200, [[0.5]], seed=0),
                                np.arange(200), 1.0)
    modes, line = failure_modes(0.99, state, lost)
    assert modes == ["dynamical misattribution"] and "states agree" in line
    assert failure_modes(0.99, state, None, input_r2=0.2)[0] == ["dynamical misattribution"]
    assert rms_activity(np.ones((2, 3, 4)) * 2) == pytest.approx(2.0)
