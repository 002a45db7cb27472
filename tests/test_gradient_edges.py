"""Claim C2 for the exact finite-T gradient: the largest entry of each row of −dL/dA1 at initialisation
(among j < i) is the parent — and where, at small T, it is not.

docs/theory.md §4 shows the parent is the row argmax of M (data processing). The exact gradient at A1 = 0, A2 = β0·I is
M_ε plus a finite-T correction, so the property needs the parent's margin in M_ε to beat that correction. The
stated (and tested) property:

    if T · margin(M_ε)[i] ≥ KAPPA = 1, the row argmax over j < i of −dL/dA1 is p(i),

with margin(M_ε)[i] = M_ε[i, p(i)] − max_{j<i, j≠p(i)} M_ε[i, j] in the units of the rescaled gradient
(i+1)·T·S·(−dL/dA1)/β0. Measured (causal_grad.gradients.compare.parent_argmax_study, ~70,000 rows, S ∈ {2, 3},
T ≤ 15, floored and Dirichlet priors, plus 1,500 hypothesis examples): every failing row had
T · margin ≤ 0.46, so KAPPA = 1 keeps a factor 2. Below it failures are common at S = 2 (7–23% of rows) and
rare at S = 3 (0–8%): see docs/theory.md C2. The counterexamples below are kept as regression tests.

Cost: each example enumerates S^n ≤ 3^9 = 19,683 contexts (one π, a few ms); compilation (~1–2 s) is per
(n, S), so n is drawn from {3, 5, 7, 9}: 8 shapes.
"""

import jax
import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import causal_grad as cg
from causal_grad.gradients import (
    exact_population_gradient,
    gradient_mi_agreement,
    linearized_gradient_at_init,
    parent_argmax_study,
)
from causal_grad.mi import mi_approximation
from causal_grad.strategies import floored_transition_matrices, forests

KAPPA = 1.0
BETA0 = 1e-4
EPS = 1e-3


def _at_init(parents, pi, S):
    """Exact gradient at A1 = 0, A2 = β0·I, compared with M_ε: returns the GradientVsMI record."""
    graph = cg.Graph(parents)
    task = cg.InContextTask(graph, S, 1.0)
    T = task.seq_len
    r = exact_population_gradient(task, pi, np.zeros((T, T)), BETA0 * np.eye(S), eps=EPS)
    G = -np.asarray(r.dA1) / BETA0
    return gradient_mi_agreement(G, mi_approximation(task, pi, eps=EPS), graph, S)


@st.composite
def cases(draw):
    S = draw(st.sampled_from([2, 3]))
    n = draw(st.sampled_from([3, 5, 7, 9]))  # a few sizes up to 9: compilation is per (n, S), the main cost
    graph = draw(forests(max_n=n, min_n=n))
    gamma = draw(st.sampled_from([0.05, 0.1, 0.3]))
    return graph.parents, draw(floored_transition_matrices(S, gamma)), S


@settings(max_examples=60)
@given(cases())
def test_row_argmax_is_the_parent_when_the_M_margin_beats_the_finite_T_correction(case):
    parents, pi, S = case
    r = _at_init(parents, pi, S)
    T = len(parents) + 1
    meets = T * r.M_margin >= KAPPA
    note(
        f"T={T} rows={r.rows.tolist()} T*margin(M_eps)={np.round(T * r.M_margin, 4).tolist()} agree={r.agree.tolist()}"
    )
    assert np.all(r.agree[meets]), (r.rows[meets & ~r.agree], r.gradient_margin[meets & ~r.agree])
    assert np.all(r.gradient_margin[meets] > 0)
    assert np.all(r.M_margin >= -1e-12)  # the theorem for M_ε itself on floored π (data processing)


# ---------------------------------------------------------------------------------------------------- regressions
# Margins are in rescaled units; the O(β0) = 1e-4 relative difference between the exact gradient at β0 and its
# β0 → 0 limit is far below every margin asserted here.


