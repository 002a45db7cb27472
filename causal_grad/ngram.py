r"""In-context n-gram tasks (docs/theory.md §1, §2; issue 18): every position's parents are the ``k = n − 1``
previous positions.

Setting
-------
Vocabulary ``[S]``, order ``k ≥ 1``, sequence length ``T ≥ k + 1``. A **context** (k-tuple)
``c = (c_1, …, c_k) ∈ [S]^k`` is stored as the flat index ``Σ_j c_j S^{k-j}`` (the oldest token most significant,
as :class:`causal_grad.task.MultiParentTask` flattens parent tuples). A sequence is drawn as follows.

1. A **transition tensor** ``π : [S]^k × [S] → [0, 1]`` (row ``π[c]`` is the law of the next token after
   context ``c``) is drawn once per sequence from the prior:

   * ``"dirichlet"``: the ``S^k`` rows are i.i.d. ``Dirichlet(α·1_S)`` (Edelman et al. 2024 use ``α = 1``);
   * ``"unigram"``: one ``p ~ Dirichlet(α·1_S)`` and ``π[c] = p`` for every ``c`` (the tokens after the first
     ``k`` are i.i.d. ``p``; the law of Edelman et al.'s *unigram* data set);
   * ``"doubly_stochastic"`` (``k = 1`` only): ``π`` uniform (Lebesgue measure) on the Birkhoff polytope of
     ``S × S`` doubly-stochastic matrices. Its free coordinates ``π[a, b]``, ``a, b < S−1`` determine the last
     row and column, so a uniform draw is: ``(S−1)²`` i.i.d. ``U(0, 1)`` entries, completed, accepted when every
     completed entry is ``≥ 0`` (rejection, per sequence, inside one ``lax.while_loop``). This is the law Edelman
     et al.'s code samples for ``S ≤ 5``. The acceptance rate is the polytope's volume in the free
     coordinates: measured 0.125 at ``S = 3``, 9.6e-4 at ``S = 4``, 1e-6 at ``S = 5``, so ``S ≤ 4`` here (each
     round draws 1, 16 or 512 candidates per waiting sequence). ``α`` is then only the estimators'
     pseudo-count.

2. The **initial law** of the first ``k`` tokens (``initial``):

   * ``"uniform"`` (default): i.i.d. uniform on ``[S]``. Chosen because (a) it is this repository's multi-parent
     convention (roots uniform), so the query form *is* :class:`~causal_grad.task.MultiParentTask` on
     :func:`ngram_graph` for the Dirichlet prior; (b) the first tokens then carry no information about ``π``,
     which makes the in-context estimator exactly Bayes-optimal under the Dirichlet prior (below);
   * ``"stationary"``: the first ``k`` tokens, as one context, from the stationary law of the lifted chain on
     ``[S]^k`` (``c → (c_2, …, c_k, b)`` with probability ``π[c, b]``; GTH elimination), as Edelman et al. do.
     For ``"doubly_stochastic"`` this is uniform, for ``"unigram"`` it is ``p^{⊗k}``.

3. For ``t = k … T−1``: ``s_t ~ π[s_{t−k} … s_{t−1}]``.

Two forms of targets (soft labels, docs/theory.md §1):

* **query form** (this paper's): the target of the sequence ``s_0 … s_{T−1}`` is the law of the next, unseen
  token, ``y = π[s_{T−k} … s_{T−1}]`` ``(B, S)``: the multi-parent task whose target has parents
  ``T−k … T−1``;
* **next-token form** (ICL-MC's): ``Y[:, t]`` is the law of ``s_{t+1}`` given ``s_0 … s_t``, ``(B, T, S)``: the
  initial law's conditional for ``t < k − 1`` (uniform for ``initial="uniform"``) and ``π[s_{t−k+1} … s_t]`` for
  ``t ≥ k − 1``. Its last position ``Y[:, T−1]`` is the query-form target of the same sequence.

Estimators (docs/theory.md §2), each also per position (:meth:`NGramTask.predictive_all_positions`, ``(B, T, S)``,
what the next-token loss of phase 2 needs): at position ``t`` (predicting ``s_{t+1}`` from ``s_0 … s_t``)

* **in-context (tuple) estimator** ``(n_t(b) + α)/(Σ_b n_t(b) + Sα)`` with
  ``n_t(b) = #{m : k ≤ m ≤ t, s_{m−k} … s_{m−1} = s_{t−k+1} … s_t, s_m = b}`` (uniform for ``t < k − 1``);
* **in-context unigram** ``(#{m ≤ t : s_m = b} + α)/(t + 1 + Sα)``;
* **exact Bayes** ``E[π[s_{t−k+1} … s_t] | s_0 … s_t]`` where it has a closed form (:meth:`NGramTask.exact_bayes`),
  self-normalised importance sampling otherwise (:meth:`NGramTask.bayes_monte_carlo`).

Exact Bayes: when is it the count estimator?
--------------------------------------------
The likelihood of a sequence is ``ν_π(s_0 … s_{k−1}) · Π_c Π_b π[c, b]^{n_c(b)}`` (``ν_π`` the initial law,
``n_c(b)`` the transition counts). Under ``"dirichlet"`` with ``initial="uniform"``, ``ν`` does not depend on
``π`` and the prior is a product over rows, so the posterior is the product of ``Dirichlet(α + n_c)`` and the
predictive of the query context is ``(n_c(b) + α)/(N_c + Sα)``: **the in-context estimator is exact Bayes**
(counts of other contexts are irrelevant). Two things break it: (i) ``initial="stationary"``: ``ν_π`` is the
stationary law of the lifted chain, a function of *all* rows, so the posterior no longer factorises (the first
tokens carry information about ``π``, as roots drawn from ``μ_π`` do in the single-parent task); (ii) a prior
with dependent rows (``"doubly_stochastic"``: column sums tie the rows together; ``"unigram"``: all rows
equal). Closed forms that remain: ``"unigram"`` (the predictive is the smoothed token count over the tokens
drawn from ``p``: positions ``≥ k`` for the uniform initial law, all positions for the stationary one) and
``"doubly_stochastic"`` at ``S = 2`` (``π = [[1−a, a], [a, 1−a]]``, ``a ~ U(0,1)``: the posterior of ``a`` is
``Beta(n_switch + 1, n_stay + 1)``).
"""

