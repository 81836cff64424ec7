"""The compiled loops of the latent loss (numba) equal the simulated network and the numpy loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import lowrank_loss, lowrank_loss_members

from lrfit.fitting.latent import TrialRows
from lrfit.fitting.latent import compiled as latent_kernels
from lrfit.fitting.losses import CountReadout, masked_mse
from lrfit.models.rollout import rollout

pytestmark = pytest.mark.skipif(not latent_kernels.enabled(), reason="numba is not installed")


def _members(members=2, units=40, rank=2, channels=3, steps=14, trials=5, starts=3, n_obs=30, float_start=False,
             seed=0):
    """A float32 problem of *members* networks: weights (leaves), start index, inputs, targets, mask."""
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).requires_grad_(True)

    weights = (leaf(members, units, rank), leaf(members, units, rank, scale=2.0), leaf(members, units, channels),
               leaf(members, starts, units, scale=0.5))
    index = (torch.rand(members, trials, starts, generator=gen) if float_start
             else torch.randint(0, starts, (members, trials), generator=gen))
    inputs = torch.randn(members, trials, steps, channels, generator=gen)
    target = torch.randn(members, trials, steps, n_obs, generator=gen) * 0.5
    mask = (torch.rand(members, trials, steps, generator=gen) > 0.3).float()
    return weights, index, inputs, target, mask


def _simulated(weights, index, inputs, target, mask, alpha, target_kind):
    """Each member's masked squared error of the network simulated step by step, in float64 (autograd)."""
    losses = []
    for k in range(weights[0].shape[0]):
        m, n, w_in, table = (w[k].double() for w in weights)
        x0 = index[k].double() @ table if index.is_floating_point() else table[index[k]]
        drive = (inputs[k].double() @ (w_in.T * alpha)).transpose(0, 1)
        states, rates = rollout(x0, drive, "lowrank", alpha, "tanh", m, n, float(m.shape[0]))
        pred = (rates if target_kind == "rates" else states)[..., : target.shape[3]]
        losses.append(masked_mse(pred, target[k].double(), None if mask is None else mask[k].double()))
    return torch.stack(losses)


def _loss_and_grads(weights, *args, readout=None):
    loss = lowrank_loss_members(*weights, *args, readout=readout)
    learnt = weights if readout is None else (*weights, readout.gain, readout.bias)
    return loss.detach(), torch.autograd.grad(loss.sum(), learnt)


