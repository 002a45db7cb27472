"""The disentangled transformer ("CatFormer" in the paper's code; docs/theory.md §3).

Embedding ``h_i = [x(s_i); e_i] ∈ R^{d_0}``, ``d_0 = S + T`` (one-hot token first, then one-hot position). Layer
``ℓ`` has ``H_ℓ`` heads; head ``h`` has one matrix ``A ∈ R^{d_ℓ×d_ℓ}`` and computes, at position ``i``,

    α_{ij} = softmax_{j≤i}(h_iᵀ A h_j),     out_i = Σ_{j≤i} α_{ij} h_j,

and the heads' outputs are **concatenated** to the residual stream: ``h ← [h; out_1; …; out_H]``, so
``d_{ℓ+1} = d_ℓ·(1 + H_ℓ)``. The prediction is ``softmax(Wᵀ h_{T-1})`` with ``W ∈ R^{d_L×S}`` and the loss the
cross-entropy against the soft target ``y``: ``−Σ_b y_b log softmax(Wᵀh_{T-1})_b``.

Parameters are a plain pytree ``{"A": [A_1, …, A_L], "W": W}`` with ``A_ℓ`` of shape ``(H_ℓ, d_ℓ, d_ℓ)``.

Speed (measured by `make bench`). Only ``h_{T-1}`` of the last layer is read out, so the last layer is evaluated at the
query position only. The first layer's input is one-hot, so ``h_iᵀA`` is a row lookup ``A[s_i] + A[S+i]`` and
the position half of every score and value is an index, not a product:

    score_{ij} = (A[s_i] + A[S+i])[:S] · x(s_j) + (A[s_i] + A[S+i])[S+j],    out_i = [α_i X; α_i].

For two layers the second layer never materialises ``h_1`` either: with ``u = h_{1,T-1}ᵀ A_2`` split into the
blocks of ``h_1 = [X, E, (P_h X, P_h)_h]``,
``score_j = x(s_j)·u_X + u_E[j] + Σ_h P_h[j,:]·(X u_{X,h} + u_{P,h})``. The two-layer path (the paper's models)
is also *batch-last*: every array is ``(…, B)``, so the first layer's attention is one ``(T, T, B)`` array whose
softmax and products run along the batch (on a CPU 2-3× faster than rows of ``T``), and its products with the
one-hot tokens are plain ``(S, S)·(S, T·B)`` matrix products; under data parallelism call it on each device's
part of the batch (``shard_map``, as :mod:`causal_grad.training` does), and on a CPU compile it with
:data:`causal_grad.training.FAST_CPU_OPTIONS` (:func:`causal_grad.training.fast_cpu_jit`): XLA's default turns its
reductions along leading axes into YNNPACK reduce fusions, 4-5x slower. :func:`disentangled_reference_logits` is
the literal dense definition (every position, every product), kept for tests and for counting FLOPs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from .._validate import (
    check_array,
    check_distribution_rows,
    check_int,
    check_key,
    check_param_memory,
    check_positive_float,
    check_real_array,
    check_scale,
    check_tokens,
    is_concrete,
    row_sum_atol,
)

__all__ = [
    "Config",
    "INITS",
    "init",
    "logits",
    "loss",
    "first_layer_attention",
    "graph_attention",
    "group_labels",
    "group_names",
    "induction",
    "disentangled_dims",
    "disentangled_zeros",
    "disentangled_normal",
    "disentangled_logits",
    "disentangled_apply",
    "disentangled_loss",
    "disentangled_reference_logits",
    "disentangled_logits_all",
    "logits_all",
    "disentangled_heads",
    "disentangled_shape",
    "position_attention",
    "layer1_attention",
    "induction_block",
    "readout_block",
    "induction_init",
]


# ---------------------------------------------------------------------- softmax with a lean backward pass
@partial(jax.custom_vjp, nondiff_argnums=(1,))
def _softmax(s, axis: int = -1) -> jax.Array:
    return jax.nn.softmax(s, axis=axis)


def _softmax_fwd(s, axis):
    p = _softmax(s, axis)
    return p, p


def _softmax_bwd(axis, p, g):
    # d softmax: P ⊙ (g − Σ_j P g); masked entries have P = 0 and get no gradient.
    return (p * (g - jnp.sum(p * g, axis=axis, keepdims=True)),)


_softmax.defvjp(_softmax_fwd, _softmax_bwd)


@jax.custom_vjp
def _causal_softmax(s):
    """Softmax over the last axis of the lower-triangular (causal) part of ``s`` ``(…, T_q, T)``."""
    T = s.shape[-1]
    mask = jnp.tril(jnp.ones((s.shape[-2], T), dtype=bool), k=T - s.shape[-2])
    return jax.nn.softmax(jnp.where(mask, s, -jnp.inf), axis=-1)


_causal_softmax.defvjp(lambda s: (_causal_softmax(s),) * 2, lambda p, g: _softmax_bwd(-1, p, g))


# ---------------------------------------------------------------------- shapes and checks
def disentangled_dims(S: int, T: int, heads: Sequence[int]) -> list[int]:
    """Residual widths ``[d_0, …, d_L]``: ``d_0 = S + T``, ``d_{ℓ+1} = d_ℓ (1 + H_ℓ)``."""
    S = check_int("S", S, minimum=2)
    T = check_int("T", T, minimum=1)
    heads = _check_heads(heads)
    dims = [S + T]
    for H in heads:
        dims.append(dims[-1] * (1 + H))
    return dims


def _check_heads(heads) -> tuple[int, ...]:
    if isinstance(heads, (str, bytes)) or not hasattr(heads, "__len__"):
        raise TypeError(f"heads must be a sequence of head counts per layer, got {type(heads).__name__}")
    if len(heads) == 0:
        raise ValueError("heads must list at least one layer")
    return tuple(check_int(f"heads[{k}]", h, minimum=1) for k, h in enumerate(heads))


def disentangled_heads(params: dict) -> tuple[int, ...]:
    """Heads per layer of ``params`` (checked by :func:`disentangled_shape`)."""
    return disentangled_shape(params)[2]


def disentangled_shape(params: dict) -> tuple[int, int, tuple[int, ...]]:
    """``(S, T, heads)`` of ``params``, after checking that they are a dict ``{"A": [...], "W": ...}`` of
    floating-point arrays whose shapes fit together (raises ``TypeError``/``ValueError``). Shapes and dtypes only,
    so this also works on traced parameters (inside ``jit``/``grad``), at trace time."""
    if not isinstance(params, dict) or set(params) != {"A", "W"}:
        raise TypeError("params must be a dict {'A': [per-layer arrays], 'W': array} (disentangled transformer)")
    As, W = params["A"], params["W"]
    if not isinstance(As, (list, tuple)) or len(As) == 0:
        raise TypeError("params['A'] must be a non-empty list of (heads, d, d) arrays, one per layer")
    if getattr(W, "ndim", None) != 2:
        raise ValueError(f"params['W'] must be a (d_L, S) matrix, got shape {getattr(W, 'shape', None)}")
    check_array("params['W']", W, kind="float")
    S = int(W.shape[1])
    if S < 2:
        raise ValueError(f"params['W'] must have S >= 2 columns (the vocabulary size), got shape {tuple(W.shape)}")
    d = int(As[0].shape[-1]) if getattr(As[0], "ndim", 0) == 3 else -1
    T = d - S
    if T < 1:
        raise ValueError(
            f"params['A'][0] must be (heads, S+T, S+T) with S = W.shape[1] = {S}; got {getattr(As[0], 'shape', None)}"
        )
    heads = []
    for k, A in enumerate(As):
        if getattr(A, "ndim", None) != 3 or A.shape[1:] != (d, d):
            raise ValueError(f"params['A'][{k}] must have shape (heads, {d}, {d}), got {getattr(A, 'shape', None)}")
        check_array(f"params['A'][{k}]", A, kind="float")
        if A.shape[0] < 1:
            raise ValueError(f"params['A'][{k}] must have at least one head (heads >= 1), got shape {tuple(A.shape)}")
        heads.append(int(A.shape[0]))
        d *= 1 + int(A.shape[0])
    if W.shape[0] != d:
        raise ValueError(f"params['W'] must have shape ({d}, {S}) for heads {heads}, got {tuple(W.shape)}")
    return S, T, tuple(heads)


def _check_tokens(tokens, T: int, S: int):
    """Integer ``(B, T)``, ``B >= 1``; values in ``0..S-1`` when concrete (shared rule: ``check_tokens``)."""
    return check_tokens("tokens", tokens, seq_len=T, vocab_size=S)


def _check_targets(targets, weights, B: int, S: int):
    """``targets`` real ``(B, S)``, ``weights`` real ``(B,)`` or ``None``: shapes and dtypes always (static under
    ``jit``); when concrete, targets finite, non-negative with rows summing to 1, weights finite and
    non-negative."""
    targets = check_array("targets", targets, kind="real", shape=(B, S))
    if is_concrete(targets):
        check_distribution_rows("targets", check_real_array("targets", targets), row_sum_atol(targets.dtype, S))
    if weights is not None:
        weights = check_array("weights", weights, kind="real", shape=(B,))
        if is_concrete(weights) and np.any(check_real_array("weights", weights) < 0):
            raise ValueError(f"weights must be non-negative (min {float(np.min(weights)):.3g})")
    return targets, weights


def _check_float_dtype(dtype):
    try:
        d = jnp.dtype(dtype)
    except TypeError:
        d = None
    if d is None or not jnp.issubdtype(d, jnp.floating):
        raise TypeError(f"dtype must be a floating-point dtype (e.g. float32), got {dtype!r}")
    return d


# ---------------------------------------------------------------------- initialisation
def _shapes(S: int, T: int, heads) -> list[tuple[int, ...]]:
    dims = disentangled_dims(S, T, heads)
    return [(H, d, d) for H, d in zip(_check_heads(heads), dims[:-1])] + [(dims[-1], S)]


def disentangled_zeros(S: int, T: int, heads: Sequence[int] = (1, 1), *, dtype: DTypeLike = jnp.float32) -> dict:
    """All-zero parameters (docs/theory.md §3): the paper's start for one head per layer."""
    shapes = _shapes(S, T, heads)
    dtype = _check_float_dtype(dtype)
    check_param_memory("S/T/heads", shapes, dtype)
    arrs = [jnp.zeros(s, dtype) for s in shapes]
    return {"A": arrs[:-1], "W": arrs[-1]}


