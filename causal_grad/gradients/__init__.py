"""Exact and Monte Carlo gradients of the reduced model's first attention matrix (docs/theory.md §3–4, claims C1, C2).

* :mod:`.enumerate` — the enumerated population (contexts as base-``S`` digits, effective soft targets, the
  size limit);
* :mod:`.exact` — :func:`exact_population_gradient`: the exact loss and ``dL/dA1``, ``dL/dA2`` (float64);
* :mod:`.linearized` — :func:`linearized_gradient_at_init`: ``−dL/dA1 / β0`` at ``A1 = 0``, ``A2 = β0·I``,
  ``β0 → 0`` (docs/theory.md §4), exact;
* :mod:`.monte_carlo` — the same quantities by sampling, with standard errors, for sizes enumeration cannot reach;
* :mod:`.compare` — the rescaled gradient against the mutual-information approximation ``M`` (C1, C2).
"""

from .compare import (
    GradientVsMI,
    compare_gradient_to_mi,
    finite_T_sweep,
    gradient_mi_agreement,
    parent_argmax_study,
    query_row_limit,
    rescale_gradient,
    row_centre,
)
from .enumerate import MAX_ENUMERATION_COST, enumeration_cost
from .exact import ExactGradient, exact_population_gradient
from .linearized import linearized_gradient_at_init
from .monte_carlo import LinearizedEstimate, MonteCarloGradient, monte_carlo_gradient, monte_carlo_linearized_at_init

__all__ = [
    "MAX_ENUMERATION_COST",
    "enumeration_cost",
    "ExactGradient",
    "exact_population_gradient",
    "linearized_gradient_at_init",
    "MonteCarloGradient",
    "LinearizedEstimate",
    "monte_carlo_gradient",
    "monte_carlo_linearized_at_init",
    "GradientVsMI",
    "compare_gradient_to_mi",
    "finite_T_sweep",
    "gradient_mi_agreement",
    "query_row_limit",
    "rescale_gradient",
    "row_centre",
    "parent_argmax_study",
]
