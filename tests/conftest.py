"""Shared test settings and data: the thread policy, the shared data's path, a planted network and its recordings."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

import lrfit  # noqa: F401  (before torch: idle OpenMP threads wait passively, see lrfit.threads)
from lrfit.threads import command_threads

if TYPE_CHECKING:
    from data_adapters import TrialData
    from lrfit import LowRankRNN

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
M1_FILE = SHARED_DATA / "hatsopoulos2007_M1_centerout_condavg_nopickle.npz"


@pytest.fixture(scope="session", autouse=True)
def thread_policy():
    """As ``lrfit`` commands run: fits choose their threads from their size, everything else runs on one
    (on a busy machine two threads per test process were many times slower than one)."""
    with command_threads() as threads:
        yield threads


def planted_network(n_units: int = 64, rank: int = 2, seed: int = 1) -> LowRankRNN:
    """A rank-2 network with a rotating, decaying latent flow driven by two inputs."""
    import torch  # after lrfit (above): idle OpenMP threads wait passively

    from lrfit import LowRankRNN

    net = LowRankRNN(n_units, rank=rank, n_inputs=2, tau=0.1, dt=0.02, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(n_units, rank, generator=gen)
    # n = m A^T + noise: the overlap matrix n^T m / N is close to A.
    a = torch.tensor([[1.2, -0.8], [0.8, 1.2]])[:rank, :rank]
    n = m @ a.T + 0.3 * torch.randn(n_units, rank, generator=gen)
    with torch.no_grad():
        net.m.copy_(m)
        net.n.copy_(n)
    return net


@functools.cache  # TrialData is immutable: tests share each size
def planted_data(n_trials: int = 160, n_time: int = 40, seed: int = 0, n_units: int = 64) -> TrialData:
    """Rates of the planted network under random input pulses (a condition column for splits)."""
    rng = np.random.default_rng(seed)
    amp = rng.uniform(-1, 1, size=(n_trials, 2)).astype(np.float32)
    inputs = np.zeros((n_trials, n_time, 2), np.float32)
    inputs[:, 5:15] = amp[:, None, :]
    conditions = pd.DataFrame({"amp0": amp[:, 0], "amp1": amp[:, 1]})
    from lrfit.teachers import record_activity

    return record_activity(planted_network(n_units), inputs, conditions, ("u0", "u1"), noise_std=0.0)


@functools.cache  # TrialData is immutable: tests share each size
def rank1_recording(n_units: int, n_trials: int, n_time: int, seed: int = 0) -> TrialData:
    """Noise-free rates of a random rank-1 network with one input channel, driven by white-noise inputs."""
    from lrfit import LowRankRNN
    from lrfit.teachers import record_activity

    net = LowRankRNN(n_units, rank=1, n_inputs=1, tau=0.1, dt=0.02, seed=seed)
    inputs = np.random.default_rng(seed).normal(size=(n_trials, n_time, 1)).astype(np.float32)
    return record_activity(net, inputs, noise_std=0.0)


@pytest.fixture
def m1_path() -> Path:
    """Path to the real M1 reaching recording beside the checkout (skips if absent)."""
    if not M1_FILE.is_file():
        pytest.skip(f"shared data not found at {M1_FILE}")
    return M1_FILE


def lowrank_loss_members(m, n, w_in, x0_table, x0_index, inputs, target, weight, alpha, nonlin="tanh",
                         target_kind="rates", readout=None):
    """The latent loss of K stacked networks, from its parts (the engine's tests spell them out)."""
    from lrfit.fitting.latent import LatentBatch, LatentNetworks, latent_loss

    return latent_loss(LatentNetworks(m, n, w_in, alpha, nonlin, target_kind, readout),
                       LatentBatch(x0_table, x0_index, inputs, target, weight))


def lowrank_loss(m, n, w_in, x0_table, x0_index, inputs, target, weight, alpha, nonlin="tanh", target_kind="rates",
                 readout=None):
    """:func:`lowrank_loss_members` of one network (a stack of one)."""
    from lrfit.fitting.latent import TrialRows
    from lrfit.fitting.losses import CountReadout

    one = [a.unsqueeze(0) for a in (m, n, w_in, x0_table, x0_index, inputs)]
    target = (TrialRows(target.source, target.index.unsqueeze(0)) if isinstance(target, TrialRows)
              else target.unsqueeze(0))
    weight = None if weight is None else weight.unsqueeze(0)
    readout = None if readout is None else CountReadout(*(v.unsqueeze(0) for v in readout))
    return lowrank_loss_members(*one, target, weight, alpha, nonlin, target_kind, readout)[0]
