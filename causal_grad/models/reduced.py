"""The reduced two-layer model (docs/theory.md §3).

Parameters ``A1 ∈ R^{T×T}`` (positions to positions) and ``A2 ∈ R^{S×S}`` (tokens to tokens). With one-hot
tokens ``x(s)``:

* layer 1: ``α_i = softmax_{j≤i}(A1[i, j])``, ``v_i = Σ_{j≤i} α_{ij} x(s_j)``;
* layer 2, read at the query ``q = s_{T-1}``: ``score_i = x(q)ᵀ A2 v_i`` for ``i ≤ T-1``,
  ``a = softmax(score)``, ``out = Σ_i a_i x(s_i) ∈ Δ_S``;
* readout ``ŷ = (1-ε)·out + ε/S``; loss ``−Σ_b y_b log ŷ_b``.

With ``softmax(A1[i]) = e_{p(i)}`` and ``A2 = β·I``, ``β → ∞``, the prediction is the empirical law of the
children of earlier occurrences of the query token: the in-context estimator (for a chain, an induction head).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, cast

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from .._validate import (
    arrays,
    check_array,
    check_eps,
    check_int,
    check_key,
    check_positive_float,
    check_probability,
    check_scale,
    check_tokens,
    is_concrete,
)

__all__ = [
    "Config",
    "init",
    "logits",
    "loss",
    "first_layer_attention",
    "group_labels",
    "group_names",
    "induction",
    "causal_softmax",
    "reduced_apply",
    "reduced_loss",
    "reduced_init",
    "DEFAULT_EPS",
    "reduced_apply_all",
    "logits_all",
    "next_token_loss",
]

#: Default readout smoothing ε: keeps the log-loss finite when the target token never occurs in the context.
DEFAULT_EPS = 1e-3


@arrays(scores=dict(kind="float", min_ndim=2))
def causal_softmax(scores: jax.Array) -> jax.Array:
    """Softmax of ``scores[..., i, j]`` over ``j ≤ i`` (entries above the diagonal get weight exactly 0).

    Every row has at least its diagonal entry, so no row is empty and no NaN can arise, also for infinite
    scores (``±inf`` are clipped to the largest finite values first); only a NaN score gives NaN.
    """
    T = scores.shape[-1]
    mask = jnp.tril(jnp.ones((scores.shape[-2], T), dtype=bool))
    fin = jnp.finfo(scores.dtype)
    # ±inf scores become the extreme finite values, so every row keeps a finite maximum on its diagonal (a row
    # of -inf is uniform over j ≤ i, +inf entries share the weight); masked entries are exactly 0
    clipped = jnp.clip(scores, fin.min, fin.max)
    return jax.nn.softmax(jnp.where(mask, clipped, -jnp.inf), axis=-1)


def reduced_init(T: int, S: int, beta0: float = 0.0, dtype: DTypeLike = jnp.float32) -> tuple[jax.Array, jax.Array]:
    """The initialisation of docs/theory.md §4: ``A1 = 0``, ``A2 = β0·I``."""
    T = check_int("T", T, minimum=1)
    S = check_int("S", S, minimum=1)
    beta0 = check_positive_float("beta0", beta0, allow_zero=True)
    return jnp.zeros((T, T), dtype), beta0 * jnp.eye(S, dtype=dtype)


def _check_inputs(A1, A2, tokens, eps):
    """Shapes and dtypes always (they are static under ``jit``); token values and ``eps`` when concrete."""
    A1 = check_array("A1", A1, kind="float", ndim=2)
    A2 = check_array("A2", A2, kind="float", ndim=2)
    if A1.shape[0] != A1.shape[1] or A2.shape[0] != A2.shape[1]:
        raise ValueError(f"A1 and A2 must be square (T, T) and (S, S), got {tuple(A1.shape)} and {tuple(A2.shape)}")
    check_tokens("tokens", tokens, seq_len=A1.shape[0], vocab_size=A2.shape[0])
    if is_concrete(eps):  # a traced eps (inside jit) is checked by the caller
        scalar = hasattr(eps, "shape") and not isinstance(eps, numbers.Number) and eps.shape == ()
        check_probability("eps", cast(Any, eps).item() if scalar else eps, open_high=True)


def reduced_apply(A1: jax.Array, A2: jax.Array, tokens: jax.Array, eps: float = DEFAULT_EPS) -> jax.Array:
    """The prediction ``ŷ`` ``(B, S)`` of the reduced model for ``tokens`` ``(B, T)`` (query last)."""
    _check_inputs(A1, A2, tokens, eps)
    S = A2.shape[-1]
    X = jax.nn.one_hot(tokens, S, dtype=A1.dtype)  # (B, T, S)
    alpha = causal_softmax(A1)  # (T, T)
    V = jnp.einsum("ij,bjs->bis", alpha, X)  # v_i
    aq = A2[tokens[:, -1]]  # (B, S): row q of A2, so score_i = A2[q] · v_i
    score = jnp.einsum("bis,bs->bi", V, aq)
    a = jax.nn.softmax(score, axis=-1)
    out = jnp.einsum("bi,bis->bs", a, X)
    return (1.0 - eps) * out + eps / S


def reduced_apply_all(A1: jax.Array, A2: jax.Array, tokens: jax.Array, eps: float = DEFAULT_EPS) -> jax.Array:
    """The prediction at **every** position ``(B, T, S)``: layer 2 read at position ``t`` with query ``s_t``,
    causally, ``score_{tj} = x(s_t)ᵀ A2 v_j`` for ``j ≤ t``, ``a_t = softmax_{j≤t}(score_t)``,
    ``ŷ_t = (1-ε)·Σ_{j≤t} a_{tj} x(s_j) + ε/S`` (the prediction of ``s_{t+1}``). Position ``T−1`` is
    :func:`reduced_apply`."""
    _check_inputs(A1, A2, tokens, eps)
    S = A2.shape[-1]
    X = jax.nn.one_hot(tokens, S, dtype=A1.dtype)  # (B, T, S)
    V = jnp.einsum("ij,bjs->bis", causal_softmax(A1), X)  # v_j
    score = jnp.einsum("bts,bjs->btj", A2[tokens], V)  # A2[s_t] · v_j
    out = jnp.einsum("btj,bjs->bts", causal_softmax(score), X)
    return (1.0 - eps) * out + eps / S


def _cross_entropy(targets, yhat):
    # 0·log 0 = 0 (a target entry 0 where ŷ = 0, possible at eps = 0), with a safe log in the unused branch
    pos = targets > 0
    return -jnp.sum(jnp.where(pos, targets * jnp.log(jnp.where(pos, yhat, 1.0)), 0.0), axis=-1)


def reduced_loss(
    A1: jax.Array,
    A2: jax.Array,
    tokens: jax.Array,
    targets: jax.Array,
    eps: float = DEFAULT_EPS,
    weights: jax.Array | None = None,
) -> jax.Array:
    """Mean (or ``weights``-weighted sum) of the cross-entropy ``−Σ_b y_b log ŷ_b`` over the batch.

    Never NaN for finite parameters: terms with ``y_b = 0`` are 0. With ``eps > 0`` it is finite (``ŷ ≥ eps/S``);
    with ``eps = 0`` a target token absent from the context (``y_b > 0``, ``ŷ_b = 0``) gives ``+inf``, the exact
    value ``−log 0``, and its gradient is undefined there (use ``eps > 0``, as training does).
    """
    _check_inputs(A1, A2, tokens, eps)
    B, S = len(tokens), A2.shape[0]
    check_array("targets", targets, shape=(B, S))
    if weights is not None:
        check_array("weights", weights, shape=(B,))
    ce = _cross_entropy(targets, reduced_apply(A1, A2, tokens, eps))
    if weights is None:
        return jnp.mean(ce)
    return jnp.sum(weights * ce)


# ---------------------------------------------------------------------- the model protocol
@dataclass(frozen=True)
class Config:
    """The reduced model's hyper-parameters: ``beta0`` — the initialisation ``A2 = β0·I`` (held in stage 1 of the
    layer-wise schedule); ``eps`` — the readout smoothing ``ŷ = (1-ε)·out + ε/S`` (``0 < ε < 1``)."""

    beta0: float = 1.0
    eps: float = DEFAULT_EPS
    name: str = field(default="reduced", init=False)

    def __post_init__(self):
        # training runs in float32: beta0 below its scale floor would underflow the gradient it scales
        object.__setattr__(self, "beta0", check_scale("beta0", self.beta0, "float32", allow_zero=True))
        object.__setattr__(self, "eps", check_eps("eps", self.eps))
        if self.eps == 0:
            raise ValueError(
                "eps must be > 0 for training (a target token absent from the context gives an "
                "infinite loss at eps = 0)"
            )


def _config(config) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"config must be a causal_grad.models.reduced.Config, got {type(config).__name__}")
    return config


def init(key: jax.Array, config: Config, S: int, T: int) -> dict:
    """``{"A1": 0 (T, T), "A2": β0·I (S, S)}`` in float32 (docs/theory.md §4). Deterministic: ``key`` is
    checked and not used."""
    check_key("key", key)
    _config(config)
    A1, A2 = reduced_init(T, S, config.beta0)
    return {"A1": A1, "A2": A2}


def logits(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """``log ŷ`` ``(B, S)`` at the query (the model's prediction is a distribution, so its log is its logits)."""
    _config(config)
    return jnp.log(reduced_apply(params["A1"], params["A2"], tokens, config.eps))


def logits_all(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """``log ŷ_t`` at every position ``(B, T, S)`` (:func:`reduced_apply_all`: layer 2 read at each position
    with that position's token as its query)."""
    _config(config)
    return jnp.log(reduced_apply_all(params["A1"], params["A2"], tokens, config.eps))


def next_token_loss(params: dict, tokens: jax.Array, targets: jax.Array, config: Config) -> jax.Array:
    """Mean over batch and positions of ``−Σ_b Y_{t,b} log ŷ_{t,b}`` against soft targets ``(B, T, S)``."""
    _config(config)
    A1, A2 = params["A1"], params["A2"]
    _check_inputs(A1, A2, tokens, config.eps)
    check_array("targets", targets, shape=(tokens.shape[0], A1.shape[0], A2.shape[0]))
    return jnp.mean(_cross_entropy(targets, reduced_apply_all(A1, A2, tokens, config.eps)))


def loss(params: dict, tokens: jax.Array, targets: jax.Array, config: Config) -> jax.Array:
    """Batch mean of ``−Σ_b y_b log ŷ_b`` (:func:`reduced_loss`)."""
    _config(config)
    return reduced_loss(params["A1"], params["A2"], tokens, targets, config.eps)


def first_layer_attention(params: dict, tokens: jax.Array | None, config: Config) -> jax.Array:
    """``softmax_{j≤i}(A1)`` as ``(1, T, T)``: the first layer attends by position only, so this is its
    attention on every sequence (``tokens`` is not used)."""
    _config(config)
    return causal_softmax(params["A1"])[None]


def group_labels(params: dict, config: Config) -> dict:
    """``A1`` (first layer) and ``A2`` (second layer), the parameter groups of the schedules."""
    _config(config)
    return {"A1": "A1", "A2": "A2"}


def group_names(config: Config) -> tuple[str, ...]:
    _config(config)
    return ("A1", "A2")


def induction(params: dict, config: Config) -> jax.Array:
    """The layer-2 token block ``A2`` ``(S, S)``: diagonal-dominant for an induction head (C6)."""
    _config(config)
    return params["A2"]