def test_theory_counterexample_S2_grandparent_beats_parent():
    """docs/theory.md §7.2's example: S = 2, parents (-1, 0, 1, 0), one floored π (entries ≥ 0.45; λ = 1 − π01 − π10 =
    0.1).
    M_ε margin ≈ λ²(1−λ) = 0.009 > 0, but the finite-T correction (≈ −0.018) is larger: at position 2 the
    grandparent 0 wins (gradient margin ≈ −0.0093), at position 3 the sibling 1 beats the parent 0."""
    pi = np.array([[0.55, 0.45], [0.45, 0.55]])
    r = _at_init((-1, 0, 1, 0), pi, 2)
    assert r.rows.tolist() == [2, 3] and r.argmax.tolist() == [0, 1] and not r.agree.any()
    assert np.all(r.gradient_margin < -0.009) and np.all(r.gradient_margin > -0.0095)
    assert np.all((r.M_margin > 0.0089) & (r.M_margin < 0.0091))
    assert np.all(5 * r.M_margin < KAPPA)  # consistent with the stated condition
    lin = gradient_mi_agreement(
        linearized_gradient_at_init(cg.InContextTask(cg.Graph((-1, 0, 1, 0)), 2, 1.0), pi, eps=EPS),
        r.M,
        (-1, 0, 1, 0),
        2,
    )
    np.testing.assert_allclose(lin.gradient_margin, r.gradient_margin, rtol=1e-3)


def test_S3_counterexamples_grandparent_and_another_tree():
    """S = 3, π = 0.1·I + 0.3·J (entries ≥ 0.3, λ = 0.1): parents (-1, 0, 1, 0): the grandparent wins at position 2
    (gradient margin ≈ −0.0050, M_ε margin ≈ +0.018); parents (-1, -1, 1): position 0, in *another tree*, beats
    the parent of position 2 (≈ −0.0044 against +0.020)."""
    pi = 0.1 * np.eye(3) + 0.3
    r = _at_init((-1, 0, 1, 0), pi, 3)
    assert r.argmax.tolist() == [0, 1] and not r.agree.any()
    assert np.all(r.gradient_margin < -0.004) and np.all(r.M_margin > 0.017)
    r2 = _at_init((-1, -1, 1), pi, 3)
    assert r2.argmax.tolist() == [0] and r2.gradient_margin[0] < -0.004 and r2.M_margin[0] > 0.019


def test_the_failure_vanishes_as_T_grows():
    """The same weak π (S = 2, λ = 0.1) on a chain: the parent loses rows at T = 5 and wins every row at T = 17
    (the threshold λ*(T) for π = λI + (1-λ)/2 falls from 0.20 at T = 5 to 0.07 at T = 17, about 1.2/T)."""
    pi = np.array([[0.55, 0.45], [0.45, 0.55]])
    small = _at_init(tuple(range(-1, 4)), pi, 2)
    large = _at_init(tuple(range(-1, 16)), pi, 2)
    assert not small.agree.all()
    assert large.agree.all() and large.gradient_margin.min() > 0


def test_failure_rate_study_finds_failures_only_below_the_condition():
    rows = parent_argmax_study([4], 2, cg.Floored(1.0, 0.1), num=40, key=jax.random.key(0), eps=EPS, kappa=KAPPA)
    (r,) = rows
    assert r["row_fail"] > 0 and r["counterexamples"]  # small T, S = 2: failures are common (~20%)
    assert r["cond_fail"] == 0 and r["max_T_margin_failing"] < KAPPA


@pytest.mark.parametrize("bad, exc", [(dict(prior="dirichlet"), TypeError), (dict(num=0), ValueError)])
def test_study_bad_inputs(bad, exc):
    args = dict(prior=cg.Dirichlet(1.0), num=2) | bad
    with pytest.raises(exc):
        parent_argmax_study([4], 2, args["prior"], num=args["num"], key=jax.random.key(0))