def disentangled_normal(
    key: jax.Array, S: int, T: int, heads: Sequence[int] = (1, 1), *, scale: float, dtype: DTypeLike = jnp.float32
) -> dict:
    """I.i.d. ``N(0, scale²)`` entries (``scale > 0``), one key split per matrix. The paper uses ``1e-4``-scale
    noise for several heads per layer: identical zero heads receive identical gradients and never separate."""
    key = check_key("key", key)
    shapes = _shapes(S, T, heads)
    scale = check_positive_float("scale", scale)
    dtype = _check_float_dtype(dtype)
    check_param_memory("S/T/heads", shapes, dtype)
    keys = jax.random.split(key, len(shapes))
    arrs = [scale * jax.random.normal(k, s, dtype) for k, s in zip(keys, shapes)]
    return {"A": arrs[:-1], "W": arrs[-1]}


def induction_init(
    S: int,
    T: int,
    heads: Sequence[int] = (1, 1),
    *,
    beta0: float = 1.0,
    gamma: float = 1.0,
    dtype: DTypeLike = jnp.float32,
) -> dict:
    """The layer-wise starting point: ``A_1 = 0``; every layer-2 head matches the query's token against the
    token its first-layer head ``h = 0`` gathered (block ``A_2[:S, d_0:d_0+S] = β0·I``); ``W`` reads the token
    that layer-2 head 0 copies (block ``W[d_1 + :S] = γ·I``), so ``logits = γ·out`` with ``out`` the reduced
    model's layer-2 output. Two layers only. This is the disentangled analogue of ``A2 = β0·I`` (docs/theory.md §5).
    """
    heads = _check_heads(heads)
    if len(heads) != 2:
        raise ValueError(f"induction_init needs exactly two layers, got heads {heads}")
    beta0 = check_positive_float("beta0", beta0, allow_zero=True)
    gamma = check_positive_float("gamma", gamma, allow_zero=True)
    dtype = _check_float_dtype(dtype)
    p = disentangled_zeros(S, T, heads, dtype=dtype)
    d0, d1, _ = disentangled_dims(S, T, heads)
    eye = jnp.eye(S, dtype=dtype)
    p["A"][1] = p["A"][1].at[:, :S, d0 : d0 + S].set(beta0 * eye)
    p["W"] = p["W"].at[d1 : d1 + S, :].set(gamma * eye)
    return p


