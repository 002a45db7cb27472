"""The transformer of the paper's figure 8 as its public code builds it (docs/theory.md §3, §6).

The public code's ``catformer.Transformer`` is not the flax transformer of :mod:`causal_grad.models.standard`
(query/key products scaled by ``1/√d_h``, an output projection, the MLP beside the attention): it keeps the
disentangled model's one matrix per head and adds a value matrix, random embeddings and an MLP *in series*. With
``d = S + T`` (the width is fixed, the residual is a sum) and ``h_i ∈ R^d``:

* embedding ``h_i = E[s_i] + P[i]`` with ``E ∈ R^{S×d}``, ``P ∈ R^{T×d}``, entries ``N(0, 1/d)``;
* layer ``ℓ`` with ``H_ℓ`` heads ``A_{ℓ,h} ∈ R^{d×d}`` (zero at initialisation, no ``1/√d`` scaling):
  ``α^h_{ij} = softmax_{j≤i}(h_iᵀ A_{ℓ,h} h_j)``, ``o_i = [Σ_j α^1_{ij} h_j; …; Σ_j α^H_{ij} h_j] ∈ R^{H d}``,
  then ``h_i ← h_i + MLP_ℓ(o_i V_ℓ)`` with ``V_ℓ ∈ R^{Hd×d}`` (entries ``N(0, 1/d)``);
* ``MLP_ℓ(z) = ReLU(z (c_1 W_1) + √m b_1) (c_2 W_2) + √d b_2`` — the public code's "muP" linear layers: an
  ``n → n'`` layer stores ``W`` with entries ``N(0, 1/n')`` (the last layer of the MLP starts at zero) and
  multiplies it by ``c = √(n'/n)`` and its bias (zero at start) by ``√n'`` in the forward pass; hidden width
  ``m`` (the public code: ``m = d``, so ``c_1 = c_2 = 1``);
* readout ``logits = Wᵀ h_{T-1}``, ``W ∈ R^{d×S}`` zero at start, no bias; the loss the batch mean of
  ``−Σ_c y_c log softmax(logits)_c`` against the soft target. :func:`logits_all` reads ``Wᵀ h_t`` out at every
  position ``t`` (causal attention: ``h_t`` sees ``s_0 … s_t`` only), which the next-token loss uses (issue 18);
  its last position is :func:`logits`.

The public code supports one head per layer only (its ``V`` is ``d×d``); ``heads > 1`` here uses
``V ∈ R^{Hd×d}``, which reduces to it at ``H = 1``. With the same ``jax.random`` key, :func:`init` draws the same
numbers as the public constructor (one split into ``2L + 2`` keys: ``V_ℓ`` from key ``2ℓ``, the MLP from key
``2ℓ+1`` split in two, ``E`` and ``P`` from the last two). The paper trains it jointly with AdamW (lr 1e-2,
weight decay 2e-4, cosine decay, 2^12 steps of 1024; docs/paper_settings.md).

Parameters: ``{"E", "P", "A": [(H_ℓ, d, d)], "V": [(H_ℓ d, d)], "mlp": [{"W1", "b1", "W2", "b2"}], "W"}``.

Checked once against the public code's ``Transformer`` (2026-12-01, run from a throwaway directory, not part of the
project), S = 10, T = 20, heads [1, 1]: from the same key every initial array is bit-identical; on the same
perturbed weights in float64 the predicted probabilities differ by at most 6.5e-15 and every gradient by at most
1.1e-14 relative to its largest entry. tests/test_catformer.py checks the module against a dense implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from .._validate import check_array, check_int, check_key, check_tokens

__all__ = [
    "Config",
    "embed",
    "first_layer_attention",
    "group_labels",
    "group_names",
    "init",
    "layer_attention",
    "logits",
    "logits_all",
    "loss",
]


@dataclass(frozen=True)
class Config:
    """Heads per layer (one layer per entry, each ``>= 1``; the paper: ``(1, 1)``) and the MLP's hidden width
    (``None``: the residual width ``d = S + T``, as the public code)."""

    heads: tuple[int, ...] = (1, 1)
    mlp_width: int | None = None
    name: str = field(default="catformer", init=False)

    def __post_init__(self):
        heads = self.heads
        if isinstance(heads, (str, bytes)) or not hasattr(heads, "__len__") or len(heads) == 0:
            raise TypeError(f"heads must be a non-empty sequence of head counts per layer, got {heads!r}")
        object.__setattr__(self, "heads", tuple(check_int(f"heads[{k}]", h, minimum=1) for k, h in enumerate(heads)))
        if self.mlp_width is not None:
            object.__setattr__(self, "mlp_width", check_int("mlp_width", self.mlp_width, minimum=1))


def _check_config(config) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"config must be a catformer Config, got {type(config).__name__}")
    return config


def _width(config: Config, d: int) -> int:
    return d if config.mlp_width is None else config.mlp_width


def init(key: jax.Array, config: Config, S: int, T: int) -> dict:
    """Float32 parameters as the public code draws them from ``key`` (see the module docstring)."""
    key = check_key("key", key)
    _check_config(config)
    S = check_int("S", S, minimum=2)
    T = check_int("T", T, minimum=1)
    d = S + T
    m = _width(config, d)
    L = len(config.heads)
    keys = jax.random.split(key, 2 * L + 2)
    A, V, mlp = [], [], []
    for layer, H in enumerate(config.heads):
        A.append(jnp.zeros((H, d, d), jnp.float32))
        V.append(jax.random.normal(keys[2 * layer], (H * d, d), jnp.float32) / math.sqrt(d))
        k1, _ = jax.random.split(keys[2 * layer + 1], 2)  # the second key would draw the zero-initialised layer
        mlp.append(
            {
                "W1": jax.random.normal(k1, (d, m), jnp.float32) / math.sqrt(m),
                "b1": jnp.zeros((m,), jnp.float32),
                "W2": jnp.zeros((m, d), jnp.float32),
                "b2": jnp.zeros((d,), jnp.float32),
            }
        )
    return {
        "E": jax.random.normal(keys[-2], (S, d), jnp.float32) / math.sqrt(d),
        "P": jax.random.normal(keys[-1], (T, d), jnp.float32) / math.sqrt(d),
        "A": A,
        "V": V,
        "mlp": mlp,
        "W": jnp.zeros((d, S), jnp.float32),
    }


def _shape(params, config: Config) -> tuple[int, int, int]:
    """``(S, T, d)`` after checking the parameter tree against ``config`` (shapes and dtypes only: trace-safe)."""
    _check_config(config)
    keys = {"E", "P", "A", "V", "mlp", "W"}
    if not isinstance(params, dict) or set(params) != keys:
        raise TypeError(
            f"params must be a dict with keys {sorted(keys)} (catformer), got "
            f"{sorted(params) if isinstance(params, dict) else type(params).__name__}"
        )
    E = check_array("params['E']", params["E"], kind="float", ndim=2)
    S, d = (int(n) for n in E.shape)
    T = d - S
    if T < 1:
        raise ValueError(f"params['E'] must be (S, S+T) with T >= 1, got shape {tuple(E.shape)}")
    check_array("params['P']", params["P"], kind="float", shape=(T, d))
    check_array("params['W']", params["W"], kind="float", shape=(d, S))
    L = len(config.heads)
    m = _width(config, d)
    for name in ("A", "V", "mlp"):
        if not isinstance(params[name], (list, tuple)) or len(params[name]) != L:
            raise ValueError(f"params['{name}'] must be a list of {L} per-layer entries (config.heads {config.heads})")
    for k, H in enumerate(config.heads):
        check_array(f"params['A'][{k}]", params["A"][k], kind="float", shape=(H, d, d))
        check_array(f"params['V'][{k}]", params["V"][k], kind="float", shape=(H * d, d))
        mk = params["mlp"][k]
        if not isinstance(mk, dict) or set(mk) != {"W1", "b1", "W2", "b2"}:
            raise TypeError(f"params['mlp'][{k}] must be a dict with keys W1, b1, W2, b2")
        for n, shp in (("W1", (d, m)), ("b1", (m,)), ("W2", (m, d)), ("b2", (d,))):
            check_array(f"params['mlp'][{k}]['{n}']", mk[n], kind="float", shape=shp)
    return S, T, d


def embed(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """``h_i = E[s_i] + P[i]``: ``(B, T, d)``."""
    S, T, _ = _shape(params, config)
    tok = check_tokens("tokens", tokens, seq_len=T, vocab_size=S)
    return params["E"][tok] + params["P"][None]


def _attention(A: jax.Array, h: jax.Array) -> jax.Array:
    """Causal attention of every head ``(B, H, T, T)``: ``softmax_{j≤i}(h_iᵀ A_h h_j)``."""
    T = h.shape[1]
    scores = jnp.einsum("bid,hde,bje->bhij", h, A, h)
    return jax.nn.softmax(jnp.where(jnp.tril(jnp.ones((T, T), dtype=bool)), scores, -jnp.inf), axis=-1)


def _mlp(p: dict, z: jax.Array) -> jax.Array:
    n_in, n_hid = p["W1"].shape
    n_out = p["W2"].shape[1]
    u = z @ (p["W1"] * math.sqrt(n_hid / n_in)) + p["b1"] * math.sqrt(n_hid)
    return jax.nn.relu(u) @ (p["W2"] * math.sqrt(n_out / n_hid)) + p["b2"] * math.sqrt(n_out)


def _forward(params: dict, h: jax.Array, upto: int | None = None):
    """Run the layers on ``h`` ``(B, T, d)``; with ``upto = ℓ``, return layer ``ℓ``'s attention instead."""
    B, T, _ = h.shape
    for k, (A, V, mk) in enumerate(zip(params["A"], params["V"], params["mlp"])):
        att = _attention(A, h)
        if k == upto:
            return att
        o = jnp.einsum("bhij,bjd->bihd", att, h).reshape(B, T, -1)
        h = h + _mlp(mk, o @ V)
    return h


