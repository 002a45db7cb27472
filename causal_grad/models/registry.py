"""The model registry: model name -> model module, and :func:`build_model`, the one place a model is built
(docs/theory.md §3).

A *model module* follows one protocol (the reduced, disentangled and standard models all do):

* ``Config`` — a frozen dataclass of the model's own hyper-parameters, with a ``name`` field (not an ``__init__``
  argument) that is the registry key;
* ``init(key, config, S, T) -> params`` — the key first (a deterministic initialisation accepts and ignores it);
* ``logits(params, tokens, config) -> (B, S)`` at the query;
* ``loss(params, tokens, targets, config) -> ()`` — the batch-mean cross-entropy against soft targets ``(B, S)``
  (the data-parallel step averages per-device means, so it must be a mean);
* ``first_layer_attention(params, tokens, config) -> (H, T, T)`` — the first layer's attention averaged over
  the batch;
* ``group_labels(params, config)`` — a pytree like ``params`` of parameter-group labels (``"A1"`` = the first
  attention layer, which the layer-wise schedule trains first; any other names for the rest) and
  ``group_names(config)`` — the labels used, in order;
* optional: ``graph_attention(params, tokens, config) -> (H, T, T)`` — the read-out the graph metrics compare
  with the graph (default: ``first_layer_attention``); ``induction(params, config) -> (S, S) | None`` — the
  layer-2 token block of an induction head (default: none); ``logits_all(params, tokens, config) -> (B, T, S)``
  — the prediction at **every** position ``t`` (of ``s_{t+1}`` from ``s_0 … s_t``; its last position is
  ``logits``), which the next-token loss needs (a model without it raises ``NotImplementedError`` naming it
  when that loss is asked for); ``next_token_loss(params, tokens, targets, config) -> ()`` against soft targets
  ``(B, T, S)`` (default: :func:`next_token_cross_entropy` of ``logits_all``).

Adding a model is one new module and one line, ``register_model(my_model)`` (see docs/guide.md).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._validate import check_array, check_int
from . import catformer, disentangled, reduced, standard

__all__ = [
    "REQUIRED",
    "MODELS",
    "register_model",
    "get_model",
    "model_names",
    "model_config",
    "Model",
    "build_model",
    "next_token_cross_entropy",
]

#: The names every model module defines.
REQUIRED = ("Config", "init", "logits", "loss", "first_layer_attention", "group_labels", "group_names")

#: Registered model modules by name.
MODELS: dict[str, types.ModuleType] = {}


def register_model(module: Any, *, replace: bool = False) -> Any:
    """Register a model ``module`` (or any namespace with the protocol's names) under ``module.Config``'s
    ``name``; returns it. ``replace=True`` lets a name be registered again."""
    missing = [n for n in REQUIRED if not hasattr(module, n)]
    if missing:
        raise TypeError(f"module must define the model protocol's {', '.join(REQUIRED)}; missing {', '.join(missing)}")
    cfg_cls = module.Config
    if not (isinstance(cfg_cls, type) and dataclasses.is_dataclass(cfg_cls) and cfg_cls.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise TypeError("module.Config must be a frozen dataclass")
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    if "name" not in fields or fields["name"].init or not isinstance(fields["name"].default, str):
        raise TypeError("module.Config must have a field name: str = field(default=<model name>, init=False)")
    name = fields["name"].default
    if name in MODELS and MODELS[name] is not module and not replace:
        raise ValueError(f"module: a model named {name!r} is already registered (pass replace=True)")
    MODELS[name] = module
    return module


def model_names() -> tuple[str, ...]:
    return tuple(MODELS)


def get_model(name: str) -> Any:
    """The registered model module ``name``."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"name: model must be one of {', '.join(MODELS)}, got {name!r}")
    return MODELS[name]


def model_config(name: str, **fields: Any) -> Any:
    """``get_model(name).Config(**fields)`` (unknown fields raise a ``TypeError`` naming them)."""
    cls = get_model(name).Config
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"model {name!r} has no field(s) {', '.join(unknown)} (its fields: {', '.join(sorted(known))})")
    return cls(**fields)


