"""The paper's public code re-implemented as the speed reference of the benchmarks (issue 15).

What the public code (eshnich/transformers-learn-causal-structure, ``problems.InContextTree``, ``catformer.CatFormer``
and the training loop of ``single_parent.py``) computes, written here in this project's words so that `make bench`
can time "the paper's code" in the same run as causal_grad, on the same machine, without the fetched repository.
Everything that costs time is done the way that code does it — and nothing faster:

* **sampler** (docs/theory.md §1), one sequence per key, ``jax.vmap`` over ``jax.random.split(key, n)`` inside
  one ``jit``: split the key in three; a fresh ``π`` of ``S`` rows ``Dirichlet(α·1_S)`` (``jax.random.dirichlet``,
  i.e. ``S²`` gamma variates per sequence); the stationary law ``μ`` as the right singular vector of the smallest
  singular value of ``πᵀ − I`` in float32 (SVD), divided by its sum (it can have negative entries, see
  docs/paper_settings.md); positions ``0 … T-2`` drawn one after another in a ``lax.fori_loop``, each with
  ``jax.random.choice`` from ``μ`` (root) or ``π[s_{p(i)}]`` (the key split once per position); the query
  uniform from a third key; target ``y = π[s_{T-1}]``;
* **model** (docs/theory.md §3), the disentangled transformer at every position of every layer: embedding
  ``[x(s_i); e_i]``, per head ``softmax_{j≤i}(h_iᵀ A h_j)`` (a three-operand einsum, masked with ``-∞``) times
  ``h_j``, heads concatenated to the residual, prediction ``softmax(Wᵀ h_{T-1})`` as probabilities;
* **loss** ``mean_b(−Σ_c y_bc log p_bc)`` (the log of the probabilities, not a log-softmax);
* **step** (docs/theory.md §5) plain gradient descent ``θ ← θ − lr·(∇L + wd·θ)``, ``lr`` and ``wd`` passed to the
  compiled step as numbers (the code's cosine schedule is evaluated outside), parameters from zero.

The parameter pytree ``{"A": [A_1, …, A_L], "W": W}`` (``A_ℓ`` of shape ``(H_ℓ, d_ℓ, d_ℓ)``, ``W`` of shape
``(d_L, S)``) is the layout of the public code and of :mod:`causal_grad.models.disentangled`.

Checked once against the real code (2026-12-01, this 2-core CPU, JAX 0.10.2; the fetched repository's
``problems.py`` and ``catformer.py`` run from a throwaway directory with ``simple_pytree`` installed there, neither
part of the project): with the same keys the sampler returns the same tokens and targets bit for bit (65,536
sequences, chain and a random tree, S = 10, T = 20); on the same random weights and batch of 1024 the loss and every
gradient are bit-identical (largest difference 0). Timings side by side in the same minute are in
:data:`REFERENCE_CHECK`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp

from .._validate import check_int, check_key, check_positive_float
from ..graphs import Graph
from . import timeit

__all__ = [
    "REFERENCE_CHECK",
    "measure",
    "paper_init",
    "paper_loss",
    "paper_probabilities",
    "paper_sampler",
    "paper_stationary",
    "paper_step",
    "run",
]

#: The one-off comparison with the real public code (see the module docstring), 2026-12-01, this 2-core CPU while
#: shared (load average 13-19): compiled cost and times, real code vs this module, interleaved in one process.
REFERENCE_CHECK = {
    "samples": "bit-identical tokens and targets for the same keys (65,536 sequences, chain and a random tree)",
    "gradients": "loss and every gradient bit-identical on the same random weights and batch of 1024",
    "step_flops": "930.9 M (real) vs 933.3 M (this module), XLA cost analysis; bytes accessed 304.8 M vs 303.6 M",
    "sampler_time_ratio": "this / real, medians of two interleaved runs: 0.98 (8 rounds of 8,192 sequences) and "
    "0.81 (16 rounds of 4,096); best-of 1.04 and 1.04; best rates 2,780 vs 2,670 and "
    "4,940 vs 4,760 seq/s under load",
    "step_time_ratio": "this / real, medians: 1.07 (8 rounds) and 1.02 (16 rounds); best-of 0.56 and 1.73 "
    "(load-driven scatter); alone, 3 x 3 calls each: 212-215 ms vs 234-242 ms (1.1)",
}


# ---------------------------------------------------------------------- the sampler
def paper_stationary(pi: jax.Array) -> jax.Array:
    """``μ`` with ``μ π = μ`` the public code's way: ``v`` the last right-singular vector of ``πᵀ − I`` (its
    smallest singular value), ``μ = v / Σ v``; float32 in, float32 out, with the rounding (and the occasional
    negative entry) that brings."""
    S = pi.shape[-1]
    _, _, vh = jnp.linalg.svd(pi.T - jnp.eye(S, dtype=pi.dtype))
    v = vh[-1]
    return v / v.sum()


def _one_sequence(key, parents: jax.Array, S: int, alpha: float):
    """One ``(tokens (T,), target (S,))`` of the public sampler; ``parents`` ``(T-1,)`` with ``-1`` for roots."""
    k_pi, k_seq, k_query = jax.random.split(key, 3)
    pi = jax.random.dirichlet(k_pi, jnp.full((S,), alpha), (S,))
    mu = paper_stationary(pi)
    n = parents.shape[0]

    def draw(i, state):
        tokens, k = state
        k, sub = jax.random.split(k)
        par = parents[i]
        law = jnp.where(par == -1, mu, pi[tokens[par]])  # a root's parent index -1 reads a token still 0: unused
        return tokens.at[i].set(jax.random.choice(sub, S, p=law)), k

    tokens, _ = jax.lax.fori_loop(0, n, draw, (jnp.zeros((n + 1,), dtype=int), k_seq))
    q = jax.random.choice(k_query, S)
    return tokens.at[n].set(q), pi[q]


def _check_parents(parents) -> tuple[int, ...]:

    g = Graph(parents)
    if not g.is_forest:
        raise ValueError("parents must describe a forest (one parent or -1 per position) for the paper's sampler")
    return tuple(g.parents)


def paper_sampler(parents: Sequence[int], S: int = 10, alpha: float = 0.1):
    """The public sampler for the forest ``parents`` (``T-1`` graph positions; ``-1`` = root) as a compiled
    function ``(key, n) -> (tokens (n, T) int, targets (n, S) float32)``: ``n`` fresh keys by
    ``jax.random.split(key, n)``, one sequence each (``n`` static)."""
    par = jnp.asarray(_check_parents(parents), dtype=int)
    S = check_int("S", S, minimum=2)
    alpha = check_positive_float("alpha", alpha)

    @partial(jax.jit, static_argnums=1)
    def sample(key, n: int):
        return jax.vmap(lambda k: _one_sequence(k, par, S, alpha))(jax.random.split(key, n))

    def call(key, n: int):
        return sample(check_key("key", key), check_int("n", n, minimum=1))

    return call


# ---------------------------------------------------------------------- the model, loss and step
def paper_init(S: int = 10, T: int = 20, heads: Sequence[int] = (1, 1)) -> dict:
    """Zero parameters: ``A_ℓ`` ``(H_ℓ, d_ℓ, d_ℓ)`` with ``d_0 = S + T``, ``d_{ℓ+1} = d_ℓ (1 + H_ℓ)``; ``W`` ``(d_L,
    S)``."""
    S = check_int("S", S, minimum=2)
    T = check_int("T", T, minimum=1)
    if isinstance(heads, (str, bytes)) or not hasattr(heads, "__len__") or len(heads) == 0:
        raise TypeError(f"heads must be a non-empty sequence of head counts, got {heads!r}")
    d, As = S + T, []
    for k, H in enumerate(heads):
        H = check_int(f"heads[{k}]", H, minimum=1)
        As.append(jnp.zeros((H, d, d), jnp.float32))
        d *= 1 + H
    return {"A": As, "W": jnp.zeros((d, S), jnp.float32)}


def paper_probabilities(params: dict, tokens: jax.Array) -> jax.Array:
    """``softmax(Wᵀ h_{T-1})`` ``(B, S)``, every layer computed at every position (the public model)."""
    S = params["W"].shape[1]
    B, T = tokens.shape
    h = jnp.concatenate(
        [
            jax.nn.one_hot(tokens, S, dtype=params["W"].dtype),
            jnp.broadcast_to(jnp.eye(T, dtype=params["W"].dtype), (B, T, T)),
        ],
        axis=-1,
    )
    causal = jnp.tril(jnp.ones((T, T), dtype=bool))
    for A in params["A"]:
        scores = jnp.einsum("bid,hde,bje->bhij", h, A, h)
        att = jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)
        out = jnp.einsum("bhij,bjd->bihd", att, h)
        h = jnp.concatenate([h, out.reshape(B, T, -1)], axis=-1)
    return jax.nn.softmax(h[:, -1, :] @ params["W"], axis=-1)


def paper_loss(params: dict, tokens: jax.Array, targets: jax.Array) -> jax.Array:
    """``mean_b(−Σ_c y_bc log p_bc)`` with ``p`` from :func:`paper_probabilities`."""
    p = paper_probabilities(params, tokens)
    return jnp.mean(jnp.sum(-jnp.log(p) * targets, axis=-1))


@jax.jit
def paper_step(params: dict, tokens: jax.Array, targets: jax.Array, lr, wd) -> dict:
    """One step of plain gradient descent with weight decay: ``θ ← θ − lr·(∇L(θ) + wd·θ)``."""
    g = jax.grad(paper_loss)(params, tokens, targets)
    return jax.tree.map(lambda p, gi: p - lr * (gi + wd * p), params, g)


# ---------------------------------------------------------------------- timing
def measure(
    repeat: int = 5,
    *,
    epoch: int = 65_536,
    batch: int = 1024,
    parents: Sequence[int] | None = None,
    S: int = 10,
    alpha: float = 0.1,
) -> dict:
    """Seconds per call of the reference sampler (``epoch`` sequences, the public code draws its batches an
    epoch at a time) and of one reference step at ``batch`` (figure-2 configuration by default: chain of 19
    positions, S = 10, T = 20, heads [1, 1]), interleaved, best of ``repeat`` rounds each; plus the rates."""
    repeat = check_int("repeat", repeat, minimum=1)
    epoch = check_int("epoch", epoch, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    parents = tuple(range(-1, 18)) if parents is None else parents
    sample = paper_sampler(parents, S, alpha)
    T = len(_check_parents(parents)) + 1
    params = paper_init(S, T, (1, 1))
    tok, y = sample(jax.random.PRNGKey(0), batch)
    key = jax.random.PRNGKey(1)

    def samp():
        jax.block_until_ready(sample(key, epoch))

    def step():
        jax.block_until_ready(paper_step(params, tok, y, 1.0, 0.0))

    samp()  # compile
    step()
    t_samp = t_step = float("inf")
    for _ in range(repeat):
        t_samp = min(t_samp, timeit(samp, repeat=1, warmup=0))
        t_step = min(t_step, timeit(step, repeat=1, warmup=0))
    sampler_rate = epoch / t_samp
    end_to_end = batch / (batch / sampler_rate + t_step)
    return {
        "sampler_s": t_samp,
        "epoch": epoch,
        "sampler_seq_per_s": sampler_rate,
        "step_s": t_step,
        "batch": batch,
        "end_to_end_seq_per_s": end_to_end,
    }


def run(quick: bool) -> list[dict]:
    """Benchmark rows: the paper's public code (re-implemented) at the figure-2 configuration, this run."""
    m = measure(3 if quick else 7, epoch=16_384 if quick else 65_536)
    return [
        {
            "name": "paper's code (re-impl.): sampler S=10 T=20",
            "value": m["sampler_seq_per_s"],
            "unit": "seq/s",
            "note": f"{m['sampler_s'] * 1e3:.0f} ms per epoch of {m['epoch']:,}",
        },
        {
            "name": "paper's code (re-impl.): GD step, batch 1024",
            "value": m["step_s"] * 1e3,
            "unit": "ms",
            "note": "disentangled [1,1], every position of both layers",
        },
        {
            "name": "paper's code (re-impl.): end to end",
            "value": m["end_to_end_seq_per_s"],
            "unit": "seq/s",
            "note": "1 / (1/sampler rate + step time / batch)",
        },
    ]
