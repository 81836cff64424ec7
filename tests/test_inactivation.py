"""Inactivation: analytic checks on constructed two-population low-rank networks."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lrfit.analysis import (
    compare_inactivation,
    connectivity_stats,
    find_fixed_points,
    groups_from_labels,
    map_groups,
    predict_inactivation,
    silence,
)
from lrfit.analysis.network_inactivation import InactivationResult, paired_change_pvalue, random_subset, resolve_groups
from lrfit.errors import LrfitError
from lrfit.models import FullRankRNN, LowRankRNN
from lrfit.runs.groups import load_groups
from lrfit.tasks import get_task

N = 600
A = np.arange(N // 2)  # population carrying the overlap / the readout
B = np.arange(N // 2, N)


def _bistable_two_population(seed: int = 0) -> LowRankRNN:
    """Rank 1: n = 4 m on population A, independent noise on B, so sigma_nm = 2 (all from A)."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal(N)
    n = np.where(np.arange(N) < N // 2, 4.0 * m, rng.standard_normal(N))
    # remove the chance overlap of B so that sigma = 2 up to A's sampling error
    b = slice(N // 2, N)
    n[b] -= m[b] * (n[b] @ m[b]) / (m[b] @ m[b])
    net = LowRankRNN(N, rank=1, n_inputs=1, n_outputs=1, seed=seed)
    with torch.no_grad():
        net.m.copy_(torch.tensor(m[:, None]))
        net.n.copy_(torch.tensor(n[:, None]))
    return net


def _pdm_network(seed: int = 0) -> LowRankRNN:
    """Integrator-like rank-1 network for 'pdm': input along m, n = 1.8 m on A and 0 on B, readout only on A."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal(N)
    net = LowRankRNN(N, rank=1, n_inputs=1, n_outputs=1, seed=seed, tau=0.1, dt=0.02)
    w_out = np.where(np.arange(N) < N // 2, 2.0 * m, 0.0)
    with torch.no_grad():
        net.m.copy_(torch.tensor(m[:, None]))
        net.n.copy_(torch.tensor(np.where(np.arange(N) < N // 2, 1.8 * m, 0.0)[:, None]))
        net.w_in.copy_(torch.tensor(m[:, None]))
        net.w_out.copy_(torch.tensor(w_out[:, None]))
    return net


def test_silence_zeroes_n_and_readout_rows_only():
    net = _bistable_two_population()
    sil = silence(net, A[:10])
    assert torch.all(sil.n[:10] == 0) and torch.all(sil.w_out[:10] == 0)
    assert torch.equal(sil.m, net.m) and torch.equal(sil.n[10:], net.n[10:])
    assert not torch.all(net.n[:10] == 0)  # the original is untouched
    # equation: J D_S = m (D_S n)^T / N  equals the dense J with the silenced columns removed
    j = net.connectivity().detach().clone()
    j[:, :10] = 0
    assert torch.allclose(sil.connectivity(), j)


def test_silencing_the_overlap_population_kills_the_bistability():
    net = _bistable_two_population()
    assert connectivity_stats(net).overlaps[0, 0] == pytest.approx(2.0, rel=0.1)
    intact = find_fixed_points(net).counts()
    assert intact == {"stable": 2, "saddle": 0, "source": 1, "marginal": 0}
    no_a = silence(net, A)
    assert connectivity_stats(no_a).overlaps[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert find_fixed_points(no_a).counts() == {"stable": 1, "saddle": 0, "source": 0, "marginal": 0}
    no_b = silence(net, B)  # B carries no overlap: the two stable states survive
    assert find_fixed_points(no_b).counts()["stable"] == 2


def test_full_rank_silencing_matches_low_rank():
    net = _bistable_two_population()
    full = FullRankRNN(N, n_inputs=1, n_outputs=1)
    with torch.no_grad():
        full.j.copy_(net.connectivity())
        full.w_in.copy_(net.w_in)
        full.w_out.copy_(net.w_out)
    assert torch.allclose(silence(full, A).connectivity(), silence(net, A).connectivity(), atol=1e-6)


def test_predicted_accuracy_changes_in_the_expected_direction():
    task = get_task("pdm")
    net = _pdm_network()
    res = predict_inactivation(net, task, {"A": A, "B": B, "none": []}, n_trials=200, seed=1)
    t = res.table.set_index("group")
    assert list(res.table["context"].unique()) == ["all"]  # pdm has no context column
    assert t.loc["control", "accuracy"] > 0.85
    assert t.loc["none", "delta_accuracy"] == 0.0 and t.loc["none", "output_change"] == 0.0
    assert t.loc["none", "latent_change"] == 0.0
    # B's rates reach neither the recurrence nor the readout: silencing it changes nothing
    assert t.loc["B", ["delta_accuracy", "output_change", "latent_change"]].tolist() == [0.0, 0.0, 0.0]
    assert t.loc["A", "accuracy"] == pytest.approx(0.5, abs=0.1)  # no readout left: chance
    assert t.loc["A", "delta_accuracy"] < -0.3
    assert t.loc["A", "output_change"] > 0.1 and t.loc["A", "latent_change"] > 0.1
    assert set(res.psychometric["group"]) == {"control", "A", "B", "none"}
    # the paired counts are the accuracy change, trial by trial
    a = t.loc["A"]
    assert (a["trials_gained"] - a["trials_lost"]) / a["n_trials"] == pytest.approx(a["delta_accuracy"])
    assert a["p_value"] < 1e-6 and t.loc["B", "p_value"] == 1.0
    json.dumps(res.to_json_dict())


def test_paired_change_pvalue_is_the_exact_mcnemar_test():
    # k discordant trials all lost: p = 2 * 0.5**k (two-sided)
    assert paired_change_pvalue(3, 0) == pytest.approx(0.25)
    assert paired_change_pvalue(6, 0) == pytest.approx(2 * 0.5**6)
    assert paired_change_pvalue(0, 0) == 1.0
    assert paired_change_pvalue(5, 5) == pytest.approx(1.0)
    assert paired_change_pvalue(10, 2) == pytest.approx(paired_change_pvalue(2, 10))
    with pytest.raises(LrfitError, match=">= 0"):
        paired_change_pvalue(-1, 2)


def _result(rows):
    table = pd.DataFrame(rows, columns=["group", "context", "accuracy", "delta_accuracy", "p_value"])
    return InactivationResult(table=table, psychometric=None, groups={}, by="context", outputs={}, latents={})


def test_a_change_counts_only_when_it_exceeds_tol_and_is_significant():
    pred = _result([("g", "motion", 0.98, -0.02, 0.25),   # 5 of 256 trials, one-sided: not significant
                    ("g", "color", 0.60, -0.40, 1e-20),
                    ("h", "motion", 0.95, -0.05, 1e-4)])
    true = _result([("g", "motion", 1.00, 0.00, 1.0),
                    ("g", "color", 0.55, -0.45, 1e-20),
                    ("h", "motion", 1.00, 0.00, 1.0)])
    agree = compare_inactivation(pred, true)
    t = agree.table.set_index(["group", "context"])
    assert t.loc[("g", "motion"), "sign_pred"] == 0 and t.loc[("g", "motion"), "sign_agree"]
    assert t.loc[("g", "color"), "sign_pred"] == -1 and t.loc[("g", "color"), "sign_agree"]
    assert t.loc[("h", "motion"), "sign_pred"] == -1 and not t.loc[("h", "motion"), "sign_agree"]
    assert agree.sign_agreement == pytest.approx(2 / 3)
    assert agree.mean_abs_gap == pytest.approx((0.02 + 0.05 + 0.05) / 3)
    # with alpha = 1 only the tolerance decides, as for a table without p-values
    assert compare_inactivation(pred, true, alpha=1.0).sign_agreement == pytest.approx(1 / 3)
    with pytest.raises(LrfitError, match="alpha"):
        compare_inactivation(pred, true, alpha=0.0)


def test_predictions_per_context_and_agreement_with_itself():
    task = get_task("cdm")
    net = LowRankRNN(64, rank=1, n_inputs=4, n_outputs=1, seed=3)
    groups = {"half": np.arange(32), "none": []}
    a = predict_inactivation(net, task, groups, n_trials=64, seed=0)
    assert set(a.table["context"]) == {"all", "motion", "color"}
    agree = compare_inactivation(a, a)
    assert agree.sign_agreement == 1.0 and agree.mean_abs_gap == 0.0
    assert set(agree.table["context"]) == {"motion", "color"}
    assert set(agree.table["group"]) == {"half", "none"}


def test_group_specifications(tmp_path):
    labels = np.array([0, 0, 1, 1, 1, 2])
    assert {k: v.tolist() for k, v in groups_from_labels(labels).items()} == {
        "pop0": [0, 1],
        "pop1": [2, 3, 4],
        "pop2": [5],
    }
    g = resolve_groups(
        {"x": [3, 1, 1], "p1": {"population": 1}, "half": {"population": 1, "fraction": 2 / 3}}, 6, labels, seed=0
    )
    assert g["x"].tolist() == [1, 3] and g["p1"].tolist() == [2, 3, 4]
    assert len(g["half"]) == 2 and set(g["half"]) <= {2, 3, 4}
    again = resolve_groups(
        {"x": [3, 1, 1], "p1": {"population": 1}, "half": {"population": 1, "fraction": 2 / 3}}, 6, labels, seed=0
    )
    assert again["half"].tolist() == g["half"].tolist()  # seeded
    assert random_subset(np.arange(10), 0.0).size == 0
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"groups": {"a": [0, 5]}}))
    assert load_groups(path, 6)["a"].tolist() == [0, 5]
    with pytest.raises(LrfitError, match="range"):
        resolve_groups({"bad": [7]}, 6)
    with pytest.raises(LrfitError, match="population"):
        resolve_groups({"p": {"population": 0}}, 6)
    path.write_text("{not json")
    with pytest.raises(LrfitError, match="not valid JSON"):
        load_groups(path, 6)
    # student units -> teacher units through the fit's neuron ids; hidden units dropped
    assert map_groups({"g": [0, 2, 3]}, ["5", "7", "9"], 10)["g"].tolist() == [5, 9]
