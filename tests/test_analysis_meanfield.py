"""Mean-field reduction of Gaussian-mixture networks against a sampled 5000-unit network."""

import json

import numpy as np
import pytest
import torch

from lrfit.analysis import (
    effective_overlaps,
    latent_flow,
    latent_trajectories,
    meanfield_flow,
    meanfield_trajectory,
    sample_network,
)
from lrfit.analysis.connectivity import loading_columns
from lrfit.analysis.populations import MixtureStats


def _mixture(zero_mean: bool = False) -> MixtureStats:
    """Two populations over (m1, m2, n1, n2, w, o) with cross-population structure."""
    la = np.zeros((6, 6))
    la[0, 0] = la[1, 1] = la[4, 4] = la[5, 5] = 1.0
    la[2, 0], la[2, 2], la[3, 1], la[3, 3], la[2, 4] = 2.2, 0.5, 1.6, 0.5, 0.8
    lb = np.zeros((6, 6))
    lb[0, 0], lb[1, 1], lb[4, 4], lb[5, 5] = 1.5, 0.7, 0.5, 1.0
    lb[2, 1], lb[2, 2], lb[3, 0], lb[3, 3], lb[3, 4] = -1.0, 0.5, 1.2, 0.5, -0.5
    means = np.zeros((2, 6))
    if not zero_mean:
        means[1] = [0.3, 0.0, 0.2, -0.1, 0.5, 0.0]
    return MixtureStats(
        np.array([0.6, 0.4]), means, np.stack([la @ la.T, lb @ lb.T]), 2, 1, 1, tuple(loading_columns(2, 1, 1))
    )


@pytest.fixture(scope="module")
def sampled():
    st = _mixture()
    return st, sample_network(st, 5000, seed=3, dt=0.02, tau=0.1)


def test_zero_mean_flow_is_the_effective_overlap_formula():
    st = _mixture(zero_mean=True)
    k, v = np.array([0.7, -0.4]), np.array([0.5])
    eff = effective_overlaps(st, k, v)
    np.testing.assert_allclose(eff.mean_term, 0.0, atol=1e-12)
    np.testing.assert_allclose(meanfield_flow(st, k, v), -k + eff.sigma_nm @ k + eff.sigma_nw @ v, rtol=1e-10)
    # Delta_p = kappa^T Sigma_mm kappa + 2 kappa^T Sigma_mw v + v^T Sigma_ww v
    c = st.covariances[0]
    z = np.r_[k, v]
    idx = [0, 1, 4]
    assert eff.variance[0] == pytest.approx(z @ c[np.ix_(idx, idx)] @ z)
    # <phi'> at the origin is 1 for tanh, so sigma~ = sum_p alpha_p Sigma^p_nm
    eff0 = effective_overlaps(st, [0.0, 0.0])
    np.testing.assert_allclose(eff0.sigma_nm, np.einsum("p,pkl->kl", st.weights, st.covariances[:, 2:4, 0:2]))
    json.dumps(eff.to_json_dict())


def test_meanfield_flow_matches_sampled_network(sampled):
    st, net = sampled
    rng = np.random.default_rng(0)
    kap = rng.uniform(-2, 2, (60, 2))
    u = np.array([0.5])
    f_net, f_mf = latent_flow(net, kap, u), meanfield_flow(st, kap, u)
    assert np.linalg.norm(f_net - f_mf) / np.linalg.norm(f_mf) < 0.04


def test_meanfield_matches_simulation_of_sampled_network(sampled):
    st, net = sampled
    steps, u = 150, np.array([0.5])
    m, w = net.m.detach().double().numpy(), net.w_in.detach().double().numpy()
    for k0 in (np.array([2.0, -1.5]), np.array([-2.0, 1.0])):
        x0 = torch.tensor(m @ k0 + w @ u, dtype=torch.float32)
        traj = net(torch.full((1, steps, 1), 0.5), x0=x0, noise_std=0.0)
        kap = latent_trajectories(net, traj).kappa_m[0]
        # velocity of the simulated latents against the mean-field flow at the same states,
        # along the transient (finite-size error is O(1/sqrt(N)) in absolute terms)
        vel = np.diff(np.vstack([k0, kap]), axis=0) / net.alpha
        f_mf = meanfield_flow(st, np.vstack([k0, kap[:-1]]), u)
        assert np.linalg.norm(vel[:30] - f_mf[:30]) / np.linalg.norm(f_mf[:30]) < 0.05
        # the integrated mean-field trajectory stays close to the simulated one
        k_mf, v_mf = meanfield_trajectory(st, np.full((steps, 1), 0.5), k0, v0=u, alpha=net.alpha)
        np.testing.assert_allclose(v_mf, 0.5)
        assert np.abs(k_mf - kap).max() / np.abs(k_mf).max() < 0.05


def test_sign_folded_mixture_has_the_mean_field_of_its_mirror_images():
    """A symmetric (sign-folded) population stands for N(mu, S) and N(-mu, S) at half weight each;
    for an odd phi the mirror image contributes the same drive, so the reduction needs no unfolding."""
    st = _mixture()
    folded = MixtureStats(
        st.weights, st.means, st.covariances, st.rank, st.n_inputs, st.n_outputs, st.columns, symmetric=True
    )
    mirrored = MixtureStats(
        np.concatenate([st.weights, st.weights]) / 2,
        np.concatenate([st.means, -st.means]),
        np.concatenate([st.covariances, st.covariances]),
        st.rank,
        st.n_inputs,
        st.n_outputs,
        st.columns,
    )
    kappa = np.random.default_rng(0).normal(0, 1.5, (7, 2))
    v = np.array([0.7])
    np.testing.assert_allclose(meanfield_flow(folded, kappa, v), meanfield_flow(mirrored, kappa, v), atol=1e-10)
    assert not np.allclose(meanfield_flow(st, kappa, -v), meanfield_flow(st, kappa, v))  # the input's sign does matter
