"""causal_grad: exact gradients, mutual-information theory and fast training for

    Nichani, Damian, Lee. "How Transformers Learn Causal Structure with Gradient Descent". ICML 2024.

The package reads like the theory: graphs → task → exact laws → information → gradients → models → training →
verification. Notation follows docs/theory.md.

The names below are loaded on first use (PEP 562 ``__getattr__``): ``import causal_grad`` costs nothing until
a name is touched, so that ``causal-grad`` (whose parser lives in :mod:`causal_grad.cli`) answers a bad flag
before JAX is imported. Public submodules (``causal_grad.debug``, ``causal_grad.mi``, …) are reachable as
attributes without an explicit import.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING

from .devices import use_all_cores_at_import as _use_all_cores_at_import

__version__ = "0.1.0"

#: Public name -> the submodule that defines it (in reading order of the theory).
_EXPORTS: dict[str, str] = {}


def _export(module: str, *names: str) -> None:
    for name in names:
        _EXPORTS[name] = module


# --- foundation: graphs, priors, the task, baselines
_export(
    ".graphs",
    "Graph",
    "chain",
    "icl_pairs",
    "random_tree",
    "random_forest",
    "two_parent",
    "from_parents",
    "named_graph",
)
_export(".priors", "Dirichlet", "Floored", "Sticky", "PermutationLike", "Prior")
_export(".stationary", "stationary")
_export(".task", "InContextTask", "MultiParentTask", "make_task")
_export("._x64", "x64")
_export(".baselines", "exact_bayes_predictive", "exact_bayes_loss", "exact_estimator_loss")
# --- theory engine (exact laws, information, the MI approximation, DPI)
_export(".laws", "pairwise_joint", "parent_child_joint", "pair_geometry", "matrix_powers", "time_reversal")
_export(
    ".information", "mutual_information", "chi2_mutual_information", "weighted_inner", "entropy", "conditional_entropy"
)
_export(
    ".mi",
    "MIApproximation",
    "mi_matrix",
    "mi_approximation",
    "DPIReport",
    "dpi_report",
    "SelfEntryReport",
    "self_entry_report",
    "self_entry_over_prior",
)
# --- models and exact gradients
_export(
    ".gradients",
    "exact_population_gradient",
    "linearized_gradient_at_init",
    "monte_carlo_gradient",
    "monte_carlo_linearized_at_init",
    "compare_gradient_to_mi",
    "gradient_mi_agreement",
    "finite_T_sweep",
    "parent_argmax_study",
    "ExactGradient",
    "MonteCarloGradient",
    "LinearizedEstimate",
    "GradientVsMI",
)
_export(".gradients.dp", "exact_gradient_at_init_dp")
# --- training
_export(
    ".models",
    "build_model",
    "register_model",
    "disentangled_zeros",
    "disentangled_normal",
    "disentangled_logits",
    "disentangled_loss",
    "position_attention",
    "standard_model",
    "standard_init",
)
_export(
    ".training",
    "TrainConfig",
    "TrainResult",
    "default_config",
    "preset",
    "train",
    "load_run",
    "graph_metrics",
    "head_parents",
)
# --- n-gram tasks and the multi-parent gradient at initialisation (claim C10)
_export(".ngram", "NGramTask", "ngram_graph")

#: The public names, written out for type checkers, linters and the API reference; the same set as ``_EXPORTS``
#: (tests/test_layering.py checks it).
__all__ = [
    "Graph",
    "chain",
    "icl_pairs",
    "random_tree",
    "random_forest",
    "two_parent",
    "from_parents",
    "named_graph",
    "Dirichlet",
    "Floored",
    "Sticky",
    "PermutationLike",
    "Prior",
    "stationary",
    "InContextTask",
    "MultiParentTask",
    "make_task",
    "x64",
    "exact_bayes_predictive",
    "exact_bayes_loss",
    "exact_estimator_loss",
    "pairwise_joint",
    "parent_child_joint",
    "pair_geometry",
    "matrix_powers",
    "time_reversal",
    "mutual_information",
    "chi2_mutual_information",
    "weighted_inner",
    "entropy",
    "conditional_entropy",
    "MIApproximation",
    "mi_matrix",
    "mi_approximation",
    "DPIReport",
    "dpi_report",
    "SelfEntryReport",
    "self_entry_report",
    "self_entry_over_prior",
    "exact_population_gradient",
    "linearized_gradient_at_init",
    "monte_carlo_gradient",
    "monte_carlo_linearized_at_init",
    "compare_gradient_to_mi",
    "gradient_mi_agreement",
    "finite_T_sweep",
    "parent_argmax_study",
    "ExactGradient",
    "MonteCarloGradient",
    "LinearizedEstimate",
    "GradientVsMI",
    "exact_gradient_at_init_dp",
    "build_model",
    "register_model",
    "disentangled_zeros",
    "disentangled_normal",
    "disentangled_logits",
    "disentangled_loss",
    "position_attention",
    "standard_model",
    "standard_init",
    "TrainConfig",
    "TrainResult",
    "default_config",
    "preset",
    "train",
    "load_run",
    "graph_metrics",
    "head_parents",
    "NGramTask",
    "ngram_graph",
]


class _Package(types.ModuleType):
    """The package module: importing a submodule must not replace a public function of the same name
    (``causal_grad.stationary`` is the function, as with eager imports, even after ``import
    causal_grad.stationary``)."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in _EXPORTS and name in self.__dict__:
            return  # the public function stays; the submodule is in sys.modules
        if isinstance(value, types.ModuleType) and name in _EXPORTS:
            # first import of a submodule whose name is also a public function: bind the function instead
            value = getattr(value, name)
        super().__setattr__(name, value)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # a public submodule, e.g. causal_grad.debug
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


