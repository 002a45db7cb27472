r"""The exact finite-``T`` gradient of ``A1`` at initialisation, in time polynomial in ``T`` and ``S`` (forests).

docs/theory.md §4: with ``A1 = 0``, ``A2 = β0·I``, ``β0 → 0``, ``q = s_{T-1}``, ``ĉ(b) = N_b / T`` with
``N_b = #{k ≤ T-1 : s_k = b}`` (the whole context, query included), ``ŷ = (1-ε)ĉ + ε/S`` and
``v_i(q) = (1/(i+1)) Σ_{j≤i} 1[s_j = q]``,

    G[i,j] := −∂L/∂A1[i,j] / β0 = (1-ε)/((i+1)T) · E[ w_i · (1[s_j = q] − v_i(q)) ],
    w_i = π[q, s_i]/ŷ(s_i) − Σ_b π[q, b] ĉ(b)/ŷ(b),

the expectation over ``π`` uniform on the given matrices, the forest's sequence law and the uniform query.
Enumeration costs ``S^T``; this module computes the same numbers in ``O(T³ S³)`` per ``π``.

Derivation
----------
**1. One kernel.** Put ``c = εT / ((1-ε)S) ≥ 0``. Then ``ŷ(b) = ((1-ε)/T)(N_b + c)``, so

    π[q,s_i]/ŷ(s_i) = (T/(1-ε)) · π[q,s_i]/(N_{s_i} + c),
    ĉ(b)/ŷ(b)       = (1/(1-ε)) · N_b/(N_b + c) = (1/(1-ε)) · Σ_m 1[s_m = b]/(N_b + c),

(the sum over all ``T`` positions ``m``; at ``ε = 0`` this is ``1[N_b > 0]``, the ``ε → 0`` limit of docs/theory.md §4,
with no ``0/0`` since every term has ``s_m = b``, i.e. ``N_b ≥ 1``). Hence
``(1-ε) w_i = T·K_i − Σ_m K_m`` with ``K_m = π[q, s_m]/(N_{s_m} + c)``, and with the kernel

    A[m,k] := E[ π[q, s_m] · 1[s_k = q] / (N_{s_m} + c) ],        m, k ∈ {0, …, T-1},

    H[i,k] := (1-ε) E[ w_i 1[s_k = q] ] = T·A[i,k] − Σ_{m=0}^{T-1} A[m,k],
    G[i,j]  = ( H[i,j] − (1/(i+1)) Σ_{k≤i} H[i,k] ) / ((i+1)T),           j ≤ i,

because ``1[s_j = q] − v_i(q) = Σ_{k≤i} (δ_{jk} − 1/(i+1)) 1[s_k = q]``. Each row of ``G`` sums to zero by
construction (docs/theory.md §4: the softmax ignores a constant added to a row). Everything is linear in the law, so
the average over the given ``π`` is taken on ``A``.

**2. The reciprocal as an integral.** For ``N ≥ 1``, ``1/(N + c) = ∫_0^1 z^{c-1} z^N dz``. Write ``n = T-1``
(graph positions), ``N'_b`` the count over graph positions only, so ``N_b = N'_b + 1[q = b]``, and let ``q = a``
(probability ``1/S``). Pinning ``s_m = b`` (one factor ``z`` for position ``m`` taken out of ``z^{N'_b}``):

    J̃_z[b,m,k,a] := E[ z^{N'_b − 1} 1[s_m = b] 1[s_k = a] ]    (graph positions m, k; a polynomial of degree ≤ n-1),
    P̃_z[b,m]     := Σ_a J̃_z[b,m,k,a] = E[ z^{N'_b − 1} 1[s_m = b] ],
    Z_z[b]       := E[ z^{N'_b} ]                                (degree ≤ n),

and, with the query position ``n``,

    A[m,k] = (1/S) ∫ z^c Σ_{a,b} π[a,b] z^{1[a=b]} J̃_z[b,m,k,a] dz          (m, k < n),
    A[m,n] = (1/S) ∫ z^c Σ_b P̃_z[b,m] (Σ_a π[a,b] + (z − 1) π[b,b]) dz    (m < n; 1[s_n = q] = 1),
    A[n,k] = (1/S) ∫ z^c Σ_a π[a,a] z P̃_z[a,k] dz                           (k < n; s_n = q forces b = a),
    A[n,n] = (1/S) ∫ z^c Σ_a π[a,a] Z_z[a] dz.

Every integrand is ``z^c`` times a polynomial of degree ≤ ``n = T-1``, so **Gauss–Jacobi quadrature on [0, 1]
with weight ``z^c`` and ``⌈T/2⌉`` nodes is exact** (``scipy.special.roots_jacobi(K, 0, c)`` mapped by
``z = (1+x)/2``; Gauss–Legendre at ``ε = 0``). Its weights are positive and every quantity of step 3 is a sum of
products of non-negative numbers: no cancellation until the final ``T·A − Σ A`` of step 1 (inherent in ``G``).

**3. Each node is a sum-product on the forest.** At a node ``z`` and token ``b``, ``J̃``, ``P̃`` and ``Z`` are
partition functions of the forest's law with node potentials ``φ_l(x) = z^{1[x=b]}`` (for ``J̃``, ``P̃``: the
pinned position ``m`` gets ``φ_m(x) = 1[x = b]`` instead). A virtual node joined to every root by the matrix
``1 μᵀ`` makes the forest one tree (the trees' partition functions multiply). With the edge matrix ``E_l``
(``π``, or ``1 μᵀ`` for a root), ``fc(l)`` the first child and ``ns(l)`` the next sibling of ``l``:

    upward (l = n-1 … 0):  u_l = φ_l ⊙ F_{fc(l)},  msg_l = E_l u_l,  F_l = msg_l ⊙ F_{ns(l)}
                           (F_l = product of the messages of l and its later siblings; F_none = 1),
    prefixes:              Pre_l = Π_{siblings c < l} msg_c,
    downward (l = 0 … n-1): o_l = E_lᵀ (H_{p(l)} ⊙ Pre_l ⊙ F_{ns(l)}),  H_l = o_l ⊙ φ_l   (H_virtual = e_0),

so that ``E[Π_l φ_l(s_l) 1[s_k = a]] = o_k(a) u_k(a)`` for every ``k`` at once, and the partition function is
``F_{first root}``. The messages a node receives from all its neighbours but one are prefix × suffix products:
no division, so messages that underflow (rare tokens, small ``z``) are merely negligible, never ``0/0``.

One pass costs ``O(T S²)``; it runs for every node ``z`` (``⌈T/2⌉``), token ``b`` (``S``) and pinned position
``m`` (``T-1``, plus one unpinned pass for ``Z``), vectorised over ``(z, b, m)``: ``O(T³ S³)`` per ``π`` and
``O(T² S²)`` memory per node (nodes are processed in chunks to bound memory). Everything is float64. Each pass
is a ``lax.scan`` that writes one row of one buffer per step, which keeps XLA's loop buffers in place (a scan
that also emits slices of its carry makes XLA copy the whole carry every step: ten times slower).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike
from scipy.special import roots_jacobi

from .._validate import (
    check_int,
    check_key,
    check_positive_float,
    check_probability,
    check_real_array,
    check_transition_matrices,
)
from .._x64 import x64
from ..graphs import GRAPH_FAMILIES, Graph, named_graph
from ..mi import mi_approximation
from ..stationary import stationary
from ..task import InContextTask, MultiParentTask
from .compare import rescale_gradient, row_centre

__all__ = ["exact_gradient_at_init_dp", "quadrature", "departure_from_mi", "departure_sweep", "fit_power_law"]

#: elements of one message array per chunk of quadrature nodes (bounds memory at about 4 such arrays × 8 bytes)
_CHUNK_BUDGET = 4_000_000


def quadrature(num_nodes: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Jacobi rule on ``[0, 1]`` for the weight ``z^c``: ``∫_0^1 z^c f(z) dz = Σ_k w_k f(z_k)``, exact for
    polynomials ``f`` of degree ``≤ 2·num_nodes − 1``. Nodes in ``(0, 1)``, weights positive."""
    num_nodes = check_int("num_nodes", num_nodes, minimum=1)
    if isinstance(c, bool) or not isinstance(c, numbers.Real):
        raise TypeError(f"c must be a finite real >= 0, got {type(c).__name__} {c!r}")
    if not (math.isfinite(c) and c >= 0):
        raise ValueError(f"c must be a finite real >= 0, got {c!r}")
    x, w = roots_jacobi(num_nodes, 0.0, float(c))
    return (1.0 + x) / 2.0, w / 2.0 ** (float(c) + 1.0)


