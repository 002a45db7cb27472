"""Short training runs: graph recovery (reduced and disentangled), the chain's induction head, exact resume,
the results folder, metrics on hand-made attention, and input checks before any compute."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from causal_grad.graphs import Graph, chain, random_tree, two_parent
from causal_grad.training import (
    History,
    TrainConfig,
    argmax_parents,
    default_config,
    diagonal_dominance,
    graph_metrics,
    head_parents,
    load_run,
    preset,
    previous_token_score,
    shd,
    train,
)

TREE = random_tree(jax.random.key(3), 7)  # 7 graph positions, T = 8
SMALL = dict(vocab=5, batch=256, eval_size=1024, eval_every=50, log_every=50)


def _recovered(res):
    f = res.final
    return f.all_recovered, f.mean_parent_attention


def test_reduced_layerwise_recovers_a_small_tree():
    res = train(default_config("reduced", TREE, steps=60, stage1_steps=50, **SMALL), progress=False)
    ok, w = _recovered(res)
    assert ok and w > 0.9, res.final
    assert res.final.shd <= len(TREE.roots)  # only roots may add spurious edges


def test_disentangled_layerwise_recovers_a_small_tree():
    res = train(default_config("disentangled", TREE, steps=100, stage1_steps=50, **SMALL), progress=False)
    ok, w = _recovered(res)
    assert ok and w > 0.9, res.final
    # the model also predicts: it beats the uniform guess log S
    assert res.final.loss < np.log(5) - 0.1


def test_chain_gives_previous_token_A1_and_diagonal_A2():
    # joint GD from A1 = 0, A2 = I: A2 starts with diag - offdiag = 1 and must grow beyond it
    res = train(default_config("reduced", chain(7), schedule="joint", steps=100, **SMALL), progress=False)
    f = res.final
    assert f.previous_token > 0.9, f
    A2 = np.asarray(res.params["A2"])
    assert f.diag_argmax_rows == 1.0 and f.diag_minus_offdiag > 2.0, A2


def test_resume_is_bit_identical(tmp_path):
    cfg = default_config(
        "disentangled",
        TREE,
        steps=40,
        vocab=5,
        batch=64,
        eval_size=256,
        eval_every=10,
        log_every=10,
        checkpoint_every=20,
    )
    full = train(cfg, tmp_path / "full", progress=False)
    part = train(cfg, tmp_path / "part", progress=False, stop_when=lambda m: m.step >= 20)
    assert part.history.steps_done == 20
    resumed = train(cfg, tmp_path / "part", resume=True, progress=False)
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(a, b)  # same batches (key = f(seed, step)), same compiled step
    assert [e.loss for e in resumed.evals] == [e.loss for e in full.evals]
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


def test_the_typed_history_is_the_file_it_writes(tmp_path):
    """TrainResult's records hold the numbers of history.json, which their to_dict writes byte for byte."""
    cfg = default_config(
        "reduced", chain(4), schedule="joint", steps=4, vocab=3, batch=16, eval_size=64, eval_every=2, log_every=2
    )
    res = train(cfg, tmp_path / "r", progress=False, stop_when=lambda m: m.step >= 99)  # never stops early
    text = (tmp_path / "r" / "history.json").read_text()
    d = json.loads(text)
    assert json.dumps(res.history.to_dict(), indent=1, default=float) == text and res.history.to_dict() == d
    assert History.from_dict(d) == res.history == load_run(tmp_path / "r").history
    assert [e.step for e in res.evals] == [e["step"] for e in d["eval"]] == [0, 2, 4]
    for e, raw in zip(res.evals, d["eval"], strict=True):
        assert e.to_dict() == raw and list(e.to_dict()) == list(raw)
        assert (e.loss, e.time_s, e.excess_over_in_context, e.strategy_kl) == (
            raw["loss"],
            raw["time_s"],
            raw["excess_over_in_context"],
            raw["strategy_kl"],
        )
        assert (e.mean_parent_attention, e.min_parent_attention, e.recovered, e.all_recovered, e.shd) == (
            raw["mean_parent_attention"],
            raw["min_parent_attention"],
            raw["recovered"],
            raw["all_recovered"],
            raw["shd"],
        )
        assert (e.previous_token, e.diag_minus_offdiag, e.diag_argmax_rows) == (
            raw["previous_token"],
            raw["diag_minus_offdiag"],
            raw["diag_argmax_rows"],
        )
        assert e.heads is None and "heads" not in raw and e.extra == {}
    assert res.final == res.evals[-1] and res.final.loss == d["eval"][-1]["loss"]
    assert res.baselines.to_dict() == d["baselines"] and res.baselines.others["unigram"] == d["baselines"]["unigram"]
    h = res.history
    assert (h.steps_done, h.wall_s, h.config, h.smoothing) == (4, d["wall_s"], d["config"], d["smoothing"])
    assert h.train == tuple((s, v) for s, v in d["train"]) and h.train[-1][0] == 4
    assert h.interrupted_at is None and "interrupted_at" not in d


