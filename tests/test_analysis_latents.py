"""Latent trajectories: projections on span(M) and the input directions."""

import numpy as np
import pytest
import torch

from lrfit.analysis import latent_trajectories
from lrfit.analysis.latents import subspace_bases
from lrfit.errors import LrfitError
from lrfit.models import LowRankRNN


def _net(rank=2, n_inputs=1):
    net = LowRankRNN(80, rank=rank, n_inputs=n_inputs, n_outputs=1, seed=3, dt=0.02, tau=0.1)
    with torch.no_grad():
        net.n.mul_(2.0)
    return net


def test_noiseless_rank_r_without_input_is_reconstructed_exactly():
    net = _net(rank=2, n_inputs=1)
    x0 = (net.m @ torch.tensor([[1.0, -0.5], [0.3, 0.8], [-1.0, 0.2]]).T).T  # (3, N) in span(M)
    traj = net(torch.zeros(3, 50, 1), x0=x0, noise_std=0.0)
    lat = latent_trajectories(net, traj)
    x = traj.currents.detach().double().numpy()
    recon = lat.kappa @ lat.basis_rec.T
    np.testing.assert_allclose(recon, x, atol=1e-5)
    assert lat.var_recurrent == pytest.approx(1.0, abs=1e-6)
    assert lat.var_input == pytest.approx(0.0, abs=1e-6)
    # raw-basis coordinates reproduce x = m kappa_m
    np.testing.assert_allclose(lat.kappa_m @ net.m.detach().double().numpy().T, x, atol=1e-4)
    assert lat.kappa.shape == (3, 50, 2) and lat.v.shape == (3, 50, 1)


def test_input_driven_activity_splits_between_subspaces():
    net = _net(rank=1, n_inputs=2)
    u = torch.zeros(4, 60, 2)
    u[:, 10:40, 0] = 1.0
    u[:, 20:50, 1] = -0.5
    traj = net(u, x0=torch.zeros(net.n_units), noise_std=0.0)
    lat = latent_trajectories(net, traj.currents)
    assert lat.var_total_explained == pytest.approx(1.0, abs=1e-6)
    assert lat.var_input > 0.05 and lat.var_recurrent > 0.0
    qm, qi = subspace_bases(net.m.detach().double().numpy(), net.w_in.detach().double().numpy())
    np.testing.assert_allclose(qm.T @ qi, 0.0, atol=1e-10)
    np.testing.assert_allclose(qi.T @ qi, np.eye(2), atol=1e-10)


def test_noise_lowers_explained_variance_and_errors():
    net = _net()
    traj = net(torch.zeros(2, 40, 1), noise_std=0.5, generator=0)
    lat = latent_trajectories(net, traj)
    assert 0.0 <= lat.var_total_explained < 0.9
    assert set(lat.arrays()) == {"kappa", "v", "kappa_m", "basis_rec", "basis_inp"}
    with pytest.raises(LrfitError, match="units"):
        latent_trajectories(net, np.zeros((2, 5, 7)))
