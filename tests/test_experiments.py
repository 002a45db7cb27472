"""The experiment scripts of experiments/ (run at their tests-only "smoke" size: a few training steps, tiny grids)
and the ``causal-grad figures`` command that runs them.

Each script must write its PNG and summary.json with the keys its ``run`` promises; the numbers are checked
against what holds whatever the training length: a loss is never below the entropy floor on the same held-out
sequences (cross-entropy ≥ entropy, Gibbs), attention weights and probabilities lie in [0, 1], a Wilson interval
contains its proportion.
"""

from __future__ import annotations

import inspect
import json
import math

import pytest

from causal_grad.cli import main
from causal_grad.commands import figures
from causal_grad.commands.figures import EXPERIMENTS, load_experiment

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FOREST_KEYS = (
    "loss",
    "in_context",
    "entropy_floor",
    "unigram",
    "excess_over_in_context",
    "recovered",
    "all_recovered",
    "mean_parent_attention",
    "min_parent_attention",
    "shd",
    "previous_token",
    "parents",
)


def _png(path):
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC


def _forest_ok(r):
    for k in FOREST_KEYS:
        assert k in r, k
    assert r["loss"] >= r["entropy_floor"] - 1e-5  # cross-entropy ≥ entropy on the same sequences (float32)
    assert r["excess_over_in_context"] == pytest.approx(r["loss"] - r["in_context"], abs=1e-5)
    assert 0.0 <= r["min_parent_attention"] <= r["mean_parent_attention"] <= 1.0
    assert 0.0 <= r["recovered"] <= 1.0


def _claim_ok(res, n_checks):
    """The figure's claim: every check judged on its numbers, the claim held exactly when all of them did."""
    c = res["claim"]
    assert len(c["checks"]) == n_checks and c["statement"]
    assert c["held"] == all(k["held"] for k in c["checks"])
    assert all(k["rule"] and k["numbers"] for k in c["checks"])


def _check_fig2(res, out):
    _png(out / "fig2_chain.png")
    _claim_ok(res, 3)
    _forest_ok(res["graphs"]["chain"])
    assert "diag_minus_offdiag" in res["graphs"]["chain"]  # the layer-2 token block was read


def _check_fig6(res, out):
    _png(out / "fig6_icl_tree.png")
    assert set(res["graphs"]) == {"icl-pairs", "random-tree"}
    _claim_ok(res, 6)
    for r in res["graphs"].values():
        _forest_ok(r)


def _check_fig5_7(res, out):
    _png(out / "fig5_7_two_parent.png")
    for k in (
        "loss",
        "in_context",
        "one_parent_0",
        "one_parent_1",
        "unigram",
        "entropy_floor",
        "heads",
        "head_takes",
        "split",
    ):
        assert k in res, k
    assert res["loss"] >= res["entropy_floor"] - 1e-5
    _claim_ok(res, 3)
    assert res["claim"]["checks"][0]["held"] == res["split"]
    assert len(res["heads"]["argmax"]) == 2 and len(res["head_takes"]) == 2
    for row in res["heads"]["argmax"]:
        assert sum(row) <= 1.0 + 1e-9  # fractions of positions whose argmax is one parent slot or the other


def _check_fig8(res, out):
    _png(out / "fig8_standard.png")
    _forest_ok(res)
    _claim_ok(res, 2)
    assert res["reached_estimator"] == (res["excess_over_in_context"] <= res["reach_tolerance"])


def _check_fig9(res, out):
    _png(out / "fig9_many_forests.png")
    pg = res["per_graph"]
    assert len(pg) == res["graphs"] >= 2
    _claim_ok(res, 1)
    assert res["claim"]["held"] == (res["all_recovered_fraction"] == 1.0)
    assert res["headline"] == pytest.approx(sum(r["mean_parent_attention"] for r in pg) / len(pg))
    pp = res["per_position"]
    assert len(pp["position"]) == len(pp["mean"]) == len(pp["sd"]) == len(pp["count"])
    assert all(0.0 <= m <= 1.0 for m in pp["mean"])
    # every child position of every graph is counted once
    assert sum(pp["count"]) == sum(sum(p >= 0 for p in r["parents"]) for r in pg)


