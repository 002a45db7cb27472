"""The disentangled and standard transformers: shapes, zero initialisation, the fast path against the literal
definition, the link to the reduced model, read-outs, and input checks."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_grad._x64 import x64
from causal_grad.models import causal_softmax, reduced_apply, standard
from causal_grad.models.disentangled import (
    disentangled_apply,
    disentangled_dims,
    disentangled_logits,
    disentangled_loss,
    disentangled_normal,
    disentangled_reference_logits,
    disentangled_zeros,
    induction_block,
    induction_init,
    layer1_attention,
    position_attention,
    readout_block,
)
from causal_grad.models.standard import standard_attention, standard_init, standard_loss, standard_model

# jit every entry point once: eager mode would compile each small op separately (slow on a busy 2-core CPU)
logits_fn = jax.jit(disentangled_logits)
ref_fn = jax.jit(disentangled_reference_logits, static_argnames="query_only_last")
loss_fn = jax.jit(disentangled_loss)
grad_fn = jax.jit(jax.grad(disentangled_loss))

S, T, B = 4, 6, 5
HEADS = [(2,), (2, 1), (1, 2), (2, 2), (1, 2, 1)]  # one, two (the batch-last fast path) and three layers
# float32 forward/backward through two or three softmax layers: a few ulps of the O(1) logits and gradients
TOL = 2e-5


def _tokens(seed=0, b=B):
    return jax.random.randint(jax.random.key(seed), (b, T), 0, S, dtype=jnp.int32)


def _targets(seed=1, b=B):
    return jax.nn.softmax(jax.random.normal(jax.random.key(seed), (b, S)))


@pytest.mark.parametrize("heads", HEADS)
def test_shapes_and_zero_init(heads):
    p = disentangled_zeros(S, T, heads)
    dims = disentangled_dims(S, T, heads)
    assert dims[0] == S + T and all(dims[k + 1] == dims[k] * (1 + h) for k, h in enumerate(heads))
    assert [a.shape for a in p["A"]] == [(h, d, d) for h, d in zip(heads, dims)]
    assert p["W"].shape == (dims[-1], S)
    assert all(not np.any(np.asarray(a)) for a in jax.tree.leaves(p))
    tok, y = _tokens(), _targets()
    np.testing.assert_array_equal(logits_fn(p, tok), 0.0)
    np.testing.assert_allclose(jax.jit(disentangled_apply)(p, tok), 1.0 / S, rtol=1e-6)
    # uniform prediction: the cross-entropy is log S whatever the soft target
    np.testing.assert_allclose(loss_fn(p, tok, y), np.log(S), rtol=1e-6)


@pytest.mark.parametrize("heads", HEADS)
def test_fast_path_matches_definition(heads):
    p = disentangled_normal(jax.random.key(3), S, T, heads, scale=0.7)
    tok, y = _tokens(), _targets()
    ref = ref_fn(p, tok)
    np.testing.assert_allclose(logits_fn(p, tok), ref, atol=TOL)
    np.testing.assert_allclose(ref_fn(p, tok, query_only_last=True), ref, atol=TOL)

    def ref_loss(q):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(disentangled_reference_logits(q, tok)), -1))

    g_fast = grad_fn(p, tok, y)
    g_ref = jax.jit(jax.grad(ref_loss))(p)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, atol=TOL)


PADDED_B = 16384 // math.gcd(T, 16384)  # the smallest batch whose T·B is a multiple of 16,384: the padded path


@pytest.mark.parametrize("heads,b", [((1, 1), 7), ((2, 3), 7), ((2, 1), PADDED_B)])
def test_two_layer_fast_path_matches_definition_in_float64(heads, b):
    """The batch-last two-layer path in float64: logits and gradients equal the dense definition to rounding
    (~1e-15 relative; 1e-10 leaves room for the sums of a few hundred terms, and no float32 error fits).
    ``PADDED_B`` is a batch the path pads (rows of token 0 whose logits are dropped): the padding must change
    no sequence's logits and add nothing to the gradient."""
    from causal_grad._x64 import x64
    from causal_grad.models.disentangled import _lane_pad

    assert (_lane_pad(b, T) > 0) == (b == PADDED_B)
    with x64():
        p = disentangled_normal(jax.random.key(5), S, T, heads, scale=0.9, dtype=jnp.float64)
        tok, y = _tokens(2, b=b), _targets(3, b=b).astype(jnp.float64)

        def ref_loss(q):
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(disentangled_reference_logits(q, tok)), -1))

        np.testing.assert_allclose(
            jax.jit(disentangled_logits)(p, tok), jax.jit(disentangled_reference_logits)(p, tok), rtol=0, atol=1e-10
        )
        g_fast = jax.jit(jax.grad(disentangled_loss))(p, tok, y)
        g_ref = jax.jit(jax.grad(ref_loss))(p)
        for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
            assert a.dtype == jnp.float64
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_first_layer_gradient_at_zero_init_is_finite():
    tok, y = _tokens(), _targets()
    g = grad_fn(disentangled_zeros(S, T, (1, 1)), tok, y)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(g))
    # With W = 0 the logits do not depend on any A: A1 gets no gradient at all (the plateau of joint GD),
    # while W does.
    np.testing.assert_array_equal(g["A"][0], 0.0)
    assert np.abs(np.asarray(g["W"])).max() > 0
    noisy = disentangled_normal(jax.random.key(0), S, T, (2, 1), scale=1e-4)
    g = grad_fn(noisy, tok, y)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(g))
    assert np.abs(np.asarray(g["A"][0])).max() > 0