def test_metrics_on_hand_made_attention():
    g = Graph((-1, 0, 0, 1))
    T = 5
    att = np.zeros((T, T))
    att[0, 0] = 1
    att[1] = [0.9, 0.1, 0, 0, 0]
    att[2] = [0.2, 0.7, 0.1, 0, 0]  # wrong: attends to 1, parent is 0
    att[3] = [0.1, 0.6, 0.2, 0.1, 0]
    att[4] = [0.2] * 5
    m = graph_metrics(att, g).to_dict()
    assert m["recovered"] == pytest.approx(2 / 3) and not m["all_recovered"]
    assert m["mean_parent_attention"] == pytest.approx((0.9 + 0.2 + 0.6) / 3)
    assert argmax_parents(att, 4) == (-1, 0, 1, 1)
    assert m["shd"] == shd((-1, 0, 1, 1), g) == 2  # edge 0->2 missing, 1->2 extra
    assert previous_token_score(att, 4) == pytest.approx((0.9 + 0.7 + 0.2) / 3)
    d = diagonal_dominance(np.array([[2.0, 0.0], [1.0, 0.5]])).to_dict()
    assert d["diag_minus_offdiag"] == pytest.approx(1.25 - 0.5) and d["diag_argmax_rows"] == 0.5
    # two heads, two parents: head 0 takes the first parent, head 1 the second
    dag = Graph(((), (), (0, 1), (1, 2)))
    two = np.zeros((2, 4, 4))
    for i, ps in enumerate(dag.parent_sets):
        for h in range(2):
            two[h, i, ps[h] if ps else i] = 1
    hp = head_parents(two, dag).to_dict()
    assert hp["split"] and hp["dominant_parent"] == [0, 1] and hp["argmax"] == [[1, 0], [0, 1]]
    hp = head_parents(two[[0, 0]], dag)
    assert not hp.split


def test_bad_config_raises_before_compute():
    base = preset("reduced", TREE)
    with pytest.raises(ValueError, match="model must be one of"):
        base.replace(model="mlp")
    with pytest.raises(ValueError, match="schedule 'layerwise'"):
        preset("standard", TREE).replace(schedule="layerwise")
    with pytest.raises(ValueError, match="batch must be >= 1"):
        base.replace(batch=0)
    with pytest.raises(TypeError, match="steps must be an integer"):
        base.replace(steps=1.5)
    with pytest.raises(ValueError, match="lr must be > 0"):
        base.replace(lr=-1.0)
    with pytest.raises(ValueError, match="weight_decay applies to adamw only"):
        base.replace(weight_decay=0.1)
    with pytest.raises(ValueError, match="reduced model needs a single-parent forest"):
        base.replace(graph=two_parent(6))
    with pytest.raises(TypeError, match="no config field"):
        base.replace(heads=(1, 1))  # a disentangled field on the reduced model
    with pytest.raises(ValueError, match="resume needs out"):
        train(base, resume=True)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train(base.to_json(), progress=False)


def test_layerwise_with_several_heads_in_a_layer_is_refused():
    # issue 17: under the layer-wise schedule head 1 of layer 1 would stay uniform; say so instead
    with pytest.raises(ValueError, match="several heads in a layer.*joint"):
        preset("disentangled", TREE, heads=(2, 1))
    with pytest.raises(ValueError, match="never separate"):
        preset("disentangled-joint", TREE, heads=(2, 1))  # zeros: identical heads
    cfg = preset("disentangled-joint", TREE, heads=(2, 1), init="normal", init_scale=1e-4)
    assert cfg.model.heads == (2, 1) and cfg.optim.schedule == "joint"


