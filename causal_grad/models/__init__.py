"""Models as pure functions on explicit parameters, one protocol and one registry (docs/theory.md §3).

* :mod:`.reduced` — the reduced two-layer model the theory analyses (``A1`` positions×positions, ``A2``
  tokens×tokens, the layer-2 attention output as the prediction, smoothed by ``ε``).
* :mod:`.disentangled` — the disentangled transformer ("CatFormer"): one-hot ``[token; position]`` embedding,
  heads concatenated to the residual, ``softmax(Wᵀh_{T-1})`` readout.
* :mod:`.standard` — a standard transformer (flax linen): added embeddings, value matrices, ReLU MLPs.
* :mod:`.registry` — name -> model module, :func:`register_model`, and :func:`build_model`, the one place a model
  is built from its ``Config``.
"""

from . import disentangled, reduced, standard  # noqa: F401 (the model modules, as attributes of the package)
from .disentangled import (
    disentangled_apply,
    disentangled_logits,
    disentangled_loss,
    disentangled_normal,
    disentangled_reference_logits,
    disentangled_zeros,
    induction_block,
    induction_init,
    layer1_attention,
    position_attention,
)
from .reduced import DEFAULT_EPS, causal_softmax, reduced_apply, reduced_init, reduced_loss
from .registry import MODELS, Model, build_model, get_model, model_config, model_names, register_model
from .standard import StandardTransformer, standard_attention, standard_init, standard_loss, standard_model

__all__ = [
    "MODELS",
    "Model",
    "build_model",
    "get_model",
    "model_config",
    "model_names",
    "register_model",
    "causal_softmax",
    "reduced_apply",
    "reduced_loss",
    "reduced_init",
    "DEFAULT_EPS",
    "disentangled_zeros",
    "disentangled_normal",
    "disentangled_logits",
    "disentangled_apply",
    "disentangled_loss",
    "disentangled_reference_logits",
    "position_attention",
    "layer1_attention",
    "induction_block",
    "induction_init",
    "StandardTransformer",
    "standard_model",
    "standard_init",
    "standard_loss",
    "standard_attention",
]