def test_induction_init_is_the_reduced_model_with_a_softmax_readout():
    """With only the position block of layer 1 set to ``A1``, the layer-wise start's logits are exactly
    ``γ·out`` where ``out`` is the reduced model's layer-2 output for ``(A1, β0·I)`` at ``ε = 0``."""
    beta0, gamma = 1.7, 3.0
    A1 = jax.random.normal(jax.random.key(5), (T, T))
    p = induction_init(S, T, (1, 1), beta0=beta0, gamma=gamma)
    p["A"][0] = p["A"][0].at[0, S:, S:].set(A1)
    tok = _tokens(2, 64)
    out = jax.jit(reduced_apply, static_argnames="eps")(A1, beta0 * jnp.eye(S), tok, eps=0.0)
    np.testing.assert_allclose(logits_fn(p, tok), gamma * out, atol=TOL)
    np.testing.assert_allclose(position_attention(p)[0], causal_softmax(A1), atol=1e-6)
    np.testing.assert_allclose(induction_block(p), beta0 * np.eye(S))
    np.testing.assert_allclose(readout_block(p), gamma * np.eye(S))


def test_attention_readouts_are_causal_distributions():
    p = disentangled_normal(jax.random.key(1), S, T, (2, 1), scale=1.0)
    for att in (jax.jit(position_attention)(p), jax.jit(layer1_attention)(p, _tokens())):
        att = np.asarray(att)
        np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
        assert np.all(np.triu(att, k=1) == 0)
    # the first layer's read-out is the definition's attention softmax_{j<=i}(h_i^T A h_j), h_i = [x(s_i); e_i]
    tok = _tokens()
    h = np.concatenate([np.eye(S)[np.asarray(tok)], np.broadcast_to(np.eye(T), (B, T, T))], -1)
    sc = np.einsum("bid,hde,bje->bhij", h, np.asarray(p["A"][0], np.float64), h)
    sc = np.where(np.tril(np.ones((T, T), bool)), sc, -np.inf)
    want = np.exp(sc - sc.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    np.testing.assert_allclose(jax.jit(layer1_attention)(p, tok), want, atol=TOL)
    m = standard_model(S, T, d_model=8, layers=2, heads=2)
    q = standard_init(m, jax.random.key(0))
    att = np.asarray(jax.jit(lambda q, t: standard_attention(m, q, t))(q, _tokens()))
    assert att.shape == (B, 2, T, T)
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(att, k=1) == 0)


def test_standard_model_shapes_and_loss():
    m = standard_model(S, T, d_model=8, layers=2, heads=2, mlp_ratio=2)
    q = standard_init(m, jax.random.key(0))
    tok, y = _tokens(), _targets()
    logits = np.asarray(jax.jit(m.apply)(q, tok), np.float64)
    assert logits.shape == (B, S)
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    want = -np.mean(np.sum(np.asarray(y) * logp, -1))
    loss, g = jax.jit(jax.value_and_grad(lambda q: standard_loss(m, q, tok, y)))(q)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(g))


