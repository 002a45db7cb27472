import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from causal_grad import InContextTask, MultiParentTask, chain, icl_pairs, random_tree, two_parent
from causal_grad.baselines import BaselineEstimates, cross_entropy


def test_shapes_and_dtypes():
    task = InContextTask(chain(7), 5, 0.1)
    assert task.seq_len == 8
    tokens, y = task.sample(jax.random.key(0), 64)
    assert tokens.shape == (64, 8) and tokens.dtype == jnp.int32
    assert y.shape == (64, 5) and y.dtype == jnp.float32
    assert int(tokens.min()) >= 0 and int(tokens.max()) < 5
    np.testing.assert_allclose(np.asarray(y.sum(1)), 1.0, atol=1e-5)
    assert task.sample_pi(jax.random.key(1), 3).shape == (3, 5, 5)


def test_same_key_same_batch_bit_identical():
    task = InContextTask(random_tree(jax.random.key(2), 9), 4, 0.3)
    a = task.sample(jax.random.key(7), 32)
    b = task.sample(jax.random.key(7), 32)
    assert all(np.array_equal(np.asarray(x), np.asarray(z)) for x, z in zip(a, b))
    c = task.sample(jax.random.key(8), 32)
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))


def test_top_level_and_traced_samplers_agree_bit_for_bit():
    """At top level the samplers are compiled with the CPU vector options (causal_grad.kernels.xla); traced inside
    another jit (the training step) they are not. Both must give the same batch, tokens and targets alike."""
    for task, batch in (
        (InContextTask(random_tree(jax.random.key(1), 19), 10, 0.1), 5000),
        (MultiParentTask(two_parent(9), 3, 0.5), 300),
    ):
        key = jax.random.key(5)
        top = task.sample(key, batch)
        traced = jax.jit(lambda k, task=task, batch=batch: task.sample(k, batch))(key)
        for a, b in zip(top, traced):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_target_is_row_of_pi_at_query():
    task = InContextTask(chain(5), 3, 1.0)
    tokens, y, pis = task.sample_with_pi(jax.random.key(0), 16)
    q = np.asarray(tokens[:, -1])
    np.testing.assert_array_equal(np.asarray(y), np.asarray(pis)[np.arange(16), q])


def test_query_is_uniform_and_roots_follow_mu():
    S, B = 4, 40000
    pi = np.array([[0.7, 0.1, 0.1, 0.1], [0.05, 0.05, 0.8, 0.1], [0.2, 0.2, 0.2, 0.4], [0.6, 0.3, 0.05, 0.05]])
    task = InContextTask(icl_pairs(4), S, 1.0)
    tokens = np.asarray(task.sample_given_pi(jax.random.key(0), np.broadcast_to(pi, (B, S, S)).astype(np.float32)))
    mu = np.asarray(task.stationary(jnp.asarray(pi)), dtype=np.float64)
    mu /= mu.sum()
    for pos in (0, 2):  # roots
        obs = np.bincount(tokens[:, pos], minlength=S)
        assert stats.chisquare(obs, mu * B).pvalue > 1e-3
    obs = np.bincount(tokens[:, -1], minlength=S)
    assert stats.chisquare(obs, np.full(S, B / S)).pvalue > 1e-3
    # a child: conditional law is the parent's row of pi
    for a in range(S):
        sel = tokens[:, 0] == a
        obs = np.bincount(tokens[sel, 1], minlength=S)
        assert stats.chisquare(obs + 0.0, pi[a] * sel.sum()).pvalue > 1e-3


def test_in_context_estimator_counts_children_of_query():
    task = InContextTask((-1, 0, 1, 0), 3, 0.5)
    # context 2,1,2,0 ; query 2 : children of positions holding 2 with a parent -> position 1 (parent 0 = 2) gives 1,
    # position 3 (parent 0 = 2) gives 0; position 2 (parent 1 = 1) does not count
    tokens = jnp.array([[2, 1, 2, 0, 2]])
    pred = np.asarray(task.in_context(tokens))[0]
    np.testing.assert_allclose(pred, np.array([1.5, 1.5, 0.5]) / 3.5, rtol=1e-6)


