import jax
import numpy as np
import pytest

from causal_grad import Graph, chain, icl_pairs, named_graph, random_forest, random_tree, two_parent


def test_named_constructors():
    assert chain(4).parents == (-1, 0, 1, 2)
    assert icl_pairs(5).parents == (-1, 0, -1, 2, -1)
    g = two_parent(6)
    assert g.parent_sets == ((), (), (0, 1), (1, 2), (1, 3), (2, 4))
    assert not g.is_forest and g.max_arity == 2


def test_random_tree_and_forest_are_valid_and_reproducible():
    for s in range(20):
        g = random_tree(jax.random.key(s), 15)
        assert g.parents[0] == -1
        assert all(-1 <= p < i for i, p in enumerate(g.parents))
        assert g == random_tree(jax.random.key(s), 15)
    f0 = random_forest(jax.random.key(3), 30, 0.0)
    assert f0.roots == (0,)
    f1 = random_forest(jax.random.key(3), 30, 1.0)
    assert f1.roots == tuple(range(30))


def test_random_tree_parent_is_uniform():
    # p(4) uniform on {-1, 0, 1, 2, 3}: 5 cells, chi-squared with 4 dof at a fixed seed
    counts = np.zeros(5)
    for s in range(500):
        counts[random_tree(jax.random.key(s), 5).parents[4] + 1] += 1
    chi2 = ((counts - 100) ** 2 / 100).sum()
    assert chi2 < 18.47  # 0.999 quantile of chi2(4)


def test_helpers():
    g = Graph((-1, 0, 0, 1, -1, 4))
    assert g.depth == (0, 1, 1, 2, 0, 1)
    assert g.ancestors(3) == (1, 0)
    assert g.lca(3, 2) == 0 and g.lca(3, 1) == 1 and g.lca(3, 5) == -1 and g.lca(2, 2) == 2
    assert g.path_length(3, 2) == 3
    assert g.lca_matrix[3, 2] == 0 and g.lca_matrix[5, 3] == -1
    A = g.adjacency()
    assert A[3, 1] == 1 and A.sum() == 4
    assert g.children(0) == (1, 2)
    assert "└─" in str(g) and repr(g) == "Graph((-1, 0, 0, 1, -1, 4))"
    assert Graph(g.parents) == g and hash(Graph(g.parents)) == hash(g)


@pytest.mark.parametrize(
    "parents, exc, words",
    [
        ([], ValueError, "empty"),
        ([0], ValueError, "parents[0]"),
        ([-1, 1], ValueError, "parents[1]"),
        ([-1, -2], ValueError, "-1 (root)"),
        ([-1, 0.5], TypeError, "integer"),
        ([-1, True], TypeError, "integer"),
        ([(), (0, 0)], ValueError, "twice"),
        ([(), (1,)], ValueError, "forward"),
        ([-1, (0,)], TypeError, "mix"),
        ("abc", TypeError, "sequence"),
    ],
)
def test_bad_graphs(parents, exc, words):
    with pytest.raises(exc, match=None) as info:
        Graph(parents)
    assert words in str(info.value)


def test_bad_constructor_args():
    with pytest.raises(ValueError, match="n must be >= 1"):
        chain(0)
    with pytest.raises(TypeError, match="key"):
        random_tree(3, 5)
    with pytest.raises(ValueError, match="p_root"):
        random_forest(jax.random.key(0), 5, 1.5)
    with pytest.raises(ValueError, match="graph must be one of"):
        named_graph("star", 5)


def test_forest_or_dag_is_decided_by_the_parent_sets():
    """Issue 14: the same chain written as parent tuples or as a flat list is one graph, with one length."""
    from causal_grad.task import InContextTask, MultiParentTask, make_task

    tuples, flat = Graph(((), (0,), (1,))), Graph((-1, 0, 1))
    assert tuples == flat and hash(tuples) == hash(flat) and tuples.is_forest
    assert tuples.seq_len == flat.seq_len == 4 and tuples.target is None and repr(tuples) == repr(flat)
    assert isinstance(make_task(tuples, 3, 0.5), InContextTask)
    dag = two_parent(9)
    assert not dag.is_forest and dag.target == 8 and dag.seq_len == 8 and dag.token_positions == 8
    assert make_task(dag, 3, 0.5).seq_len == dag.seq_len
    assert InContextTask(chain(5), 3, 0.5).seq_len == chain(5).seq_len == 6
    # the inverse used by `train --T`
    assert Graph.n_for_seq_len(20, multi_parent=False) == 19 and Graph.n_for_seq_len(32, multi_parent=True) == 33
    # a graph whose positions have one parent each is a forest, never the multi-parent task
    with pytest.raises(ValueError, match="forest: use InContextTask"):
        MultiParentTask(Graph(((), (), (0,))), 3, 0.5)
    # JSON names the kind the parent sets give
    assert tuples.to_json() == {"kind": "forest", "parents": [-1, 0, 1]}
    assert Graph(((), (0,), (0, 1))).to_json() == {"kind": "dag", "parents": [[], [0], [0, 1]]}
