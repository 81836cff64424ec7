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