# ---------------------------------------------------------------------- the fast forward pass
def _layer1_full(A, X, S):
    """First layer at every position from one-hot input: attention ``P`` ``(B, H, T, T)``."""
    # h_iᵀA = A[s_i] + A[S+i], split into its token and position columns (no slicing of a joint product)
    U_tok = jnp.einsum("bis,hsr->bhir", X, A[:, :S, :S]) + A[None, :, S:, :S]
    U_pos = jnp.einsum("bis,hsj->bhij", X, A[:, :S, S:]) + A[None, :, S:, S:]
    scores = jnp.einsum("bhir,bjr->bhij", U_tok, X) + U_pos
    return _causal_softmax(scores)


def _dense_layer(A, h, query_only: bool, mask_causal: bool = True):
    """A dense layer on ``h`` ``(B, T, d)``: all positions → ``(B, T, d(1+H))``; query only → ``(B, d(1+H))``."""
    B, T, d = h.shape
    hq = h[:, -1:, :] if query_only else h
    U = jnp.einsum("bid,hde->bhie", hq, A)
    scores = jnp.einsum("bhie,bje->bhij", U, h)
    P = _softmax(scores) if query_only else _causal_softmax(scores)
    out = jnp.einsum("bhij,bjd->bihd", P, h)
    out = out.reshape(B, hq.shape[1], -1)
    hn = jnp.concatenate([hq, out], axis=-1)
    return hn[:, 0] if query_only else hn


