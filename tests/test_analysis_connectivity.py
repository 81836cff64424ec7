"""Connectivity statistics: overlaps and loading tables."""

import json

import numpy as np
import pytest

from lrfit.analysis import connectivity_stats, gaussian_lowrank_rnn, loading_table
from lrfit.analysis.connectivity import loading_columns
from lrfit.errors import LrfitError
from lrfit.models import FullRankRNN, LowRankRNN


def test_overlaps_match_definitions_and_eigenvalues():
    net = LowRankRNN(60, rank=3, n_inputs=2, n_outputs=1, seed=1)
    st = connectivity_stats(net)
    m, n = net.m.detach().double().numpy(), net.n.detach().double().numpy()
    np.testing.assert_allclose(st.overlaps, n.T @ m / 60, rtol=1e-10)
    np.testing.assert_allclose(st.overlaps, net.overlaps().detach().numpy(), rtol=1e-5, atol=1e-6)
    assert st.input_overlaps.shape == (3, 2) and st.readout_overlaps.shape == (1, 3)
    assert st.mm.shape == st.nn.shape == (3, 3)
    # non-zero eigenvalues of J = m n^T / N are those of n^T m / N
    ev_j = np.linalg.eigvals(net.connectivity().detach().double().numpy())
    ev_j = ev_j[np.argsort(-np.abs(ev_j))][:3]
    np.testing.assert_allclose(np.sort_complex(ev_j), np.sort_complex(st.eigenvalues), atol=1e-4)
    json.dumps(st.to_json_dict())


def test_planted_overlaps_are_exact():
    sig = np.array([[2.5, -1.0], [1.0, 2.0]])
    st = connectivity_stats(gaussian_lowrank_rnn(500, sig, seed=0))
    np.testing.assert_allclose(st.overlaps, sig, atol=1e-4)
    np.testing.assert_allclose(st.mm, np.eye(2), atol=1e-4)


def test_loading_table_shape_and_columns():
    net = LowRankRNN(40, rank=2, n_inputs=3, n_outputs=2, seed=0)
    tab = loading_table(net, neuron_ids=np.arange(100, 140), input_names=["a", "b", "c"])
    assert tab.shape == (40, 2 * 2 + 3 + 2)
    assert list(tab.columns) == ["m_1", "m_2", "n_1", "n_2", "w_in_a", "w_in_b", "w_in_c", "w_out_0", "w_out_1"]
    assert tab.index.name == "neuron" and tab.index[0] == 100
    np.testing.assert_allclose(tab["n_2"].to_numpy(), net.n[:, 1].detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(tab["w_out_1"].to_numpy(), net.w_out[:, 1].detach().numpy(), rtol=1e-6)
    assert loading_columns(1, 0, 0) == ["m_1", "n_1"]


def test_errors_are_one_sentence():
    with pytest.raises(LrfitError, match="low-rank"):
        connectivity_stats(FullRankRNN(10))
    with pytest.raises(LrfitError, match="neuron ids"):
        loading_table(LowRankRNN(10), neuron_ids=[1, 2])