def logits(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """``Wᵀ h_{T-1}`` ``(B, S)`` after every layer."""
    h = _forward(params, embed(params, tokens, config))
    return h[:, -1, :] @ params["W"]


def logits_all(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """``Wᵀ h_t`` at every position ``(B, T, S)`` after every layer; the last position is :func:`logits`."""
    h = _forward(params, embed(params, tokens, config))
    return h @ params["W"]


def loss(params: dict, tokens: jax.Array, targets: jax.Array, config: Config) -> jax.Array:
    """Batch mean of ``−Σ_c y_c log softmax(Wᵀh_{T-1})_c`` against the soft targets ``(B, S)``."""
    S, _, _ = _shape(params, config)
    lg = logits(params, tokens, config)
    y = check_array("targets", targets, kind="real", shape=(lg.shape[0], S))
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(lg, axis=-1), axis=-1))


def layer_attention(params: dict, tokens: jax.Array, config: Config, layer: int = 0) -> jax.Array:
    """Layer ``layer``'s attention ``(B, H_ℓ, T, T)`` on ``tokens`` (rows: queries ``i``, columns: keys ``j``)."""
    layer = check_int("layer", layer, minimum=0, maximum=len(_check_config(config).heads) - 1)
    return _forward(params, embed(params, tokens, config), upto=layer)


def first_layer_attention(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """The first layer's attention averaged over the batch ``(H_1, T, T)`` (the figure-8 read-out)."""
    return jnp.mean(layer_attention(params, tokens, config, 0), axis=0)


def group_labels(params: dict, config: Config) -> dict:
    """``A1`` for the first layer's attention matrices, ``rest`` for every other parameter."""
    _check_config(config)
    labels = jax.tree.map(lambda _: "rest", params)
    labels["A"] = ["A1"] + ["rest"] * (len(params["A"]) - 1)
    return labels


def group_names(config: Config) -> tuple[str, ...]:
    _check_config(config)
    return ("A1", "rest")
