"""Models: shapes, exact gradients of the fused rollout, low-rank = full-rank, seeds, save/load, SVD."""

from __future__ import annotations

import pytest
import torch

from lrfit import LrfitError
from lrfit.models import FullRankRNN, LowRankRNN, load_model, save_model, svd_normalized_factors
from lrfit.models.rollout import reference_rollout


def _inputs(trials=5, steps=20, channels=3, seed=0):
    return torch.randn(trials, steps, channels, generator=torch.Generator().manual_seed(seed))


def test_shapes_and_dtypes():
    net = LowRankRNN(40, rank=2, n_inputs=3, n_outputs=2)
    traj = net(_inputs())
    assert traj.currents.shape == (5, 20, 40) and traj.currents.dtype == torch.float32
    assert traj.rates.shape == (5, 20, 40)
    assert traj.outputs.shape == (5, 20, 2)
    assert torch.allclose(traj.rates, torch.tanh(traj.currents), atol=1e-6)
    assert LowRankRNN(40, rank=2, n_inputs=3)(_inputs()).outputs is None


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "softplus"])
@pytest.mark.parametrize("batched_x0", [False, True])
def test_fused_backward_matches_autograd(nonlinearity, batched_x0):
    torch.manual_seed(0)
    net = LowRankRNN(32, rank=2, n_inputs=3, n_outputs=1, nonlinearity=nonlinearity)
    u = _inputs()
    x0 = torch.randn(*((5, 32) if batched_x0 else (32,)))
    target = torch.randn(5, 20, 32)
    x0f = x0.clone().requires_grad_(True)
    traj = net(u, x0=x0f)
    loss = ((traj.rates - target) ** 2).sum() + traj.outputs.sum() + 0.1 * (traj.currents**2).sum()
    loss.backward()
    fused = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    net.zero_grad()

    x0r = x0.clone().requires_grad_(True)
    drive = net.input_drive(u) * net.alpha
    cur = reference_rollout(x0r, drive, lambda r: r @ net.connectivity().T, net.alpha, nonlinearity)
    rates = net.phi(cur)
    ref = ((rates - target) ** 2).sum() + (rates @ net.w_out / 32).sum() + 0.1 * (cur**2).sum()
    ref.backward()
    assert torch.allclose(traj.currents, cur, atol=1e-5)
    for name, p in net.named_parameters():
        if p.grad is not None:
            scale = p.grad.abs().max().clamp_min(1e-6)
            assert (fused[name] - p.grad).abs().max() / scale < 1e-4, name
    assert torch.allclose(x0f.grad, x0r.grad, atol=1e-4, rtol=1e-4)


def test_lowrank_equals_fullrank_with_same_J():
    low = LowRankRNN(100, rank=3, n_inputs=3, n_outputs=1, seed=1)
    full = FullRankRNN(100, n_inputs=3, n_outputs=1, seed=2)
    with torch.no_grad():
        full.j.copy_(low.connectivity())
        full.w_in.copy_(low.w_in)
        full.w_out.copy_(low.w_out)
    u = _inputs(channels=3)
    diff = (low(u).currents - full(u).currents).abs().max()
    assert diff < 1e-5


def test_fullrank_gradient_matches_autograd():
    net = FullRankRNN(24, n_inputs=2, rho=1.5)
    u = _inputs(channels=2)
    net(u).rates.pow(2).sum().backward()
    fused = net.j.grad.clone()
    j = net.j.detach().clone().requires_grad_(True)
    cur = reference_rollout(net.x0.detach(), (net.input_drive(u) * net.alpha).detach(), lambda r: r @ j.T, net.alpha)
    torch.tanh(cur).pow(2).sum().backward()
    assert torch.allclose(fused, j.grad, atol=1e-5, rtol=1e-4)


def test_seed_reproduces_parameters_and_noise():
    a = LowRankRNN(50, rank=1, n_inputs=2, noise_std=0.1, seed=7)
    b = LowRankRNN(50, rank=1, n_inputs=2, noise_std=0.1, seed=7)
    u = _inputs(channels=2)
    assert torch.equal(a(u, generator=3).currents, b(u, generator=3).currents)
    assert not torch.equal(a(u, generator=3).currents, a(u, generator=4).currents)
    assert not torch.equal(a.m, LowRankRNN(50, rank=1, n_inputs=2, seed=8).m)


def test_save_load_round_trip_is_bit_identical(tmp_path):
    for net in (
        LowRankRNN(30, rank=2, n_inputs=3, n_outputs=1, train_x0=True, seed=3),
        FullRankRNN(30, n_inputs=3, rho=0.1),
    ):
        save_model(net, tmp_path / net.kind, extra={"note": "x"})
        back = load_model(tmp_path / net.kind)
        assert type(back) is type(net) and back.config() == net.config()
        u = _inputs()
        assert torch.equal(net(u).currents, back(u).currents)


def test_load_rejects_missing_and_corrupt(tmp_path):
    with pytest.raises(LrfitError, match="model.json"):
        load_model(tmp_path)
    net = LowRankRNN(10, rank=1)
    save_model(net, tmp_path)
    (tmp_path / "model.pt").write_bytes(b"not a torch file")
    with pytest.raises(LrfitError, match="corrupt"):
        load_model(tmp_path)


def test_svd_normalisation_preserves_product():
    net = LowRankRNN(80, rank=3, seed=4)
    before = net.connectivity().detach().clone()
    net.svd_normalize_()
    assert torch.allclose(net.connectivity(), before, atol=1e-6)
    gram_m = net.m.T @ net.m
    assert torch.allclose(gram_m, torch.diag(torch.diagonal(gram_m)), atol=1e-3)
    assert torch.allclose(torch.diagonal(gram_m), torch.diagonal(net.n.T @ net.n), rtol=1e-4)
    m, n = svd_normalized_factors(net.m, net.n)
    assert torch.allclose(m, net.m, atol=1e-5)


def test_overlaps_and_truncation():
    low = LowRankRNN(60, rank=2, n_inputs=1, n_outputs=1)
    assert low.overlaps().shape == (2, 2) and low.input_overlaps().shape == (2, 1)
    assert low.readout_overlaps().shape == (1, 2)
    full = FullRankRNN(60, n_inputs=1, n_outputs=1)
    with torch.no_grad():
        full.j.copy_(low.connectivity())
    assert torch.allclose(full.truncated(2).connectivity(), low.connectivity(), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_units": 10, "rank": -1}, "positive integer"),
        ({"n_units": 10, "rank": 11}, "larger than the number of units"),
        ({"n_units": 10, "rank": 1, "dt": 0.2, "tau": 0.1}, "larger than tau"),
        ({"n_units": 10, "rank": 1, "nonlinearity": "tanhh"}, "did you mean 'tanh'"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(LrfitError, match=match):
        LowRankRNN(**kwargs)


def test_wrong_input_channels():
    with pytest.raises(LrfitError, match="channels"):
        LowRankRNN(10, rank=1, n_inputs=2)(torch.zeros(1, 5, 3))
