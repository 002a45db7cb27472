"""Short training runs: graph recovery (reduced and disentangled), the chain's induction head, exact resume,
the results folder, metrics on hand-made attention, and input checks before any compute."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from causal_grad.graphs import Graph, chain, random_tree, two_parent
from causal_grad.training import (TrainConfig, argmax_parents, default_config, diagonal_dominance, graph_metrics,
                                  head_parents, load_run, previous_token_score, shd, train)

TREE = random_tree(jax.random.key(3), 7)  # 7 graph positions, T = 8
SMALL = dict(vocab=5, batch=256, eval_size=1024, eval_every=50, log_every=50)


def _recovered(res):
    f = res.final
    return f["all_recovered"], f["mean_parent_attention"]


def test_reduced_layerwise_recovers_a_small_tree():
    res = train(default_config("reduced", TREE, steps=60, stage1_steps=50, **SMALL), progress=False)
    ok, w = _recovered(res)
    assert ok and w > 0.9, res.final
    assert res.final["shd"] <= len(TREE.roots)  # only roots may add spurious edges


def test_disentangled_layerwise_recovers_a_small_tree():
    res = train(default_config("disentangled", TREE, steps=100, stage1_steps=50, **SMALL), progress=False)
    ok, w = _recovered(res)
    assert ok and w > 0.9, res.final
    # the model also predicts: it beats the uniform guess log S
    assert res.final["loss"] < np.log(5) - 0.1


def test_chain_gives_previous_token_A1_and_diagonal_A2():
    # joint GD from A1 = 0, A2 = I: A2 starts with diag - offdiag = 1 and must grow beyond it
    res = train(default_config("reduced", chain(7), schedule="joint", steps=100, **SMALL), progress=False)
    f = res.final
    assert f["previous_token"] > 0.9, f
    A2 = np.asarray(res.params["A2"])
    assert f["diag_argmax_rows"] == 1.0 and f["diag_minus_offdiag"] > 2.0, A2


def test_resume_is_bit_identical(tmp_path):
    cfg = default_config("disentangled", TREE, steps=40, vocab=5, batch=64, eval_size=256, eval_every=10,
                         log_every=10, checkpoint_every=20)
    full = train(cfg, tmp_path / "full", progress=False)
    part = train(cfg, tmp_path / "part", progress=False, stop_when=lambda m: m["step"] >= 20)
    assert part.history["steps_done"] == 20
    resumed = train(cfg, tmp_path / "part", resume=True, progress=False)
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(a, b)  # same batches (key = f(seed, step)), same compiled step
    assert [e["loss"] for e in resumed.history["eval"]] == [e["loss"] for e in full.history["eval"]]
    # the results folder
    for name in ("config.json", "history.json", "weights.npz"):
        assert (tmp_path / "full" / name).exists()
    assert sorted(int(p.name) for p in (tmp_path / "full" / "checkpoints").iterdir() if p.name.isdigit()) == [20, 40]
    kept = load_run(tmp_path / "full")
    assert kept.config == cfg
    for a, b in zip(jax.tree.leaves(kept.params), jax.tree.leaves(full.params)):
        np.testing.assert_array_equal(a, b)
    hist = json.loads((tmp_path / "full" / "history.json").read_text())
    assert [e["step"] for e in hist["eval"]] == [0, 10, 20, 30, 40]
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg, tmp_path / "full", progress=False)


def test_metrics_on_hand_made_attention():
    g = Graph((-1, 0, 0, 1))
    T = 5
    att = np.zeros((T, T))
    att[0, 0] = 1
    att[1] = [0.9, 0.1, 0, 0, 0]
    att[2] = [0.2, 0.7, 0.1, 0, 0]  # wrong: attends to 1, parent is 0
    att[3] = [0.1, 0.6, 0.2, 0.1, 0]
    att[4] = [0.2] * 5
    m = graph_metrics(att, g)
    assert m["recovered"] == pytest.approx(2 / 3) and not m["all_recovered"]
    assert m["mean_parent_attention"] == pytest.approx((0.9 + 0.2 + 0.6) / 3)
    assert argmax_parents(att, 4) == (-1, 0, 1, 1)
    assert m["shd"] == shd((-1, 0, 1, 1), g) == 2  # edge 0->2 missing, 1->2 extra
    assert previous_token_score(att, 4) == pytest.approx((0.9 + 0.7 + 0.2) / 3)
    d = diagonal_dominance(np.array([[2.0, 0.0], [1.0, 0.5]]))
    assert d["diag_minus_offdiag"] == pytest.approx(1.25 - 0.5) and d["diag_argmax_rows"] == 0.5
    # two heads, two parents: head 0 takes the first parent, head 1 the second
    dag = Graph(((), (), (0, 1), (1, 2)))
    two = np.zeros((2, 4, 4))
    for i, ps in enumerate(dag.parent_sets):
        for h in range(2):
            two[h, i, ps[h] if ps else i] = 1
    hp = head_parents(two, dag)
    assert hp["split"] and hp["dominant_parent"] == [0, 1] and hp["argmax"] == [[1, 0], [0, 1]]
    hp = head_parents(two[[0, 0]], dag)
    assert not hp["split"]


def test_bad_config_raises_before_compute():
    with pytest.raises(ValueError, match="model must be one of"):
        TrainConfig(graph=TREE, model="mlp")
    with pytest.raises(ValueError, match="schedule 'layerwise'"):
        TrainConfig(graph=TREE, model="standard", schedule="layerwise", optimizer="adamw", lr=1e-2)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        TrainConfig(graph=TREE, batch=0)
    with pytest.raises(TypeError, match="steps must be an integer"):
        TrainConfig(graph=TREE, steps=1.5)
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainConfig(graph=TREE, lr=-1.0)
    with pytest.raises(ValueError, match="weight_decay applies to adamw only"):
        TrainConfig(graph=TREE, weight_decay=0.1)
    with pytest.raises(ValueError, match="reduced model needs a single-parent forest"):
        TrainConfig(graph=two_parent(6))
    with pytest.raises(ValueError, match="resume needs out"):
        train(TrainConfig(graph=TREE), resume=True)


def test_cli_train_smoke(tmp_path, capsys):
    from causal_grad.cli import main

    # the configuration of test_reduced_layerwise_recovers_a_small_tree: its compiled step is reused
    rc = main(["train", "--model", "reduced", f"--graph={','.join(map(str, TREE.parents))}", "--vocab", "5",
               "--steps", "60", "--stage1-steps", "50", "--batch", "256", "--eval-size", "1024",
               "--eval-every", "30", "--no-progress", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert rc == 0 and "argmax recovers" in out and (tmp_path / "run" / "weights.npz").exists()
    assert main(["train", "--model", "standard", "--schedule", "layerwise"]) == 2
    assert "layerwise" in capsys.readouterr().err


def test_fast_cpu_jit_gives_the_plain_jit_values_at_top_level_and_traced():
    """fast_cpu_jit only changes how XLA compiles: the disentangled loss agrees with the plain jit (float32 rounding
    of a reordered reduction at most), also when it is traced inside another jit (where options cannot apply)."""
    import jax.numpy as jnp

    from causal_grad.models.disentangled import disentangled_init, disentangled_loss
    from causal_grad.training import fast_cpu_jit

    p = disentangled_init(4, 6, (1, 1), key=jax.random.key(0), scale=0.5)
    tok = jax.random.randint(jax.random.key(1), (8, 6), 0, 4)
    y = jax.nn.softmax(jax.random.normal(jax.random.key(2), (8, 4)))
    vg = jax.value_and_grad(disentangled_loss)
    want = jax.jit(vg)(p, tok, y)
    fast = fast_cpu_jit(vg)
    for got in (fast(p, tok, y), jax.jit(lambda *a: fast(*a))(p, tok, y)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(want[0])) > 0