def test_bad_input_raises_before_compute():
    p = disentangled_zeros(S, T, (1, 1))
    with pytest.raises(TypeError, match="tokens must be an integer"):
        disentangled_logits(p, np.zeros((2, T), np.float32))
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, 6\)"):
        disentangled_logits(p, np.zeros((2, T + 1), np.int32))
    with pytest.raises(ValueError, match="tokens must lie in"):
        disentangled_logits(p, np.full((2, T), S, np.int32))
    with pytest.raises(ValueError, match="heads must list at least one layer"):
        disentangled_zeros(S, T, ())
    with pytest.raises(ValueError, match=r"heads\[1\] must be >= 1"):
        disentangled_zeros(S, T, (1, 0))
    with pytest.raises(TypeError, match="key"):
        disentangled_normal(None, S, T, (1,), scale=0.1)
    with pytest.raises(ValueError, match="scale must be > 0"):
        disentangled_normal(jax.random.key(0), S, T, (1,), scale=0.0)
    bad = {"A": p["A"], "W": jnp.zeros((7, S))}
    with pytest.raises(ValueError, match="params\\['W'\\] must have shape"):
        disentangled_logits(bad, _tokens())
    with pytest.raises(TypeError, match="params must be a dict"):
        disentangled_logits({"A1": 0}, _tokens())
    with pytest.raises(ValueError, match="targets must have shape"):
        disentangled_loss(p, _tokens(), jnp.ones((B, S + 1)))
    with pytest.raises(ValueError, match="d_model must be divisible by heads"):
        standard_model(S, T, d_model=6, heads=4)
    with pytest.raises(ValueError, match="exactly two layers"):
        induction_init(S, T, (1,))


def test_the_model_protocol_and_build_model():
    """Every registered model: ``init(key, config, S, T)`` key first, ``logits`` ``(B, S)``, ``loss`` its batch-mean
    cross-entropy, ``first_layer_attention`` ``(H, T, T)`` causal rows, and build_model binds them."""
    from causal_grad.models import MODELS, build_model, disentangled, reduced, standard

    assert set(MODELS) >= {"reduced", "disentangled", "standard"}
    tok, y = _tokens(), _targets()
    for cfg in (
        reduced.Config(),
        disentangled.Config(),
        disentangled.Config(heads=(2, 1), init="normal", init_scale=0.5),
        disentangled.Config(init="induction"),
        standard.Config(d_model=8, heads=2),
    ):
        mod = MODELS[cfg.name]
        params = mod.init(jax.random.key(0), cfg, S, T)
        lg = np.asarray(jax.jit(lambda p, t, mod=mod, cfg=cfg: mod.logits(p, t, cfg))(params, tok), np.float64)
        assert lg.shape == (B, S)
        logp = lg - lg.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        want = -np.mean(np.sum(np.asarray(y) * logp, -1))
        np.testing.assert_allclose(
            jax.jit(lambda p, mod=mod, cfg=cfg: mod.loss(p, tok, y, cfg))(params), want, rtol=2e-5
        )
        att = np.asarray(mod.first_layer_attention(params, tok, cfg))
        assert att.ndim == 3 and att.shape[1:] == (T, T)
        np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
        m = build_model(cfg, S, T)
        assert m.group_names == tuple(mod.group_names(cfg)) and len(repr(m)) < 200
        for a, b in zip(jax.tree.leaves(m.init(jax.random.key(0))), jax.tree.leaves(params)):
            np.testing.assert_array_equal(a, b)
    # the all-zero start is an explicit choice, and a missing key is an error, not zeros
    with pytest.raises(TypeError, match="key"):
        disentangled.init(None, disentangled.Config(), S, T)
    with pytest.raises(ValueError, match="init_scale must be > 0"):
        disentangled.Config(init="normal")
    with pytest.raises(TypeError, match="config must be the Config"):
        build_model("reduced", S, T)


