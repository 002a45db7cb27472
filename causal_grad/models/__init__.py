"""Models as pure functions on explicit parameters (THEORY §3).

* :mod:`.reduced` — the reduced two-layer model the theory analyses (``A1`` positions×positions, ``A2``
  tokens×tokens, the layer-2 attention output as the prediction, smoothed by ``ε``).
"""

from .reduced import causal_softmax, reduced_apply, reduced_loss, reduced_init, DEFAULT_EPS

__all__ = ["causal_softmax", "reduced_apply", "reduced_loss", "reduced_init", "DEFAULT_EPS"]