def _check_sample_complexity(res, out):
    _png(out / "sample_complexity.png")
    Ns, m = res["Ns"], res["methods"]
    assert set(m) == set(load_experiment("sample_complexity").METHODS)
    for r in m.values():
        assert len(r["recovery"]) == len(Ns)
        for p, lo, hi, k in zip(r["recovery"], r["lo"], r["hi"], r["successes"]):
            assert 0.0 <= lo <= p <= hi <= 1.0 and p == k / res["trials"]
        assert "N_50" in r and "N_90" in r


def _check_ood(res, out):
    _png(out / "ood.png")
    md = (out / "ood.md").read_text()
    assert set(res["models"]) == {"reduced", "disentangled"}
    for per in res["models"].values():
        assert list(per) == res["priors"]
        for name, r in per.items():
            assert name in md
            assert r["excess"]["mean"] == pytest.approx(r["model"]["mean"] - r["in_context"]["mean"], abs=1e-9)
            assert r["model"]["mean"] >= r["entropy_floor"]["mean"] - 1e-5
            assert r["unigram_excess"] == pytest.approx(r["unigram"]["mean"] - r["in_context"]["mean"], abs=1e-12)
        assert per[res["train_prior"]]["shift_from_train"] == 0.0


def _check_finite_t(res, out):
    _png(out / "error_vs_T.png")
    assert res["sweeps"] and res["paper_size"]
    for sw in res["sweeps"]:
        assert all(math.isfinite(r["rms"]) and r["rms"] >= 0 for r in sw["rows"])


def _check_icl_mc(res, out):
    _png(out / "icl_mc.png")
    _png(out / "fig2_strategies.png")
    for part in ("icl_mc", "fig2"):
        runs, summ = res[part]["runs"], res[part]["summary"]
        assert len(runs) == len(res[part]["seeds"]) >= 1
        for seed, r in zip(res[part]["seeds"], runs):
            print(f"{part} seed {seed}: stage steps {r['transitions']}, nearest {r['nearest_step']}")
            assert set(r["kl"]) >= {"uniform", "unigram", "in_context"}
            assert all(v >= -1e-6 for vs in r["kl"].values() for v in vs)  # KL >= 0 (float32 rounding)
        for rung in ("uniform", "unigram", "in_context"):
            assert summ[rung]["steps"] == [r["transitions"][rung] for r in runs]
    lpp = res["icl_mc"]["runs"][0]["loss_per_position"]
    assert len(lpp) == res["settings"]["seq_len"] and all(v >= 0 for v in lpp)


CHECKS = {
    "fig2_chain": _check_fig2,
    "fig6_icl_tree": _check_fig6,
    "fig5_7_two_parent": _check_fig5_7,
    "fig8_standard": _check_fig8,
    "fig9_many_forests": _check_fig9,
    "sample_complexity": _check_sample_complexity,
    "ood": _check_ood,
    "finite_t_departure": _check_finite_t,
    "icl_mc": _check_icl_mc,
}


def test_every_experiment_has_a_check_and_the_shared_signature():
    assert set(CHECKS) == set(EXPERIMENTS)
    for name in EXPERIMENTS:
        mod = load_experiment(name)
        params = inspect.signature(mod.run).parameters
        assert list(params)[:3] == ["quick", "out", "seed"] and params["seed"].default == 0
        assert callable(mod.main)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_runs_and_writes_what_it_promises(name, tmp_path):
    res = load_experiment(name).run(quick=True, out=tmp_path, seed=0, smoke=True)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert set(saved) >= {k for k, v in res.items() if not callable(v)}
    CHECKS[name](res, tmp_path)