sys.modules[__name__].__class__ = _Package

#: What ``import causal_grad`` did about CPU devices (a :class:`causal_grad.devices.CpuDevices`): one JAX host
#: device per core, for Python code as for the command line, unless ``CAUSAL_GRAD_CPU_DEVICES=1``, the user's own
#: setting, an accelerator, or a JAX backend already started says otherwise (:mod:`causal_grad.devices`).
CPU_DEVICES = _use_all_cores_at_import()

if TYPE_CHECKING:  # what type checkers and IDEs see (the same names, imported eagerly)
    from ._x64 import x64
    from .baselines import exact_bayes_loss, exact_bayes_predictive, exact_estimator_loss
    from .gradients import (
        ExactGradient,
        GradientVsMI,
        LinearizedEstimate,
        MonteCarloGradient,
        compare_gradient_to_mi,
        exact_population_gradient,
        finite_T_sweep,
        gradient_mi_agreement,
        linearized_gradient_at_init,
        monte_carlo_gradient,
        monte_carlo_linearized_at_init,
        parent_argmax_study,
    )
    from .gradients.dp import exact_gradient_at_init_dp
    from .graphs import Graph, chain, from_parents, icl_pairs, named_graph, random_forest, random_tree, two_parent
    from .information import chi2_mutual_information, conditional_entropy, entropy, mutual_information, weighted_inner
    from .laws import matrix_powers, pair_geometry, pairwise_joint, parent_child_joint, time_reversal
    from .mi import (
        DPIReport,
        MIApproximation,
        SelfEntryReport,
        dpi_report,
        mi_approximation,
        mi_matrix,
        self_entry_over_prior,
        self_entry_report,
    )
    from .models import (
        build_model,
        disentangled_logits,
        disentangled_loss,
        disentangled_normal,
        disentangled_zeros,
        position_attention,
        register_model,
        standard_init,
        standard_model,
    )
    from .ngram import NGramTask, ngram_graph
    from .priors import Dirichlet, Floored, PermutationLike, Prior, Sticky
    from .stationary import stationary
    from .task import InContextTask, MultiParentTask, make_task
    from .training import TrainConfig, TrainResult, default_config, graph_metrics, head_parents, load_run, preset, train
