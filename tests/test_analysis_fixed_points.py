"""Fixed points, slow points and flow fields: analytic checks on Gaussian low-rank networks."""

import json

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from lrfit.analysis import find_fixed_points, flow_field, gaussian_lowrank_rnn, latent_flow, radial_scan
from lrfit.analysis.fixed_points import latent_jacobian, stability_label
from lrfit.models import LowRankRNN


def _self_consistent_kappa(sigma: float) -> float:
    """Independent solution of kappa = <n phi(m kappa)> = sigma kappa <1 - tanh^2(kappa z)>, z ~ N(0,1)."""
    z, w = np.polynomial.hermite.hermgauss(100)  # physicists' rule: E f(Z) = sum w f(sqrt2 x) / sqrt(pi)
    gain = lambda k: np.sum(w * (1 - np.tanh(k * np.sqrt(2) * z) ** 2)) / np.sqrt(np.pi)  # noqa: E731
    return brentq(lambda k: sigma * gain(k) - 1.0, 1e-6, 10.0)


def test_rank1_bistable_network_matches_mean_field():
    net = gaussian_lowrank_rnn(4000, [[2.0]], seed=1)
    res = find_fixed_points(net)
    assert len(res.fixed_points) == 3
    assert res.counts() == {"stable": 2, "saddle": 0, "source": 1, "marginal": 0}
    origin = res.fixed_points[0]
    assert np.allclose(origin.kappa, 0.0) and origin.stability == "source"
    assert origin.eigenvalues[0].real == pytest.approx(1.0, abs=1e-6)  # -1 + sigma <phi'(0)> = 1
    stable = np.sort(res.kappas("stable")[:, 0])
    k_star = _self_consistent_kappa(2.0)
    assert stable[1] == pytest.approx(-stable[0], rel=1e-6)
    assert stable[1] == pytest.approx(k_star, rel=0.03)
    for fp in res.fixed_points:
        assert np.linalg.norm(latent_flow(net, fp.kappa)) < 1e-8
    json.dumps(res.to_json_dict())


def test_rank1_subcritical_network_has_only_the_origin():
    res = find_fixed_points(gaussian_lowrank_rnn(4000, [[0.8]], seed=2))
    assert len(res.fixed_points) == 1
    fp = res.fixed_points[0]
    assert np.allclose(fp.kappa, 0.0) and fp.stability == "stable"
    assert fp.eigenvalues[0].real == pytest.approx(-0.2, abs=1e-6)


def test_rank2_isotropic_overlaps_give_a_ring_of_slow_points():
    net = gaussian_lowrank_rnn(3000, np.diag([2.0, 2.0]), seed=1)
    k_star = _self_consistent_kappa(2.0)  # radius of the mean-field ring
    scan = radial_scan(net, n_angles=48)
    assert np.all(np.isfinite(scan.radius))
    np.testing.assert_allclose(scan.radius, k_star, rtol=0.05)
    # slow along the whole ring: speed much smaller than the flow scale (~ k_star)
    assert np.max(scan.speed) < 0.03 * k_star
    res = find_fixed_points(net)
    pts = np.array([fp.kappa for fp in res.fixed_points + res.slow_points if np.linalg.norm(fp.kappa) > 0.1])
    assert len(pts) >= 4
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), k_star, rtol=0.05)
    angles = np.angle(pts[:, 0] + 1j * pts[:, 1])
    assert np.ptp(np.cos(angles)) > 1.0  # points spread around the ring
    assert res.fixed_points[0].stability == "source"


def test_rank2_rotational_overlaps_give_a_limit_cycle():
    net = gaussian_lowrank_rnn(3000, np.array([[2.5, -1.0], [1.0, 2.0]]), seed=1)
    res = find_fixed_points(net)
    assert res.counts()["stable"] == 0
    assert len(res.fixed_points) == 1 and res.fixed_points[0].stability == "source"
    assert np.all(np.abs(res.fixed_points[0].eigenvalues.imag) > 0.5)  # unstable spiral
    scan = radial_scan(net, n_angles=48)
    assert np.all(scan.tangential > 0.2)  # rotating flow, one direction everywhere
    # simulation: the latent state keeps turning with a steady amplitude
    m = net.m.detach()
    x0 = m @ torch.tensor([0.1, 0.0])
    traj = net(torch.zeros(1, 1500, 0), x0=x0, noise_std=0.0)
    kappa = np.linalg.lstsq(m.double().numpy(), traj.currents[0].detach().double().numpy().T, rcond=None)[0].T
    phase = np.unwrap(np.angle(kappa[:, 0] + 1j * kappa[:, 1]))
    assert phase[-1] - phase[0] > 4 * np.pi
    late = np.linalg.norm(kappa[750:], axis=1)
    assert late.min() > 0.8 and late.max() / late.min() < 1.6