def test_presets_keep_the_former_defaults():
    """The fast presets hold the numbers of the former per-model defaults (make verify trains with them)."""
    r = preset("reduced", TREE)
    assert (r.optim.optimizer, r.optim.lr, r.optim.lr2, r.run.steps, r.stage1, r.model.beta0, r.model.eps) == (
        "sgd",
        300.0,
        30.0,
        200,
        100,
        1.0,
        1e-3,
    )
    d = preset("disentangled", TREE)
    assert (d.optim.lr, d.optim.lr2, d.run.steps, d.stage1, d.model.init, d.model.beta0, d.model.gamma) == (
        300.0,
        3.0,
        300,
        150,
        "induction",
        1.0,
        5.0,
    )
    j = preset("disentangled-joint", TREE)
    assert (j.optim.optimizer, j.optim.lr, j.run.steps, j.model.init) == ("adamw", 0.1, 400, "zeros")
    s = preset("standard", TREE)
    assert (s.optim.lr, s.optim.weight_decay, s.run.steps, s.model.d_model) == (1e-2, 2e-4, 4096, 64)
    f2 = preset("fig2")
    assert (
        f2.graph == chain(19)
        and f2.seq_len == 20
        and (f2.optim.schedule, f2.optim.optimizer, f2.optim.lr) == ("joint", "sgd", 1.0)
        and (f2.run.steps, f2.run.batch) == (1 << 17, 1024)
        and f2.model.heads == (1, 1)
    )
    tp = preset("two-parent")
    assert tp.graph == two_parent(33) and tp.seq_len == 32 and tp.task.vocab == 5 and tp.model.heads == (2, 1)
    assert default_config("reduced", TREE) == r and default_config("disentangled", TREE, schedule="joint") == j
    # steps alone changes steps alone: stage 1 stays half of the run, no other field moves
    assert preset("reduced", TREE, steps=60).stage1 == 30


def test_config_json_round_trip_and_the_flat_format():
    for cfg in (
        preset("reduced", TREE),
        preset("disentangled", TREE),
        preset("two-parent"),
        preset("standard", TREE, d_model=16, heads=2),
    ):
        assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    flat = {
        "graph": {"kind": "forest", "parents": list(TREE.parents)},
        "vocab": 10,
        "alpha": 0.1,
        "model": "disentangled",
        "heads": [1, 1],
        "schedule": "layerwise",
        "optimizer": "sgd",
        "lr": 300.0,
        "lr2": 3.0,
        "steps": 300,
        "stage1_steps": 150,
        "batch": 1024,
        "seed": 0,
        "beta0": 1.0,
        "gamma": 5.0,
        "eps": 0.001,
        "init_scale": 0.0,
        "weight_decay": 0.0,
        "warmup": 0,
        "d_model": 64,
        "layers": 2,
        "std_heads": 1,
        "eval_every": 50,
        "checkpoint_every": 0,
        "log_every": 50,
        "eval_size": 8192,
        "eval_seed": 20240214,
    }
    assert TrainConfig.from_json(flat) == preset("disentangled", TREE, stage1_steps=150)
    with pytest.raises(ValueError, match="neither the layered format"):
        TrainConfig.from_json({"graph": flat["graph"], "model": "reduced", "colour": 1})
    with pytest.raises(ValueError, match="format 7"):
        TrainConfig.from_json({"format": 7})


def test_resume_extends_a_run_and_names_differing_fields(tmp_path):
    cfg = preset(
        "reduced-joint",
        chain(3),
        vocab=3,
        steps=6,
        batch=16,
        eval_size=32,
        eval_every=3,
        log_every=3,
        checkpoint_every=3,
    )
    train(cfg, tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match=r"lr: saved 300.0, given 1.0"):
        train(cfg.replace(lr=1.0), tmp_path / "r", resume=True, progress=False)
    longer = train(cfg.replace(steps=9), tmp_path / "r", resume=True, progress=False)
    assert longer.history.steps_done == 9 and [e.step for e in longer.evals] == [0, 3, 6, 9]
    assert load_run(tmp_path / "r").config.run.steps == 9
    assert len(repr(longer)) < 300 and "reduced/joint" in repr(longer)


