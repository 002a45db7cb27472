"""Numerical stability at the edges: extreme concentrations, nearly reducible and periodic chains, infinite
scores, ε = 0, exact zeros.

Tolerances: sampled rows are normalised in the sampler's dtype, so their sums are 1 within a few ulps times S
(float32: 8·S·2^-24; float64: 8·S·2^-53). GTH is subtraction-free, so the stationary residual ‖μπ − μ‖∞ is
round-off of O(S) products of numbers ≤ 1: far below the 1e-10 the issue asks for in float64.
"""

from __future__ import annotations

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import causal_grad as cg
from causal_grad.baselines import cross_entropy
from causal_grad.information import (
    chi2_mutual_information,
    conditional_entropy,
    entropy,
    mutual_information,
    weighted_inner,
)
from causal_grad.models.reduced import causal_softmax, reduced_loss
from causal_grad.stationary import stationary_residual

KEY = jax.random.key(7)


def _check_stochastic(pis, dtype):
    pis = np.asarray(pis, np.float64)
    S = pis.shape[-1]
    tol = 8 * S * float(jnp.finfo(dtype).eps)
    assert np.all(np.isfinite(pis)), "non-finite transition matrix entries"
    assert pis.min() >= 0
    assert np.abs(pis.sum(-1) - 1).max() <= tol


# ---------------------------------------------------------------------- sampling at extreme concentrations
@pytest.mark.parametrize("alpha", [1e-3, 1e3])
def test_sampling_at_extreme_alpha(alpha):
    """α = 1e-3 (rows nearly one-hot: gammas far below the float range) and α = 1e3 (rows nearly uniform)."""
    S = 3
    pis = cg.Dirichlet(alpha).sample(KEY, (64,), S)
    _check_stochastic(pis, jnp.float32)
    task = cg.InContextTask(cg.chain(3), S, alpha)
    tokens, y, pis = (np.asarray(a) for a in task.sample_with_pi(KEY, 64))
    _check_stochastic(pis, jnp.float32)
    assert tokens.dtype == np.int32 and tokens.min() >= 0 and tokens.max() < S
    np.testing.assert_array_equal(y, pis[np.arange(64), tokens[:, -1]])  # the target is exactly π[q]
    mu = np.asarray(cg.stationary(pis))
    assert np.all(np.isfinite(mu)) and mu.min() >= 0 and np.abs(mu.sum(-1) - 1).max() < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_sampling_alpha_sweep(dtype):
    """Every decade from 1e-3 to 1e3, both dtypes (one compilation per α: slow)."""
    with cg.x64():
        for alpha in 10.0 ** np.arange(-3, 4):
            task = cg.InContextTask(cg.chain(3), 4, float(alpha))
            tokens, y, pis = task.sample_with_pi(KEY, 32, dtype)
            _check_stochastic(pis, dtype)
            assert np.asarray(y).dtype == dtype and np.all(np.isfinite(np.asarray(y)))
            mu = np.asarray(cg.stationary(pis))
            assert np.all(np.isfinite(mu)) and mu.min() >= 0


# ---------------------------------------------------------------------- stationary law, float64
def _nearly_reducible(S: int, delta: float) -> np.ndarray:
    """Two blocks that communicate only with probability ``delta``."""
    h = S // 2
    P = np.zeros((S, S))
    P[:h, :h] = 1.0 / h
    P[h:, h:] = 1.0 / (S - h)
    P[:h, h:] += delta / (S - h)
    P[h:, :h] += delta / h
    return P / P.sum(1, keepdims=True)


def _cycle(S: int, eps: float = 0.0) -> np.ndarray:
    """The cyclic permutation (period S) mixed with ``eps`` of the uniform matrix."""
    return (1 - eps) * np.roll(np.eye(S), 1, axis=1) + eps / S