def _h1_from_layer1(X, P, T):
    """Materialise ``h_1 = [X, E, (P_h X, P_h)_h]`` ``(B, T, d_1)``."""
    B = X.shape[0]
    E = jnp.broadcast_to(jnp.eye(T, dtype=X.dtype), (B, T, T))
    PX = jnp.einsum("bhij,bjs->bhis", P, X)
    parts = [X, E]
    for h in range(P.shape[1]):
        parts += [PX[:, h], P[:, h]]
    return jnp.concatenate(parts, axis=-1)


def disentangled_logits(params: dict, tokens: ArrayLike) -> jax.Array:
    """Logits ``Wᵀ h_{T-1}`` ``(B, S)`` (fast path: last layer at the query only, one-hot first layer).

    Refuses, before computing: ``params`` whose structure does not fit (:func:`disentangled_shape`); ``tokens``
    that are not an integer ``(B, T)`` array with ``B >= 1``, or (when concrete) hold values outside ``0..S-1``.
    """
    S, T, _ = disentangled_shape(params)
    return _logits(params, _check_tokens(tokens, T, S), S, T)


def _logits(params, tokens, S: int, T: int) -> jax.Array:
    """:func:`disentangled_logits` on checked inputs."""
    As, W = params["A"], params["W"]
    if len(As) == 2:
        return _two_layer_logits(As[0], As[1], W, tokens, S, T).T
    dtype = W.dtype
    X = jax.nn.one_hot(tokens, S, dtype=dtype)  # (B, T, S)
    B = X.shape[0]
    eq = jnp.broadcast_to(jnp.zeros((T,), dtype).at[T - 1].set(1), (B, T))
    if len(As) == 1:
        A = As[0]
        Uq = A[:, :S][:, tokens[:, -1]].transpose(1, 0, 2) + A[None, :, S + T - 1]  # (B, H, d0)
        s = jnp.einsum("bhs,bjs->bhj", Uq[..., :S], X) + Uq[..., S:]
        a = cast(jax.Array, _softmax(s))  # partial(custom_vjp) hides the return type from pyright
        aX = jnp.einsum("bhj,bjs->bhs", a, X)
        hq = jnp.concatenate([X[:, -1], eq, jnp.concatenate([aX, a], -1).reshape(B, -1)], axis=-1)
        return hq @ W
    P = _layer1_full(As[0], X, S)  # (B, H1, T, T)
    h = _h1_from_layer1(X, P, T)
    for A in As[1:-1]:
        h = _dense_layer(A, h, query_only=False)
    return _dense_layer(As[-1], h, query_only=True) @ W


# ---------------------------------------------------------------------- two layers, batch-last
@jax.custom_vjp
def _select_by_key_token(U, X):
    """``out[j, i, b] = U[s_{j,b}, i, b] = Σ_r X[r, j, b] U[r, i, b]`` for ``U`` ``(S, T, B)`` and the one-hot
    ``X`` ``(S, T, B)``: the value of the key's token in row ``i``. Written as a reduction over ``r`` so that XLA
    materialises it once (its elementwise form is re-fused into every consumer)."""
    return jnp.sum(X[:, :, None, :] * U[:, None, :, :], axis=0)


def _select_fwd(U, X):
    return _select_by_key_token(U, X), X


