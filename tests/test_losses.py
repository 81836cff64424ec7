"""The fitter's latent-coordinate loss equals simulating the network, in value and in every gradient."""

from __future__ import annotations

import pytest
import torch
from conftest import lowrank_loss, lowrank_loss_members, rank1_recording

from lrfit.fitting.losses import CountReadout, masked_mse, poisson_nll
from lrfit.models.rollout import rollout


def _problem(units=24, rank=2, channels=3, steps=12, trials=5, starts=3, n_obs=20, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=dtype) * scale).requires_grad_(True)

    weights = (rand(units, rank), rand(units, rank, scale=2.0), rand(units, channels), rand(starts, units, scale=0.5))
    index = torch.tensor([0, 2, 2, 1, 0][:trials])
    inputs = torch.randn(trials, steps, channels, generator=gen, dtype=dtype)
    target = torch.randn(trials, steps, n_obs, generator=gen, dtype=dtype) * 0.5
    mask = (torch.rand(trials, steps, generator=gen) > 0.3).to(dtype)
    return weights, index, inputs, target, mask


def _simulated_loss(weights, index, inputs, target, weight, alpha, nonlin, target_kind):
    m, n, w_in, table = weights
    drive = (inputs @ (w_in.T * alpha)).transpose(0, 1)
    states, rates = rollout(table[index], drive, "lowrank", alpha, nonlin, m, n, float(m.shape[0]))
    pred = rates if target_kind == "rates" else states
    return masked_mse(pred[..., : target.shape[2]], target, weight)


@pytest.mark.parametrize("nonlin", ["tanh", "softplus", "relu"])
@pytest.mark.parametrize("target_kind", ["rates", "currents"])
@pytest.mark.parametrize("masked", [False, True])
def test_loss_and_gradients_equal_the_simulated_network(nonlin, target_kind, masked):
    weights, index, inputs, target, mask = _problem()
    weight = mask if masked else None
    fast = lowrank_loss(*weights, index, inputs, target, weight, 0.2, nonlin, target_kind)
    slow = _simulated_loss(weights, index, inputs, target, weight, 0.2, nonlin, target_kind)
    assert torch.allclose(fast, slow, rtol=1e-12, atol=0)
    for g_fast, g_slow in zip(torch.autograd.grad(fast, weights), torch.autograd.grad(slow, weights)):
        assert torch.allclose(g_fast, g_slow, rtol=1e-10, atol=1e-13)


def test_rank_one_without_inputs_and_float32():
    weights, index, inputs, target, _ = _problem(rank=1, channels=0, starts=1, n_obs=24, dtype=torch.float32)
    index = torch.zeros_like(index)
    fast = lowrank_loss(*weights, index, inputs, target, None, 0.1)
    slow = _simulated_loss(weights, index, inputs, target, None, 0.1, "tanh", "rates")
    assert torch.allclose(fast, slow, rtol=1e-5)
    for g_fast, g_slow in zip(torch.autograd.grad(fast, weights), torch.autograd.grad(slow, weights)):
        assert torch.allclose(g_fast, g_slow, rtol=1e-4, atol=1e-6)


def test_forward_only_and_repeated_backward_agree():
    weights, index, inputs, target, mask = _problem()
    with torch.no_grad():
        value = lowrank_loss(*weights, index, inputs, target, mask, 0.2)
    loss = lowrank_loss(*weights, index, inputs, target, mask, 0.2)
    assert float(value) == pytest.approx(float(loss.detach()), rel=1e-12)
    first = torch.autograd.grad(loss, weights, retain_graph=True)
    # another mini-batch in between must not disturb the retained graph
    lowrank_loss(*weights, index.flip(0), inputs.flip(0), target, None, 0.2).backward()
    second = torch.autograd.grad(loss, weights)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_members_equal_their_single_losses_with_padded_ranks():
    problems = [_problem(seed=s, rank=2) for s in range(3)]
    m, n, w_in, table = (torch.stack([p[0][i].detach() for p in problems]).requires_grad_(True) for i in range(4))
    with torch.no_grad():  # the third member has rank 1: its second columns are zero padding
        m[2, :, 1] = 0.0
        n[2, :, 1] = 0.0
    index, inputs, target, mask = (torch.stack([p[i] for p in problems]) for i in range(1, 5))
    losses = lowrank_loss_members(m, n, w_in, table, index, inputs, target, mask, 0.2)
    grads = torch.autograd.grad(losses @ torch.tensor([1.0, 2.0, 3.0], dtype=losses.dtype), (m, n, w_in, table))
    for k in range(3):
        rank = 1 if k == 2 else 2
        weights = tuple(w[k].detach().clone().requires_grad_(True) for w in (m[..., :rank], n[..., :rank], w_in, table))
        single = lowrank_loss(*weights, index[k], inputs[k], target[k], mask[k], 0.2)
        assert torch.allclose(losses[k], single, rtol=1e-12)
        for g_all, g_one in zip(grads, torch.autograd.grad(single * (k + 1), weights)):
            g_member = g_all[k][..., :rank] if g_all.dim() == 3 and g_all.shape[-1] == 2 else g_all[k]
            assert torch.allclose(g_member, g_one, rtol=1e-10, atol=1e-13)
    assert torch.all(grads[0][2, :, 1] == 0) and torch.all(grads[1][2, :, 1] == 0)