def test_stationary_residual_nearly_reducible_and_periodic():
    S = 6
    mats = [_nearly_reducible(S, d) for d in (1e-3, 1e-8, 1e-14, 0.0)]
    mats += [_cycle(S), _cycle(S, 1e-12), _cycle(S, 1e-6)]
    # a two-class chain with a transient state, and a chain whose stationary masses span 1e-300
    absorbing = np.eye(S)[[0, 0, 1, 2, 3, 4]] * 0.5 + np.eye(S)[[1, 2, 3, 4, 5, 5]] * 0.5
    mats += [absorbing]
    ramp = np.zeros((S, S))
    for a in range(S):
        ramp[a, max(a - 1, 0)] = 1 - 1e-60
        ramp[a, min(a + 1, S - 1)] += 1e-60
    mats += [ramp / ramp.sum(1, keepdims=True)]
    pis = np.stack(mats)
    with cg.x64():
        mu = cg.stationary(jnp.asarray(pis))
        res = np.asarray(stationary_residual(jnp.asarray(pis), mu))
        mu = np.asarray(mu)
    assert np.all(np.isfinite(mu)) and mu.min() >= 0
    np.testing.assert_allclose(mu.sum(-1), 1.0, rtol=0, atol=1e-14)
    assert res.max() < 1e-10, res
    # periodic π: the uniform law, exactly enough; the ramp: masses 1e-60^k resolved entry by entry
    np.testing.assert_allclose(mu[4], np.full(S, 1 / S), rtol=1e-13)
    assert 0 < mu[-1, -1] < 1e-250 and mu[-1, 0] > 0.99


def test_stationary_residual_dirichlet_1e_3_float64():
    """Sampled π at α = 1e-3 in float64 (μ entries far below 1e-10): residual < 1e-10 for every draw."""
    with cg.x64():
        pis = cg.Dirichlet(1e-3).sample(KEY, (64,), 5, jnp.float64)
        mu = cg.stationary(pis)
        res = np.asarray(stationary_residual(pis, mu))
        mu = np.asarray(mu)
    assert np.all(np.isfinite(mu)) and mu.min() >= 0
    assert res.max() < 1e-10


# ---------------------------------------------------------------------- causal softmax
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_causal_softmax_never_nan(dtype):
    with cg.x64():
        _softmax_cases(dtype)


def _softmax_cases(dtype):
    T = 5
    big = float(jnp.finfo(dtype).max)
    cases = {
        "all -inf": jnp.full((T, T), -jnp.inf, dtype),
        "all +inf": jnp.full((T, T), jnp.inf, dtype),
        "mixed inf": jnp.asarray(np.where(np.arange(T)[None] % 2 == 0, np.inf, -np.inf) * np.ones((T, 1)), dtype),
        "±max": jnp.asarray(np.where(np.eye(T, dtype=bool), big, -big), dtype),
        "huge spread": jnp.asarray(np.linspace(-1e30, 1e30, T * T).reshape(T, T), dtype),
    }
    for name, sc in cases.items():
        assert sc.dtype == dtype
        a = np.asarray(causal_softmax(sc))
        assert not np.isnan(a).any(), name
        np.testing.assert_allclose(a.sum(-1), 1.0, rtol=0, atol=4 * T * float(jnp.finfo(dtype).eps), err_msg=name)
        assert np.all(np.triu(a, 1) == 0), name  # masked entries exactly 0
    # a row of -inf attends uniformly over j ≤ i; +inf entries share the weight equally
    a = np.asarray(causal_softmax(cases["all -inf"]))
    np.testing.assert_allclose(a[3, :4], 0.25, rtol=1e-6)
    a = np.asarray(causal_softmax(cases["mixed inf"]))
    np.testing.assert_allclose(a[4, [0, 2, 4]], 1 / 3, rtol=1e-6)
    # finite scores: gradients finite too
    g = jax.grad(lambda s: jnp.sum(causal_softmax(s)[:, 0]))(cases["huge spread"])
    assert np.all(np.isfinite(np.asarray(g)))


# ---------------------------------------------------------------------- the log-loss at ε = 0 and ε > 0
def _absent_target_case():
    """Context of token 0 only; the target puts mass 1/2 on token 2 (absent) and 0 on token 1 (absent)."""
    T, S = 4, 3
    tokens = np.zeros((1, T), np.int32)
    y = np.array([[0.5, 0.0, 0.5]])
    return jnp.zeros((T, T)), jnp.eye(S), tokens, y


def test_reduced_loss_eps0_absent_target_is_plus_inf_not_nan():
    """Decision (documented in docs/inputs.md and reduced_loss): ε = 0 and a target token absent from the
    context give +inf (the exact −log 0), never NaN; a zero target entry where ŷ = 0 contributes 0."""
    A1, A2, tokens, y = _absent_target_case()
    assert float(reduced_loss(A1, A2, tokens, y, eps=0.0)) == math.inf
    # only the absent token with zero target mass: finite (0·log 0 = 0)
    y0 = np.array([[1.0, 0.0, 0.0]])
    assert float(reduced_loss(A1, A2, tokens, y0, eps=0.0)) == 0.0
    assert float(cross_entropy(y, np.array([[1.0, 0.0, 0.0]]))[0]) == math.inf


