"""One interface over the three models for the training loop and the metrics.

A :class:`ModelSpec` bundles, for one model and one task size: ``init(key) -> params``, the loss
``loss(params, tokens, targets)``, the parameter-group label of every leaf (``"A1"`` = the first attention layer,
``"A2"`` = later attention layers, ``"W"`` = the readout, ``"all"`` for the standard transformer), the
first-layer attention read-out ``attention(params, tokens) -> (H, T, T)`` that the metrics compare with the
graph, and the induction block ``induction(params) -> (S, S)`` (or ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from .._validate import check_int, check_positive_float, check_probability
from ..models import disentangled as dis
from ..models import standard as std
from ..models.reduced import DEFAULT_EPS, causal_softmax, reduced_loss
from .schedules import SCHEDULES

__all__ = ["ModelSpec", "MODELS", "build_model"]

MODELS = ("reduced", "disentangled", "standard")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    init: Callable
    loss: Callable
    groups: Callable
    attention: Callable
    induction: Optional[Callable]
    group_names: tuple[str, ...]


def build_model(name: str, S: int, T: int, *, schedule: str = "joint", heads=(1, 1), beta0: float = 1.0,
                gamma: float = 1.0, eps: float = DEFAULT_EPS, init_scale: float = 0.0, d_model: int = 64,
                layers: int = 2, std_heads: int = 1) -> ModelSpec:
    """The :class:`ModelSpec` of model ``name`` (one of :data:`MODELS`) for vocabulary ``S`` and length ``T``.

    Initialisations: reduced — ``A1 = 0``, ``A2 = β0·I``; disentangled — zero (or ``N(0, init_scale²)``) for
    the joint schedule, :func:`~causal_grad.models.disentangled.induction_init` (``β0``, ``γ``) for the
    layer-wise one; standard — flax's default.
    """
    if name not in MODELS:
        raise ValueError(f"name: model must be one of {', '.join(MODELS)}, got {name!r}")
    S = check_int("S", S, minimum=2)
    T = check_int("T", T, minimum=1)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    beta0 = check_positive_float("beta0", beta0, allow_zero=True)
    gamma = check_positive_float("gamma", gamma, allow_zero=True)
    eps = check_probability("eps", eps, open_high=True)
    init_scale = check_positive_float("init_scale", init_scale, allow_zero=True)
    if name == "reduced":
        def init(key):
            return {"A1": jnp.zeros((T, T), jnp.float32), "A2": beta0 * jnp.eye(S, dtype=jnp.float32)}

        return ModelSpec(
            "reduced", init,
            loss=lambda p, tok, y: reduced_loss(p["A1"], p["A2"], tok, y, eps),
            groups=lambda p: {"A1": "A1", "A2": "A2"},
            attention=lambda p, tok=None: causal_softmax(p["A1"])[None],
            induction=lambda p: p["A2"],
            group_names=("A1", "A2"))
    if name == "disentangled":
        heads = tuple(heads)
        dis.disentangled_dims(S, T, heads)  # checks
        if schedule == "layerwise":
            def init(key):
                return dis.induction_init(S, T, heads, beta0=beta0, gamma=gamma)
        else:
            def init(key):
                if init_scale:
                    return dis.disentangled_init(S, T, heads, key=key, scale=init_scale)
                return dis.disentangled_init(S, T, heads)

        return ModelSpec(
            "disentangled", init,
            loss=dis.disentangled_loss,
            groups=lambda p: {"A": ["A1"] + ["A2"] * (len(p["A"]) - 1), "W": "W"},
            attention=lambda p, tok=None: dis.position_attention(p, 0),
            induction=(lambda p: dis.induction_block(p, 0, 0)) if len(heads) >= 2 else None,
            group_names=("A1", "A2", "W") if len(heads) >= 2 else ("A1", "W"))
    module = std.standard_model(S, T, d_model, layers, std_heads)

    def attention(p, tok):
        return jnp.mean(std.standard_attention(module, p, tok, 0), axis=0)

    return ModelSpec(
        "standard", lambda key: std.standard_init(module, key),
        loss=lambda p, tok, y: std.standard_loss(module, p, tok, y),
        groups=lambda p: jax.tree.map(lambda _: "all", p),
        attention=attention, induction=None, group_names=("all",))
