"""The thread policy: threads from the problem size, the user's choice, passive waiting, every pool limited."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import rank1_recording
from threadpoolctl import threadpool_info

from lrfit import LowRankRNN, pages, threads
from lrfit.cli import build_parser, main
from lrfit.fitting.latent import compiled as latent_kernels
from lrfit.runs.sweep import thread_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_user_choice(monkeypatch):
    """No OMP_NUM_THREADS and no --threads: the policy decides."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_SETTINGS", threads._Settings(managed=True))


def test_threads_grow_with_the_work_per_step_up_to_the_cpus(no_user_choice):
    small = threads.step_work(32, 512, 4)  # the reference fit: 512 units, rank 1, batch 32
    assert threads.choose_threads(small, cpus=16) == 1
    assert threads.choose_threads(None, cpus=16) == 1
    assert threads.choose_threads(3 * threads.WORK_PER_THREAD, cpus=16) == 3
    assert threads.choose_threads(100 * threads.WORK_PER_THREAD, cpus=4) == 4
    assert threads.choose_threads(100 * threads.WORK_PER_THREAD) == threads.available_cpus()


def test_the_users_choice_wins(no_user_choice, monkeypatch):
    big = 100 * threads.WORK_PER_THREAD
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose_threads(big) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose_threads(threads.step_work(32, 64, 4)) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    threads._SETTINGS.exact = 2
    assert threads.choose_threads(1) == 2
    threads._SETTINGS.exact = None
    threads.cap_threads(1)  # a sweep worker's share
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # set by the sweep for the worker's start, not by the user
    assert threads.choose_threads(big) == 1


def test_a_torch_count_below_the_cpus_is_the_users_choice(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_SETTINGS", threads._Settings())
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert threads.user_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_fit_runs_under_the_policy_and_leaves_the_process_as_it_was(no_user_choice):
    from lrfit import LowRankFit

    data = rank1_recording(24, 16, 12)
    seen = {}

    class Probe(LowRankFit):
        def _on_epoch_end(self, epoch: int) -> None:
            seen["torch"] = torch.get_num_threads()
            seen["pools"] = {p["num_threads"] for p in threadpool_info()}
            seen["huge_pages"] = _huge_page_advice()

    # numba's OpenMP runtime loaded first, as in any fit after a process's first: a runtime loaded
    # inside the limits keeps its own count (numba's, which runs the compiled loops on
    # threads.loop_threads()), so run alone this test saw {1, 2}, and {1} after other tests
    latent_kernels.tanh(np.zeros(1))
    before = torch.get_num_threads(), [p["num_threads"] for p in threadpool_info()], _huge_page_advice()
    with threads.limited_threads(2):
        Probe(rank=1, max_epochs=1, progress=False).fit(data)
        assert torch.get_num_threads() == 2
    # a small fit: one thread for torch, BLAS and OpenMP, and numpy's huge-page advice off (lrfit.pages)
    assert seen == {"torch": 1, "pools": {1}, "huge_pages": False}
    assert (torch.get_num_threads(), [p["num_threads"] for p in threadpool_info()], _huge_page_advice()) == before


def _huge_page_advice() -> bool:
    """Whether numpy currently advises huge pages for large arrays."""
    switch = pages._advice_switch()
    current = switch(False)
    switch(current)
    return current


def test_base_pages_turns_the_advice_off_and_back_and_leaves_a_users_choice(monkeypatch):
    monkeypatch.delenv(pages.HUGEPAGE_ENV, raising=False)
    switch = pages._advice_switch()
    before = switch(True)
    try:
        with pages.base_pages() as changed:
            assert changed and _huge_page_advice() is False
        assert _huge_page_advice() is True
        monkeypatch.setenv(pages.HUGEPAGE_ENV, "1")  # the user's choice, read by numpy at import
        with pages.base_pages() as changed:
            assert not changed and _huge_page_advice() is True
    finally:
        switch(before)


def test_every_command_takes_threads_and_the_command_leaves_no_trace(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # name -> subparser
    assert commands and all(any("--threads" in a.option_strings for a in sub._actions) for sub in commands.values())
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--threads", "0"])
    before = torch.get_num_threads()
    assert main(["teacher", "--task", "cdm", "--units", "16", "--rank", "1", "--epochs", "1", "--seed", "0",
                 "--out", str(tmp_path / "t"), "--no-progress", "--threads", "1"]) == 0
    assert torch.get_num_threads() == before and "OMP_NUM_THREADS" not in os.environ
    assert threads._SETTINGS.exact is None


def test_import_lrfit_asks_openmp_to_wait_passively_unless_told_otherwise():
    code = "import os, lrfit, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = lambda e: subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,  # noqa: E731
                                   check=True, cwd=ROOT).stdout.strip()
    assert run(env) == "PASSIVE"
    assert run({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_sweep_workers_start_with_every_pool_sized_and_passive_waiting(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    env = thread_env(1)
    assert env == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "OMP_WAIT_POLICY": "PASSIVE"}


def test_mixture_fits_run_every_pool_on_one_thread(monkeypatch):
    from sklearn.mixture import GaussianMixture

    from lrfit.analysis import fit_populations

    counts = set()
    original = GaussianMixture.fit

    def fit(self, *args, **kwargs):
        counts.update(p["num_threads"] for p in threadpool_info())
        counts.add(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GaussianMixture, "fit", fit)
    with threads.limited_threads(2):
        fit_populations(LowRankRNN(60, rank=1, seed=0), max_populations=2, n_seeds=1)
    assert counts == {1}