from __future__ import annotations

from functools import cached_property, partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from scipy.special import gammaln

from ._validate import (
    check_array,
    check_choice,
    check_distribution_rows,
    check_int,
    check_key,
    check_positive_float,
    check_stochastic,
    check_tokens,
    is_concrete,
    row_sum_atol,
)
from ._x64 import x64
from .graphs import Graph
from .priors import dirichlet
from .stationary import stationary

__all__ = ["MAX_TABLE_ENTRIES", "NGRAM_INITIAL", "NGRAM_PRIORS", "NGramTask", "ngram_graph"]

NGRAM_PRIORS = ("dirichlet", "unigram", "doubly_stochastic")
NGRAM_INITIAL = ("uniform", "stationary")
#: ``S^(k+1)`` entries per sequence's transition tensor at most (memory per sequence).
MAX_TABLE_ENTRIES = 2**20
_MAX_LIFTED = 1024  # S^k states of the lifted chain for initial="stationary" (GTH is O(S^{3k}))
_MAX_DS_VOCAB = 4
_TOKEN = jnp.int32


def ngram_graph(seq_len: int, k: int) -> Graph:
    """The n-gram DAG on ``seq_len + 1`` positions (the last is the query-form target): positions
    ``0 … k−1`` are roots, position ``i ≥ k`` has the ordered parents ``(i−k, …, i−1)``. With
    :class:`~causal_grad.task.MultiParentTask` this is the ``"dirichlet"``/``"uniform"`` query form."""
    k = check_int("k", k, minimum=1)
    seq_len = check_int("seq_len", seq_len, minimum=k + 1)
    return Graph(tuple(() if i < k else tuple(range(i - k, i)) for i in range(seq_len + 1)))


def _tuple_index(tokens, k: int, S: int):
    """``(B, T)`` flat index of the context ``s_{t−k+1} … s_t`` ending at each position (0 where ``t < k−1``)."""
    B, T = tokens.shape
    idx = jnp.zeros((B, T), _TOKEN)
    for j in range(k):  # idx_t = Σ_j s_{t-k+1+j} S^{k-1-j}
        shifted = jnp.pad(tokens, ((0, 0), (k - 1 - j, 0)))[:, :T]
        idx = idx * S + shifted
    return jnp.where(jnp.arange(T)[None, :] >= k - 1, idx, 0)