def test_baseline_losses_order():
    task = InContextTask(chain(19), 5, 0.1)
    res = task.baseline_losses(jax.random.key(0), num=4096, batch=2048)
    assert res.entropy_floor.mean < res.in_context.mean < res.others["unigram"].mean
    assert all(v["se"] > 0 for v in res.to_dict().values())
    assert list(res.to_dict()) == ["in_context", "unigram", "entropy_floor"]  # held_out_losses' dict, typed
    assert BaselineEstimates.from_dict(res.to_dict()) == res
    assert res.means().to_dict() == {k: v["mean"] for k, v in res.to_dict().items()}


def test_cross_entropy_zero_targets_finite():
    y = jnp.array([[1.0, 0.0]])
    assert float(cross_entropy(y, jnp.array([[1.0, 0.0]]))[0]) == 0.0


def test_multi_parent_task():
    task = MultiParentTask(two_parent(9), 3, 0.2)
    assert task.seq_len == 8 and task.target_parents == (3, 7)
    tokens, y = task.sample(jax.random.key(0), 4000)
    assert tokens.shape == (4000, 8)
    np.testing.assert_allclose(np.asarray(y.sum(1)), 1.0, atol=1e-5)
    # roots uniform
    assert stats.chisquare(np.bincount(np.asarray(tokens[:, 0]), minlength=3)).pvalue > 1e-3
    # the full-tuple estimator beats the one-parent estimator on held-out loss
    res = task.baseline_losses(jax.random.key(1), num=4000, batch=4000)
    assert res.in_context.mean < res.others["one_parent_0"].mean
    assert res.in_context.mean < res.others["one_parent_1"].mean
    assert list(res.others) == ["unigram", "one_parent_0", "one_parent_1"]


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(vocab_size=1), ValueError, "vocab_size must be >= 2"),
        (dict(vocab_size=2.0), TypeError, "vocab_size must be an integer"),
        (dict(vocab_size=2**31), ValueError, "int32"),
        (dict(alpha=0.0), ValueError, "alpha must be > 0"),
        (dict(alpha=-1.0), ValueError, "alpha must be > 0"),
        (dict(alpha=float("nan")), ValueError, "alpha must be finite"),
        (dict(alpha=float("inf")), ValueError, "alpha must be finite"),
        (dict(alpha="0.1"), TypeError, "alpha must be a real number"),
    ],
)
def test_bad_task_args(kwargs, exc, words):
    args = dict(graph=chain(4), vocab_size=3, alpha=0.1)
    args.update(kwargs)
    with pytest.raises(exc) as info:
        InContextTask(**args)
    assert words in str(info.value)


def test_bad_sample_args():
    task = InContextTask(chain(4), 3, 0.1)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        task.sample(jax.random.key(0), 0)
    with pytest.raises(TypeError, match="batch must be an integer"):
        task.sample(jax.random.key(0), 2.5)
    with pytest.raises(TypeError, match="key"):
        task.sample(0, 4)
    with pytest.raises(ValueError, match="forest"):
        InContextTask(two_parent(5), 3, 0.1)
    with pytest.raises(ValueError, match="shape"):
        task.in_context(jnp.zeros((2, 3), jnp.int32))


# ---------------------------------------------------------------------- the batch-last sampler's paths
def test_long_graph_uses_scan_and_draws_children_from_parent_rows():
    """More than 64 positions: tokens are drawn in a lax.scan; the child law given the parent is π's row."""
    S, B = 3, 4000
    pi = np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    task = InContextTask(chain(70), S, 1.0)
    tokens = np.asarray(task.sample_given_pi(jax.random.key(3), np.broadcast_to(pi, (B, S, S)).astype(np.float32)))
    assert tokens.shape == (B, 71)
    pairs = np.stack([tokens[:, :69].ravel(), tokens[:, 1:70].ravel()], 1)
    for a in range(S):
        sel = pairs[pairs[:, 0] == a, 1]
        assert stats.chisquare(np.bincount(sel, minlength=S), pi[a] * sel.size).pvalue > 1e-3