def _select_bwd(X, g):
    # dU[r, i, b] = Σ_j X[r, j, b] g[j, i, b]: a chain of T multiply-adds over (S, T, B), vectorised along b
    # (the same sum written as one reduction materialises an (S, T, T, B) product first).
    acc = X[:, 0, None, :] * g[0][None]
    for j in range(1, g.shape[0]):
        acc = acc + X[:, j, None, :] * g[j][None]
    return acc, None


_select_by_key_token.defvjp(_select_fwd, _select_bwd)


def _two_layer_logits(A1, A2, W, tokens, S: int, T: int) -> jax.Array:
    """Two layers, batch-last: every array is ``(…, B)`` with the batch as the minor axis, so the first layer's
    ``(T, T)`` attention of every sequence is one ``(T, T, B)`` array whose softmax and products run along ``b``
    (on a CPU, 2–3× faster than ``(B, T, T)`` with its rows of 20). ``P[t, j, b] = α_{j t}`` (key first).

    First layer, head ``h``, with ``A = A_1[h]`` split into ``M = A[:S, :S]``, ``N = A[:S, S:]``,
    ``O = A[S:, :S]``, ``Q = A[S:, S:]``: ``score_{ij} = M[s_i, s_j] + O[i, s_j] + N[s_i, j] + Q[i, j]``, from
    ``U[r, i] = M[s_i, r] + O[i, r]`` (a product with the one-hot ``X``) read at ``r = s_j``, and
    ``V[j, i] = N[s_i, j] + Q[i, j]``. The second layer is evaluated at the query only, as in the module
    docstring. Returns the logits transposed, ``(S, B)``.

    A batch whose ``(T, T, B)`` arrays have rows ``T·B·4`` bytes apart with ``T·B`` a multiple of 16,384 (a
    stride of 64 KiB: ``T = 32`` with ``B = 512``, ``T = 16`` with ``B = 1024``, …) is padded with
    :data:`_LANE_PAD` rows of token 0 whose logits are dropped: at such a stride every row of a column starts at
    the same offset modulo the cache's set stride, so the reductions along the key axis evict their own rows.
    Measured on a 2-core CPU, through the training step at figures 5/7's configuration (``T = 32``, 512
    sequences per device): 37.6 ms per step unpadded, 24.4 ms padded to 520. At ``T = 20`` (figure 2: stride
    40 KiB) padding made the step 5–14 % slower, so other shapes are left as they are. Every sequence's logits
    are computed by the same operations either way; only the batch's extent differs."""
    B = tokens.shape[0]
    pad = _lane_pad(B, T)
    if pad:
        tokens = jnp.concatenate([tokens, jnp.zeros((pad, T), tokens.dtype)], axis=0)
        return _two_layer_logits_unpadded(A1, A2, W, tokens, S, T)[:, :B]
    return _two_layer_logits_unpadded(A1, A2, W, tokens, S, T)


#: Rows added to a batch in the two-layer path when ``T·B`` is a multiple of :data:`_ALIASED` (see
#: :func:`_two_layer_logits`).
_LANE_PAD = 8
_ALIASED = 16384  # elements: a 64 KiB stride in float32


def _lane_pad(B: int, T: int) -> int:
    return _LANE_PAD if (T * B) % _ALIASED == 0 else 0