def test_jacobian_matches_finite_differences_and_input_shifts_points():
    net = LowRankRNN(200, rank=2, n_inputs=1, seed=4)
    with torch.no_grad():
        net.n.mul_(1.5)
    k = np.array([0.3, -0.7])
    u = np.array([0.4])
    jac = latent_jacobian(net, k, u)
    eps = 1e-6
    fd = np.stack(
        [(latent_flow(net, k + eps * e, u) - latent_flow(net, k - eps * e, u)) / (2 * eps) for e in np.eye(2)], 1
    )
    np.testing.assert_allclose(jac, fd, atol=1e-6)
    res = find_fixed_points(net, u=u)
    assert len(res.fixed_points) >= 1
    for fp in res.fixed_points:
        assert np.linalg.norm(latent_flow(net, fp.kappa, u)) < 1e-8
    # a fixed point of the reduced flow is a fixed point of the full network
    kap = torch.tensor(res.fixed_points[0].kappa, dtype=torch.float32)
    x_star = net.m.detach() @ kap + net.w_in.detach() @ torch.tensor(u, dtype=torch.float32)
    traj = net(torch.full((1, 20, 1), 0.4), x0=x_star, noise_std=0.0)
    np.testing.assert_allclose(traj.currents[0, -1].detach().numpy(), x_star.numpy(), atol=1e-4)


def test_stability_labels():
    assert stability_label(np.array([-1.0, -0.1])) == "stable"
    assert stability_label(np.array([1.0, -0.1])) == "saddle"
    assert stability_label(np.array([1.0 + 1j, 1.0 - 1j])) == "source"
    assert stability_label(np.array([0.0, -1.0])) == "marginal"


def test_flow_fields_rank1_rank2_rank3():
    ff = flow_field(gaussian_lowrank_rnn(500, [[2.0]], seed=0), n_grid=101)
    assert ff.flow.shape == (101,) and ff.potential is not None
    # potential of a bistable system: double well, minimum away from the origin
    assert ff.potential[np.argmin(np.abs(ff.axes[0]))] == pytest.approx(0.0)
    assert ff.potential.min() < -1e-3
    ff2 = flow_field(gaussian_lowrank_rnn(500, np.diag([2.0, 1.0]), seed=0), n_grid=11)
    assert ff2.flow.shape == (2, 11, 11) and ff2.speed.shape == (11, 11)
    ff3 = flow_field(LowRankRNN(100, rank=3, seed=0), n_grid=9, lims=2.0)
    assert ff3.flow.shape == (2, 9, 9) and ff3.plane.shape == (3, 2)


@pytest.mark.slow
def test_student_fixed_points_match_its_dms_teacher(tmp_path):
    """A rank-2 student fitted to a rank-2 DMS teacher's activity has the teacher's fixed points.

    Without input, both have the same number of stable points, saddles and sources, and
    each teacher point has a student point of the same type at the same place.  The latent
    bases differ (each network's own m), so points are compared in activity space,
    x* = m kappa*, where unit i of the student is unit i of the teacher.
    """
    from scipy.optimize import linear_sum_assignment

    from lrfit import LowRankFit
    from lrfit.teachers import load_teacher, simulate_teacher, train_teacher

    out = tmp_path / "teacher"
    result = train_teacher("dms", n_units=128, rank=2, seed=0, max_epochs=100, target_accuracy=0.95, out=out,
                           progress=False)
    assert result.accuracy >= 0.9
    teacher, _ = load_teacher(out)
    fit = LowRankFit(rank=2, init="regression", max_epochs=20, random_state=0, progress=False)
    fit.fit(simulate_teacher(out, 400, seed=1))
    assert fit.score(simulate_teacher(out, 100, seed=2)) > 0.99

    points = {}
    for name, model in (("teacher", teacher), ("student", fit.model_)):
        found = find_fixed_points(model)
        x = found.kappas() @ model.m.detach().numpy().T / np.sqrt(model.n_units)  # rms activity per unit
        points[name] = (found.counts(), x, [fp.stability for fp in found.fixed_points])
    counts_t, x_t, labels_t = points["teacher"]
    counts_s, x_s, labels_s = points["student"]
    assert counts_t == counts_s
    assert counts_t["stable"] >= 2  # the memory states of the task
    distance = np.linalg.norm(x_t[:, None, :] - x_s[None, :, :], axis=-1)
    rows, cols = linear_sum_assignment(distance)
    assert [labels_t[i] for i in rows] == [labels_s[j] for j in cols]
    scale = max(np.linalg.norm(x_t, axis=1).max(), 1e-9)
    assert distance[rows, cols].max() < 0.1 * scale
