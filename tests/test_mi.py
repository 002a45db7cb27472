"""The mutual-information approximation M and M_ε (THEORY §4): golden values, limits, structure."""

import numpy as np
import pytest

import causal_grad as cg
from causal_grad.mi import mi_approximation


def _task(g):
    return cg.InContextTask(cg.Graph(g["parents"]), g["vocab_size"], 0.1)


def test_golden_M(golden):
    r = mi_approximation(_task(golden), golden["pis"])
    np.testing.assert_allclose(r.M, np.array(golden["M"]), rtol=0, atol=1e-10)
    assert np.all(np.triu(r.M, 1) == 0) and r.per_pi.shape == (len(golden["pis"]),) + r.M.shape