def _two_layer_logits_unpadded(A1, A2, W, tokens, S: int, T: int) -> jax.Array:
    """:func:`_two_layer_logits` without the padding of the batch."""
    B = tokens.shape[0]
    d0 = S + T
    dt = W.dtype
    X = (tokens.T[None] == jnp.arange(S, dtype=tokens.dtype)[:, None, None]).astype(dt)  # (S, T, B)
    ar = jnp.arange(T)
    causal = (ar[:, None] <= ar[None, :])[:, :, None]  # [j, i]: key j ≤ query i
    # Plain matrix products over (S, T·B): 2-3x faster on a CPU than the same einsums over (S, T, B). Merging
    # the batch axis means a batch sharded over devices must be split before this function (shard_map, as
    # causal_grad.training does); XLA's partitioner alone would regather it.
    Xf = X.reshape(S, T * B)
    Ps = []
    for A in A1:
        M, N, O, Q = A[:S, :S], A[:S, S:], A[S:, :S], A[S:, S:]
        U = (M.T @ Xf).reshape(S, T, B) + O.T[:, :, None]
        V = (N.T @ Xf).reshape(T, T, B) + Q.T[:, :, None]
        Ps.append(_softmax(jnp.where(causal, V + _select_by_key_token(U, X), -jnp.inf), 0))

    def gather(v):  # Σ_j v[j, b] x(s_j): (T, B) -> (S, B)
        return jnp.sum(X * v[None], axis=1)

    def lookup(u):  # u[s_t, b]: (S, B) -> (T, B)
        return jnp.sum(X * u[:, None, :], axis=0)

    eq = jnp.zeros((T, B), dt).at[T - 1].set(1)
    parts = [X[:, T - 1], eq]
    for P in Ps:
        parts += [gather(P[:, T - 1]), P[:, T - 1]]
    hq = jnp.concatenate(parts, 0)  # h_{1,T-1}: (d_1, B)
    outs = [hq]
    for A in A2:
        u = A.T @ hq  # (d_1, B)
        s = lookup(u[:S]) + u[S:d0]
        for h, P in enumerate(Ps):
            o = d0 * (1 + h)
            w = lookup(u[o : o + S]) + u[o + S : o + d0]  # X u_{X,h} + u_{P,h}
            s = s + jnp.sum(P * w[:, None, :], axis=0)  # Σ_t α_{jt} w_t
        a = cast(jax.Array, _softmax(s, 0))  # (T, B)
        outs += [gather(a), a]
        for P in Ps:
            aP = jnp.sum(P * a[None], axis=1)  # Σ_j a_j α_{jt}
            outs += [gather(aP), aP]
    return W.T @ jnp.concatenate(outs, 0)  # (S, B)


def disentangled_logits_all(params: dict, tokens: ArrayLike) -> jax.Array:
    """Logits ``Wᵀ h_{L,t}`` at **every** position ``t`` ``(B, T, S)`` (the last layer evaluated at every
    position, causally): the prediction of ``s_{t+1}`` from ``s_0 … s_t`` for the next-token loss. Its last
    position is :func:`disentangled_logits` (the query-only fast path) up to rounding. Dense (no batch-last
    path); same refusals as :func:`disentangled_logits`."""
    S, T, _ = disentangled_shape(params)
    tokens = _check_tokens(tokens, T, S)
    As, W = params["A"], params["W"]
    X = jax.nn.one_hot(tokens, S, dtype=W.dtype)  # (B, T, S)
    h = _h1_from_layer1(X, _layer1_full(As[0], X, S), T)  # (B, T, d_1)
    for A in As[1:]:
        h = _dense_layer(A, h, query_only=False)
    return h @ W


def disentangled_apply(params: dict, tokens: ArrayLike) -> jax.Array:
    """The prediction ``softmax(Wᵀ h_{T-1})`` ``(B, S)``."""
    return jax.nn.softmax(disentangled_logits(params, tokens), axis=-1)


def disentangled_loss(
    params: dict, tokens: ArrayLike, targets: ArrayLike, weights: ArrayLike | None = None
) -> jax.Array:
    """Mean (or ``weights``-weighted sum) over the batch of ``−Σ_b y_b log softmax(Wᵀh_{T-1})_b``.

    Refuses, before computing: ``targets`` not real ``(B, S)`` and ``weights`` not real ``(B,)``; when they are
    concrete (not traced), targets that are not distributions (finite, non-negative, rows summing to 1) and
    weights that are not finite and non-negative. Under ``jit`` only the structure is checked, at trace time.
    """
    S, T, _ = disentangled_shape(params)
    tokens = _check_tokens(tokens, T, S)
    targets, weights = _check_targets(targets, weights, tokens.shape[0], S)
    As = params["A"]
    if len(As) == 2:  # batch-last: the logits come as (S, B)
        logits = _two_layer_logits(As[0], As[1], params["W"], tokens, S, T)
        ce = -jnp.sum(targets.T * jax.nn.log_softmax(logits, axis=0), axis=0)
    else:
        logits = _logits(params, tokens, S, T)
        ce = -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    return jnp.mean(ce) if weights is None else jnp.sum(weights * ce)