def test_figures_help_lists_every_experiment(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["figures", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--full" in text and "--only" in text
    for name in EXPERIMENTS:
        assert name in text


def test_figures_rejects_unknown_names_and_a_missing_source_tree(capsys, monkeypatch, tmp_path):
    assert main(["figures", "--only", "fig2_chain,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(ValueError, match="name must be one of"):
        load_experiment("nope")
    monkeypatch.setattr(figures, "SOURCE_ROOT", tmp_path)
    assert main(["figures", "--only", "fig2_chain"]) == 2
    err = capsys.readouterr().err
    assert "source tree" in err and err.count("\n") == 1


def test_fig8_model_option():
    """Figure 8 trains the public code's catformer by default; model="standard" is the earlier default's config,
    unchanged (so its numbers are too); a wrong model is refused before anything is written."""
    from causal_grad.graphs import chain
    from causal_grad.training import preset

    mod = load_experiment("fig8_standard")
    assert mod.MODEL_CHOICES[0] == "catformer"
    assert inspect.signature(mod.run).parameters["model"].default == "catformer"
    for mode in ("full", "quick", "smoke"):
        cat, std = mod.config(mode, 0), mod.config(mode, 0, "standard")
        assert cat.model.name == "catformer" and tuple(cat.model.heads) == (1, 1)
        assert std.model.name == "standard"
        assert cat.optim == std.optim and cat.run == std.run and cat.task == std.task  # the paper's AdamW run
    old_full = preset("standard", chain(19), batch=1024, eval_size=1 << 16, eval_every=128, log_every=128,
                      checkpoint_every=1024, vocab=10, alpha=0.1, seed=0)  # fmt: skip
    assert mod.config("full", 0, "standard") == old_full
    full = mod.config("full", 0)
    assert (full.optim.optimizer, full.optim.lr, full.optim.weight_decay, full.optim.decay) == (
        "adamw",
        1e-2,
        2e-4,
        "cosine",
    )
    assert (full.run.steps, full.run.batch) == (1 << 12, 1024)
    with pytest.raises(ValueError, match="model must be one of catformer, standard"):
        mod.config("smoke", 0, "flax")


def test_fig8_and_fig9_options_refused_before_any_output(tmp_path):
    with pytest.raises(ValueError, match="model must be one of"):
        load_experiment("fig8_standard").run(quick=True, out=tmp_path / "a", smoke=True, model="gpt")
    with pytest.raises(ValueError, match="decay must be one of cosine, constant"):
        load_experiment("fig9_many_forests").run(quick=True, out=tmp_path / "b", smoke=True, decay="linear")
    assert not any(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        load_experiment("fig9_many_forests").main(["--decay", "linear", "--out", str(tmp_path / "c")])


def test_fig9_decay_option():
    """Figure 9 follows the paper by default (lr 1 with a cosine decay, the configs of before); decay="constant"
    is the public notebook's plain SGD at a constant lr 1, the runs otherwise the same."""
    from causal_grad.training import default_config

    mod = load_experiment("fig9_many_forests")
    paper, notebook = mod.configs("full", 0), mod.configs("full", 0, "constant")
    st = mod.settings("full")
    before = [default_config("disentangled", g, vocab=3, alpha=0.1, seed=0, **st["train"]) for g in mod.forests(20, 0)]
    assert paper == before and len(paper) == 20
    assert all(c.optim.decay == "cosine" for c in paper)
    o = notebook[0].optim
    assert (o.schedule, o.optimizer, o.lr, o.weight_decay, o.warmup, o.decay) == (
        "joint",
        "sgd",
        1.0,
        0.0,
        0,
        "constant",
    )
    assert [c.replace(decay="cosine") for c in notebook] == paper


@pytest.mark.slow
def test_fig5_7_dirichlet_roots_option_runs(tmp_path):
    """roots="dirichlet" trains the public code's task (through train_batched) and says so; a wrong value is
    refused before anything is written."""
    mod = load_experiment("fig5_7_two_parent")
    with pytest.raises(ValueError, match="roots must be one of uniform, dirichlet"):
        mod.run(quick=True, out=tmp_path / "bad", smoke=True, roots="stationary")
    assert not (tmp_path / "bad").exists()
    res = mod.run(quick=True, out=tmp_path, seed=0, smoke=True, roots="dirichlet")
    assert res["roots"] == "dirichlet"
    assert (tmp_path / "runs" / "smoke-dirichlet-roots-two-parent" / "weights.npz").is_file()
    _check_fig5_7(res, tmp_path)


def test_paper_flag_names_the_paper_figures_after_the_named_ones():
    assert figures._names(None, None, paper=True) == list(figures.PAPER_FIGURES)
    assert figures._names(["ood", "fig2_chain"], None, paper=True) == ["ood", *figures.PAPER_FIGURES]
    assert set(figures.PAPER_FIGURES) <= set(EXPERIMENTS)


def test_gallery_has_each_figure_its_time_claim_and_a_thumbnail(tmp_path):
    from PIL import Image

    out, gallery = tmp_path / "results", tmp_path / "gallery"
    claims = {
        "fig2_chain": {
            "statement": "s2",
            "held": True,
            "checks": [{"name": "chain: graph", "rule": "r", "held": True, "numbers": {"recovered": 1.0}}],
        },
        "fig9_many_forests": {
            "statement": "s9",
            "held": False,
            "checks": [
                {"name": "ok one", "rule": "r", "held": True, "numbers": {"a": 1}},
                {"name": "bad one", "rule": "r", "held": False, "numbers": {"gap_closed": 0.8123456}},
            ],
        },
    }
    for name, claim in claims.items():
        (out / name).mkdir(parents=True)
        Image.new("RGB", (3000, 1000), "white").save(out / name / f"{name}.png")
        (out / name / "summary.json").write_text(json.dumps({"figure": f"{name}.png", "claim": claim}))
    times = {"fig2_chain": 600.0, "fig9_many_forests": 90.0}
    machine = {"date": "2026-12-01 17:00 UTC", "machine": "test box"}
    index = figures.write_gallery(out, gallery, times, "causal-grad figures --full --paper", machine)
    text = index.read_text()
    assert "causal-grad figures --full --paper" in text and "test box" in text and "2026-12-01" in text
    assert "| fig2_chain |" in text and "10.0 min" in text and "1.5 min" in text
    assert "NOT held: bad one" in text and "gap_closed 0.8123" in text
    assert "wall time in all: 11.5 min" in text
    for name in claims:
        with Image.open(gallery / f"{name}.png") as im:
            assert max(im.size) == figures.GALLERY_PX
        assert json.loads((gallery / f"{name}.json").read_text())["claim"] == claims[name]
        assert f"![{name}]({name}.png)" in text


def test_icl_mc_trains_through_train_with_edelman_et_al_s_config():
    """Part 1 of icl_mc is a causal_grad.train run of the ICL-MC TrainConfig (no hand-written loop): the bigram task
    with the stationary start and the next-token loss, the attention-only standard transformer of width 16 with two
    layers of one head, AdamW at a constant 5e-4 with betas (0.9, 0.95) and weight decay 0.1, batch 64, 2000 steps
    outside the tests' smoke size."""
    from causal_grad.ngram import ngram_graph

    mod = load_experiment("icl_mc")
    assert not hasattr(mod, "train_icl_mc")
    for mode in ("full", "quick", "smoke"):
        cfg, sz = mod.config(mode, 3), mod.sizes(mode)
        t, m, o, r = cfg.task, cfg.model, cfg.optim, cfg.run
        assert (t.graph, t.vocab, t.alpha, t.objective, t.initial) == (
            ngram_graph(sz["seq_len"], 1),
            2,
            1.0,
            "next_token",
            "stationary",
        )
        assert cfg.seq_len == sz["seq_len"] == (21 if mode == "smoke" else 101)
        assert (m.name, m.d_model, m.layers, m.heads, m.mlp) == ("standard", 16, 2, 1, False)
        assert (o.schedule, o.optimizer, o.lr, o.b1, o.b2, o.weight_decay, o.decay, o.warmup) == (
            "joint",
            "adamw",
            5e-4,
            0.9,
            0.95,
            0.1,
            "constant",
            0,
        )
        assert (r.batch, r.seed, r.eval_seed, r.eval_every, r.eval_size) == (
            64,
            3,
            10_003,
            sz["eval_every"],
            sz["eval_size"],
        )
        assert r.steps == (40 if mode == "smoke" else 2000)
