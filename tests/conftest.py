"""Shared test settings: few threads, deterministic torch, path to the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
M1_FILE = SHARED_DATA / "hatsopoulos2007_M1_centerout_condavg_nopickle.npz"


@pytest.fixture
def m1_path() -> Path:
    """Path to the real M1 reaching recording beside the checkout (skips if absent)."""
    if not M1_FILE.is_file():
        pytest.skip(f"shared data not found at {M1_FILE}")
    return M1_FILE