def _check_task(task, S_from_pis: int | None):
    """Return (parents, S) of a single-parent forest task (InContextTask, Graph or parent list)."""
    if isinstance(task, InContextTask):
        return tuple(task.parents), task.vocab_size
    if isinstance(task, MultiParentTask):
        raise ValueError(
            "task must be a single-parent forest (an InContextTask); a multi-parent DAG has no forest sum-product here"
        )
    if isinstance(task, (Graph, list, tuple)):
        g = task if isinstance(task, Graph) else Graph(task)
        if not g.is_forest:
            raise ValueError("task's graph must be a single-parent forest (every position at most one parent)")
        if S_from_pis is None:
            raise ValueError("pi_or_pis must give the vocabulary size when task is a graph")
        return tuple(g.parents), S_from_pis
    raise TypeError(f"task must be a causal_grad.InContextTask (or a forest Graph), got {type(task).__name__}")


def _num_nodes(T: int) -> int:
    return (T + 1) // 2  # ⌈T/2⌉: exact for degree ≤ T-1 ≤ 2⌈T/2⌉ − 1


def _tree_arrays(parents) -> dict[str, np.ndarray]:
    """Index arrays of the forest plus a virtual node ``n`` joined to every root (first-child/next-sibling form).

    ``slot[l]``: parent of ``l`` (``n`` for a root); ``fc[l]``: first (smallest) child of ``l`` (``n`` if none);
    ``ns[l]``: next sibling of ``l`` (``n`` if none; roots are siblings under the virtual node); ``ps[l]``: previous
    sibling (``n`` if ``l`` is a first child); ``is_root``.
    """
    n = len(parents)
    slot = np.array([p if p >= 0 else n for p in parents], dtype=np.int32)
    kids: dict[int, list[int]] = {}
    for l in range(n):
        kids.setdefault(int(slot[l]), []).append(l)
    fc = np.full(n + 1, n, dtype=np.int32)
    ns = np.full(n, n, dtype=np.int32)
    ps = np.full(n, n, dtype=np.int32)
    for p, cs in kids.items():
        fc[p] = cs[0]
        for a, b in zip(cs[:-1], cs[1:]):
            ns[a], ps[b] = b, a
    return {"slot": slot, "fc": fc, "ns": ns, "ps": ps, "is_root": np.array([p < 0 for p in parents])}


