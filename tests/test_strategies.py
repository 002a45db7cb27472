"""The hypothesis strategies produce what they promise (valid graphs and matrices of the stated kind)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_grad.strategies import (
    dirichlet_transition_matrices,
    floored_transition_matrices,
    forests,
    multi_parent_dags,
    reversible_transition_matrices,
    transition_matrices,
)


@settings(max_examples=60)
@given(forests(max_n=9, min_n=2))
def test_forests(g):
    assert g.is_forest and 2 <= g.n <= 9 and g.parents[0] == -1
    assert all(-1 <= p < i for i, p in enumerate(g.parents))


@settings(max_examples=60)
@given(
    st.integers(2, 5).flatmap(
        lambda S: st.tuples(
            st.just(S),
            transition_matrices(S),
            floored_transition_matrices(S, 0.2),
            dirichlet_transition_matrices(S, 0.1),
        )
    )
)
def test_matrices_are_stochastic(args):
    S, a, b, c = args
    for pi in (a, b, c):
        assert pi.shape == (S, S) and pi.dtype == np.float64 and np.all(pi >= 0)
        np.testing.assert_allclose(pi.sum(1), 1.0, atol=1e-12)
    assert b.min() >= 0.2 / S - 1e-15


@settings(max_examples=40)
@given(st.integers(2, 5).flatmap(lambda S: reversible_transition_matrices(S)))
def test_reversible_detailed_balance(pi):
    from causal_grad.stationary import stationary

    mu = np.asarray(stationary(pi))  # float32 unless x64: a loose check of the construction only
    Q = mu[:, None] * pi
    np.testing.assert_allclose(Q, Q.T, atol=1e-6)


@settings(max_examples=40)
@given(multi_parent_dags(max_n=8, max_arity=2))
def test_multi_parent_dags(g):
    assert not g.is_forest and g.parent_sets[0] == () and g.parent_sets[-1]
    assert all(len(ps) <= 2 and all(0 <= p < i for p in ps) for i, ps in enumerate(g.parent_sets))
