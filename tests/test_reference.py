"""causal_grad.benchmarks.reference: the public code's sampler and step, re-implemented as the speed reference.

The one-off comparison with the real public code (bit-identical samples and gradients) is recorded in the module's
docstring; these tests check that the re-implementation keeps doing what the paper's task and model say.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_grad import x64
from causal_grad.benchmarks import reference as ref
from causal_grad.models.disentangled import disentangled_loss


def test_sampler_shapes_and_law():
    parents = (-1, 0, 1, 1, -1, 4)
    sample = ref.paper_sampler(parents, S=4, alpha=0.5)
    tok, y = sample(jax.random.PRNGKey(0), 256)
    assert tok.shape == (256, 7) and y.shape == (256, 4)
    assert tok.dtype == jnp.int32 and y.dtype == jnp.float32
    assert int(tok.min()) >= 0 and int(tok.max()) < 4
    np.testing.assert_allclose(jnp.sum(y, -1), 1.0, rtol=1e-5)
    # the same key gives the same batch; typed keys work too
    tok2, _ = sample(jax.random.PRNGKey(0), 256)
    np.testing.assert_array_equal(tok, tok2)
    assert sample(jax.random.key(0), 3)[0].shape == (3, 7)


def test_stationary_law():
    pi = jax.random.dirichlet(jax.random.PRNGKey(1), jnp.ones(5), (5,))
    mu = ref.paper_stationary(pi)
    np.testing.assert_allclose(mu @ pi, mu, atol=1e-5)
    np.testing.assert_allclose(jnp.sum(mu), 1.0, rtol=1e-6)


def test_loss_and_gradient_equal_the_disentangled_model():
    """The reference model is causal_grad's disentangled transformer, computed densely: same loss and gradient."""
    S, T = 4, 6
    with x64():
        p = ref.paper_init(S, T, (1, 1))
        keys = jax.random.split(jax.random.PRNGKey(2), 3)
        p = {
            "A": [
                0.5 * jax.random.normal(keys[0], p["A"][0].shape, jnp.float64),
                0.5 * jax.random.normal(keys[1], p["A"][1].shape, jnp.float64),
            ],
            "W": 0.5 * jax.random.normal(keys[2], p["W"].shape, jnp.float64),
        }
        tok = jax.random.randint(jax.random.PRNGKey(3), (16, T), 0, S)
        y = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(4), (16, S), jnp.float64), -1)
        # compiled: the same float64 arithmetic as op by op, without compiling every primitive of the backward pass
        l1, g1 = jax.jit(jax.value_and_grad(ref.paper_loss))(p, tok, y)
        l2, g2 = jax.jit(jax.value_and_grad(disentangled_loss))(p, tok, y)
        np.testing.assert_allclose(l1, l2, rtol=1e-12)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_step_is_gradient_descent_with_decay():
    S, T = 3, 4
    p = ref.paper_init(S, T, (1, 1))
    p = jax.tree.map(lambda a: a + 0.1, p)
    tok, y = ref.paper_sampler((-1, 0, 1), S, 0.1)(jax.random.PRNGKey(5), 8)
    g = jax.jit(jax.grad(ref.paper_loss))(p, tok, y)
    new = jax.jit(ref.paper_step)(p, tok, y, 0.5, 0.01)
    for a, b, c in zip(jax.tree.leaves(new), jax.tree.leaves(p), jax.tree.leaves(g)):
        np.testing.assert_allclose(a, b - 0.5 * (c + 0.01 * b), rtol=1e-5, atol=1e-7)


def test_bad_input():
    with pytest.raises(ValueError, match="parents"):
        ref.paper_sampler((0,), 3)
    with pytest.raises(ValueError, match="S must be >= 2"):
        ref.paper_sampler((-1, 0), 1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        ref.paper_sampler((-1, 0), 3, 0.0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        ref.paper_sampler((-1, 0), 3)(jax.random.PRNGKey(0), 0)
    with pytest.raises(TypeError, match="heads"):
        ref.paper_init(3, 4, ())
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        ref.measure(0)