@pytest.mark.parametrize("eps", [1e-12, 1e-6, 1e-3, 0.5])
def test_reduced_loss_eps_positive_finite_with_finite_gradients(eps):
    A1, A2, tokens, y = _absent_target_case()
    with cg.x64():
        A1, A2 = jnp.asarray(A1, jnp.float64), jnp.asarray(A2, jnp.float64)
        vg = jax.jit(jax.value_and_grad(reduced_loss, argnums=(0, 1)), static_argnums=4)
        loss, (g1, g2) = vg(A1, A2, tokens, jnp.asarray(y), eps)
        S = 3
        # ŷ = (1-ε)ĉ + ε/S with ĉ = e_0: the loss is exactly −½log(1-ε+ε/S) − ½log(ε/S)
        expect = -0.5 * math.log(1 - eps + eps / S) - 0.5 * math.log(eps / S)
        assert abs(float(loss) - expect) <= 1e-12 * max(1.0, expect)
        assert np.all(np.isfinite(np.asarray(g1))) and np.all(np.isfinite(np.asarray(g2)))


def test_exact_gradient_eps0_finite_when_supports_are_covered():
    """The exact population gradient at ε = 0 with a strictly positive π: every target token can be absent
    from a context, so the loss is +inf (never NaN); the linearized gradient at init takes the ε → 0 limit and
    stays finite."""
    task = cg.InContextTask(cg.chain(2), 2, 1.0)
    pis = np.array([[[0.7, 0.3], [0.4, 0.6]]])
    g = cg.exact_population_gradient(task, pis, np.zeros((3, 3)), np.eye(2), eps=0.0)
    assert float(g.loss) == math.inf and not np.isnan(float(g.loss))
    G = np.asarray(cg.linearized_gradient_at_init(task, pis, eps=0.0))
    assert np.all(np.isfinite(G))


# ---------------------------------------------------------------------- information measures at exact zeros
ZERO_CASES = {
    "point mass": np.array([[1.0, 0.0], [0.0, 0.0]]),
    "zero row and column": np.array([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.5]]),
    "independent": np.outer([0.25, 0.75], [0.5, 0.5]),
    "deterministic": np.eye(3) / 3,
    "sparse": np.array([[0.0, 0.3], [0.7, 0.0]]),
}


@pytest.mark.parametrize("name", sorted(ZERO_CASES))
def test_information_at_exact_zeros(name):
    P = ZERO_CASES[name]
    with cg.x64():
        Pj = jnp.asarray(P)
        vals = {f.__name__: float(f(Pj)) for f in (mutual_information, chi2_mutual_information, conditional_entropy)}
        vals["entropy"] = float(entropy(Pj.reshape(-1)))
        px = P.sum(1)
        vals["weighted_inner"] = float(weighted_inner(Pj, Pj, jnp.asarray(px)))
        grads = [jax.grad(f)(Pj) for f in (mutual_information, chi2_mutual_information, conditional_entropy)]
    assert all(math.isfinite(v) for v in vals.values()), vals
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads), name
    # exact values where the answer is known in closed form
    sx = {a for a in range(len(px)) if px[a] > 0}
    if name in ("point mass", "independent"):
        assert vals["mutual_information"] == 0.0 and abs(vals["chi2_mutual_information"]) <= 1e-15
    if name in ("deterministic", "zero row and column", "sparse"):
        # Y is a function of X: I = H(X), I_χ² = |supp| − 1, H(Y|X) = 0
        hx = -sum(p * math.log(p) for p in px if p > 0)
        assert abs(vals["mutual_information"] - hx) <= 1e-15
        assert abs(vals["chi2_mutual_information"] - (len(sx) - 1)) <= 1e-14
        assert vals["conditional_entropy"] == 0.0


def test_laws_and_mi_for_reducible_and_periodic_pi():
    """μ with exact zeros (a transient state) and a periodic π: pairwise laws, the reversed chain and M stay
    finite; rows of the reversed chain stay stochastic."""
    graph = cg.chain(4)
    transient = np.array([[0.0, 0.5, 0.5], [0.0, 0.2, 0.8], [0.0, 0.6, 0.4]])  # state 0 never returns
    periodic = _cycle(3)
    with cg.x64():
        for pi in (transient, periodic):
            P = np.asarray(cg.pairwise_joint(graph, jnp.asarray(pi)))
            R = np.asarray(cg.time_reversal(jnp.asarray(pi)))
            M = np.asarray(cg.mi.mi_matrix(graph, jnp.asarray(pi)))
            assert np.all(np.isfinite(P)) and np.all(np.isfinite(R)) and np.all(np.isfinite(M))
            np.testing.assert_allclose(R.sum(-1), 1.0, atol=1e-14)
            np.testing.assert_allclose(P.sum((-2, -1)), 1.0, atol=1e-14)


