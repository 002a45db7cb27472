"""Bridges to other tools. Each submodule needs its own optional extra and imports it only when used:

* :mod:`causal_grad.interop.transformer_lens` — trained models as TransformerLens ``HookedTransformer``s
  (``pip install 'causal_grad[interop]'``: torch and ``transformer_lens<4``), for its head detector, activation
  patching and CircuitsVis; see docs/guide_interop.md.
"""

__all__: list[str] = []
