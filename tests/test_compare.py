"""The rescaled gradient at initialisation against the MI approximation (claim C1) and the query row.

C1 is a limit statement (T → ∞), so the tests check the *trend* the exact numbers must show and the
bookkeeping of the comparison, not a fixed tolerance at small T (where the correction is O(1/T) and, at
T ≤ 13, larger than the centred signal itself; see docs/theory.md C1).
"""

import jax
import numpy as np
import pytest

import causal_grad as cg
from causal_grad.gradients import (
    compare_gradient_to_mi,
    finite_T_sweep,
    gradient_mi_agreement,
    linearized_gradient_at_init,
    query_row_limit,
    rescale_gradient,
    row_centre,
)
from causal_grad.mi import mi_approximation

PIS = np.array(
    [[[0.7, 0.2, 0.1], [0.15, 0.6, 0.25], [0.2, 0.3, 0.5]], [[0.3, 0.5, 0.2], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]]]
)


def test_a_gradient_equal_to_M_plus_row_constants_is_a_perfect_match():
    task = cg.InContextTask(cg.Graph((-1, 0, 1, 0, 3, 2)), 3, 1.0)
    M = mi_approximation(task, PIS, eps=1e-3).M
    T, S = task.seq_len, 3
    c = np.linspace(-1, 2, task.n)[:, None]
    R = np.zeros((T, T))
    R[:-1, :-1] = np.tril(M + c)
    R[-1] = np.r_[np.full(T - 1, 0.1), 0.5]
    G = R / (np.arange(1, T + 1)[:, None] * T * S)
    np.testing.assert_allclose(rescale_gradient(G, S), R, rtol=1e-15)
    r = gradient_mi_agreement(G, M, task.parents, S)
    assert r.rel_error < 1e-12 and r.spearman == pytest.approx(1.0)
    np.testing.assert_array_equal(r.argmax, [int(np.argmax(M[i, :i])) for i in r.rows])
    np.testing.assert_allclose(r.gradient_margin, r.M_margin, atol=1e-12)
    assert r.query_diag_excess == pytest.approx(0.4) and r.query_offdiag_spread == pytest.approx(0.0, abs=1e-15)
    assert np.allclose(row_centre(R[:-1, :-1]).sum(1), 0)


@pytest.mark.parametrize("family", ["chain", "icl-pairs"])
def test_finite_T_correction_shrinks_with_T(family):
    """Exact numbers, S = 3: the RMS of (centred rescaled gradient − centred M_ε) decreases at every step
    n = 4 → 6 → 8 → 10 and at least halves over the range (measured: ≈ 0.6/T, see docs/theory.md C1)."""
    rows = finite_T_sweep(family, [4, 6, 8, 10], PIS, eps=1e-3)
    rms = np.array([r["rms_error"] for r in rows])
    assert np.all(np.diff(rms) < 0), rms
    assert rms[-1] < 0.5 * rms[0]
    assert all(r["agreement"] == 1.0 for r in rows)  # these π have margins far above the correction


def test_query_row_limit_formula_and_its_eps_zero_form():
    with cg.x64():
        mu = np.asarray(cg.stationary(PIS.astype(np.float64)))
    by_hand = np.mean([np.sum(np.diag(p) / m) - np.trace(p) - 3 + 1 for p, m in zip(PIS, mu)])
    assert query_row_limit(PIS, 0.0) == pytest.approx(by_hand, rel=1e-12)
    assert query_row_limit(PIS, 1e-9) == pytest.approx(by_hand, rel=1e-7)


def test_query_row_approaches_its_limit_exactly():
    """Exact enumeration, S = 2, a chain: |diagonal excess − limit| decreases with T once T ≳ 9 (at smaller T
    it first rises: 0.24, 0.69, 0.83, 0.85 at T = 3, 5, 7, 9; then ≈ 10.5/T for this slowly mixing π)."""
    pi = np.array([[0.8, 0.2], [0.35, 0.65]])
    lim = query_row_limit(pi, 1e-3)
    gaps = []
    for n in (8, 12, 16):
        task = cg.InContextTask(cg.chain(n), 2, 1.0)
        G = linearized_gradient_at_init(task, pi, eps=1e-3)
        r = gradient_mi_agreement(G, mi_approximation(task, pi, eps=1e-3), task.parents, 2)
        gaps.append(abs(r.query_diag_excess - lim))
    assert gaps[0] > gaps[1] > gaps[2]


def test_query_row_limit_against_monte_carlo_at_large_T():
    """i.i.d. tokens (all roots), sticky π = 0.1 + 0.7·I (μ uniform), T = 65: the query row's diagonal excess
    is near (1-ε)Σ_q w∞(q)(1-μ(q)) ≈ 2.80, not docs/theory.md §4's Σ_q π[q,q]/μ(q) − S = 4.2 (which omits −tr π + 1)."""
    pi = np.full((3, 3), 0.1) + 0.7 * np.eye(3)
    task = cg.InContextTask(cg.Graph((-1,) * 64), 3, 1.0)
    r = compare_gradient_to_mi(task, pi, eps=1e-3, method="monte_carlo", key=jax.random.key(0), num=8192)
    lim = query_row_limit(pi, 1e-3)
    theory = np.sum(np.diag(pi) * 3) - 3
    assert abs(r.query_diag_excess - lim) < 0.15  # finite-T gap ≈ 4.8/T ≈ 0.07 plus noise
    assert abs(r.query_diag_excess - theory) > 1.0
    assert r.query_offdiag_spread < 0.05  # flat off the diagonal


def test_monte_carlo_method_agrees_with_exact_within_noise():
    task = cg.InContextTask(cg.chain(5), 3, 1.0)
    ex = compare_gradient_to_mi(task, PIS, eps=1e-3, method="exact")
    mc = compare_gradient_to_mi(task, PIS, eps=1e-3, method="monte_carlo", key=jax.random.key(1), num=40_000)
    assert ex.extra["method"] == "exact" and mc.extra["method"] == "monte_carlo" and ex.noise_rms == 0
    z = np.abs(mc.rescaled - ex.rescaled) / np.where(mc.rescaled_se > 0, mc.rescaled_se, 1)
    assert np.all(z < 4)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(method="fast"), ValueError, "method must be"),
        (dict(mi_eps="other"), ValueError, "mi_eps must be"),
        (dict(method="monte_carlo"), ValueError, "key is required"),
        (dict(eps=1.0), ValueError, "eps"),
    ],
)
def test_bad_inputs(kwargs, exc, words):
    task = cg.InContextTask(cg.chain(3), 3, 1.0)
    args = dict(eps=1e-3) | kwargs
    with pytest.raises(exc, match=words):
        compare_gradient_to_mi(task, PIS, **args)
    with pytest.raises(ValueError, match="G must have shape"):
        gradient_mi_agreement(np.zeros((3, 3)), np.zeros((3, 3)), (-1, 0, 1), 3)


def test_cli_gradient_json(capsys):
    import json

    from causal_grad.cli import main

    assert main(["gradient", "--graph=-1,0,1,0", "--vocab", "2", "--num-pi", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "exact" and len(out["rescaled_gradient"]) == 5 and len(out["M"]) == 4
    assert set(out["argmax"]) == {"2", "3"} and 0 <= out["agreement"] <= 1
    assert main(["gradient", "--vocab", "2", "--n", "4", "--beta0", "-1"]) == 2  # bad input: one line, status 2
    assert capsys.readouterr().err.strip() == "causal-grad: error: --beta0 must be >= 0, got -1.0"