def _kernel_one_pi(pi, mu, tree, zc, wc):
    """``A`` (T, T) of the module docstring for one ``π``, accumulated over chunks of quadrature nodes.

    ``tree``: the arrays of :func:`_tree_arrays`; ``zc, wc`` (C, Zc): nodes and weights in chunks (padding has
    weight 0). Every pass is a ``lax.scan`` that writes one row of one buffer per step and reads only rows
    already final: this keeps XLA's loop buffers in place (no per-step copy of the whole buffer).
    """
    S = pi.shape[0]
    slot, fc, ns, ps, is_root = tree["slot"], tree["fc"], tree["ns"], tree["ps"], tree["is_root"]
    n = slot.shape[0]
    P = n + 1  # pinned position m = 0..n-1, or n = unpinned
    E = jnp.where(is_root[:, None, None], jnp.broadcast_to(mu[None, :], (S, S))[None], pi[None])  # (n,S,S)
    x = jnp.arange(S)
    is_b = x[None, :] == x[:, None]  # [b, x] = 1[x = b]
    pins = jnp.arange(P)
    colsum = pi.sum(0)
    diag = jnp.diagonal(pi)

    def chunk(z, w):
        Zc = z.shape[0]
        B = Zc * S * P  # rows ordered (z, b, m); every message is a (B, S) slab
        full = (Zc, S, P, S)
        zpow = jnp.broadcast_to(jnp.where(is_b[None], z[:, None, None], 1.0)[:, :, None, :], full).reshape(B, S)
        pinned = jnp.broadcast_to(is_b.astype(pi.dtype)[None, :, None, :], full).reshape(B, S)  # 1[x=b]
        g = jnp.broadcast_to((pi.T[None] * jnp.where(is_b[None], z[:, None, None], 1.0))[:, :, None, :], full).reshape(
            B, S
        )  # g(a) = π[a,b] z^{1[a=b]}
        pin_of_row = jnp.broadcast_to(pins[None, None, :], (Zc, S, P)).reshape(B)
        ones = jnp.ones((B, S), pi.dtype)

        def phi(l):  # node potential of position l: z^{1[x=b]}, or 1[x=b] in the runs pinned at l
            return jnp.where((pin_of_row == l)[:, None], pinned, zpow)

        # ---- upward pass, positions n-1 … 0: F_l = msg_l ⊙ F_{ns(l)} (l's message times its later siblings'),
        #      u_l = φ_l ⊙ F_{fc(l)}, msg_l = E_l u_l. Row n of F is the empty product.
        def up(F, l):
            u = phi(l) * F[fc[l]]
            msg = u @ E[l].T  # msg(x) = Σ_y E[x,y] u(y)
            return lax.dynamic_update_index_in_dim(F, msg * F[ns[l]], l, 0), msg

        F, msgs = lax.scan(up, jnp.ones((n + 1, B, S), pi.dtype), jnp.arange(n - 1, -1, -1))
        msgs = msgs[::-1]
        total = F[fc[n]][:, 0].reshape(Zc, S, P)  # Π_roots μ·u_r: the partition function

        # ---- prefix products over earlier siblings: Pre_l = Π_{c < l, c sibling of l} msg_c
        def pre(Pr, l):
            val = jnp.where(ps[l] == n, ones, Pr[ps[l]] * msgs[ps[l]])
            return lax.dynamic_update_index_in_dim(Pr, val, l, 0), None

        Pre, _ = lax.scan(pre, jnp.ones((n + 1, B, S), pi.dtype), jnp.arange(n))

        # ---- downward pass, positions 0 … n-1: H_l = o_l ⊙ φ_l with o_l = Eᵀ(H_p ⊙ Pre_l ⊙ F_{ns(l)});
        #      H of the virtual node is e_0. Reading: Σ_a o_l(a) u_l(a) g(a) = Σ_a H_l(a) F_{fc(l)}(a) g(a).
        H0 = jnp.zeros((n + 1, B, S), pi.dtype).at[n, :, 0].set(1.0)

        def down(H, l):
            o = (H[slot[l]] * Pre[l] * F[ns[l]]) @ E[l]
            h = o * phi(l)
            r = jnp.sum(h * F[fc[l]] * g, axis=-1)  # Σ_a J̃[b,m,k=l,a] g(a)
            return lax.dynamic_update_index_in_dim(H, h, l, 0), r

        _, R = lax.scan(down, H0, jnp.arange(n))  # (k, B)
        R = R.reshape(n, Zc, S, P)

        Pt = total[:, :, :n]  # P̃[z,b,m]
        Zp = total[:, :, n]  # Z[z,b]
        A11 = jnp.einsum("kzbm,z->mk", R[..., :n], w)
        h = colsum[None, :] + (z[:, None] - 1.0) * diag[None, :]
        A12 = jnp.einsum("zbm,zb,z->m", Pt, h, w)
        A21 = jnp.einsum("zbk,b,z->k", Pt, diag, w * z)
        A22 = jnp.einsum("zb,b,z->", Zp, diag, w)
        top = jnp.concatenate([A11, A12[:, None]], axis=1)
        bottom = jnp.concatenate([A21, A22[None]])[None]
        return jnp.concatenate([top, bottom], axis=0) / S

    def body(acc, zw):
        return acc + chunk(*zw), None

    A, _ = lax.scan(body, jnp.zeros((n + 1, n + 1), pi.dtype), (zc, wc))
    return A