@pytest.mark.parametrize("target_kind", ["rates", "currents"])
def test_start_as_coefficients_of_the_table_rows(target_kind):
    """x[0] = coef @ table (x0="inputs"): loss and gradients equal the simulated network's."""
    weights, _, inputs, target, mask = _problem()
    gen = torch.Generator().manual_seed(3)
    coef = torch.cat([torch.ones(5, 1, dtype=torch.float64), torch.randn(5, 2, generator=gen, dtype=torch.float64)], 1)
    fast = lowrank_loss(*weights, coef, inputs, target, mask, 0.2, "tanh", target_kind)
    m, n, w_in, table = weights
    drive = (inputs @ (w_in.T * 0.2)).transpose(0, 1)
    states, rates = rollout(coef @ table, drive, "lowrank", 0.2, "tanh", m, n, float(m.shape[0]))
    pred = rates if target_kind == "rates" else states
    slow = masked_mse(pred[..., : target.shape[2]], target, mask)
    assert torch.allclose(fast, slow, rtol=1e-12, atol=0)
    for g_fast, g_slow in zip(torch.autograd.grad(fast, weights), torch.autograd.grad(slow, weights)):
        assert torch.allclose(g_fast, g_slow, rtol=1e-10, atol=1e-13)


def _readout(n_obs=20, seed=1, dtype=torch.float64, members=()):
    gen = torch.Generator().manual_seed(seed)
    gain = (torch.randn(*members, n_obs, generator=gen, dtype=dtype) * 0.8 + 1.0).requires_grad_(True)
    bias = (torch.randn(*members, n_obs, generator=gen, dtype=dtype) * 0.5).requires_grad_(True)
    scale = torch.rand(*members, n_obs, generator=gen, dtype=dtype) * 0.5 + 0.1
    return CountReadout(gain, bias, scale)


def _counts(target, seed=2):
    gen = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full_like(target, 0.7), generator=gen)


@pytest.mark.parametrize("nonlin", ["tanh", "softplus"])
@pytest.mark.parametrize("target_kind", ["rates", "currents"])
@pytest.mark.parametrize("masked", [False, True])
def test_poisson_loss_and_gradients_equal_autograd_of_the_simulated_network(nonlin, target_kind, masked):
    """The Poisson terms after the time loop, and their hand-written backward, equal autograd's."""
    weights, index, inputs, target, mask = _problem()
    counts, readout = _counts(target), _readout()
    weight = mask if masked else None
    fast = lowrank_loss(*weights, index, inputs, counts, weight, 0.2, nonlin, target_kind, readout)
    m, n, w_in, table = weights
    drive = (inputs @ (w_in.T * 0.2)).transpose(0, 1)
    states, rates = rollout(table[index], drive, "lowrank", 0.2, nonlin, m, n, float(m.shape[0]))
    s = (rates if target_kind == "rates" else states)[..., :20]
    # the Poisson log-likelihood written out, log(y!) left out
    rate = readout.scale * torch.nn.functional.softplus(readout.gain * s + readout.bias)
    terms = rate - counts * torch.log(rate)
    w = torch.ones(counts.shape[:2], dtype=counts.dtype) if weight is None else weight
    slow = (terms * w[..., None]).sum() / (w.sum() * 20)
    assert torch.allclose(fast, slow, rtol=1e-12, atol=0)
    learnt = (*weights, readout.gain, readout.bias)
    for g_fast, g_slow in zip(torch.autograd.grad(fast, learnt), torch.autograd.grad(slow, learnt)):
        assert torch.allclose(g_fast, g_slow, rtol=1e-10, atol=1e-13)
    with torch.no_grad():
        assert float(lowrank_loss(*weights, index, inputs, counts, weight, 0.2, nonlin, target_kind, readout)) == \
            pytest.approx(float(fast), rel=1e-12)


