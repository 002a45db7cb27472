"""Next-token loss at every position (issue 18 item 2): the last position is the query-only loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_grad._x64 import x64
from causal_grad.models.registry import build_model, model_config, next_token_cross_entropy
from causal_grad.ngram import NGramTask

S, T, B = 3, 8, 16

CONFIGS = [
    model_config("reduced", beta0=2.0),
    model_config("disentangled", heads=(1, 1), init="normal", init_scale=0.5),
    model_config("disentangled", heads=(2, 1, 1), init="normal", init_scale=0.3),
    model_config("disentangled", heads=(1,), init="normal", init_scale=0.5),
    model_config("standard", d_model=16, layers=2, heads=2, mlp_ratio=2),
    model_config("catformer", heads=(1, 1)),
    model_config("catformer", heads=(2, 1), mlp_width=8),
]


def _data():
    task = NGramTask(S, 1, T, alpha=1.0)
    return task.sample_next_token(jax.random.key(3), B)


def _params(m):
    p = m.init(jax.random.key(1))
    if m.name == "reduced":  # a non-trivial first layer
        p = {**p, "A1": jax.random.normal(jax.random.key(2), p["A1"].shape)}
    if m.name == "catformer":  # attention, the MLP's last layer and the readout start at zero: perturb them all
        leaves, tree = jax.tree.flatten(p)
        keys = jax.random.split(jax.random.key(2), len(leaves))
        p = jax.tree.unflatten(tree, [a + 0.3 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)])
    return p


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.name}-{getattr(c, 'heads', '')}")
def test_last_position_is_query_only(config):
    m = build_model(config, S, T)
    p = _params(m)
    tok, Y = _data()
    L = jax.jit(m.logits_all)(p, tok)
    assert L.shape == (B, T, S)
    # float32 through two or three softmax layers: a few ulps of O(1) logits (each function compiled, as training
    # runs them)
    np.testing.assert_allclose(L[:, -1], jax.jit(m.logits)(p, tok), atol=2e-5)
    per_pos = -jnp.sum(Y * jax.nn.log_softmax(L, -1), -1).mean(0)  # (T,)
    np.testing.assert_allclose(per_pos[-1], jax.jit(m.loss)(p, tok, Y[:, -1]), rtol=2e-6)
    np.testing.assert_allclose(jax.jit(m.next_token_loss)(p, tok, Y), per_pos.mean(), rtol=2e-6)
    # causality: changing the last token changes nothing before it
    tok2 = tok.at[:, -1].set((tok[:, -1] + 1) % S)
    np.testing.assert_array_equal(jax.jit(m.logits_all)(p, tok2)[:, :-1], L[:, :-1])


@pytest.mark.parametrize("config", CONFIGS[:3] + CONFIGS[5:], ids=lambda c: f"{c.name}-{getattr(c, 'heads', '')}")
def test_last_position_is_query_only_float64(config):
    with x64():
        m = build_model(config, S, T)
        p = jax.tree.map(lambda a: a.astype(jnp.float64), _params(m))
        tok, Y = _data()
        Y = Y.astype(jnp.float64)
        L = jax.jit(m.logits_all)(p, tok)
        np.testing.assert_allclose(L[:, -1], jax.jit(m.logits)(p, tok), rtol=1e-12, atol=1e-12)
        per_pos = -jnp.sum(Y * jax.nn.log_softmax(L, -1), -1).mean(0)
        np.testing.assert_allclose(per_pos[-1], jax.jit(m.loss)(p, tok, Y[:, -1]), rtol=1e-12)


def test_next_token_refusals():
    with pytest.raises(ValueError, match="targets"):
        next_token_cross_entropy(jnp.zeros((2, 3, 4)), jnp.zeros((2, 4)))
