"""causal_grad: exact gradients, mutual-information theory and fast training for

    Nichani, Damian, Lee. "How Transformers Learn Causal Structure with Gradient Descent". ICML 2024.

The package reads like the theory: graphs → task → exact laws → information → gradients → models → training →
verification. Notation follows docs/theory.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

# --- foundation: graphs, priors, the task, baselines
from .graphs import Graph, chain, icl_pairs, random_tree, random_forest, two_parent, from_parents, named_graph
from .priors import Dirichlet, Floored, Sticky, PermutationLike, Prior
from .stationary import stationary
from .task import InContextTask, MultiParentTask, make_task
from ._x64 import x64
from .baselines import exact_bayes_predictive, exact_bayes_loss, exact_estimator_loss

# --- theory engine (exact laws, information, the MI approximation, DPI)
from .laws import pairwise_joint, parent_child_joint, pair_geometry, matrix_powers, time_reversal
from .information import (mutual_information, chi2_mutual_information, weighted_inner, entropy,
                          conditional_entropy)
from .mi import (MIApproximation, mi_matrix, mi_approximation, DPIReport, dpi_report, SelfEntryReport,
                 self_entry_report, self_entry_over_prior)

# --- models and exact gradients
from .gradients import (exact_population_gradient, linearized_gradient_at_init, monte_carlo_gradient,
                        monte_carlo_linearized_at_init, compare_gradient_to_mi, gradient_mi_agreement,
                        finite_T_sweep, parent_argmax_study, ExactGradient, MonteCarloGradient,
                        LinearizedEstimate, GradientVsMI)
from .gradients.dp import exact_gradient_at_init_dp

# --- training
from .models import (build_model, register_model, disentangled_zeros, disentangled_normal, disentangled_logits,
                     disentangled_loss, position_attention, standard_model, standard_init)
from .training import (TrainConfig, TrainResult, default_config, preset, train, load_run, graph_metrics,
                       head_parents)

# --- comparison and verification

# --- n-gram tasks and the multi-parent gradient at initialisation (claim C10)
from .ngram import NGramTask, ngram_graph
