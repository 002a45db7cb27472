"""A standard transformer (docs/theory.md §3, the paper's figure 8), as a flax linen module.

Learned token and position embeddings are added: ``h_i = E_tok[s_i] + E_pos[i] ∈ R^d``. Each of ``L`` layers is

    h ← h + W_O · concat_h( softmax_{j≤i}((W_Q^h h_i)·(W_K^h h_j)/√d_h) · W_V^h h_j ),
    h ← h + W_2 · ReLU(W_1 h + b_1) + b_2,

(residual sums, no normalisation, as in the paper's description), and the readout is linear at the query,
``logits = W_out h_{T-1} + b_out``. Trained with AdamW (docs/theory.md §5). With ``mlp=False`` the second line is
left out of every layer (an attention-only transformer, as Edelman et al. 2024's ICL-MC model): each layer is the
attention sum alone, and the parameters hold no ``mlp_in_<l>``/``mlp_out_<l>`` entries.

The parameters are flax's variable dict ``{"params": …}``; the architecture lives in the
:class:`StandardTransformer` module (a frozen dataclass), so ``module.apply(params, tokens)`` is a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .._validate import check_array, check_int, check_key, check_tokens

__all__ = [
    "Config",
    "init",
    "logits",
    "loss",
    "first_layer_attention",
    "group_labels",
    "group_names",
    "induction",
    "module_for",
    "StandardTransformer",
    "standard_model",
    "standard_init",
    "standard_logits",
    "standard_loss",
    "standard_attention",
    "standard_logits_all",
    "logits_all",
]


class _Attention(nn.Module):
    d_model: int
    heads: int

    @nn.compact
    def __call__(self, h):
        B, T, d = h.shape
        dh = self.d_model // self.heads
        qkv = nn.DenseGeneral((3, self.heads, dh), use_bias=False, name="qkv")(h)  # (B, T, 3, H, dh)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        scores = jnp.einsum("bihd,bjhd->bhij", q, k) / np.sqrt(dh)
        mask = jnp.tril(jnp.ones((T, T), dtype=bool))
        P = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
        out = jnp.einsum("bhij,bjhd->bihd", P, v)
        out = nn.DenseGeneral(self.d_model, axis=(-2, -1), use_bias=False, name="out")(out)
        return out, P


class StandardTransformer(nn.Module):
    """``vocab_size`` ``S``, ``seq_len`` ``T``; ``d_model``, ``layers``, ``heads`` per layer, MLP width
    ``mlp_ratio·d_model`` (``mlp=False``: no MLP block, attention only; ``mlp_ratio`` is then unused).
    ``__call__(tokens)`` returns the logits at the query ``(B, S)``;
    ``__call__(tokens, return_attention=True)`` also returns each layer's attention ``(B, H, T, T)``;
    ``all_positions=True`` reads out every position, ``(B, T, S)`` (the same parameters)."""

    vocab_size: int
    seq_len: int
    d_model: int = 64
    layers: int = 2
    heads: int = 1
    mlp_ratio: int = 4
    mlp: bool = True

    @nn.compact
    def __call__(self, tokens, return_attention: bool = False, all_positions: bool = False):
        tok = nn.Embed(self.vocab_size, self.d_model, name="tok_embed")(tokens)
        pos = self.param("pos_embed", nn.initializers.normal(0.02), (self.seq_len, self.d_model))
        h = tok + pos[None]
        atts = []
        for layer in range(self.layers):
            out, P = _Attention(self.d_model, self.heads, name=f"attn_{layer}")(h)
            atts.append(P)
            h = h + out
            if self.mlp:
                m = nn.Dense(self.mlp_ratio * self.d_model, name=f"mlp_in_{layer}")(h)
                h = h + nn.Dense(self.d_model, name=f"mlp_out_{layer}")(nn.relu(m))
        logits = nn.Dense(self.vocab_size, name="readout")(h if all_positions else h[:, -1])
        return (logits, atts) if return_attention else logits


def standard_model(
    vocab_size: int,
    seq_len: int,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 1,
    mlp_ratio: int = 4,
    mlp: bool = True,
) -> StandardTransformer:
    """A checked :class:`StandardTransformer` (``d_model`` divisible by ``heads``; ``mlp`` a bool: ``False`` is the
    attention-only transformer)."""
    S = check_int("vocab_size", vocab_size, minimum=2)
    T = check_int("seq_len", seq_len, minimum=1)
    d = check_int("d_model", d_model, minimum=1)
    L = check_int("layers", layers, minimum=1)
    H = check_int("heads", heads, minimum=1)
    r = check_int("mlp_ratio", mlp_ratio, minimum=1)
    mlp = _check_mlp(mlp)
    if d % H:
        raise ValueError(f"d_model must be divisible by heads, got d_model={d}, heads={H}")
    return StandardTransformer(S, T, d, L, H, r, mlp)


def _check_mlp(mlp) -> bool:
    if not isinstance(mlp, (bool, np.bool_)):
        raise TypeError(f"mlp must be a bool (False: attention only, no MLP block), got {type(mlp).__name__} {mlp!r}")
    return bool(mlp)


def standard_init(module: StandardTransformer, key: jax.Array) -> dict:
    """Flax's default initialisation (LeCun-normal dense layers, N(0, 1) token embedding, N(0, 0.02²)
    positions)."""
    _check_module(module)
    key = check_key("key", key)
    return cast(dict, module.init(key, jnp.zeros((1, module.seq_len), jnp.int32)))  # flax returns a plain dict


def _check_module(module):
    if not isinstance(module, StandardTransformer):
        raise TypeError(f"module must be a StandardTransformer (from standard_model), got {type(module).__name__}")
    return module


def _check_tokens(module, tokens):
    # integer (B, T), B >= 1; values in 0..S-1 when concrete (not traced)
    _check_module(module)
    return check_tokens("tokens", tokens, seq_len=module.seq_len, vocab_size=module.vocab_size)


def standard_logits(module: StandardTransformer, params: dict, tokens: ArrayLike) -> jax.Array:
    """Logits at the query ``(B, S)``."""
    tokens = _check_tokens(module, tokens)
    return cast(jax.Array, module.apply(params, tokens))


def standard_logits_all(module: StandardTransformer, params: dict, tokens: ArrayLike) -> jax.Array:
    """Logits at every position ``(B, T, S)`` (the readout applied to each position's last-layer state; causal
    attention, so position ``t`` sees ``s_0 … s_t``); the last position is :func:`standard_logits`."""
    tokens = _check_tokens(module, tokens)
    return cast(jax.Array, module.apply(params, tokens, all_positions=True))


def standard_loss(module: StandardTransformer, params: dict, tokens: ArrayLike, targets: ArrayLike) -> jax.Array:
    """Mean cross-entropy ``−Σ_b y_b log softmax(logits)_b`` against the soft targets."""
    B = len(_check_tokens(module, tokens))
    check_array("targets", targets, shape=(B, module.vocab_size))
    logits = standard_logits(module, params, tokens)
    return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1))


def standard_attention(module: StandardTransformer, params: dict, tokens: ArrayLike, layer: int = 0) -> jax.Array:
    """Attention of layer ``layer`` on ``tokens``: ``(B, H, T, T)``."""
    layer = check_int("layer", layer, minimum=0, maximum=_check_module(module).layers - 1)
    tokens = _check_tokens(module, tokens)
    _, atts = cast(Any, module.apply(params, tokens, return_attention=True))  # (logits, per-layer attentions)
    return atts[layer]


# ---------------------------------------------------------------------- the model protocol
@dataclass(frozen=True)
class Config:
    """The standard transformer's hyper-parameters: width ``d_model`` (divisible by ``heads``), ``layers``,
    ``heads`` per layer, MLP width ``mlp_ratio·d_model``; ``mlp=False`` drops the MLP block of every layer (the
    attention-only transformer of Edelman et al. 2024; ``mlp_ratio`` is then unused). Initialisation: flax's
    default (:func:`standard_init`)."""

    d_model: int = 64
    layers: int = 2
    heads: int = 1
    mlp_ratio: int = 4
    mlp: bool = True
    name: str = field(default="standard", init=False)

    def __post_init__(self):
        for f in ("d_model", "layers", "heads", "mlp_ratio"):
            object.__setattr__(self, f, check_int(f, getattr(self, f), minimum=1))
        object.__setattr__(self, "mlp", _check_mlp(self.mlp))
        if self.d_model % self.heads:
            raise ValueError(f"d_model must be divisible by heads, got d_model={self.d_model}, heads={self.heads}")


def module_for(config: Config, S: int, T: int) -> StandardTransformer:
    """The flax module of ``config`` for vocabulary ``S`` and sequence length ``T``."""
    _config(config)
    S = check_int("S", S, minimum=2)
    T = check_int("T", T, minimum=1)
    return standard_model(S, T, config.d_model, config.layers, config.heads, config.mlp_ratio, config.mlp)


def _module_of(params, config: Config) -> StandardTransformer:
    try:
        p = params["params"]
        S, T = int(p["readout"]["bias"].shape[0]), int(p["pos_embed"].shape[0])
    except (KeyError, TypeError, IndexError, AttributeError):
        raise TypeError(
            "params must be the standard transformer's flax variables {'params': {...}} (from init)"
        ) from None
    return StandardTransformer(S, T, config.d_model, config.layers, config.heads, config.mlp_ratio, config.mlp)


def _config(config) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"config must be a causal_grad.models.standard.Config, got {type(config).__name__}")
    return config


def init(key: jax.Array, config: Config, S: int, T: int) -> dict:
    """Flax's default initialisation from ``key`` (:func:`standard_init`)."""
    _config(config)
    return standard_init(module_for(config, S, T), key)


def logits(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    _config(config)
    return standard_logits(_module_of(params, config), params, tokens)


def logits_all(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """Logits at every position ``(B, T, S)`` (:func:`standard_logits_all`)."""
    _config(config)
    return standard_logits_all(_module_of(params, config), params, tokens)


def loss(params: dict, tokens: jax.Array, targets: jax.Array, config: Config) -> jax.Array:
    _config(config)
    return standard_loss(_module_of(params, config), params, tokens, targets)


def first_layer_attention(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """Layer 0's attention on ``tokens`` averaged over the batch: ``(H, T, T)``."""
    _config(config)
    return jnp.mean(standard_attention(_module_of(params, config), params, tokens, 0), axis=0)


def group_labels(params: dict, config: Config) -> dict:
    """One group, ``all``: the standard transformer trains jointly."""
    _config(config)
    return jax.tree.map(lambda _: "all", params)


def group_names(config: Config) -> tuple[str, ...]:
    _config(config)
    return ("all",)


def induction(params: dict, config: Config) -> None:
    """No induction block is read out of the standard transformer."""
    _config(config)
    return None