def test_batches_above_one_chunk():
    """Batches larger than one chunk (4096) are drawn chunk by chunk with distinct keys."""
    task = InContextTask(icl_pairs(6), 4, 0.3)
    tokens, y, pis = task.sample_with_pi(jax.random.key(5), 4096 + 300)
    tokens, y, pis = np.asarray(tokens), np.asarray(y), np.asarray(pis)
    assert tokens.shape == (4396, 7) and y.shape == (4396, 4) and pis.shape == (4396, 4, 4)
    np.testing.assert_array_equal(y, pis[np.arange(4396), tokens[:, -1]])
    assert not np.array_equal(pis[:300], pis[4096:])
    assert stats.chisquare(np.bincount(tokens[:, -1], minlength=4)).pvalue > 1e-3
    a, b = task.sample(jax.random.key(5), 4396)
    np.testing.assert_array_equal(np.asarray(a), tokens)  # sample and sample_with_pi agree


def test_float64_sampling():
    from causal_grad import x64

    with x64():
        task = InContextTask(chain(5), 3, 0.1)
        tokens, y, pis = task.sample_with_pi(jax.random.key(0), 256, jnp.float64)
        assert y.dtype == jnp.float64 and pis.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(pis).sum(-1), 1.0, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(y), np.asarray(pis)[np.arange(256), np.asarray(tokens)[:, -1]])


def test_multi_parent_dirichlet_roots_option():
    """roots="dirichlet" (the public code): one Dirichlet(α·1_S) root law per sequence, shared by its roots, so
    two roots carry the same token with probability E[Σ_s p_s²] = (1+α)/(1+Sα) (0.7333 at S = 5, α = 0.1) where
    uniform roots give 1/S; each root's marginal stays uniform by symmetry. Each proportion is checked within 4
    standard errors sqrt(p(1-p)/N) (N = 20,000 sequences). The default's samples are unchanged (bitwise)."""
    from causal_grad.task import ROOTS, make_task

    S, a, N = 5, 0.1, 20_000
    g = two_parent(33)  # positions 0 and 1 are the roots
    uni, cod = MultiParentTask(g, S, a), MultiParentTask(g, S, a, roots="dirichlet")
    assert ROOTS == ("uniform", "dirichlet") and uni.roots == "uniform" and "roots" not in repr(uni)
    key = jax.random.key(11)
    tok_u, y_u = uni.sample(key, N)
    tok_d, _ = cod.sample(key, N)
    for tok, p in ((tok_u, 1 / S), (tok_d, (1 + a) / (1 + S * a))):
        same = float(np.mean(np.asarray(tok[:, 0] == tok[:, 1])))
        assert abs(same - p) <= 4 * np.sqrt(p * (1 - p) / N), (same, p)
        for c in range(S):
            m = float(np.mean(np.asarray(tok[:, 0] == c)))
            assert abs(m - 1 / S) <= 4 * np.sqrt((1 / S) * (1 - 1 / S) / N), (c, m)
    # the default is what it was: explicit "uniform" and make_task draw the same bits
    for t in (MultiParentTask(g, S, a, roots="uniform"), make_task(g, S, a)):
        tok, y = t.sample(key, N)
        np.testing.assert_array_equal(tok, tok_u)
        np.testing.assert_array_equal(y, y_u)
    assert make_task(g, S, a, roots="dirichlet").roots == "dirichlet"


@pytest.mark.parametrize("bad", ["stationary", None, 3])
def test_roots_refused_at_the_door(bad):
    from causal_grad.task import make_task

    with pytest.raises(ValueError, match="roots must be one of uniform, dirichlet"):
        MultiParentTask(two_parent(9), 3, 0.5, roots=bad)
    with pytest.raises(ValueError, match="roots must be one of uniform, dirichlet"):
        make_task(two_parent(9), 3, 0.5, roots=bad)
    with pytest.raises(ValueError, match="roots 'dirichlet' applies to the multi-parent task only"):
        make_task(chain(5), 3, 0.5, roots="dirichlet")