# ---------------------------------------------------------------------- the literal definition
def disentangled_reference_logits(params: dict, tokens: ArrayLike, *, query_only_last: bool = False) -> jax.Array:
    """The definition, computed densely: embed ``h_i = [x(s_i); e_i]``, every layer at every position (or the
    last layer at the query only), plain products and softmaxes. Slow; for tests and FLOP counts."""
    if not isinstance(query_only_last, (bool, np.bool_)):
        raise TypeError(f"query_only_last must be a bool (static under jit), got {type(query_only_last).__name__}")
    S, T, _ = disentangled_shape(params)
    tokens = _check_tokens(tokens, T, S)
    dtype = params["W"].dtype
    B = tokens.shape[0]
    X = jax.nn.one_hot(tokens, S, dtype=dtype)
    h = jnp.concatenate([X, jnp.broadcast_to(jnp.eye(T, dtype=dtype), (B, T, T))], axis=-1)
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))
    As = params["A"]
    for k, A in enumerate(As):
        if query_only_last and k == len(As) - 1:
            scores = jnp.einsum("bd,hde,bje->bhj", h[:, -1], A, h)
            a = jax.nn.softmax(scores, axis=-1)
            out = jnp.einsum("bhj,bjd->bhd", a, h).reshape(B, -1)
            return jnp.concatenate([h[:, -1], out], axis=-1) @ params["W"]
        scores = jnp.einsum("bid,hde,bje->bhij", h, A, h)
        P = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
        out = jnp.einsum("bhij,bjd->bihd", P, h).reshape(B, T, -1)
        h = jnp.concatenate([h, out], axis=-1)
    return h[:, -1] @ params["W"]


# ---------------------------------------------------------------------- read-outs for the metrics
def position_attention(params: dict, layer: int = 0) -> jax.Array:
    """The position–position block of layer ``layer``'s matrices, softmaxed causally: ``(H, T, T)`` with
    ``α[h, i, j] = softmax_{j≤i}(A[h][S+i, S+j])`` (the paper's figure-9 read-out of the learned graph; for
    ``layer = 0`` the position block of the one-hot embedding)."""
    S, T, heads = disentangled_shape(params)
    layer = check_int("layer", layer, minimum=0, maximum=len(heads) - 1)
    A = params["A"][layer]
    block = A[:, S : S + T, S : S + T]
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))
    return jax.nn.softmax(jnp.where(mask, block, -jnp.inf), axis=-1)


def layer1_attention(params: dict, tokens: ArrayLike) -> jax.Array:
    """The first layer's actual attention on every sequence of ``tokens``: ``(B, H_1, T, T)`` (token and
    position parts)."""
    S, T, _ = disentangled_shape(params)
    tokens = _check_tokens(tokens, T, S)
    X = jax.nn.one_hot(tokens, S, dtype=params["W"].dtype)
    return _layer1_full(params["A"][0], X, S)


def induction_block(params: dict, head: int = 0, source_head: int = 0) -> jax.Array:
    """The block of layer-2 head ``head`` that scores the query's token against the token gathered by
    first-layer head ``source_head``: ``A_2[head][:S, d_0(1+source_head) : d_0(1+source_head)+S]`` ``(S, S)``.
    Diagonal-dominant for an induction head (C6)."""
    S, T, heads = disentangled_shape(params)
    if len(heads) < 2:
        raise ValueError("induction_block needs at least two layers")
    head = check_int("head", head, minimum=0, maximum=heads[1] - 1)
    source_head = check_int("source_head", source_head, minimum=0, maximum=heads[0] - 1)
    off = (S + T) * (1 + source_head)
    return params["A"][1][head, :S, off : off + S]


def readout_block(params: dict, head: int = 0) -> jax.Array:
    """The block of ``W`` reading the token copied by the last layer's head ``head``: ``(S, S)``."""
    S, T, heads = disentangled_shape(params)
    head = check_int("head", head, minimum=0, maximum=heads[-1] - 1)
    d = int(params["A"][-1].shape[-1])
    return params["W"][d * (1 + head) : d * (1 + head) + S]


# ---------------------------------------------------------------------- the model protocol
#: Initialisations: ``"induction"`` (:func:`induction_init`, the layer-wise start, two layers), ``"zeros"``
#: (:func:`disentangled_zeros`, the paper's joint start for one head per layer), ``"normal"``
#: (:func:`disentangled_normal` with ``init_scale``, for several heads per layer).
INITS = ("induction", "zeros", "normal")


