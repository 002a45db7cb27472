"""causal_grad.interop.transformer_lens: the HookedTransformer export gives the toolkit's logits and attention."""

from __future__ import annotations

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
tl = pytest.importorskip("transformer_lens")
if not hasattr(tl, "HookedTransformerConfig"):
    pytest.skip(
        "transformer_lens >= 4 has no HookedTransformer (the extra pins transformer_lens<4)", allow_module_level=True
    )

from causal_grad.interop import transformer_lens as tlx
from causal_grad.models import disentangled as dis
from causal_grad.models import standard as std

# float32 on both sides: logits of size O(1-10) agree to a few ulps of float32 times the depth
RTOL, ATOL = 1e-5, 1e-5


def _tokens(S, T, B=6, seed=3):
    return np.array(jax.random.randint(jax.random.key(seed), (B, T), 0, S), dtype=np.int32)


@pytest.mark.parametrize(("d", "layers", "heads", "mlp"), [(16, 2, 1, True), (24, 3, 2, True), (16, 2, 1, False)])
def test_standard_export_has_equal_logits_and_attention(d, layers, heads, mlp):
    """With the MLP (the default) and without (``mlp=False``: TL's ``attn_only``, the ICL-MC model)."""
    S, T = 5, 9
    module = std.standard_model(S, T, d_model=d, layers=layers, heads=heads, mlp=mlp)
    params = std.standard_init(module, jax.random.key(7))
    tok = _tokens(S, T)
    model = tlx.standard_to_hooked(params)
    assert model.cfg.n_layers == layers and model.cfg.n_heads == heads and model.cfg.attn_only is not mlp
    if mlp:
        assert model.cfg.d_mlp == 4 * d
    with torch.no_grad():
        logits, cache = model.run_with_cache(torch.as_tensor(tok, dtype=torch.long))
    ours = np.asarray(std.standard_logits(module, params, tok))
    np.testing.assert_allclose(logits[:, -1].numpy(), ours, rtol=RTOL, atol=ATOL)
    for layer in range(layers):
        att = np.asarray(std.standard_attention(module, params, tok, layer))
        np.testing.assert_allclose(cache["pattern", layer].numpy(), att, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("heads", [(1, 1), (2, 1)])
def test_disentangled_export_has_equal_logits_and_attention(heads):
    S, T = 4, 7
    params = dis.disentangled_normal(jax.random.key(1), S, T, heads, scale=0.5)
    tok = _tokens(S, T)
    model = tlx.disentangled_to_hooked(params, T)
    with torch.no_grad():
        logits, cache = model.run_with_cache(torch.as_tensor(tok, dtype=torch.long))
    ours = np.asarray(dis.disentangled_logits(params, tok))
    np.testing.assert_allclose(logits[:, -1].numpy(), ours, rtol=RTOL, atol=ATOL)
    first = np.asarray(dis.layer1_attention(params, tok))  # (B, H, T, T)
    np.testing.assert_allclose(cache["pattern", 0].numpy()[:, : heads[0]], first, rtol=RTOL, atol=ATOL)


def test_head_detector_finds_a_previous_token_head():
    """A standard transformer whose layer-0 head attends from i to i-1 (position embeddings, shifted queries)."""
    S, T, d = 4, 8, 16
    module = std.standard_model(S, T, d_model=d, layers=1, heads=1)
    params = jax.tree.map(np.zeros_like, std.standard_init(module, jax.random.key(0)))
    p = params["params"]
    p["pos_embed"] = np.eye(T, d, dtype=np.float32)
    qkv = np.zeros((d, 3, 1, d), np.float32)
    qkv[np.arange(1, T), 0, 0, np.arange(T - 1)] = 12.0  # q_i = 12·e_{i-1}
    qkv[np.arange(T), 1, 0, np.arange(T)] = 12.0  # k_j = 12·e_j
    p["attn_0"]["qkv"]["kernel"] = qkv
    model = tlx.standard_to_hooked(params)
    tok = _tokens(S, T, B=3)
    scores = tlx.head_detector_scores(model, tok, "previous_token_head")
    assert scores.shape == (1, 1) and scores[0, 0] > 0.85  # row 0 can only attend to itself
    chain = np.eye(T, k=-1)
    np.testing.assert_allclose(tlx.head_detector_scores(model, tok, chain), scores)
    with pytest.raises(ValueError, match="pattern must be one of"):
        tlx.head_detector_scores(model, tok, "nope")


def test_bad_params_are_named():
    with pytest.raises(TypeError, match="standard transformer's flax variables"):
        tlx.standard_to_hooked({"A": []})
    full = std.standard_init(std.standard_model(3, 5, d_model=8, layers=2), jax.random.key(0))
    partial = {"params": {k: v for k, v in full["params"].items() if k != "mlp_out_1"}}  # one MLP half missing
    with pytest.raises(ValueError, match="expected attn_<l>, mlp_in_<l>, mlp_out_<l>"):
        tlx.standard_config(partial)
    params = dis.disentangled_zeros(3, 5, (1, 1))
    with pytest.raises(ValueError, match="S \\+ T"):
        tlx.disentangled_to_hooked(params, 6)
