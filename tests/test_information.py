"""Information measures: definitions against plain NumPy loops, exact zeros, broadcasting, inequalities."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import causal_grad as cg
from causal_grad.information import (
    chi2_mutual_information,
    conditional_entropy,
    entropy,
    joint_entropy,
    mutual_information,
    weighted_inner,
)


def joints(max_s=4):
    """Joint laws with zeros allowed (shrinks to uniform)."""

    def build(shape):
        a, b = shape
        # no subnormal masses: XLA on CPU flushes subnormals to zero, so a mass of 1e-308 would read as 0
        w = st.one_of(st.just(0.0), st.floats(1e-300, 1.0))
        return st.lists(w, min_size=a * b, max_size=a * b).map(lambda w: _normalise(np.asarray(w).reshape(a, b)))

    return st.tuples(st.integers(1, max_s), st.integers(1, max_s)).flatmap(build)


def _normalise(w):
    s = w.sum()
    return w / s if s > 0 else np.full(w.shape, 1.0 / w.size)


def loops(P):
    px, py = P.sum(1), P.sum(0)
    kl = chi = 0.0
    for a in range(P.shape[0]):
        for b in range(P.shape[1]):
            if P[a, b] > 0:
                kl += P[a, b] * (math.log(P[a, b] / px[a]) - math.log(py[b]))
                chi += (P[a, b] / px[a]) * (P[a, b] / py[b])  # P²/(px py) without under/overflow
    return kl, chi - 1.0


def f64(fn, *a):
    with cg.x64():
        return np.asarray(fn(*(jnp.asarray(x, jnp.float64) for x in a)))


@settings(max_examples=200)
@given(joints())
def test_definitions_and_inequalities(P):
    kl, chi = loops(P)
    # zero rows/columns are dropped by definition, so padding to 4×4 changes nothing (and keeps one shape)
    Pad = np.zeros((4, 4))
    Pad[: P.shape[0], : P.shape[1]] = P
    I, C = float(f64(mutual_information, Pad)), float(f64(chi2_mutual_information, Pad))
    assert abs(I - kl) <= 1e-12 and abs(C - chi) <= 1e-12
    # 0 ≤ I ≤ log(1 + I_χ²) (Jensen), I_χ² ≤ min(#supports) − 1
    assert -1e-15 <= I <= math.log1p(max(C, 0.0)) + 1e-12
    k = min((P.sum(1) > 0).sum(), (P.sum(0) > 0).sum())
    assert -1e-12 <= C <= k - 1 + 1e-12
    # I = H(X) + H(Y) − H(X,Y) and H(Y|X) = H(X,Y) − H(X)
    hx, hy, hxy = (float(f64(entropy, Pad.sum(1))), float(f64(entropy, Pad.sum(0))), float(f64(joint_entropy, Pad)))
    assert abs(I - (hx + hy - hxy)) <= 1e-12
    assert abs(float(f64(conditional_entropy, Pad)) - (hxy - hx)) <= 1e-12
    # ⟨P, P⟩_μ = 1 + I_χ² when both marginals are μ (symmetrise the square padded law)
    Ps = (Pad + Pad.T) / 2
    mu = Ps.sum(1)
    assert abs(float(f64(weighted_inner, Ps, Ps, mu)) - 1 - float(f64(chi2_mutual_information, Ps))) <= 1e-12


def test_exact_values_zeros_and_broadcast():
    S = 4
    indep = np.outer([0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.5, 0.0])
    ident = np.diag([0.25] * 4)
    stack = np.stack([indep, ident])
    I = f64(mutual_information, stack)
    C = f64(chi2_mutual_information, stack)
    assert I.shape == (2,) and np.all(np.isfinite(I)) and np.all(np.isfinite(C))
    assert abs(I[0]) <= 1e-15 and abs(C[0]) <= 1e-15
    assert abs(I[1] - math.log(S)) <= 1e-15 and abs(C[1] - (S - 1)) <= 1e-14
    # tiny marginals: no overflow, no NaN
    tiny = np.array([[1 - 1e-300, 0.0], [0.0, 1e-300]])
    assert abs(float(f64(chi2_mutual_information, tiny)) - 1.0) <= 1e-12
    assert np.isfinite(f64(weighted_inner, tiny, tiny, tiny.sum(1)))


def test_gradients_are_finite_at_zeros():
    P = jnp.asarray(np.array([[0.5, 0.0], [0.25, 0.25]]))
    with cg.x64():
        for fn in (mutual_information, chi2_mutual_information, entropy, conditional_entropy):
            g = jax.grad(lambda p, fn=fn: jnp.sum(fn(p)))(jnp.asarray(P, jnp.float64))
            assert np.all(np.isfinite(np.asarray(g))), fn.__name__


def test_weighted_inner_drops_zero_mu():
    mu = np.array([0.5, 0.5, 0.0])
    P = np.zeros((3, 3))
    P[:2, :2] = 0.25
    assert abs(float(f64(weighted_inner, P, P, mu)) - 1.0) <= 1e-15
