"""The numerical kernels behind one boundary (docs/theory.md §1, §5): fast paths written for XLA's CPU
backend, each beside a plain, obviously correct twin with a test of their equality (tests/test_kernels.py;
bit for bit where both use the same random bits, in distribution where they do not).

* :func:`threefry2x32` | :func:`threefry2x32_reference` (JAX's block function): bit for bit;
* :func:`log_gamma_variates`, :func:`dirichlet` | :func:`log_gamma_reference`, :func:`dirichlet_reference`
  (``jax.random``): in distribution (moments and a Kolmogorov–Smirnov test at fixed seeds);
* :func:`gth_batch_last`, :func:`gth_loop` | :func:`gth_reference` (NumPy loops): to float64 relative accuracy;
* :func:`forest_tokens_batch_last` | :func:`forest_tokens_reference` (NumPy loops): bit for bit;
* :func:`uniform_token` | :func:`uniform_token_reference` (Python integers): bit for bit;
* :func:`jit_with_options`, :func:`fast_cpu_jit` | the plain ``jax.jit``: the same values.

Modules: :mod:`~causal_grad.kernels.xla` (compiler options, :func:`materialize`),
:mod:`~causal_grad.kernels.threefry` (random words, uniforms), :mod:`~causal_grad.kernels.gamma_sampler`
(gamma and Dirichlet variates), :mod:`~causal_grad.kernels.gth` (stationary laws), :mod:`~causal_grad.kernels.sampler`
(batch-last task sampling). The rest of the package calls the public names below only.
"""

from __future__ import annotations

from .gamma_sampler import (
    check_draw,
    check_float_dtype,
    dirichlet,
    dirichlet_batch_last,
    dirichlet_matrices_batch_last,
    dirichlet_reference,
    gamma,
    log_gamma_reference,
    log_gamma_variates,
)
from .gth import (
    UNROLL_MAX_S,
    gth_batch_last,
    gth_loop,
    gth_reference,
    stationary_batch_last,
)
from .sampler import (
    TOKEN_DTYPE,
    UNROLL_MAX_POSITIONS,
    cdf_batch_last,
    draw_from_cdf,
    forest_tokens_batch_last,
    forest_tokens_reference,
    random_lanes,
    row_at,
    uniform_token,
    uniform_token_reference,
)
from .threefry import (
    counter_words,
    key_words,
    threefry2x32,
    threefry2x32_reference,
    uniforms,
    unit_f32,
    unit_f64,
)
from .xla import (
    FAST_CPU_OPTIONS,
    accepted_options,
    cpu_vector_options,
    fast_cpu_jit,
    jit_with_options,
    materialize,
)

__all__ = [
    # xla
    "materialize",
    "cpu_vector_options",
    "accepted_options",
    "jit_with_options",
    "FAST_CPU_OPTIONS",
    "fast_cpu_jit",
    # threefry
    "threefry2x32",
    "threefry2x32_reference",
    "key_words",
    "counter_words",
    "unit_f32",
    "unit_f64",
    "uniforms",
    # gamma / Dirichlet
    "log_gamma_variates",
    "gamma",
    "dirichlet",
    "dirichlet_batch_last",
    "dirichlet_matrices_batch_last",
    "log_gamma_reference",
    "dirichlet_reference",
    "check_float_dtype",
    "check_draw",
    # GTH
    "UNROLL_MAX_S",
    "gth_batch_last",
    "gth_loop",
    "gth_reference",
    "stationary_batch_last",
    # batch-last sampler
    "TOKEN_DTYPE",
    "UNROLL_MAX_POSITIONS",
    "cdf_batch_last",
    "draw_from_cdf",
    "row_at",
    "random_lanes",
    "uniform_token",
    "forest_tokens_batch_last",
    "forest_tokens_reference",
    "uniform_token_reference",
]