class NGramTask:
    """The in-context n-gram task (module docstring): ``S = vocab_size``, order ``k``, length ``T = seq_len``.

    Args:
        vocab_size: ``S ≥ 2``.
        k: order ``k = n − 1 ≥ 1`` (``k = 1``: an in-context Markov chain, ICL-MC's bigrams).
        seq_len: ``T ≥ k + 1`` tokens per sequence.
        alpha: Dirichlet concentration ``α > 0`` of the prior and the estimators' pseudo-count.
        prior: one of :data:`NGRAM_PRIORS`.
        initial: one of :data:`NGRAM_INITIAL` (the law of the first ``k`` tokens).
    """

    def __init__(
        self,
        vocab_size: int,
        k: int,
        seq_len: int,
        alpha: float = 1.0,
        prior: str = "dirichlet",
        initial: str = "uniform",
    ):
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        self.k = check_int("k", k, minimum=1)
        self.seq_len = check_int("seq_len", seq_len, minimum=self.k + 1)
        self.alpha = check_positive_float("alpha", alpha)
        self.prior = check_choice("prior", prior, NGRAM_PRIORS)
        self.initial = check_choice("initial", initial, NGRAM_INITIAL)
        S = self.vocab_size
        if S ** (self.k + 1) > MAX_TABLE_ENTRIES:
            raise ValueError(
                f"vocab_size**(k+1) must be <= {MAX_TABLE_ENTRIES} (one transition tensor per "
                f"sequence), got {S}**{self.k + 1}"
            )
        if self.prior == "doubly_stochastic":
            if self.k != 1:
                raise ValueError(f"prior 'doubly_stochastic' is defined for k == 1 (bigrams) only, got k={self.k}")
            if S > _MAX_DS_VOCAB:
                raise ValueError(
                    f"prior 'doubly_stochastic' needs vocab_size <= {_MAX_DS_VOCAB} (rejection "
                    f"sampling of the Birkhoff polytope), got {S}"
                )
        if self.initial == "stationary" and S**self.k > _MAX_LIFTED:
            raise ValueError(
                f"initial 'stationary' needs vocab_size**k <= {_MAX_LIFTED} states of the lifted chain, "
                f"got {S}**{self.k}"
            )

    # ------------------------------------------------------------------ shapes
    @property
    def num_contexts(self) -> int:
        """``S^k``: rows of the transition tensor."""
        return self.vocab_size**self.k

    @property
    def graph(self) -> Graph:
        """:func:`ngram_graph` ``(T, k)`` (the last position is the query-form target)."""
        return ngram_graph(self.seq_len, self.k)

    def __repr__(self) -> str:
        return (
            f"NGramTask(vocab_size={self.vocab_size}, k={self.k}, seq_len={self.seq_len}, alpha={self.alpha}, "
            f"prior={self.prior!r}, initial={self.initial!r})"
        )

    # ------------------------------------------------------------------ sampling
    def sample_tables(self, key, batch: int, dtype=jnp.float32) -> jax.Array:
        """``batch`` transition tensors from the prior, ``(B, S^k, S)``."""
        key = check_key("key", key)
        batch = check_int("batch", batch, minimum=1)
        return self._tables(key, batch, _check_dtype(dtype))

    def _tables(self, key, batch, dtype):
        S, C = self.vocab_size, self.num_contexts
        if self.prior == "dirichlet":
            return dirichlet(key, self.alpha, (batch, C), S, dtype)
        if self.prior == "unigram":
            p = dirichlet(key, self.alpha, (batch,), S, dtype)
            return jnp.broadcast_to(p[:, None, :], (batch, C, S))
        return _birkhoff(key, batch, S, dtype)

    def initial_law(self, tables) -> jax.Array:
        """Law of the first ``k`` tokens as one context, ``(B, S^k)``, for transition tensors ``(B, S^k, S)``."""
        tables = self._check_tables(tables)
        return self._initial_law(jnp.asarray(tables))

    def _initial_law(self, tables):
        B = tables.shape[0]
        C, S = self.num_contexts, self.vocab_size
        if self.initial == "uniform":
            return jnp.full((B, C), 1.0 / C, tables.dtype)
        return stationary(_lifted(tables, S))

    @cached_property
    def _sampler(self):
        k, S, T, C = self.k, self.vocab_size, self.seq_len, self.num_contexts

        def given(key, tables):
            B = tables.shape[0]
            k0, k1 = jax.random.split(key)
            cdf = jnp.cumsum(tables, axis=-1)
            nu = self._initial_law(tables)
            u0 = jax.random.uniform(k0, (B,), tables.dtype)
            c0 = jnp.minimum(jnp.sum(u0[:, None] >= jnp.cumsum(nu, -1)[:, :-1], -1), C - 1).astype(_TOKEN)
            first = [(c0 // S ** (k - 1 - j)) % S for j in range(k)]
            u = jax.random.uniform(k1, (T - k, B), tables.dtype)

            def step(c, ut):
                row = jnp.take_along_axis(cdf, c[:, None, None], axis=1)[:, 0, :]  # (B, S)
                tok = jnp.minimum(jnp.sum(ut[:, None] >= row[:, :-1], -1), S - 1).astype(_TOKEN)
                return (c % (C // S)) * S + tok, tok

            c_last, rest = lax.scan(step, c0, u)
            tokens = jnp.concatenate([jnp.stack(first, 1), rest.T], axis=1)
            return tokens, c_last

        def sample(key, batch, dtype):
            kt, ks = jax.random.split(key)
            tables = self._tables(kt, batch, dtype)
            tokens, c_last = given(ks, tables)
            y = jnp.take_along_axis(tables, c_last[:, None, None], axis=1)[:, 0, :]
            return tokens, y, tables

        return {"sample": jax.jit(sample, static_argnums=(1, 2)), "given": jax.jit(given)}

    def sample_with_tables(self, key, batch: int, dtype=jnp.float32):
        """Query form with the tensors: ``(tokens (B, T) int32, targets (B, S), tables (B, S^k, S))``."""
        key = check_key("key", key)
        batch = check_int("batch", batch, minimum=1)
        return self._sampler["sample"](key, batch, _check_dtype(dtype))

    def sample(self, key, batch: int, dtype=jnp.float32):
        """Query form: ``tokens`` ``(B, T)`` and targets ``y = π[s_{T−k} … s_{T−1}]`` ``(B, S)``."""
        tokens, y, _ = self.sample_with_tables(key, batch, dtype)
        return tokens, y

    def sample_next_token(self, key, batch: int, dtype=jnp.float32):
        """Next-token form: ``tokens`` ``(B, T)`` and targets ``Y`` ``(B, T, S)`` (``Y[:, t]`` the law of
        ``s_{t+1}``); ``Y[:, -1]`` equals :meth:`sample`'s target for the same key."""
        tokens, _, tables = self.sample_with_tables(key, batch, dtype)
        return tokens, self._next_token_targets(tokens, tables)

    def sample_given_tables(self, key, tables) -> jax.Array:
        """Tokens ``(B, T)`` for given transition tensors ``(B, S^k, S)`` (one sequence each)."""
        key = check_key("key", key)
        tables = self._check_tables(tables)
        return self._sampler["given"](key, jnp.asarray(tables))[0]

    def next_token_targets(self, tokens, tables) -> jax.Array:
        """``Y`` ``(B, T, S)`` of the next-token form for ``tokens`` ``(B, T)`` and their tensors."""
        tokens = self._check_tokens(tokens)
        tables = self._check_tables(tables)
        if tables.shape[0] != tokens.shape[0]:
            raise ValueError(
                f"tables must hold one tensor per sequence: {tables.shape[0]} tensors for {tokens.shape[0]} sequences"
            )
        return self._next_token_targets(jnp.asarray(tokens), jnp.asarray(tables))

    def _next_token_targets(self, tokens, tables):
        k, S = self.k, self.vocab_size
        idx = _tuple_index(tokens, k, S)  # (B, T)
        Y = jnp.take_along_axis(tables, idx[:, :, None], axis=1)  # (B, T, S)
        if k > 1:  # positions t < k-1: the conditional of the initial law given the prefix s_0..s_t
            nu = self._initial_law(tables).reshape((-1,) + (S,) * k)  # (B, S, …, S)
            early = []
            for t in range(k - 1):
                marg = (
                    nu.sum(axis=tuple(range(t + 3, k + 1))) if t + 2 < k + 1 else nu
                )  # (B, S^(t+2)) over s_0..s_{t+1}
                marg = marg.reshape(marg.shape[0], -1, S)
                pre = jnp.zeros(tokens.shape[0], _TOKEN)
                for j in range(t + 1):
                    pre = pre * S + tokens[:, j]
                row = jnp.take_along_axis(marg, pre[:, None, None], axis=1)[:, 0, :]
                early.append(row / jnp.sum(row, -1, keepdims=True))
            Y = jnp.concatenate([jnp.stack(early, 1), Y[:, k - 1 :]], axis=1)
        return Y

    # ------------------------------------------------------------------ estimators (docs/theory.md §2)
    def _counts_all_positions(self, tokens):
        """``n_t(b)`` ``(B, T, S)`` of the module docstring (0 for ``t < k − 1``)."""
        k, S, T = self.k, self.vocab_size, self.seq_len
        idx = _tuple_index(tokens, k, S)
        t = jnp.arange(T)
        # context ending at u (k-1 <= u <= t-1) followed by s_{u+1}: matches position t's context
        valid = (t[None, :] >= k - 1) & (t[None, :] < t[:, None]) & (t[:, None] >= k - 1)  # [t, u]
        match = (idx[:, :, None] == idx[:, None, :]) & valid[None]
        nxt = jax.nn.one_hot(jnp.pad(tokens[:, 1:], ((0, 0), (0, 1))), S, dtype=jnp.float32)  # s_{u+1}
        return jnp.einsum("btu,bus->bts", match.astype(jnp.float32), nxt)

    def _unigram_counts_all_positions(self, tokens, start: int = 0):
        S = self.vocab_size
        X = jax.nn.one_hot(tokens, S, dtype=jnp.float32)
        X = X.at[:, :start].set(0.0)
        return jnp.cumsum(X, axis=1)

    def predictive_all_positions(self, tokens, kind: str = "in_context") -> jax.Array:
        """Per-position predictive ``(B, T, S)`` for the next-token loss: ``kind`` one of ``"in_context"``,
        ``"unigram"``, ``"uniform"``, ``"exact_bayes"`` (closed forms only, see :meth:`exact_bayes`).
        Position ``t`` predicts ``s_{t+1}`` from ``s_0 … s_t``; the last position is the query form."""
        tokens = jnp.asarray(self._check_tokens(tokens))
        kind = check_choice("kind", kind, ("in_context", "unigram", "uniform", "exact_bayes"))
        S, a, T = self.vocab_size, self.alpha, self.seq_len
        B = tokens.shape[0]
        if kind == "uniform":
            return jnp.full((B, T, S), 1.0 / S)
        if kind == "unigram":
            c = self._unigram_counts_all_positions(tokens) + a
            return c / c.sum(-1, keepdims=True)
        if kind == "in_context":
            n = self._counts_all_positions(tokens) + a
            return n / n.sum(-1, keepdims=True)
        return self._exact_bayes_all(tokens)

    def in_context(self, tokens) -> jax.Array:
        """The in-context tuple estimator at the query, ``(B, S)``: Dirichlet-smoothed counts of the
        transitions after earlier occurrences of the last ``k`` tokens."""
        return self.predictive_all_positions(tokens, "in_context")[:, -1]

    def unigram(self, tokens) -> jax.Array:
        """The in-context unigram estimator at the query, ``(#{m : s_m = b} + α)/(T + Sα)``, ``(B, S)``."""
        return self.predictive_all_positions(tokens, "unigram")[:, -1]

    # ------------------------------------------------------------------ exact Bayes
    def _closed_form(self) -> str:
        S = self.vocab_size
        if self.prior == "dirichlet" and self.initial == "uniform":
            return "dirichlet"
        if self.prior == "unigram":
            return "unigram"
        if self.prior == "doubly_stochastic" and S == 2:
            return "ds2"
        raise ValueError(
            f"exact Bayes has a closed form for prior 'dirichlet' with initial 'uniform', prior "
            f"'unigram', or prior 'doubly_stochastic' with vocab_size 2; got prior={self.prior!r}, "
            f"initial={self.initial!r}, vocab_size={S}: use bayes_monte_carlo"
        )

    def _exact_bayes_all(self, tokens):
        form = self._closed_form()
        a, k = self.alpha, self.k
        if form == "dirichlet":
            n = self._counts_all_positions(tokens) + a
            return n / n.sum(-1, keepdims=True)
        if form == "unigram":
            start = k if self.initial == "uniform" else 0
            c = self._unigram_counts_all_positions(tokens, start) + a
            return c / c.sum(-1, keepdims=True)
        # ds2: π = [[1-a, a], [a, 1-a]], a ~ U(0, 1); posterior Beta(n_switch + 1, n_stay + 1)
        sw = jnp.concatenate([jnp.zeros_like(tokens[:, :1]), (tokens[:, 1:] != tokens[:, :-1]).astype(_TOKEN)], 1)
        n_sw = jnp.cumsum(sw, axis=1).astype(jnp.float32)
        n_all = jnp.arange(tokens.shape[1], dtype=jnp.float32)[None, :]
        p_switch = (n_sw + 1.0) / (n_all + 2.0)
        stay = jax.nn.one_hot(tokens, 2, dtype=jnp.float32)
        return stay * (1.0 - p_switch)[..., None] + (1.0 - stay) * p_switch[..., None]

    def exact_bayes(self, tokens) -> jax.Array:
        """``E[π[s_{T−k} … s_{T−1}] | s_0 … s_{T−1}]`` ``(B, S)`` in closed form (module docstring): for
        ``"dirichlet"``/``"uniform"`` it equals :meth:`in_context`. Other settings raise ``ValueError`` naming
        the prior and initial law (use :meth:`bayes_monte_carlo`)."""
        tokens = jnp.asarray(self._check_tokens(tokens))
        self._closed_form()
        return self._exact_bayes_all(tokens)[:, -1]

    def sequence_log_prob(self, tokens) -> np.ndarray:
        """Exact marginal ``log P(s_0 … s_{T−1})`` (the prior integrated out), float64 ``(B,)``, where
        :meth:`exact_bayes` has a closed form: Dirichlet-multinomial (Pólya) factors per context row, per token
        law (unigram), or a Beta integral (doubly stochastic, ``S = 2``)."""
        tokens = np.asarray(self._check_tokens(tokens), np.int64)
        form = self._closed_form()
        S, a, k, T = self.vocab_size, self.alpha, self.k, self.seq_len
        if form == "dirichlet":
            idx = np.asarray(_tuple_index(jnp.asarray(tokens), k, S))
            n = np.zeros((tokens.shape[0], self.num_contexts, S))
            rows = np.arange(tokens.shape[0])
            for m in range(k, T):
                np.add.at(n, (rows, idx[:, m - 1], tokens[:, m]), 1.0)
            N = n.sum(-1)
            lp = (gammaln(S * a) - gammaln(S * a + N)).sum(-1) + (gammaln(a + n) - gammaln(a)).sum((-2, -1))
            return lp - k * np.log(S)
        if form == "unigram":
            start = k if self.initial == "uniform" else 0
            c = np.stack([(tokens[:, start:] == b).sum(1) for b in range(S)], 1).astype(np.float64)
            lp = gammaln(S * a) - gammaln(S * a + c.sum(1)) + (gammaln(a + c) - gammaln(a)).sum(1)
            return lp - start * np.log(S)
        sw = (tokens[:, 1:] != tokens[:, :-1]).sum(1).astype(np.float64)
        st_ = (T - 1) - sw
        return -np.log(2.0) + gammaln(sw + 1) + gammaln(st_ + 1) - gammaln(T + 1.0)

    def bayes_monte_carlo(self, key, tokens, num: int = 4096) -> dict:
        """Posterior predictive at the query by self-normalised importance sampling with ``num`` prior draws
        (any prior and initial law), float64: ``{"mean" (B, S), "se" (B, S), "ess" (B,)}``.

        ``mean = Σ_m w_m π_m[c_q] / Σ_m w_m`` with ``w_m = P(s | π_m)`` (initial law included) and ``c_q`` the last
        ``k`` tokens; ``se`` is the delta-method standard error ``sqrt(Σ_m w̄_m² (π_m[c_q] − mean)²)`` (``w̄`` the
        normalised weights) and ``ess = 1/Σ w̄²``. Consistent as ``num → ∞``; trust it where ``ess`` is large.
        """
        key = check_key("key", key)
        tokens = jnp.asarray(self._check_tokens(tokens))
        num = check_int("num", num, minimum=2)
        k, S, T, C = self.k, self.vocab_size, self.seq_len, self.num_contexts
        with x64():
            tables = self._tables(key, num, jnp.float64)
            logt = jnp.log(jnp.where(tables > 0, tables, 1e-300))
            idx = _tuple_index(tokens, k, S)
            Ctrans = jnp.einsum(
                "buc,bus->bcs",
                jax.nn.one_hot(idx[:, k - 1 : T - 1], C, dtype=jnp.float64),
                jax.nn.one_hot(tokens[:, k:], S, dtype=jnp.float64),
            )
            ll = jnp.einsum("bcs,mcs->bm", Ctrans, logt)
            nu = self._initial_law(tables)  # (M, C)
            ll = ll + jnp.log(jnp.where(nu > 0, nu, 1e-300))[:, idx[:, k - 1]].T
            w = jax.nn.softmax(ll, axis=1)  # (B, M)
            x = tables[:, idx[:, T - 1], :]  # (M, B, S)
            mean = jnp.einsum("bm,mbs->bs", w, x)
            se = jnp.sqrt(jnp.einsum("bm,mbs->bs", w * w, (x - mean[None]) ** 2))
            ess = 1.0 / jnp.sum(w * w, axis=1)
            return {"mean": np.asarray(mean), "se": np.asarray(se), "ess": np.asarray(ess)}

    # ------------------------------------------------------------------ checks
    def _check_tokens(self, tokens):
        return check_tokens("tokens", tokens, seq_len=self.seq_len, vocab_size=self.vocab_size)

    def _check_tables(self, tables):
        C, S = self.num_contexts, self.vocab_size
        if np.ndim(tables) != 3 or tuple(np.shape(tables))[1:] != (C, S):
            raise ValueError(
                f"tables must have shape (B, {C}, {S}) (one transition tensor per sequence, S^k rows), "
                f"got {np.shape(tables)}"
            )
        tables = check_stochastic("tables", tables, stack=True) if C == S else _check_rows("tables", tables)
        if np.shape(tables)[0] < 1:
            raise ValueError("tables must hold at least one transition tensor (the batch is empty)")
        return tables


def _check_rows(name, tables):
    """Rows of a non-square ``(B, C, S)`` tensor: real, finite, non-negative, summing to 1 (when concrete)."""
    tables = check_array(name, tables, kind="real", ndim=3)
    if is_concrete(tables) and np.size(tables):
        arr = np.asarray(tables, np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (found NaN or inf)")
        check_distribution_rows(name, arr, row_sum_atol(np.asarray(tables).dtype, arr.shape[-1]))
    return tables


def _check_dtype(dtype):
    try:
        d = jnp.dtype(dtype)
    except TypeError:
        d = None
    if d is None or d not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return d


def _lifted(tables, S: int):
    """The lifted chain ``(B, S^k, S^k)``: ``c → (c_2 … c_k, b)`` with probability ``π[c, b]``."""
    B, C, _ = tables.shape
    c = np.arange(C)
    cols = (c[:, None] % (C // S)) * S + np.arange(S)[None, :]  # (C, S)
    L = jnp.zeros((B, C, C), tables.dtype)
    return L.at[:, c[:, None], cols].set(tables)


_DS_CANDIDATES = {2: 1, 3: 16, 4: 512}  # candidates per sequence per round (acceptance 1, 0.125, 0.00096)


@partial(jax.jit, static_argnums=(1, 2, 3))
def _birkhoff(key, batch: int, S: int, dtype):
    """Uniform draws on the Birkhoff polytope ``(B, S, S)`` by rejection (module docstring): each round draws
    ``R`` candidates per sequence that is still waiting and keeps its first accepted one (the first accepted of
    i.i.d. candidates has the accepted law, i.e. uniform on the polytope)."""
    R = _DS_CANDIDATES[S]

    def complete(free):
        top = jnp.concatenate([free, 1.0 - free.sum(-1, keepdims=True)], axis=-1)  # (..., S-1, S)
        last = 1.0 - top.sum(-2, keepdims=True)  # (..., 1, S)
        return jnp.concatenate([top, last], axis=-2)

    def draw(i):
        cand = complete(jax.random.uniform(jax.random.fold_in(key, i), (batch, R, S - 1, S - 1), dtype))
        good = jnp.all(cand >= 0, axis=(-2, -1))  # (B, R)
        first = jnp.argmax(good, axis=1)
        return jnp.take_along_axis(cand, first[:, None, None, None], axis=1)[:, 0], jnp.any(good, axis=1)

    def cond(state):
        return ~jnp.all(state[1])

    def body(state):
        m, acc, i = state
        new, ok = draw(i)
        take = ok & ~acc
        return jnp.where(take[:, None, None], new, m), acc | take, i + 1

    m0, ok0 = draw(0)
    m, _, _ = lax.while_loop(cond, body, (m0, ok0, jnp.int32(1)))
    return m