@dataclass(frozen=True)
class Model:
    """A model bound to its config and task size: the protocol's functions without the ``config`` argument.

    ``init(key)``, ``loss(params, tokens, targets)``, ``logits(params, tokens)``, ``groups(params)`` (the
    group-label pytree), ``attention(params, tokens)`` (the graph metrics' read-out, ``(H, T, T)``),
    ``first_layer_attention(params, tokens)``, ``induction(params)`` (or ``None`` when the model has no
    induction block), ``group_names``; ``logits_all(params, tokens)`` ``(B, T, S)`` and
    ``next_token_loss(params, tokens, targets)`` (targets ``(B, T, S)``), which raise ``NotImplementedError``
    naming the model when it defines no ``logits_all``."""

    name: str
    config: Any
    S: int
    T: int
    init: Callable
    loss: Callable
    logits: Callable
    groups: Callable
    attention: Callable
    first_layer_attention: Callable
    induction: Callable | None
    group_names: tuple[str, ...]
    logits_all: Callable | None = None
    next_token_loss: Callable | None = None

    def __repr__(self) -> str:
        return f"Model({self.config!r}, S={self.S}, T={self.T})"


def next_token_cross_entropy(logits_all: ArrayLike, targets: ArrayLike) -> jax.Array:
    """The next-token loss ``(1/(B·T)) Σ_{b,t} −Σ_s Y_{b,t,s} log softmax(L_{b,t})_s`` of logits ``L`` and soft
    targets ``Y``, both ``(B, T, S)`` (docs/theory.md §5)."""
    logits_all = check_array("logits_all", logits_all, kind="float", ndim=3)
    targets = check_array("targets", targets, kind="real")
    if targets.shape != logits_all.shape:
        raise ValueError(
            f"targets must have the logits' shape (B, T, S) {tuple(logits_all.shape)}, got {tuple(targets.shape)}"
        )
    return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits_all, axis=-1), axis=-1))


def _not_per_position(name: str) -> Callable:
    def refuse(*_args):
        raise NotImplementedError(
            f"model {name!r} defines no logits_all (the prediction at every position), so "
            f"it has no next-token loss; train it with the query-only loss"
        )

    return refuse


def build_model(config: Any, S: int, T: int) -> Model:
    """The :class:`Model` of ``config`` (a registered model's ``Config``) for vocabulary ``S`` and sequence
    length ``T``: the only place a model is built (training, :func:`causal_grad.training.load_run` and verify
    all come here)."""
    name = getattr(config, "name", None)
    if not isinstance(name, str) or name not in MODELS or not isinstance(config, MODELS[name].Config):
        raise TypeError(
            f"config must be the Config of a registered model ({', '.join(MODELS)}), got {type(config).__name__}"
        )
    S = check_int("S", S, minimum=2)
    T = check_int("T", T, minimum=1)
    m = MODELS[name]
    att = getattr(m, "graph_attention", m.first_layer_attention)
    ind = getattr(m, "induction", None)
    # shapes only: does this configuration have an induction block (a model may have one for some configs)?
    example = jax.eval_shape(lambda k: m.init(k, config, S, T), jax.random.key(0))
    has_induction = ind is not None and jax.eval_shape(lambda p: ind(p, config), example) is not None
    induction = None
    if has_induction:
        assert ind is not None  # has_induction is False when ind is None
        induction = lambda p: ind(p, config)  # noqa: E731
    all_fn = getattr(m, "logits_all", None)
    if all_fn is None:
        logits_all = next_token = _not_per_position(name)
    else:
        logits_all = lambda p, tok: all_fn(p, tok, config)  # noqa: E731
        nt = getattr(m, "next_token_loss", None)
        next_token = (
            (lambda p, tok, y: nt(p, tok, y, config))
            if nt is not None
            else (lambda p, tok, y: next_token_cross_entropy(all_fn(p, tok, config), jnp.asarray(y)))
        )

    return Model(
        name,
        config,
        S,
        T,
        init=lambda key: m.init(key, config, S, T),
        loss=lambda p, tok, y: m.loss(p, tok, y, config),
        logits=lambda p, tok: m.logits(p, tok, config),
        groups=lambda p: m.group_labels(p, config),
        attention=lambda p, tok=None: att(p, tok, config),
        first_layer_attention=lambda p, tok: m.first_layer_attention(p, tok, config),
        induction=induction,
        group_names=tuple(m.group_names(config)),
        logits_all=logits_all,
        next_token_loss=next_token,
    )


for _m in (reduced, disentangled, standard, catformer):
    register_model(_m)
