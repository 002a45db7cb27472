"""Models as pure functions on explicit parameters (docs/theory.md §3).

* :mod:`.reduced` — the reduced two-layer model the theory analyses (``A1`` positions×positions, ``A2``
  tokens×tokens, the layer-2 attention output as the prediction, smoothed by ``ε``).
* :mod:`.disentangled` — the disentangled transformer ("CatFormer"): one-hot ``[token; position]`` embedding,
  heads concatenated to the residual, ``softmax(Wᵀh_{T-1})`` readout.
* :mod:`.standard` — a standard transformer (flax linen): added embeddings, value matrices, ReLU MLPs.
"""

from .reduced import causal_softmax, reduced_apply, reduced_loss, reduced_init, DEFAULT_EPS

from .disentangled import (disentangled_init, disentangled_logits, disentangled_apply, disentangled_loss,
                           disentangled_reference_logits, position_attention, first_layer_attention,
                           induction_block, induction_init)
from .standard import StandardTransformer, standard_model, standard_init, standard_loss, standard_attention

__all__ = ["causal_softmax", "reduced_apply", "reduced_loss", "reduced_init", "DEFAULT_EPS",
           "disentangled_init", "disentangled_logits", "disentangled_apply", "disentangled_loss",
           "disentangled_reference_logits", "position_attention", "first_layer_attention", "induction_block",
           "induction_init", "StandardTransformer", "standard_model", "standard_init", "standard_loss",
           "standard_attention"]
