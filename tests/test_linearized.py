"""The linearized gradient at initialisation (docs/theory.md §4): exact enumeration of −(∂L/∂A1)/β0 as β0 → 0.

Tolerances: the golden values and our enumeration are both float64 sums of the same terms (1e-10 asked,
~1e-15 seen). Against the exact gradient at finite β0 the difference is the O(β0) term of the expansion: at
β0 = 1e-7 its relative size is ~1e-7·O(1), plus float64 cancellation in −dL/dA1/β0 (~1e-16/1e-7·|L|/|G| ≈
1e-8); 1e-6 relative leaves a margin of 10 or more.
"""

import numpy as np
import pytest

import causal_grad as cg
from causal_grad.gradients import exact_population_gradient, linearized_gradient_at_init
from causal_grad.gradients import linearized as lin


def _pis(S, k, seed, alpha=1.0):
    pis = np.random.default_rng(seed).dirichlet(np.full(S, alpha), size=(k, S))
    return pis / pis.sum(-1, keepdims=True)


def test_golden_neg_grad_at_init(golden):
    task = cg.InContextTask(cg.Graph(golden["parents"]), golden["vocab_size"], 1.0)
    G = np.asarray(linearized_gradient_at_init(task, golden["pis"], eps=golden["eps"]))
    ref = np.asarray(golden["neg_grad_A1_at_init_per_beta0"])
    assert G.shape == ref.shape == (task.seq_len, task.seq_len)  # the query row T-1 included
    assert np.abs(G - ref).max() / np.abs(ref).max() < 1e-10


@pytest.mark.parametrize(
    "parents, S, k, eps",
    [
        ((-1, 0, 1, 2), 3, 2, 1e-3),  # (n, S, k) as in the golden files: compiled once per shape
        ((-1, 0, -1, 2, 0, 1), 2, 3, 1e-12),
        ((-1, 0, 0, 1, -1, 4), 3, 1, 0.1),
    ],
)
def test_equals_exact_gradient_at_small_beta0(parents, S, k, eps):
    task = cg.InContextTask(cg.Graph(parents), S, 1.0)
    pis = _pis(S, k, len(parents) + S)
    beta0, T = 1e-7, task.seq_len
    r = exact_population_gradient(task, pis, np.zeros((T, T)), beta0 * np.eye(S), eps=eps)
    G = np.asarray(linearized_gradient_at_init(task, pis, eps=eps))
    X = -np.asarray(r.dA1) / beta0
    assert np.abs(X - G).max() / np.abs(G).max() < 1e-6
    assert np.abs(X[-1] - G[-1]).max() / np.abs(G[-1]).max() < 1e-6  # the query row on its own


def test_structure_rows_sum_to_zero_and_upper_triangle_vanishes():
    task = cg.InContextTask(cg.Graph((-1, 0, 1, 0)), 3, 1.0)
    G = np.asarray(linearized_gradient_at_init(task, _pis(3, 2, 0), eps=1e-3))
    assert G.dtype == np.float64
    assert np.all(np.triu(G, 1) == 0)
    scale = np.abs(G).max()
    assert scale > 0
    assert np.abs(G.sum(1)).max() <= 1e-13 * scale  # softmax ignores a row constant: round-off only


def test_eps_zero_is_finite_and_the_limit_of_small_eps():
    """At ε = 0 the formula uses ĉ/ŷ → 1[ĉ > 0]; it must be finite and equal the ε → 0 limit."""
    task = cg.InContextTask(cg.chain(4), 3, 1.0)
    pis = _pis(3, 1, 1, alpha=0.3)
    G0 = np.asarray(linearized_gradient_at_init(task, pis, eps=0.0))
    G1 = np.asarray(linearized_gradient_at_init(task, pis, eps=1e-12))
    assert np.all(np.isfinite(G0))
    assert np.abs(G0 - G1).max() / np.abs(G0).max() < 1e-9  # the difference is O(ε·T) relative


def test_chunking_does_not_change_the_result(monkeypatch):
    """Padding of the last chunk (indices past S^n get weight 0) and the chunk size do not matter."""
    task = cg.InContextTask(cg.Graph((-1, 0, 1, 1, -1, 4)), 3, 1.0)
    pis = _pis(3, 2, 2)
    G = np.asarray(linearized_gradient_at_init(task, pis, eps=1e-3))
    monkeypatch.setattr(lin, "chunking", lambda N, k, n, S: (64, -(-N // 64)))  # 3^6 = 729 = 11·64 + 25
    G64 = np.asarray(linearized_gradient_at_init(task, pis, eps=1e-3))
    np.testing.assert_allclose(G64, G, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(eps=1.0), ValueError, "eps"),
        (dict(pis=np.array([[0.5, 0.6], [0.5, 0.5]])), ValueError, "every row must sum to 1"),
        (dict(pis=np.array([[[-0.1, 1.1], [0.5, 0.5]]])), ValueError, "non-negative"),
        (dict(task=cg.chain(3)), TypeError, "task must be"),
    ],
)
def test_bad_inputs(kwargs, exc, words):
    args = dict(task=cg.InContextTask(cg.chain(3), 2, 1.0), pis=np.full((2, 2), 0.5), eps=1e-3) | kwargs
    with pytest.raises(exc, match=words):
        linearized_gradient_at_init(args.pop("task"), args.pop("pis"), **args)


def test_too_large_refuses():
    task = cg.InContextTask(cg.chain(23), 2, 1.0)  # 2^23 · 3 ≈ 2.5e7
    with pytest.raises(ValueError, match="monte_carlo"):
        linearized_gradient_at_init(task, np.full((2, 2), 0.5), eps=1e-3)
