"""Shared test settings: the command line's thread policy, the path to the shared data."""

from __future__ import annotations

from pathlib import Path

import lrfit  # noqa: F401  (before torch: idle OpenMP threads wait passively, see lrfit.threads)
import pytest
from lrfit.threads import command_threads

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
M1_FILE = SHARED_DATA / "hatsopoulos2007_M1_centerout_condavg_nopickle.npz"


@pytest.fixture(scope="session", autouse=True)
def thread_policy():
    """As ``lrfit`` commands run: fits choose their threads from their size, everything else runs on one
    (on a busy machine two threads per test process were many times slower than one)."""
    with command_threads() as threads:
        yield threads


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