# ---------------------------------------------------------------------- debug mode catches an injected NaN
def test_debug_guard_catches_injected_nan_on_exact_path(monkeypatch):
    """A NaN injected into the exact enumeration's chunk loss: silent (NaN out) without the guard, a
    FloatingPointError naming the primitive with it."""
    from causal_grad import debug
    from causal_grad.gradients import exact as ex

    orig = ex._chunk_loss

    def poisoned(A1, A2, tokens, Y, eps):
        return orig(A1, A2, tokens, Y, eps) + jnp.sqrt(jnp.min(A1) - 1.0)  # sqrt of a negative: NaN

    monkeypatch.setattr(ex, "_chunk_loss", poisoned)
    # a fresh function object (same code, module globals): JAX keys its trace cache on the function, so this
    # neither reuses a clean trace from an earlier test nor leaves a poisoned one behind, and no cache is cleared
    f = ex._exact.__wrapped__
    fresh = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    fresh.__kwdefaults__ = f.__kwdefaults__
    monkeypatch.setattr(ex, "_exact", jax.jit(fresh, static_argnames=("B", "nchunks")))
    task = cg.InContextTask(cg.chain(2), 2, 1.0)
    pis = np.array([[[0.7, 0.3], [0.4, 0.6]]])
    args = (task, pis, np.zeros((3, 3)), np.eye(2))
    assert math.isnan(float(cg.exact_population_gradient(*args, eps=1e-3).loss))  # silent without the guard
    with pytest.raises(FloatingPointError, match="nan"):
        with debug.guard():
            cg.exact_population_gradient(*args, eps=1e-3)
    cg.exact_population_gradient(*args, eps=1e-3)  # the guard is scoped: silent again afterwards


def test_debug_checked_and_check_finite():
    from causal_grad import debug
    from causal_grad.gradients.exact import all_query_predictions

    A1, A2 = jnp.zeros((3, 3)), jnp.eye(2)
    tokens = jnp.zeros((4, 2), jnp.int32)
    f = debug.checked(all_query_predictions)
    np.testing.assert_array_equal(
        np.asarray(f(A1, A2, tokens, 1e-3)), np.asarray(all_query_predictions(A1, A2, tokens, 1e-3))
    )
    with pytest.raises(FloatingPointError, match="nan"):
        f(A1.at[1, 0].set(jnp.nan), A2, tokens, 1e-3)
    with pytest.raises(IndexError):
        debug.checked(lambda x, i: x[i])(jnp.ones(3), 5)
    debug.check_finite("ok", {"a": np.ones(2), "b": (np.zeros(3), "text")})
    with pytest.raises(FloatingPointError, match=r"g\['b'\]\[0\] holds an infinity"):
        debug.check_finite("g", {"a": np.ones(2), "b": (np.array([0.0, np.inf]),)})


def test_debug_guard_catches_injected_nan_on_training_path():
    """The compiled training chunks under the guard: a loss that turns NaN after a few steps raises
    FloatingPointError; a healthy run under the guard is untouched (chunk losses carry no NaN padding)."""
    import optax

    from causal_grad import debug
    from causal_grad.training.loop import ChunkRunner, task_sampler

    task = cg.InContextTask(cg.chain(3), 3, 0.5)
    T, S = task.seq_len, task.vocab_size
    params = {"A1": jnp.zeros((T, T)), "A2": jnp.eye(S)}

    def make(loss_fn):
        return ChunkRunner(
            loss_fn, task_sampler(task), optax.sgd(1.0), params, {"A1": "A1", "A2": "A2"}, ("A1",), 8, max_chunk=8
        )

    healthy = make(lambda p, t, y: reduced_loss(p["A1"], p["A2"], t, y, 1e-3))
    with debug.guard():
        state, losses = healthy(healthy.init_state(params), KEY, 3)  # 3 < max_chunk steps
    assert np.all(np.isfinite(np.asarray(losses)))

    def poisoned(p, t, y):  # NaN once A1 has moved (after the first update)
        return reduced_loss(p["A1"], p["A2"], t, y, 1e-3) + jnp.log(0.5 - jnp.abs(p["A1"]).sum() * 1e9)

    runner = make(poisoned)
    _, losses = runner(runner.init_state(params), KEY, 4)
    assert np.isnan(np.asarray(losses)[1:]).all()  # silent without the guard
    with pytest.raises(FloatingPointError, match="nan"):
        with debug.guard():
            runner(runner.init_state(params), KEY, 4)
