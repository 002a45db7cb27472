"""Export trained models to TransformerLens's ``HookedTransformer`` (the extra ``causal_grad[interop]``).

Both of the toolkit's transformers map exactly (same logits up to float32 round-off; docs/theory.md §3):

* **standard transformer** (:mod:`causal_grad.models.standard`, flax): token and position embeddings
  ``W_E = tok_embed``, ``W_pos = pos_embed``; per layer ``l`` and head ``h`` the fused ``qkv`` kernel
  ``(d, 3, H, d_h)`` gives ``W_Q[h] = qkv[:, 0, h]``, ``W_K[h] = qkv[:, 1, h]``, ``W_V[h] = qkv[:, 2, h]``
  (``d × d_h``, no biases), ``W_O[h] = out[h]`` (``d_h × d``); the ReLU MLP ``W_in, b_in, W_out, b_out``
  (the attention-only transformer, ``Config(mlp=False)``, maps to ``attn_only=True``); the readout ``W_U, b_U``.
  No layer norm (``normalization_type=None``), scores scaled by ``1/√d_h`` as in TL.
  TL returns logits at every position ``(B, T, S)``; the toolkit's model reads out the last one, ``[:, -1]``.
* **disentangled transformer** (:mod:`causal_grad.models.disentangled`): its residual stream is a
  *concatenation* ``h ← [h; out_1; …; out_H]``; in TL's additive stream of width ``d_L`` (the final width)
  each block is a fixed slice that starts at zero and is written once. Embeddings: ``W_E`` = one-hot tokens
  in coordinates ``[0, S)``, ``W_pos`` = one-hot positions in ``[S, S+T)``. Head ``h`` of layer ``ℓ`` (width
  ``d_ℓ``) gets ``W_Q = A`` and ``W_K = W_V = I`` on the first ``d_ℓ`` coordinates (``d_head = d_L``,
  ``use_attn_scale=False``), so its score is ``h_iᵀ A h_j`` and its value ``h_j``; ``W_O`` copies the value
  into the head's slice ``[d_ℓ(1+h), d_ℓ(2+h))``. No MLP (``attn_only=True``); ``W_U = W``. TL needs the same
  number of heads in every layer: layers with fewer heads get zero heads (``W_O = 0``, no effect on the
  logits; their patterns are uniform and meaningless).

:func:`head_detector_scores` runs TransformerLens's head-detection score (previous-token, duplicate-token,
induction, or any pattern) on the toolkit's token arrays — TL's own ``detect_head`` wants text and a
tokenizer, which these models have not.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

__all__ = [
    "standard_to_hooked",
    "disentangled_to_hooked",
    "standard_config",
    "disentangled_config",
    "head_detector_scores",
]


def _torch_tl():
    """``(torch, transformer_lens)``, or ImportError naming the extra (an optional dependency)."""
    try:
        import torch  # optional: torch
        import transformer_lens  # optional: transformer_lens
        from transformer_lens import HookedTransformer  # noqa: F401  (removed in TransformerLens 4)  # optional: transformer_lens
    except ImportError as exc:
        raise ImportError(
            f"causal_grad.interop.transformer_lens needs torch and transformer_lens>=2,<4 (whose "
            f"HookedTransformer TransformerLens 4 removed): pip install 'causal_grad[interop]' "
            f"({exc})"
        ) from None
    return torch, transformer_lens


def _flax_params(params) -> Mapping:
    p = params.get("params", params) if isinstance(params, Mapping) else None
    if not isinstance(p, Mapping) or "tok_embed" not in p or "pos_embed" not in p:
        raise TypeError(
            "params must be the standard transformer's flax variables ({'params': {'tok_embed', "
            "'pos_embed', 'attn_0', ...}})"
        )
    return p


def _np(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def standard_config(params) -> dict[str, Any]:
    """The ``HookedTransformerConfig`` arguments of a standard transformer, read off its parameter shapes:
    ``S, d = tok_embed.shape``, ``T = len(pos_embed)``, layers = the ``attn_<l>`` entries, ``(H, d_h)`` from the
    ``qkv`` kernel, the MLP width from ``mlp_in_0``; with no ``mlp_in_<l>``/``mlp_out_<l>`` entries at all (the
    attention-only transformer) ``attn_only=True`` and no ``d_mlp``."""
    p = _flax_params(params)
    S, d = _np(p["tok_embed"]["embedding"]).shape
    T = _np(p["pos_embed"]).shape[0]
    L = sum(1 for k in p if k.startswith("attn_"))
    attn_only = not any(k.startswith(("mlp_in_", "mlp_out_")) for k in p)
    blocks = ("attn",) if attn_only else ("attn", "mlp_in", "mlp_out")
    if L == 0 or any(f"{n}_{l}" not in p for l in range(L) for n in blocks):
        raise ValueError(
            "params: expected attn_<l>, mlp_in_<l>, mlp_out_<l> for l = 0 … L-1 (or attn_<l> alone: attention only)"
        )
    _, _, H, dh = _np(p["attn_0"]["qkv"]["kernel"]).shape
    mlp = {} if attn_only else {"d_mlp": int(_np(p["mlp_in_0"]["kernel"]).shape[1])}
    return {
        "n_layers": L,
        "d_model": int(d),
        "n_ctx": int(T),
        "d_head": int(dh),
        "n_heads": int(H),
        **mlp,
        "d_vocab": int(S),
        "d_vocab_out": int(S),
        "act_fn": "relu",
        "normalization_type": None,
        "attn_only": attn_only,
        "positional_embedding_type": "standard",
        "use_attn_scale": True,
        "default_prepend_bos": False,
        "original_architecture": "causal_grad.standard",
    }


def _build(cfg_kwargs: dict, weights: dict[str, np.ndarray], *, dtype, device):
    torch, tl = _torch_tl()
    dt = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    with warnings.catch_warnings():  # TL 3.x: "HookedTransformer is deprecated" (the extra pins < 4, see above)
        warnings.filterwarnings("ignore", message="HookedTransformer is deprecated", category=DeprecationWarning)
        cfg = tl.HookedTransformerConfig(**cfg_kwargs, dtype=dt, device=device, init_weights=False)
        model = tl.HookedTransformer(cfg)
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(weights))
    unknown = sorted(set(weights) - set(params))
    if missing or unknown:  # a TransformerLens version with other parameter names
        raise ValueError(f"TransformerLens parameters not mapped: {missing}; mapped but absent: {unknown}")
    with torch.no_grad():
        for name, value in weights.items():
            if tuple(params[name].shape) != value.shape:
                raise ValueError(
                    f"{name}: TransformerLens expects shape {tuple(params[name].shape)}, the export built {value.shape}"
                )
            params[name].copy_(torch.as_tensor(value, dtype=dt))
    model.eval()
    return model


def standard_to_hooked(params, *, dtype: Any = "float32", device: str = "cpu"):
    """A ``transformer_lens.HookedTransformer`` with the standard transformer's weights (``params``: flax
    variables ``{"params": …}`` of :mod:`causal_grad.models.standard`, e.g. a trained run's ``params``).
    ``model(tokens)[:, -1]`` equals the toolkit's logits at the query; ``run_with_cache`` exposes every
    activation (``cache["pattern", 0]``: the first layer's attention ``(B, H, T, T)``)."""
    cfg = standard_config(params)
    p = _flax_params(params)
    L, H = cfg["n_layers"], cfg["n_heads"]
    w: dict[str, np.ndarray] = {
        "embed.W_E": _np(p["tok_embed"]["embedding"]),
        "pos_embed.W_pos": _np(p["pos_embed"]),
        "unembed.W_U": _np(p["readout"]["kernel"]),
        "unembed.b_U": _np(p["readout"]["bias"]),
    }
    for l in range(L):
        qkv = _np(p[f"attn_{l}"]["qkv"]["kernel"])  # (d, 3, H, dh)
        b = f"blocks.{l}."
        for m, name in enumerate("QKV"):
            w[b + f"attn.W_{name}"] = np.transpose(qkv[:, m], (1, 0, 2))  # (H, d, dh)
            w[b + f"attn.b_{name}"] = np.zeros((H, cfg["d_head"]))
        w[b + "attn.W_O"] = _np(p[f"attn_{l}"]["out"]["kernel"])  # (H, dh, d)
        w[b + "attn.b_O"] = np.zeros(cfg["d_model"])
        if cfg["attn_only"]:
            continue
        w[b + "mlp.W_in"] = _np(p[f"mlp_in_{l}"]["kernel"])
        w[b + "mlp.b_in"] = _np(p[f"mlp_in_{l}"]["bias"])
        w[b + "mlp.W_out"] = _np(p[f"mlp_out_{l}"]["kernel"])
        w[b + "mlp.b_out"] = _np(p[f"mlp_out_{l}"]["bias"])
    return _build(cfg, w, dtype=dtype, device=device)


def _disentangled_parts(params):
    if not isinstance(params, Mapping) or "A" not in params or "W" not in params:
        raise TypeError("params must be the disentangled transformer's {'A': [A_1, ...], 'W': W}")
    A = [_np(a) for a in params["A"]]
    W = _np(params["W"])
    if not A or any(a.ndim != 3 or a.shape[1] != a.shape[2] for a in A):
        raise ValueError("params['A'] must be a non-empty list of (H_l, d_l, d_l) arrays")
    for l in range(1, len(A)):
        if A[l].shape[1] != A[l - 1].shape[1] * (1 + A[l - 1].shape[0]):
            raise ValueError(
                f"params['A'][{l}] has width {A[l].shape[1]}, expected d_{l - 1}·(1 + H_{l - 1}) = "
                f"{A[l - 1].shape[1] * (1 + A[l - 1].shape[0])}"
            )
    d_L = A[-1].shape[1] * (1 + A[-1].shape[0])
    if W.ndim != 2 or W.shape[0] != d_L:
        raise ValueError(f"params['W'] must have shape (d_L, S) = ({d_L}, S), got {W.shape}")
    return A, W


def disentangled_config(params, seq_len: int) -> dict[str, Any]:
    """The ``HookedTransformerConfig`` arguments of a disentangled transformer on sequences of ``seq_len``
    positions (``d_0 = S + T``), read off ``A`` and ``W``: ``d_model = d_head = d_L``, ``n_heads = max_ℓ H_ℓ``,
    attention only, no score scaling."""
    A, W = _disentangled_parts(params)
    S = W.shape[1]
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
    if A[0].shape[1] != S + seq_len:
        raise ValueError(f"seq_len: the first layer's width {A[0].shape[1]} must be S + T = {S} + {seq_len}")
    d_L = W.shape[0]
    return {
        "n_layers": len(A),
        "d_model": int(d_L),
        "n_ctx": int(seq_len),
        "d_head": int(d_L),
        "n_heads": int(max(a.shape[0] for a in A)),
        "d_vocab": int(S),
        "d_vocab_out": int(S),
        "act_fn": "relu",
        "normalization_type": None,
        "attn_only": True,
        "positional_embedding_type": "standard",
        "use_attn_scale": False,
        "default_prepend_bos": False,
        "original_architecture": "causal_grad.disentangled",
    }


def disentangled_to_hooked(params, seq_len: int, *, dtype: Any = "float32", device: str = "cpu"):
    """A ``transformer_lens.HookedTransformer`` computing the disentangled transformer ``params`` (``{"A": [A_ℓ
    (H_ℓ, d_ℓ, d_ℓ)], "W": (d_L, S)}``) on sequences of ``seq_len`` positions (the concatenated residual stream
    laid out in slices of TL's additive one, see the module docstring). ``model(tokens)[:, -1]`` equals
    ``disentangled_logits(params, tokens)``; ``cache["pattern", 0]`` is the first layer's attention."""
    cfg = disentangled_config(params, seq_len)
    A, W = _disentangled_parts(params)
    S, T, D, Hmax = cfg["d_vocab"], seq_len, cfg["d_model"], cfg["n_heads"]
    W_E = np.zeros((S, D))
    W_E[np.arange(S), np.arange(S)] = 1.0
    W_pos = np.zeros((T, D))
    W_pos[np.arange(T), S + np.arange(T)] = 1.0
    w: dict[str, np.ndarray] = {
        "embed.W_E": W_E,
        "pos_embed.W_pos": W_pos,
        "unembed.W_U": W,
        "unembed.b_U": np.zeros(S),
    }
    for l, a in enumerate(A):
        H, d, _ = a.shape
        WQ, WK, WV, WO = (np.zeros((Hmax, D, D)) for _ in range(4))
        for h in range(H):
            WQ[h, :d, :d] = a[h]
            WK[h, :d, :d] = np.eye(d)
            WV[h, :d, :d] = np.eye(d)
            WO[h, :d, d * (1 + h) : d * (2 + h)] = np.eye(d)
        b = f"blocks.{l}.attn."
        w |= {
            b + "W_Q": WQ,
            b + "W_K": WK,
            b + "W_V": WV,
            b + "W_O": WO,
            b + "b_Q": np.zeros((Hmax, D)),
            b + "b_K": np.zeros((Hmax, D)),
            b + "b_V": np.zeros((Hmax, D)),
            b + "b_O": np.zeros(D),
        }
    return _build(cfg, w, dtype=dtype, device=device)


def head_detector_scores(
    model,
    tokens,
    pattern: Any = "previous_token_head",
    *,
    exclude_bos: bool = False,
    exclude_current_token: bool = False,
    error_measure: Literal["abs", "mul"] = "mul",
) -> np.ndarray:
    """TransformerLens's head-detection score of every head, ``scores[layer, head]``, averaged over the
    sequences ``tokens`` (B, T) (integer array of the toolkit's tokens, no BOS): ``pattern`` is one of TL's
    named patterns (``"previous_token_head"``, ``"duplicate_token_head"``, ``"induction_head"``, built per
    sequence from its tokens) or a fixed lower-triangular ``(T, T)`` array; the score is TL's
    ``compute_head_attention_similarity_score`` (``"mul"``: the share of the head's attention on the
    pattern's cells). The in-context graphs' own pattern: a 0/1 matrix with ones at ``(i, p(i))``."""
    names = ("previous_token_head", "duplicate_token_head", "induction_head")
    tok = np.asarray(tokens)
    if tok.ndim == 1:
        tok = tok[None]
    if tok.ndim != 2 or not np.issubdtype(tok.dtype, np.integer):
        raise ValueError(f"tokens must be an integer array (B, T), got {tok.dtype} {tok.shape}")
    if isinstance(pattern, str):
        if pattern not in names:
            raise ValueError(f"pattern must be one of {', '.join(names)} or a (T, T) array, got {pattern!r}")
        fixed_np = None
    else:
        fixed_np = np.asarray(pattern, dtype=np.float32)
        if fixed_np.shape != (tok.shape[1], tok.shape[1]):
            raise ValueError(f"pattern must have shape (T, T) = {(tok.shape[1],) * 2}, got {fixed_np.shape}")
    torch, _ = _torch_tl()
    from transformer_lens import head_detector as hd  # optional: transformer_lens

    named = {
        "previous_token_head": hd.get_previous_token_head_detection_pattern,
        "duplicate_token_head": hd.get_duplicate_token_head_detection_pattern,
        "induction_head": hd.get_induction_head_detection_pattern,
    }
    fixed = None if fixed_np is None else torch.as_tensor(fixed_np)
    cfg = model.cfg
    scores = np.zeros((cfg.n_layers, cfg.n_heads))
    with torch.no_grad():
        t = torch.as_tensor(tok, dtype=torch.long, device=cfg.device)
        _, cache = model.run_with_cache(t)
        for b in range(tok.shape[0]):
            det = fixed if fixed is not None else named[pattern](t[b : b + 1].cpu())
            for layer in range(cfg.n_layers):
                pat = cache["pattern", layer][b].float().cpu()  # (H, T, T)
                for h in range(cfg.n_heads):
                    scores[layer, h] += (
                        hd.compute_head_attention_similarity_score(
                            pat[h],
                            det,
                            exclude_bos=exclude_bos,
                            exclude_current_token=exclude_current_token,
                            error_measure=error_measure,
                        )
                        / tok.shape[0]
                    )
    return scores
