"""Gaussian-mixture populations in connectivity space."""

import dataclasses
import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from lrfit.analysis import fit_populations, mixture_from_labels, sample_network
from lrfit.analysis.connectivity import loading_columns
from lrfit.analysis.populations import MixtureStats
from lrfit.errors import LrfitError


def _planted(n_units=600, seed=0):
    """Two well-separated populations in (m, n, w_in, w_out) space, rank 1."""
    cols = tuple(loading_columns(1, 1, 1))
    means = np.array([[2.0, 2.0, 0.0, 1.0], [-2.0, 0.0, 2.0, -1.0]])
    covs = np.stack([np.diag([0.3, 0.5, 0.2, 0.3]), np.diag([0.4, 0.2, 0.3, 0.2]) + 0.05])
    st = MixtureStats(np.array([0.6, 0.4]), means, covs, 1, 1, 1, cols)
    return st, *sample_network(st, n_units, seed=seed, return_labels=True)


def test_gmm_recovers_two_planted_populations():
    st, net, truth = _planted()
    res = fit_populations(net, max_populations=4, n_seeds=3)
    assert res.n_populations == 2 and res.n_bic == 2
    assert adjusted_rand_score(truth, res.labels) > 0.98
    assert res.ari[1] > 0.98 and res.bic.shape == (4,) and res.candidates.tolist() == [1, 2, 3, 4]
    assert res.weights[0] >= res.weights[1]  # ordered by weight
    np.testing.assert_allclose(res.weights, [0.6, 0.4], atol=0.02)
    np.testing.assert_allclose(res.means, st.means, atol=0.15)
    np.testing.assert_allclose(res.mixture.covariances, st.covariances, atol=0.12)
    assert res.covariances.shape == (2, 4, 4) and res.responsibilities.shape == (600, 2)
    d = json.loads(json.dumps(res.to_json_dict()))
    assert d["n_populations"] == 2 and len(d["labels"]) == 600


def test_single_gaussian_network_gives_one_population():
    cols = tuple(loading_columns(1, 0, 1))
    st = MixtureStats(np.ones(1), np.zeros((1, 3)), np.eye(3)[None], 1, 0, 1, cols)
    res = fit_populations(sample_network(st, 400, seed=1), max_populations=3, n_seeds=3)
    assert res.n_populations == 1


def test_feature_subset_keeps_full_mixture_and_errors():
    _, net, truth = _planted(300, seed=2)
    res = fit_populations(net, max_populations=3, n_seeds=2, features=["m_1", "n_1"])
    assert res.features == ("m_1", "n_1") and res.means.shape[1] == 2
    assert res.mixture.means.shape[1] == 4  # statistics of all loadings for resampling
    with pytest.raises(LrfitError, match="Unknown loading column"):
        fit_populations(net, features=["m_7"])


def test_mixture_from_labels_and_merge():
    rng = np.random.default_rng(0)
    y = np.concatenate([rng.normal(0, 1, (500, 2)), rng.normal(3, 1, (500, 2))])
    lab = np.repeat([0, 1], 500)
    st = mixture_from_labels(y, lab, rank=1, n_inputs=0, n_outputs=0)
    np.testing.assert_allclose(st.weights, [0.5, 0.5])
    merged = st.merged()
    np.testing.assert_allclose(merged.means[0], y.mean(0), atol=1e-10)
    np.testing.assert_allclose(merged.covariances[0], np.cov(y.T, bias=True), atol=1e-10)
    assert st.select([1]).n_populations == 1


def test_fold_signs_merges_mirror_images_and_resamples_both_signs():
    """Loadings y and -y describe the same tanh network: folded, one Gaussian population; samples get both signs."""
    import torch

    from lrfit.analysis.resample import sample_loadings
    from lrfit.models import LowRankRNN

    rng = np.random.default_rng(0)
    n = 400
    base = rng.normal([2.0, 1.5], 0.3, size=(n, 2))  # (m, n) of one population, away from zero
    signs = rng.choice([-1.0, 1.0], size=n)
    net = LowRankRNN(n, rank=1, seed=0)
    with torch.no_grad():
        net.m.copy_(torch.tensor(base[:, :1] * signs[:, None]))
        net.n.copy_(torch.tensor(base[:, 1:] * signs[:, None]))
    plain = fit_populations(net, max_populations=3, n_seeds=3, n_init=2)
    folded = fit_populations(net, max_populations=3, n_seeds=3, n_init=2, fold_signs=True)
    assert plain.n_populations == 2 and folded.n_populations == 1
    assert folded.mixture.symmetric and np.allclose(folded.signs, signs)
    assert folded.mixture.means[0] == pytest.approx([2.0, 1.5], abs=0.1)
    y, _ = sample_loadings(folded, 2000, seed=1)
    assert 0.4 < np.mean(y[:, 0] > 0) < 0.6 and np.all(y[:, 0] * y[:, 1] > 0)  # both signs, m and n flipped together
    net.nonlinearity = "relu"
    with pytest.raises(LrfitError, match="odd nonlinearity"):
        fit_populations(net, fold_signs=True)