def test_cli_train_smoke(tmp_path, capsys):
    from causal_grad.cli import main

    # the configuration of test_reduced_layerwise_recovers_a_small_tree: its compiled step is reused
    rc = main(
        [
            "train",
            "--model",
            "reduced",
            f"--graph={','.join(map(str, TREE.parents))}",
            "--vocab",
            "5",
            "--steps",
            "60",
            "--stage1-steps",
            "50",
            "--batch",
            "256",
            "--eval-size",
            "1024",
            "--eval-every",
            "30",
            "--no-progress",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "argmax recovers" in out and (tmp_path / "run" / "weights.npz").exists()
    assert main(["train", "--model", "standard", "--schedule", "layerwise"]) == 2
    assert "layerwise" in capsys.readouterr().err


def test_fast_cpu_jit_gives_the_plain_jit_values_at_top_level_and_traced():
    """fast_cpu_jit only changes how XLA compiles: the disentangled loss agrees with the plain jit (float32 rounding
    of a reordered reduction at most), also when it is traced inside another jit (where options cannot apply)."""
    import jax.numpy as jnp

    from causal_grad.models.disentangled import disentangled_loss, disentangled_normal
    from causal_grad.training import fast_cpu_jit

    p = disentangled_normal(jax.random.key(0), 4, 6, (1, 1), scale=0.5)
    tok = jax.random.randint(jax.random.key(1), (8, 6), 0, 4)
    y = jax.nn.softmax(jax.random.normal(jax.random.key(2), (8, 4)))
    vg = jax.value_and_grad(disentangled_loss)
    want = jax.jit(vg)(p, tok, y)
    fast = fast_cpu_jit(vg)
    for got in (fast(p, tok, y), jax.jit(lambda *a: fast(*a))(p, tok, y)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(want[0])) > 0


def test_adding_a_model_is_one_module_and_one_registry_line():
    """docs/guide.md's recipe: a model module (Config, init, logits, loss, first_layer_attention, group labels),
    registered with one line, trained by causal_grad.train."""
    import dataclasses
    import types

    import jax.numpy as jnp

    import causal_grad
    from causal_grad.models import MODELS, register_model
    from causal_grad.models.reduced import causal_softmax
    from causal_grad.training import OptimConfig, RunConfig, TaskConfig

    @dataclasses.dataclass(frozen=True)
    class Config:
        name: str = dataclasses.field(default="position_mix", init=False)

    def init(key, config, S, T):
        return {"A1": jnp.zeros((T, T)), "E": 0.01 * jax.random.normal(key, (S, S))}

    def logits(params, tokens, config):
        X = jax.nn.one_hot(tokens, params["E"].shape[0])  # (B, T, S)
        mixed = jnp.einsum("j,bjs->bs", causal_softmax(params["A1"])[-1], X)  # the query row of layer 1
        return mixed @ params["E"]

    def loss(params, tokens, targets, config):
        return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits(params, tokens, config)), axis=-1))

    def first_layer_attention(params, tokens, config):
        return causal_softmax(params["A1"])[None]

    tiny = types.SimpleNamespace(
        Config=Config,
        init=init,
        logits=logits,
        loss=loss,
        first_layer_attention=first_layer_attention,
        group_labels=lambda params, config: {"A1": "A1", "E": "E"},
        group_names=lambda config: ("A1", "E"),
    )
    register_model(tiny)  # the one registry line
    try:
        cfg = TrainConfig(
            TaskConfig(chain(4), vocab=3),
            Config(),
            OptimConfig("joint", "sgd", lr=1.0),
            RunConfig(steps=4, batch=16, eval_every=2, eval_size=32, log_every=2),
        )
        res = causal_grad.train(cfg, progress=False)
        assert res.history.steps_done == 4 and np.isfinite(res.final.loss)
        assert set(res.params) == {"A1", "E"} and res.final.recovered is not None
        lw = train(cfg.replace(schedule="layerwise", steps=4), progress=False)  # group A1 first, then E
        assert np.isfinite(lw.final.loss)
    finally:
        MODELS.pop("position_mix")


@pytest.mark.parametrize("n,chunk", [(100, 32)])
def test_held_out_loss_in_pieces_is_the_batch_mean(n, chunk):
    """The evaluator's held-out loss, computed in pieces of ``chunk`` (whole pieces by ``lax.map``, then the rest;
    here three whole pieces and a rest of 4), is the loss of the whole batch: float64, so any error beyond the
    order of summation (~1e-16) would show."""
    import jax.numpy as jnp

    from causal_grad._x64 import x64
    from causal_grad.models.disentangled import disentangled_loss, disentangled_normal
    from causal_grad.training.run import chunked_mean

    with x64():
        p = disentangled_normal(jax.random.key(0), 4, 6, (1, 1), scale=0.7, dtype=jnp.float64)
        tok = jax.random.randint(jax.random.key(1), (n, 6), 0, 4)
        y = jax.nn.softmax(jax.random.normal(jax.random.key(2), (n, 4), jnp.float64))
        whole = disentangled_loss(p, tok, y)
        pieces = jax.jit(lambda p: chunked_mean(disentangled_loss, p, tok, y, chunk))(p)
        np.testing.assert_allclose(pieces, whole, rtol=1e-13)