def _dense_standard_forward(p: dict, tok: np.ndarray, mlp: bool) -> np.ndarray:
    """The standard transformer written out in NumPy float64, logits at every position ``(B, T, S)``:
    ``h = E[s] + P``; per layer ``h += W_O·concat_h softmax_causal(q_h·k_h/√d_h) v_h`` and, with ``mlp``,
    ``h += W_2 ReLU(W_1 h + b_1) + b_2``; ``logits = h W_out + b_out``."""
    f = lambda x: np.asarray(x, np.float64)  # noqa: E731
    h = f(p["tok_embed"]["embedding"])[tok] + f(p["pos_embed"])[None]
    T = tok.shape[1]
    causal = np.tril(np.ones((T, T), bool))
    for layer in range(sum(k.startswith("attn_") for k in p)):
        W = f(p[f"attn_{layer}"]["qkv"]["kernel"])  # (d, 3, H, dh)
        q, k, v = (np.einsum("btd,dhe->bhte", h, W[:, i]) for i in range(3))
        sc = np.where(causal, q @ k.transpose(0, 1, 3, 2) / np.sqrt(W.shape[-1]), -np.inf)
        att = np.exp(sc - sc.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        h = h + np.einsum("bhte,hed->btd", att @ v, f(p[f"attn_{layer}"]["out"]["kernel"]))
        if mlp:
            m = np.maximum(h @ f(p[f"mlp_in_{layer}"]["kernel"]) + f(p[f"mlp_in_{layer}"]["bias"]), 0.0)
            h = h + m @ f(p[f"mlp_out_{layer}"]["kernel"]) + f(p[f"mlp_out_{layer}"]["bias"])
    return h @ f(p["readout"]["kernel"]) + f(p["readout"]["bias"])


@pytest.mark.parametrize("mlp", [False, True])
def test_standard_transformer_is_the_dense_forward_in_float64(mlp):
    """``Config(mlp=False)``: no MLP leaf in the parameter tree, and ``logits``/``logits_all`` equal the dense
    attention-only forward pass written out above (float64, to round-off); ``mlp=True`` (the default) the same with
    the MLP block. The attention-only initialisation is the default one without its MLP leaves (flax derives each
    parameter's key from its name)."""
    cfg = standard.Config(d_model=8, layers=2, heads=2, mlp_ratio=2, mlp=mlp)
    assert standard.Config(d_model=8, layers=2, heads=2, mlp_ratio=2) == standard.Config(
        d_model=8, layers=2, heads=2, mlp_ratio=2, mlp=True
    )  # the default keeps the MLP
    full = standard.init(jax.random.key(3), standard.Config(d_model=8, layers=2, heads=2, mlp_ratio=2), S, T)
    params = standard.init(jax.random.key(3), cfg, S, T)
    names = set(params["params"])
    if mlp:
        assert names == {"tok_embed", "pos_embed", "attn_0", "attn_1", "mlp_in_0", "mlp_out_0", "mlp_in_1",
                         "mlp_out_1", "readout"}  # fmt: skip
    else:
        assert names == {"tok_embed", "pos_embed", "attn_0", "attn_1", "readout"}
        assert not [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_leaves_with_path(params) if "mlp" in str(k)]
        without = {k: v for k, v in full["params"].items() if not k.startswith("mlp_")}
        jax.tree.map(np.testing.assert_array_equal, params["params"], without)
    tok = np.asarray(_tokens())
    want = _dense_standard_forward(params["params"], tok, mlp)
    with x64():
        p64 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
        lg_all = np.asarray(standard.logits_all(p64, jnp.asarray(tok), cfg))
        lg = np.asarray(standard.logits(p64, jnp.asarray(tok), cfg))
    assert lg_all.dtype == np.float64 and lg_all.shape == (B, T, S)
    np.testing.assert_allclose(lg_all, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lg, want[:, -1], rtol=1e-12, atol=1e-12)


def test_attention_only_flag_is_checked():
    for bad in (0, 1, "no", None):
        with pytest.raises(TypeError, match="mlp must be a bool"):
            standard.Config(mlp=bad)
        with pytest.raises(TypeError, match="mlp must be a bool"):
            standard_model(S, T, d_model=8, mlp=bad)
