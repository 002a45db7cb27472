"""The figure-8 model (causal_grad.models.catformer) against an independent dense implementation, float64.

The reference below is written position by position and head by head with explicit loops (no batched einsum,
no masking with -inf: each query's softmax runs over its own prefix), so it shares no code path with the module.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_grad import x64
from causal_grad.models import catformer as cf


def _dense_logits(p, tokens, heads):
    """Loops over batch-independent positions i, heads h and keys j <= i."""
    S, d = p["E"].shape
    T = d - S
    B = tokens.shape[0]
    h = [jnp.stack([p["E"][tokens[b, i]] + p["P"][i] for b in range(B)]) for i in range(T)]  # T × (B, d)
    for layer, H in enumerate(heads):
        A, V, m = p["A"][layer], p["V"][layer], p["mlp"][layer]
        n_hid = m["W1"].shape[1]
        new = []
        for i in range(T):
            outs = []
            for hh in range(H):
                q = h[i] @ A[hh]  # (B, d)
                s = jnp.stack([jnp.sum(q * h[j], axis=-1) for j in range(i + 1)])  # (i+1, B)
                w = jnp.exp(s - jnp.max(s, axis=0))
                w = w / jnp.sum(w, axis=0)
                outs.append(sum(w[j][:, None] * h[j] for j in range(i + 1)))
            z = jnp.concatenate(outs, axis=-1) @ V
            u = jnp.maximum(z @ m["W1"] * math.sqrt(n_hid / d) + math.sqrt(n_hid) * m["b1"], 0.0)
            new.append(h[i] + u @ m["W2"] * math.sqrt(d / n_hid) + math.sqrt(d) * m["b2"])
        h = new
    return h[T - 1] @ p["W"]


def _dense_attention(p, tokens, H):
    S, d = p["E"].shape
    T = d - S
    out = np.zeros((H, T, T))
    for b in range(tokens.shape[0]):
        x = np.stack([np.asarray(p["E"][tokens[b, i]] + p["P"][i]) for i in range(T)])
        for hh in range(H):
            for i in range(T):
                s = np.array([x[i] @ np.asarray(p["A"][0][hh]) @ x[j] for j in range(i + 1)])
                e = np.exp(s - s.max())
                out[hh, i, : i + 1] += e / e.sum() / tokens.shape[0]
    return out


def _random_params(key, config, S, T):
    """Every parameter non-zero (so every path carries gradient), float64."""
    p = cf.init(key, config, S, T)
    leaves, tree = jax.tree.flatten(p)
    keys = jax.random.split(jax.random.key(99), len(leaves))
    leaves = [
        np.asarray(x, np.float64) + 0.4 * np.asarray(jax.random.normal(k, x.shape), np.float64)
        for x, k in zip(leaves, keys)
    ]
    return jax.tree.unflatten(tree, [jnp.asarray(x, jnp.float64) for x in leaves])


CASES = [((1, 1), None, 3, 5), ((2, 1), None, 3, 4), ((1, 2, 1), 7, 2, 4)]


@pytest.mark.parametrize("heads,width,S,T", CASES)
def test_logits_and_gradients_equal_dense(heads, width, S, T):
    config = cf.Config(heads=heads, mlp_width=width)
    B = 3
    with x64():
        p = _random_params(jax.random.key(1), config, S, T)
        tokens = jax.random.randint(jax.random.key(2), (B, T), 0, S)
        y = jax.nn.softmax(jax.random.normal(jax.random.key(3), (B, S), jnp.float64), axis=-1)
        lg = cf.logits(p, tokens, config)
        ref = jax.jit(lambda p, t: _dense_logits(p, t, heads))(p, tokens)
        assert lg.dtype == jnp.float64 and lg.shape == (B, S)
        np.testing.assert_allclose(lg, ref, rtol=1e-12, atol=1e-12)

        def ref_loss(p):
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(_dense_logits(p, tokens, heads)), axis=-1))

        l1, g1 = jax.jit(jax.value_and_grad(lambda p: cf.loss(p, tokens, y, config)))(p)
        l2, g2 = jax.jit(jax.value_and_grad(ref_loss))(p)
        np.testing.assert_allclose(l1, l2, rtol=1e-12)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
            scale = max(1.0, float(jnp.max(jnp.abs(b))))
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale)
        assert any(float(jnp.max(jnp.abs(g))) > 1e-3 for g in jax.tree.leaves(g1))

        att = cf.first_layer_attention(p, tokens, config)
        np.testing.assert_allclose(att, _dense_attention(p, np.asarray(tokens), heads[0]), atol=1e-12)


def test_init_follows_the_public_construction():
    S, T = 10, 20
    d = S + T
    config = cf.Config()
    p = cf.init(jax.random.key(0), config, S, T)
    assert p["E"].shape == (S, d) and p["P"].shape == (T, d) and p["W"].shape == (d, S)
    assert all(a.shape == (1, d, d) and not np.any(np.asarray(a)) for a in p["A"])
    assert all(v.shape == (d, d) for v in p["V"])
    for m in p["mlp"]:
        assert m["W1"].shape == (d, d) and not np.any(np.asarray(m["W2"]))
        assert not np.any(np.asarray(m["b1"])) and not np.any(np.asarray(m["b2"]))
    assert not np.any(np.asarray(p["W"]))
    # N(0, 1/d) embeddings and value matrices, N(0, 1/m) first MLP layer (m = d here)
    for x in (p["V"][0], p["V"][1], p["mlp"][0]["W1"], jnp.concatenate([p["E"], p["P"]])):
        assert abs(float(jnp.std(x)) * math.sqrt(d) - 1) < 0.1
    # the key layout: one split into 2L + 2 keys, E and P from the last two
    keys = jax.random.split(jax.random.key(0), 6)
    np.testing.assert_array_equal(p["E"], jax.random.normal(keys[-2], (S, d)) / math.sqrt(d))
    np.testing.assert_array_equal(p["V"][1], jax.random.normal(keys[2], (d, d)) / math.sqrt(d))
    # zero readout: uniform prediction, loss log S
    tokens = jnp.zeros((2, T), jnp.int32)
    np.testing.assert_allclose(cf.logits(p, tokens, config), 0.0)
    y = jnp.full((2, S), 1.0 / S)
    np.testing.assert_allclose(cf.loss(p, tokens, y, config), math.log(S), rtol=1e-6)
    # zero attention matrices: uniform causal attention
    att = cf.first_layer_attention(p, tokens, config)
    np.testing.assert_allclose(att[0], np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None], rtol=1e-6)


def test_group_labels_and_names():
    config = cf.Config(heads=(1, 1))
    p = cf.init(jax.random.key(0), config, 3, 4)
    labels = cf.group_labels(p, config)
    assert jax.tree.structure(labels) == jax.tree.structure(p)
    assert labels["A"] == ["A1", "rest"] and labels["E"] == "rest"
    assert set(jax.tree.leaves(labels)) == set(cf.group_names(config))


def test_jit_and_grad_trace():
    config = cf.Config()
    p = cf.init(jax.random.key(0), config, 4, 6)
    tokens = jax.random.randint(jax.random.key(1), (5, 6), 0, 4)
    y = jnp.full((5, 4), 0.25)
    g = jax.jit(jax.grad(lambda p, t, y: cf.loss(p, t, y, config)))(p, tokens, y)
    assert jax.tree.structure(g) == jax.tree.structure(p)


def test_bad_input():
    config = cf.Config()
    p = cf.init(jax.random.key(0), config, 3, 4)
    tok = jnp.zeros((2, 4), jnp.int32)
    with pytest.raises(ValueError, match="heads"):
        cf.Config(heads=(1, 0))
    with pytest.raises(TypeError, match="heads"):
        cf.Config(heads=())
    with pytest.raises(ValueError, match="mlp_width"):
        cf.Config(mlp_width=0)
    with pytest.raises(TypeError, match="config"):
        cf.init(jax.random.key(0), "catformer", 3, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="S must be >= 2"):
        cf.init(jax.random.key(0), config, 1, 4)
    with pytest.raises(ValueError, match="tokens must lie in 0..2"):
        cf.logits(p, tok + 3, config)
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, 4\)"):
        cf.logits(p, jnp.zeros((2, 5), jnp.int32), config)
    with pytest.raises(ValueError, match="targets must have shape"):
        cf.loss(p, tok, jnp.zeros((2, 4)), config)
    with pytest.raises(ValueError, match=r"params\['A'\] must be a list of 3"):
        cf.logits(p, tok, cf.Config(heads=(1, 1, 1)))
    with pytest.raises(TypeError, match="params must be a dict"):
        cf.logits({"A": p["A"]}, tok, config)
    with pytest.raises(ValueError, match="layer must be <= 1"):
        cf.layer_attention(p, tok, config, 2)


def test_registered_and_trainable_through_the_protocol():
    """catformer is in the model registry: build_model binds it, a TrainConfig names it, and a short joint AdamW run
    through causal_grad.train lowers the loss (the figure-8 settings, tiny)."""
    from causal_grad.graphs import random_tree
    from causal_grad.models import MODELS, build_model
    from causal_grad.training import TrainConfig, train
    from causal_grad.training.config import OptimConfig, RunConfig, TaskConfig

    assert MODELS["catformer"] is cf
    cfg = cf.Config()
    m = build_model(cfg, 3, 5)
    p = m.init(jax.random.key(0))
    assert m.group_names == ("A1", "rest") and jax.tree.leaves(m.groups(p)).count("A1") == 1
    tc = TrainConfig(
        task=TaskConfig(random_tree(jax.random.key(1), 4), vocab=3, alpha=0.5),
        model=cfg,
        optim=OptimConfig(schedule="joint", optimizer="adamw", lr=1e-2, weight_decay=2e-4),
        run=RunConfig(steps=20, batch=32, eval_every=10, eval_size=64, log_every=10),
    )
    res = train(tc, progress=False)
    assert res.evals[-1].loss < res.evals[0].loss
