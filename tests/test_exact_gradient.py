"""The exact population gradient of the reduced model (issue: models and the exact population gradient).

Tolerances: everything here is float64 enumeration, so agreement with an independent float64 computation is at
round-off (~1e-15 relative); we ask 1e-10. Central differences with step h have truncation error O(h²·L''')
and round-off O(1e-16/h): with h = 1e-5 both are ≲ 1e-10 absolute against gradient entries ~1e-3, so 1e-6
relative leaves a wide margin. Monte Carlo comparisons use 4 standard errors.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import causal_grad as cg
from causal_grad import x64
from causal_grad.gradients import enumerate as en
from causal_grad.gradients import exact as ex
from causal_grad.gradients import exact_population_gradient
from causal_grad.models.reduced import reduced_apply, reduced_loss


def _pis(S, k, seed, alpha=1.0):
    pis = np.random.default_rng(seed).dirichlet(np.full(S, alpha), size=(k, S))
    return pis / pis.sum(-1, keepdims=True)


def _params(T, S, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return scale * rng.normal(size=(T, T)), scale * rng.normal(size=(S, S))


def test_golden_loss_and_gradients(golden):
    task = cg.InContextTask(cg.Graph(golden["parents"]), golden["vocab_size"], 1.0)
    r = exact_population_gradient(task, golden["pis"], golden["A1"], golden["A2"], eps=golden["eps"])
    np.testing.assert_allclose(float(r.loss), golden["loss"], rtol=1e-10)
    for got, key in ((r.dA1, "grad_A1"), (r.dA2, "grad_A2")):
        ref = np.asarray(golden[key])
        err = np.abs(np.asarray(got) - ref).max() / np.abs(ref).max()
        assert err < 1e-10, (key, err)
    assert r.dA1.dtype == jnp.float64 and r.dA1.shape == (task.seq_len, task.seq_len)


def test_all_query_forward_equals_the_reduced_model():
    """The specialised forward (one context, all S queries at once) is the model of causal_grad.models.reduced."""
    n, S = 5, 3
    A1, A2 = _params(n + 1, S, 0)
    with x64():
        ctx, _ = en.context_tokens(0, S**n, n, S)
        fast = ex.all_query_predictions(jnp.asarray(A1), jnp.asarray(A2), ctx, 0.01)  # (C, S_q, S)
        seq = jnp.concatenate([jnp.repeat(ctx, S, axis=0), jnp.tile(jnp.arange(S), S**n)[:, None]], axis=1)
        ref = reduced_apply(jnp.asarray(A1), jnp.asarray(A2), seq, 0.01).reshape(S**n, S, S)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(ref), rtol=1e-13, atol=0)


def test_equals_brute_force_weighted_sum_over_sequences():
    """Independent enumeration: itertools over all token sequences, weights from the definition (roots ~ μ via
    the stationary law, children ~ π[parent]), query uniform, loss and autodiff gradients of reduced_loss."""
    parents, S, k, eps = (-1, 0, 0, -1), 3, 2, 0.05  # the shape of chain4_S3 (n, S, k): compiled once
    task = cg.InContextTask(cg.Graph(parents), S, 1.0)
    pis = _pis(S, k, 3)
    A1, A2 = _params(task.seq_len, S, 4)
    with x64():
        mus = np.asarray(cg.stationary(jnp.asarray(pis)))
        seqs, ys, ws = [], [], []
        for m in range(k):
            for s in itertools.product(range(S), repeat=task.n):
                w = np.prod([mus[m][s[i]] if p < 0 else pis[m][s[p], s[i]] for i, p in enumerate(parents)])
                for q in range(S):
                    seqs.append(s + (q,))
                    ys.append(pis[m][q])
                    ws.append(w / (k * S))
        seqs, ys, ws = jnp.asarray(seqs), jnp.asarray(ys), jnp.asarray(ws)
        assert abs(float(ws.sum()) - 1) < 1e-13
        loss, (g1, g2) = jax.value_and_grad(reduced_loss, argnums=(0, 1))(
            jnp.asarray(A1), jnp.asarray(A2), seqs, ys, eps, ws
        )
    r = exact_population_gradient(task, pis, A1, A2, eps=eps)
    np.testing.assert_allclose(float(r.loss), float(loss), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(r.dA1), np.asarray(g1), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(np.asarray(r.dA2), np.asarray(g2), rtol=1e-10, atol=1e-15)


def test_gradient_equals_central_differences():
    task = cg.InContextTask(cg.Graph((-1, 0, 1, 0)), 3, 1.0)
    pis = _pis(3, 2, 5)
    A1, A2 = _params(task.seq_len, 3, 6, scale=0.5)
    eps, h = 1e-3, 1e-5
    r = exact_population_gradient(task, pis, A1, A2, eps=eps)

    def loss(a1, a2):
        return float(exact_population_gradient(task, pis, a1, a2, eps=eps).loss)

    fd1 = np.zeros_like(A1)
    for i, j in zip(*np.tril_indices(task.seq_len)):
        E = np.zeros_like(A1)
        E[i, j] = h
        fd1[i, j] = (loss(A1 + E, A2) - loss(A1 - E, A2)) / (2 * h)
    fd2 = np.zeros_like(A2)
    for i, j in itertools.product(range(3), repeat=2):
        E = np.zeros_like(A2)
        E[i, j] = h
        fd2[i, j] = (loss(A1, A2 + E) - loss(A1, A2 - E)) / (2 * h)
    g1, g2 = np.asarray(r.dA1), np.asarray(r.dA2)
    assert np.all(np.triu(g1, 1) == 0)  # entries above the diagonal are masked: exactly zero gradient
    assert np.linalg.norm(fd1 - g1) / np.linalg.norm(g1) < 1e-6
    assert np.linalg.norm(fd2 - g2) / np.linalg.norm(g2) < 1e-6


def test_matches_mean_of_sampled_sequences_within_4_se():
    """E over the population = mean of per-sequence losses/autodiff gradients on sequences sampled by
    task.sample_given_pi with π drawn uniformly from the list (independent of the Monte Carlo module)."""
    task = cg.InContextTask(cg.Graph((-1, 0, 1, -1)), 3, 1.0)
    pis = _pis(3, 2, 7)
    A1, A2 = _params(task.seq_len, 3, 8)
    eps, N = 0.01, 20_000
    key = jax.random.key(11)
    with x64():
        idx = jax.random.randint(jax.random.fold_in(key, 0), (N,), 0, len(pis))
        pi = jnp.asarray(pis)[idx]
        tokens = task.sample_given_pi(jax.random.fold_in(key, 1), pi)
        y = pi[jnp.arange(N), tokens[:, -1]]

        def one(t, yy):
            return jax.value_and_grad(reduced_loss, argnums=(0, 1))(
                jnp.asarray(A1), jnp.asarray(A2), t[None], yy[None], eps
            )

        l, (g1, g2) = jax.vmap(one)(tokens, y)
    r = exact_population_gradient(task, pis, A1, A2, eps=eps)
    for samples, exact in ((l, r.loss), (g1, r.dA1), (g2, r.dA2)):
        s = np.asarray(samples)
        mean, se = s.mean(0), s.std(0, ddof=1) / np.sqrt(N)
        z = np.abs(mean - np.asarray(exact)) / np.where(se > 0, se, 1)
        assert np.all(z < 4), z.max()


def test_population_is_the_mean_over_pis():
    task = cg.InContextTask(cg.chain(4), 3, 1.0)
    pis = _pis(3, 2, 9)
    A1, A2 = _params(task.seq_len, 3, 10)
    both = exact_population_gradient(task, pis, A1, A2, eps=0.02)
    each = [exact_population_gradient(task, p, A1, A2, eps=0.02) for p in pis]
    np.testing.assert_allclose(float(both.loss), np.mean([float(e.loss) for e in each]), rtol=1e-13)
    np.testing.assert_allclose(
        np.asarray(both.dA1), np.mean([np.asarray(e.dA1) for e in each], 0), rtol=1e-11, atol=1e-16
    )


@pytest.fixture
def no_compute(monkeypatch):
    """Make any call of the compiled enumeration fail, to prove that validation happens before compute."""

    def boom(*a, **k):
        raise AssertionError("compute started before validation")

    monkeypatch.setattr(ex, "_exact", boom)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(A1=np.zeros((4, 4))), ValueError, "A1 must have shape (5, 5)"),
        (dict(A2=np.zeros((2, 3))), ValueError, "A2 must have shape"),
        (dict(A1=np.full((5, 5), np.nan)), ValueError, "A1 must be finite"),
        (dict(A2=np.eye(3, dtype=complex)), TypeError, "A2 must be a real array"),
        (dict(eps=1.0), ValueError, "eps must lie in [0, 1)"),
        (dict(eps=-0.1), ValueError, "eps must lie in [0, 1)"),
        (dict(pis=np.ones((3, 3))), ValueError, "every row must sum to 1"),
        (dict(pis=np.eye(2)), ValueError, "pis must be 3x3"),
        (dict(task="chain"), TypeError, "task must be a causal_grad.InContextTask"),
    ],
)
def test_bad_inputs_raise_before_compute(no_compute, kwargs, exc, words):
    task = cg.InContextTask(cg.chain(4), 3, 1.0)
    args = dict(task=task, pis=np.full((3, 3), 1 / 3), A1=np.zeros((5, 5)), A2=np.eye(3), eps=1e-3) | kwargs
    with pytest.raises(exc) as e:
        exact_population_gradient(args.pop("task"), args.pop("pis"), args.pop("A1"), args.pop("A2"), **args)
    assert words in str(e.value)


def test_too_large_refuses_and_points_to_monte_carlo(no_compute):
    task = cg.InContextTask(cg.chain(16), 3, 1.0)  # 3^16 · (1 + 3) ≈ 1.7e8 > 2e7
    assert en.enumeration_cost(task.seq_len, 3, 1) > en.MAX_ENUMERATION_COST
    with pytest.raises(ValueError, match="monte_carlo_gradient"):
        exact_population_gradient(task, np.full((3, 3), 1 / 3), np.zeros((17, 17)), np.eye(3), eps=1e-3)