@dataclass(frozen=True)
class Config:
    """The disentangled transformer's hyper-parameters: ``heads`` per layer; ``init`` (one of :data:`INITS`);
    ``init_scale`` — the standard deviation of the ``"normal"`` initialisation (``> 0`` there, ``0`` otherwise);
    ``beta0``, ``gamma`` — the ``"induction"`` initialisation's layer-2 match scale and readout scale."""

    heads: tuple[int, ...] = (1, 1)
    init: str = "zeros"
    init_scale: float = 0.0
    beta0: float = 1.0
    gamma: float = 5.0
    name: str = field(default="disentangled", init=False)

    def __post_init__(self):
        object.__setattr__(self, "heads", _check_heads(self.heads))
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        object.__setattr__(self, "init_scale", check_positive_float("init_scale", self.init_scale, allow_zero=True))
        object.__setattr__(self, "beta0", check_scale("beta0", self.beta0, "float32", allow_zero=True))
        object.__setattr__(self, "gamma", check_positive_float("gamma", self.gamma, allow_zero=True))
        if self.init == "normal" and not self.init_scale:
            raise ValueError("init_scale must be > 0 for init 'normal' (an all-zero start is init 'zeros')")
        if self.init != "normal" and self.init_scale:
            raise ValueError(
                f"init_scale applies to init 'normal' only, got init_scale={self.init_scale} with init {self.init!r}"
            )
        if self.init == "induction" and len(self.heads) != 2:
            raise ValueError(f"init 'induction' needs exactly two layers, got heads {self.heads}")
        if self.init == "zeros" and max(self.heads) > 1:
            raise ValueError(
                f"init 'zeros' with several heads in a layer (heads {self.heads}): identical zero "
                f"heads get identical gradients and never separate; use init 'normal' with an "
                f"init_scale such as 1e-4"
            )


def _config(config) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"config must be a causal_grad.models.disentangled.Config, got {type(config).__name__}")
    return config


def init(key: jax.Array, config: Config, S: int, T: int) -> dict:
    """Parameters ``{"A": [...], "W": ...}`` in float32 by ``config.init``: ``"induction"``
    (:func:`induction_init`), ``"zeros"`` (:func:`disentangled_zeros`) or ``"normal"``
    (:func:`disentangled_normal` with ``key``). ``key`` is always checked; only ``"normal"`` draws from it."""
    _config(config)
    key = check_key("key", key)
    if config.init == "induction":
        return induction_init(S, T, config.heads, beta0=config.beta0, gamma=config.gamma)
    if config.init == "normal":
        return disentangled_normal(key, S, T, config.heads, scale=config.init_scale)
    return disentangled_zeros(S, T, config.heads)


def logits(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """``Wᵀ h_{T-1}`` ``(B, S)`` (:func:`disentangled_logits`)."""
    _config(config)
    return disentangled_logits(params, tokens)


def logits_all(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """``Wᵀ h_{L,t}`` at every position ``(B, T, S)`` (:func:`disentangled_logits_all`)."""
    _config(config)
    return disentangled_logits_all(params, tokens)


def loss(params: dict, tokens: jax.Array, targets: jax.Array, config: Config) -> jax.Array:
    """Batch mean of ``−Σ_b y_b log softmax(Wᵀh_{T-1})_b`` (:func:`disentangled_loss`)."""
    _config(config)
    return disentangled_loss(params, tokens, targets)


def first_layer_attention(params: dict, tokens: jax.Array, config: Config) -> jax.Array:
    """The first layer's attention on ``tokens`` averaged over the batch: ``(H_1, T, T)``."""
    _config(config)
    return jnp.mean(layer1_attention(params, tokens), axis=0)


def graph_attention(params: dict, tokens: jax.Array | None, config: Config) -> jax.Array:
    """The read-out the graph metrics use: the position block of the first layer, softmaxed causally
    (:func:`position_attention`, layer 0), ``(H_1, T, T)``; ``tokens`` is not used."""
    _config(config)
    return position_attention(params, 0)


def group_labels(params: dict, config: Config) -> dict:
    """``A1`` (first layer), ``A2`` (later layers), ``W`` (readout)."""
    _config(config)
    return {"A": ["A1"] + ["A2"] * (len(params["A"]) - 1), "W": "W"}


def group_names(config: Config) -> tuple[str, ...]:
    _config(config)
    return ("A1", "A2", "W") if len(config.heads) >= 2 else ("A1", "W")


def induction(params: dict, config: Config) -> jax.Array | None:
    """The induction block of layer-2 head 0 against first-layer head 0 (:func:`induction_block`), ``(S, S)``;
    ``None`` for one layer."""
    _config(config)
    return induction_block(params, 0, 0) if len(config.heads) >= 2 else None