@jax.jit
def _kernel(pis, mus, tree, zc, wc):
    A = lax.map(lambda pm: _kernel_one_pi(pm[0], pm[1], tree, zc, wc), (pis, mus))
    return A.mean(0)


def _gradient_from_kernel(A: np.ndarray) -> np.ndarray:
    """``G`` from the kernel ``A`` (step 1 of the derivation), in NumPy float64."""
    T = A.shape[0]
    H = T * A - A.sum(0, keepdims=True)
    low = np.tril(np.ones((T, T), dtype=bool))
    rows = np.arange(1, T + 1, dtype=np.float64)[:, None]
    Hl = np.where(low, H, 0.0)
    G = (Hl - Hl.sum(1, keepdims=True) / rows) / (rows * T)
    return np.where(low, G, 0.0)


def exact_gradient_at_init_dp(
    task: InContextTask | Graph | Sequence[int], pi_or_pis: ArrayLike, *, eps: float = 0.0
) -> np.ndarray:
    """``−∂L/∂A1 / β0`` at ``A1 = 0``, ``A2 = β0·I``, ``β0 → 0`` (docs/theory.md §4), exactly, by sum-product on the
    forest.

    Args:
        task: a :class:`~causal_grad.task.InContextTask` (or a forest :class:`~causal_grad.graphs.Graph` / parent
            list, the vocabulary size then taken from ``pi_or_pis``).
        pi_or_pis: one ``(S, S)`` transition matrix or a stack ``(k, S, S)``; the population is uniform over them.
        eps: readout smoothing ``ε ∈ [0, 1)``; ``ε = 0`` is the ``ε → 0`` limit (exact, no 0/0).

    Returns:
        float64 NumPy array ``(T, T)``: rows ``i = 0 … T-1`` (the last is the query row), entries ``j ≤ i``,
        zero above the diagonal; each row sums to zero. Cost ``O(T³ S³)`` per matrix (see the module docstring).
    """
    eps = check_probability("eps", eps, open_high=True)
    S_hint = None
    if not hasattr(task, "vocab_size"):
        arr = np.asarray(pi_or_pis)
        S_hint = int(arr.shape[-1]) if arr.ndim in (2, 3) else None
    parents, S = _check_task(task, S_hint)
    pis = check_transition_matrices("pi_or_pis", pi_or_pis, S)
    n = len(parents)
    T = n + 1
    c = eps * T / ((1.0 - eps) * S)
    z, w = quadrature(_num_nodes(T), c)
    per_node = (n + 1) * S * (n + 1) * S
    Zc = max(1, min(len(z), _CHUNK_BUDGET // per_node))
    C = -(-len(z) // Zc)
    pad = C * Zc - len(z)
    z = np.concatenate([z, np.full(pad, 0.5)]).reshape(C, Zc)
    w = np.concatenate([w, np.zeros(pad)]).reshape(C, Zc)
    tree = _tree_arrays(parents)
    with x64():
        pis_j = jnp.asarray(pis, jnp.float64)
        mus = stationary(pis_j)
        A = _kernel(pis_j, mus, {k: jnp.asarray(v) for k, v in tree.items()}, jnp.asarray(z), jnp.asarray(w))
        A = np.asarray(A, dtype=np.float64)
    return _gradient_from_kernel(A)


# ---------------------------------------------------------------------- departure from the MI approximation
def departure_from_mi(
    task: InContextTask | Graph | Sequence[int], pis: ArrayLike, *, M: ArrayLike | None = None, eps: float = 0.0
) -> dict:
    """How far the exact finite-``T`` gradient is from the mutual-information approximation (docs/theory.md §4, C1).

    ``R[i,j] = (i+1)·T·S·G[i,j]`` on graph rows (``G`` from :func:`exact_gradient_at_init_dp` at ``eps``, averaged
    over ``pis``) and ``M`` (default: :func:`causal_grad.mi.mi_approximation` ``(task, pis, eps=None).M``, the
    ``ε → 0`` limit, so use ``eps = 0``; any other ``(n, n)`` matrix may be passed), both row-centred over ``j ≤ i``.
    Rows ``i ≥ 1`` enter (row 0 has one entry).

    Returns a dict with ``rms`` (root-mean-square of ``R_c − M_c`` over entries ``1 ≤ i``, ``j ≤ i``),
    ``rel_rms`` (``rms`` over the root-mean-square of ``M_c``), ``argmax_agree`` (fraction of non-root rows
    whose argmax over ``j < i`` is the same for ``R`` and ``M``), ``parent_argmax`` (fraction of non-root rows
    whose argmax over ``j < i`` of ``R`` is the parent), ``rel_entry`` (median and max over entries ``j < i`` of
    non-root rows of ``|R − M − c_i| / M`` with ``c_i`` the row's mean offset: the relative entry-wise difference
    once the free row constant is removed), ``parent_margin_ratio`` (median over non-root rows of the gradient's
    parent margin over the best other ``j < i`` divided by ``M``'s) and the arrays ``R``, ``M``.
    """
    parents, S = _check_task(task, None)
    pis = check_transition_matrices("pis", pis, S)
    eps = check_probability("eps", eps, open_high=True)
    n = len(parents)
    if M is None:  # a graph or parent list needs M: mi_approximation refuses anything but an InContextTask
        M = mi_approximation(task, pis, eps=None).M  # pyright: ignore[reportArgumentType]
    M = check_real_array("M", M, (n, n))
    G = exact_gradient_at_init_dp(task, pis, eps=eps)
    R = rescale_gradient(G, S)[:n, :n]  # graph rows: the query row is not covered by M
    Rc, Mc = row_centre(R), row_centre(M)
    low1 = np.tril(np.ones((n, n), dtype=bool))
    low1[0] = False
    diff = (Rc - Mc)[low1]
    rms = float(np.sqrt(np.mean(diff**2)))
    rel_rms = rms / float(np.sqrt(np.mean(Mc[low1] ** 2)))
    child_rows = [i for i in range(1, n) if parents[i] >= 0]
    agree, par_ok, rel, margins = [], [], [], []
    for i in child_rows:
        r, m = R[i, :i], M[i, :i]
        agree.append(int(np.argmax(r)) == int(np.argmax(m)))
        par_ok.append(int(np.argmax(r)) == parents[i])
        off = r - m
        rel.extend(np.abs(off - off.mean()) / np.abs(m))
        if i >= 2:
            others = [j for j in range(i) if j != parents[i]]
            mr = r[parents[i]] - r[others].max()
            mm = m[parents[i]] - m[others].max()
            margins.append(mr / mm if mm != 0 else np.nan)
    rel = np.asarray(rel)
    return {
        "T": n + 1,
        "S": S,
        "eps": eps,
        "num_pis": int(np.asarray(pis).reshape(-1, S, S).shape[0]),
        "rms": rms,
        "rel_rms": rel_rms,
        "argmax_agree": float(np.mean(agree)) if agree else float("nan"),
        "parent_argmax": float(np.mean(par_ok)) if par_ok else float("nan"),
        "rel_entry_median": float(np.median(rel)) if rel.size else float("nan"),
        "rel_entry_max": float(np.max(rel)) if rel.size else float("nan"),
        "parent_margin_ratio": float(np.nanmedian(margins)) if margins else float("nan"),
        "R": R,
        "M": M,
    }


def fit_power_law(Ts, errors) -> dict:
    """Least-squares line through ``(log T, log error)``: ``error ≈ C · T^slope``; returns ``slope``, ``C``."""
    Ts = np.asarray(Ts, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if Ts.shape != errors.shape or Ts.size < 2:
        raise ValueError("Ts and errors must be equal-length sequences of at least 2 points")
    if np.any(Ts <= 0) or np.any(errors <= 0):
        raise ValueError("Ts and errors must be positive for a log-log fit")
    slope, icpt = np.polyfit(np.log(Ts), np.log(errors), 1)
    return {"slope": float(slope), "C": float(np.exp(icpt))}


def departure_sweep(family: str, vocab_size: int, alpha: float, Ts, *, num_pis: int = 8, key=None, seeds=(0,)) -> dict:
    """:func:`departure_from_mi` (at ``ε = 0`` against ``M``) as ``T`` grows, for one graph family and one
    ``Dirichlet(α)`` prior: the same ``num_pis`` matrices (drawn once with ``key``) for every ``T``; random families
    use ``named_graph(family, T-1, seed=s)`` for each seed in ``seeds`` and the metrics are averaged over seeds.

    Returns ``{"rows": [...one dict per T: T, rms, rel_rms, argmax_agree, parent_argmax, rel_entry_median,
    rel_entry_max, parent_margin_ratio, seconds...], "fit": fit_power_law(T, rms)}``.
    """
    if not isinstance(family, str):
        raise TypeError(
            f"family must be a forest family name (chain, icl-pairs, random-tree, random-forest), "
            f"got {type(family).__name__}"
        )
    if family.replace("_", "-") not in GRAPH_FAMILIES or family.replace("_", "-") == "two-parent":
        raise ValueError(
            f"family must be a forest family (chain, icl-pairs, random-tree, random-forest), got {family!r}"
        )
    S = check_int("vocab_size", vocab_size, minimum=2)
    alpha = check_positive_float("alpha", alpha)
    Ts = [check_int("Ts[]", t, minimum=3) for t in Ts]
    num_pis = check_int("num_pis", num_pis, minimum=1)
    key = jax.random.key(0) if key is None else jnp.asarray(check_key("key", key))
    seeds = [check_int("seeds[]", s, minimum=0) for s in seeds]
    with x64():
        pis = np.asarray(InContextTask([-1], S, alpha).sample_pi(key, num_pis, dtype=jnp.float64))
    keys = (
        "rms",
        "rel_rms",
        "argmax_agree",
        "parent_argmax",
        "rel_entry_median",
        "rel_entry_max",
        "parent_margin_ratio",
    )
    rows = []
    for T in Ts:
        t0 = time.perf_counter()
        per_seed = [departure_from_mi(InContextTask(named_graph(family, T - 1, seed=s), S, alpha), pis) for s in seeds]
        row = {"T": T, **{k: float(np.nanmean([d[k] for d in per_seed])) for k in keys}}
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    fit = fit_power_law([r["T"] for r in rows], [r["rms"] for r in rows]) if len(rows) >= 2 else None
    return {"family": family, "S": S, "alpha": alpha, "num_pis": num_pis, "seeds": seeds, "rows": rows, "fit": fit}