def test_poisson_members_equal_their_single_losses():
    problems = [_problem(seed=s) for s in range(2)]
    m, n, w_in, table = (torch.stack([p[0][i].detach() for p in problems]).requires_grad_(True) for i in range(4))
    index, inputs, target, mask = (torch.stack([p[i] for p in problems]) for i in range(1, 5))
    counts, readout = _counts(target), _readout(members=(2,))
    losses = lowrank_loss_members(m, n, w_in, table, index, inputs, counts, mask, 0.2, "tanh", "rates", readout)
    grads = torch.autograd.grad(losses.sum(), (readout.gain, readout.bias))
    for k in range(2):
        one = CountReadout(*(v[k].detach().clone().requires_grad_(True) for v in readout))
        single = lowrank_loss(m[k], n[k], w_in[k], table[k], index[k], inputs[k], counts[k], mask[k], 0.2, "tanh",
                              "rates", one)
        assert torch.allclose(losses[k], single, rtol=1e-12)
        for g_all, g_one in zip(grads, torch.autograd.grad(single, (one.gain, one.bias))):
            assert torch.allclose(g_all[k], g_one, rtol=1e-10, atol=1e-13)


def test_poisson_nll_is_minimal_at_the_true_rate():
    """For a constant readout the mean Poisson term is smallest where the rate equals the mean count."""
    counts = torch.tensor([[[0.0], [2.0], [1.0], [3.0]]], dtype=torch.float64)  # mean 1.5
    s = torch.zeros_like(counts)
    best = None
    for rate in (1.0, 1.25, 1.5, 1.75, 2.0):
        bias = torch.log(torch.expm1(torch.tensor([rate], dtype=torch.float64)))
        value = float(poisson_nll(s, counts, None, CountReadout(torch.ones(1, dtype=torch.float64), bias,
                                                                 torch.ones(1, dtype=torch.float64))))
        best = (value, rate) if best is None or value < best[0] else best
    assert best[1] == 1.5


def test_the_workspace_lends_the_smallest_large_enough_buffer_and_keeps_a_bounded_few():
    import numpy as np

    from lrfit.fitting.latent.workspace import Workspace

    ws = Workspace(keep=2)
    batch = ws.take((3, 4, 5), np.float32)
    ws.give((batch,))
    last = ws.take((2, 4, 5), np.float32)  # an epoch's smaller last batch reuses the memory
    assert np.shares_memory(batch, last) and last.shape == (2, 4, 5) and ws.allocated == 1
    other = ws.take((3, 4, 5), np.float32)  # *last* is still lent: a new buffer
    assert not np.shares_memory(last, other) and ws.allocated == 2
    ws.give((last, other, ws.take((100,), np.float32)))
    assert sorted(b.size for b in ws._free[np.dtype(np.float32)]) == [60, 100]  # the smallest one dropped
    assert ws.take((7,), np.float64).dtype == np.float64 and ws.allocated == 4


@pytest.mark.parametrize("loops", ["compiled", "numpy"])
def test_a_fit_maps_its_working_arrays_once(monkeypatch, loops):

    from lrfit import LowRankFit
    from lrfit.fitting.latent import workspace

    data = rank1_recording(64, 40, 15)
    monkeypatch.setattr(workspace, "WORKSPACE", workspace.Workspace())
    if loops == "numpy":
        monkeypatch.setenv("LRFIT_KERNELS", "numpy")
    mapped = []

    class Probe(LowRankFit):
        def _on_epoch_end(self, epoch: int) -> None:
            mapped.append(workspace.WORKSPACE.allocated)

    Probe(rank=1, batch_size=16, max_epochs=4, tol=0.0, progress=False, random_state=0).fit(data)
    # one set of rates (and, for the numpy loops, of residuals; the compiled ones recompute them), mapped by
    # the first batch: each batch's graph is freed before the next forward pass, and the smaller last batch
    # of an epoch takes views of the same buffers
    assert mapped == ([1] * 4 if loops == "compiled" else [3] * 4)  # numpy: + a gathered time-major target