def _three_planted(n_units=900, seed=0):
    """Three separated populations (rank 1, one input, one output)."""
    cols = tuple(loading_columns(1, 1, 1))
    means = np.array([[2.0, 2.0, 0.0, 1.0], [-2.0, 0.0, 2.0, -1.0], [0.0, -2.0, -2.0, 2.0]])
    covs = np.stack([np.diag([0.3, 0.4, 0.2, 0.3])] * 3)
    st = MixtureStats(np.array([0.4, 0.35, 0.25]), means, covs, 1, 1, 1, cols)
    return sample_network(st, n_units, seed=seed, return_labels=True)


def test_with_count_gives_that_many_populations_and_the_chosen_one_unchanged():
    net, truth = _three_planted()
    res = fit_populations(net, max_populations=4, n_seeds=3, n_init=2)
    assert res.n_populations == 3 and res.rule == "bic"
    same = res.with_count(3)
    np.testing.assert_array_equal(same.labels, res.labels)
    np.testing.assert_allclose(same.weights, res.weights)
    two = res.with_count(2)
    assert two.n_populations == 2 and set(two.labels) == {0, 1} and two.mixture.n_populations == 2
    assert two.responsibilities.shape == (900, 2) and two.means.shape == (2, 4)
    np.testing.assert_array_equal(two.bic, res.bic)  # the curves are shared
    assert res.stable_counts[0] == 1 and 3 in res.stable_counts
    with pytest.raises(LrfitError, match="No mixture with 7 populations"):
        res.with_count(7)


def test_choose_populations_by_task_takes_the_fewest_stable_populations_that_perform(monkeypatch):
    """The rule's logic, with a task scored by how many populations the sampled network came from."""
    from types import SimpleNamespace

    import lrfit.analysis.resample as resample
    from lrfit.analysis import choose_populations_by_task

    net, _ = _three_planted(600, seed=1)
    res = fit_populations(net, max_populations=4, n_seeds=3, n_init=2)
    scores = {"network": 0.98, 1: 0.6, 2: 0.9, 3: 0.97, 4: 0.99}
    monkeypatch.setattr(
        resample, "sample_network", lambda pops, n, seed, template: SimpleNamespace(p=pops.n_populations)
    )
    monkeypatch.setattr(resample, "evaluate_on_task",
                        lambda model, task, trials: SimpleNamespace(accuracy=scores[getattr(model, "p", "network")]))
    task = SimpleNamespace(generate=lambda n, seed: None)

    chosen = choose_populations_by_task(res, net, task, accuracy_drop=0.05, draws=2)
    assert chosen.n_populations == 3 and chosen.rule == "task"  # 2 reaches 0.90 < 0.98 - 0.05
    assert chosen.task_accuracy == {1: 0.6, 2: 0.9, 3: 0.97}
    assert choose_populations_by_task(res, net, task, accuracy_drop=0.1).n_populations == 2
    unstable = dataclasses.replace(res, ari=np.where(res.candidates == 2, 0.5, res.ari))
    assert choose_populations_by_task(unstable, net, task, accuracy_drop=0.1).n_populations == 3  # 2 is skipped
    scores.update({3: 0.5, 4: 0.5})
    kept = choose_populations_by_task(res, net, task, accuracy_drop=0.01)
    assert (
        kept.n_populations == res.n_populations
        and kept.rule == "bic"
        and set(kept.task_accuracy) == set(res.stable_counts.tolist())
    )
    d = json.loads(json.dumps(chosen.to_json_dict()))
    assert d["rule"] == "task" and d["task_accuracy"] == {"1": 0.6, "2": 0.9, "3": 0.97}