@pytest.mark.parametrize("target_kind", ["rates", "currents"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", [dict(), dict(n_obs=40, rank=1, channels=0, starts=1), dict(float_start=True)])
def test_compiled_loops_equal_the_simulated_network(target_kind, masked, shape):
    weights, index, inputs, target, mask = _members(**shape)
    mask = mask if masked else None
    loss, grads = _loss_and_grads(weights, index, inputs, target, mask, 0.2, "tanh", target_kind)
    exact = _simulated(weights, index, inputs, target, mask, 0.2, target_kind)
    exact_grads = torch.autograd.grad(exact.sum(), weights)
    assert torch.allclose(loss.double(), exact, rtol=2e-5)
    for g, e in zip(grads, exact_grads):
        assert torch.allclose(g, e, rtol=1e-3, atol=1e-5 * float(e.abs().amax()) if e.numel() else 0.0)


@pytest.mark.parametrize("target_kind", ["rates", "currents"])
@pytest.mark.parametrize("counts", [False, True])
def test_compiled_and_numpy_loops_agree(monkeypatch, target_kind, counts):
    weights, index, inputs, target, mask = _members(members=3)
    readout = None
    if counts:
        target = torch.poisson(torch.rand_like(target) * 3.0)
        shape = (3, target.shape[3])
        readout = CountReadout(torch.full(shape, 1.5, requires_grad=True), torch.zeros(shape, requires_grad=True),
                               torch.full(shape, 0.5))
    args = (index, inputs, target, mask, 0.2, "tanh", target_kind)
    compiled = _loss_and_grads(weights, *args, readout=readout)
    monkeypatch.setenv("LRFIT_KERNELS", "numpy")
    numpy_loops = _loss_and_grads(weights, *args, readout=readout)
    assert torch.allclose(compiled[0], numpy_loops[0], rtol=1e-5)
    for a, b in zip(compiled[1], numpy_loops[1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().amax()) if b.numel() else 0.0)


def test_targets_read_in_place_equal_gathered_ones():
    weights, index, inputs, _, mask = _members(members=2, trials=4)
    recording = torch.randn(9, inputs.shape[2], 30)
    rows = torch.tensor([[8, 0, 3, 3], [1, 5, 7, 2]])
    in_place = _loss_and_grads(weights, index, inputs, TrialRows(recording, rows), mask, 0.2)
    gathered = _loss_and_grads(weights, index, inputs, TrialRows(recording, rows).gather(), mask, 0.2)
    assert torch.equal(in_place[0], gathered[0])
    for a, b in zip(in_place[1], gathered[1]):
        assert torch.equal(a, b)
    # one network: (B,) rows
    single = [w[0].detach().requires_grad_(True) for w in weights]
    value = lowrank_loss(*single, index[0], inputs[0], TrialRows(recording, rows[0]), mask[0], 0.2)
    assert float(value.detach()) == pytest.approx(float(in_place[0][0]), rel=1e-6)


def test_the_gradients_do_not_depend_on_the_thread_count():
    import numba

    weights, index, inputs, target, mask = _members(members=3, trials=7)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            results.append(_loss_and_grads(weights, index, inputs, target, mask, 0.2))
    finally:
        numba.set_num_threads(before)
    (loss_1, grads_1), (loss_n, grads_n) = results
    assert torch.equal(loss_1, loss_n)
    for a, b in zip(grads_1, grads_n):
        assert torch.equal(a, b)


def test_a_retained_graph_survives_another_batch():
    weights, index, inputs, target, mask = _members()
    loss = lowrank_loss_members(*weights, index, inputs, target, mask, 0.2)
    first = torch.autograd.grad(loss.sum(), weights, retain_graph=True)
    lowrank_loss_members(*weights, index.flip(1), inputs.flip(1), target, None, 0.2).sum().backward()
    second = torch.autograd.grad(loss.sum(), weights)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_the_loops_tanh_is_accurate_to_float32_rounding():
    x = np.linspace(-30.0, 30.0, 600_001, dtype=np.float32)
    error = np.abs(latent_kernels.tanh(x).astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert error.max() < 5e-7
    assert latent_kernels.tanh(np.float32([0.0, 40.0, -40.0])).tolist() == [0.0, 1.0, -1.0]


def test_the_policy_gives_the_loops_every_cpu_unless_the_user_chose(monkeypatch):
    from lrfit import threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(threads, "_SETTINGS", threads._Settings(managed=True))
    assert threads.loop_threads() == 4
    threads.cap_threads(2)  # a sweep worker's share
    assert threads.loop_threads() == 2
    threads.cap_threads(None)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.loop_threads() == 1
    before = threads.loop_threads_in_force()
    with threads.fit_threads(1000):
        assert threads.loop_threads_in_force() == 1
    assert threads.loop_threads_in_force() == before  # restored


def test_starting_the_loops_threads_keeps_torchs_thread_count():
    # numba's OpenMP layer can share torch's runtime: starting its pool set torch to every CPU mid-fit
    import subprocess
    import sys

    script = (
        "import lrfit, numpy as np, torch\n"
        "from lrfit import LowRankFit, LowRankRNN\n"
        "from lrfit.teachers import record_activity\n"
        "net = LowRankRNN(32, rank=1, n_inputs=1, tau=0.1, dt=0.02, seed=0)\n"
        "data = record_activity(net, np.random.default_rng(0).normal(size=(20, 10, 1)).astype(np.float32), "
        "noise_std=0.0)\n"
        "seen = []\n"
        "fit = LowRankFit(rank=1, batch_size=8, max_epochs=2, tol=0.0, progress=False)\n"
        "fit._on_epoch_end = lambda epoch: seen.append(torch.get_num_threads())\n"
        "fit.fit(data)\n"
        "print(seen)\n"
    )
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[1, 1]"
