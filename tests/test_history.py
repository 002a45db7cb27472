"""causal_grad.training.history: the typed records of history.json read back and write the same file.

The files in tests/data were written by ``train`` before the records existed (commit ab2e8c2): a forest run of
the disentangled model (graph and induction metrics), of the reduced model (with ``smoothing``) and a
two-parent run (``heads``). Nothing here trains: the real run's typed fields are checked in test_training.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from causal_grad.baselines import BaselineEstimates, BaselineLosses, Estimate
from causal_grad.training import EvalRecord, History, head_parents
from causal_grad.training.metrics import HeadParents
from causal_grad.training.strategies import strategy_curves_of

DATA = Path(__file__).resolve().parent / "data"
FILES = sorted(DATA.glob("history_*.json"))


def _dump(obj) -> str:  # how train writes history.json (causal_grad.training.run.write_json_atomic)
    return json.dumps(obj, indent=1, default=float)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_a_file_of_the_previous_version_reads_back_and_writes_the_same_bytes(path):
    text = path.read_text()
    d = json.loads(text)
    h = History.from_dict(d)
    assert h.to_dict() == d and _dump(h.to_dict()) == text
    assert list(h.to_dict()) == list(d) and [list(e) for e in h.to_dict()["eval"]] == [list(e) for e in d["eval"]]
    # the typed fields are the dict's values
    assert h.baselines.to_dict() == d["baselines"] and h.baselines.in_context == d["baselines"]["in_context"]
    assert h.steps_done == d["steps_done"] and h.wall_s == d["wall_s"] and h.config == d["config"]
    assert h.train == tuple((s, v) for s, v in d["train"]) and h.interrupted_at is None
    assert h.smoothing == d.get("smoothing")
    for e, raw in zip(h.evals, d["eval"], strict=True):
        assert e.step == raw["step"] and e.loss == raw["loss"] and e.time_s == raw["time_s"]
        assert e.excess_over_in_context == raw["excess_over_in_context"] and e.strategy_kl == raw["strategy_kl"]
        assert e.extra == {}
        for k, v in raw.items():
            got = getattr(e, k)
            assert (got.to_dict() if isinstance(got, HeadParents) else got) == v, k
        assert EvalRecord.from_dict(e.to_dict()) == e
    assert h.final == h.evals[-1] and History.from_dict(h.to_dict()) == h
    assert len(repr(h)) < 200 and repr(h).startswith(f"History({len(d['eval'])} evaluations to step")
    assert len(repr(h.final)) < 300 and repr(h.final).startswith(f"EvalRecord(step={d['eval'][-1]['step']}")


def test_the_kinds_of_run_in_the_files():
    kinds = {p.stem: History.from_dict(json.loads(p.read_text())) for p in FILES}
    dag, forest, reduced = kinds["history_dag"].final, kinds["history_forest"].final, kinds["history_reduced"].final
    assert dag is not None and forest is not None and reduced is not None
    assert dag.heads is not None and dag.recovered is None and dag.previous_token is None
    assert forest.heads is None and forest.recovered is not None and forest.diag_minus_offdiag is not None
    assert "heads: dominant" in repr(dag) and "recovered=" in repr(forest)
    assert kinds["history_reduced"].smoothing is not None and kinds["history_forest"].smoothing is None
    assert set(kinds["history_dag"].baselines.others) == {"unigram", "one_parent_0", "one_parent_1"}
    # strategy_curves_of takes the record or the file's mapping, with the same curves
    h = kinds["history_forest"]
    a, b = strategy_curves_of(h), strategy_curves_of(h.to_dict())
    assert a.steps == b.steps and all(np.array_equal(a.kl[k], b.kl[k]) for k in b.kl)


def test_an_eval_record_omits_what_the_model_does_not_have():
    e = EvalRecord(3, 1.5, 2.0, 0.25, strategy_kl={"uniform": 0.1}, previous_token=0.5)
    assert e.to_dict() == {
        "step": 3,
        "time_s": 1.5,
        "loss": 2.0,
        "strategy_kl": {"uniform": 0.1},
        "excess_over_in_context": 0.25,
        "previous_token": 0.5,
    }
    assert list(e.to_dict()) == ["step", "time_s", "loss", "strategy_kl", "excess_over_in_context", "previous_token"]
    assert EvalRecord.from_dict(e.to_dict()) == e
    att = np.full((2, 3, 3), 1 / 3)
    heads = head_parents(att, ((), (0,), (0, 1)))
    d = EvalRecord(0, 0.0, 1.0, 0.5, heads=heads).to_dict()
    assert d["heads"] == heads.to_dict() and EvalRecord.from_dict(d).heads == heads


def test_files_of_earlier_versions_and_of_an_unfinished_run_read_back():
    old = {
        "baselines": {"bayes": 1.0, "unigram": 1.5, "entropy_floor": 0.5},  # before 'bayes' -> 'in_context'
        "eval": [{"step": 0, "time_s": 0.1, "loss": 2.0, "excess_over_bayes": 1.0, "parent_attention": [0.5]}],
        "train": [[5, 1.9]],
        "note": "a key this version does not write",
    }
    h = History.from_dict(old)
    assert h.baselines == BaselineLosses(1.0, 0.5, {"unigram": 1.5}) and h.config is None
    e = h.evals[0]
    assert e.excess_over_in_context == 1.0 and e.strategy_kl is None and e.extra == {"parent_attention": [0.5]}
    assert h.extra == {"note": "a key this version does not write"} and h.train == ((5, 1.9),)
    assert h.to_dict()["eval"][0]["parent_attention"] == [0.5] and h.to_dict()["note"] == old["note"]
    # written after an evaluation, before the end (or at an interruption): no wall_s nor steps_done
    mid = History(BaselineLosses(1.0, 0.5), (e,), ((5, 1.9),), config={"format": 2}, interrupted_at=5)
    d = mid.to_dict()
    assert list(d) == ["config", "baselines", "eval", "train", "interrupted_at"] and d["train"] == [[5, 1.9]]
    assert History.from_dict(d) == mid and mid.steps_done is None and "interrupted_at=5" in repr(mid)
    assert History(BaselineLosses(1.0, 0.5)).final is None and "History(0 evaluations none" in repr(
        History(BaselineLosses(1.0, 0.5))
    )


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        ([], TypeError, "history must be a mapping"),
        ({"eval": []}, ValueError, "history must hold baselines"),
        ({"baselines": {"in_context": 1.0}}, ValueError, "baselines must hold in_context and entropy_floor"),
        ({"baselines": {"in_context": 1.0, "entropy_floor": 0.5}, "eval": [{"step": 0}]}, ValueError, "time_s"),
        ({"baselines": {"in_context": 1.0, "entropy_floor": 0.5}, "eval": {}}, TypeError, "must be lists"),
    ],
)
def test_a_malformed_history_is_refused_naming_the_part(bad, exc, words):
    with pytest.raises(exc, match=words):
        History.from_dict(bad)


def test_baseline_estimates_round_trip_and_give_the_means():
    d = {
        "in_context": {"mean": 1.0, "se": 0.01},
        "unigram": {"mean": 1.5, "se": 0.02},
        "entropy_floor": {"mean": 0.5, "se": 0.005},
    }
    b = BaselineEstimates.from_dict(d)
    assert b.in_context == Estimate(1.0, 0.01) and b.others == {"unigram": Estimate(1.5, 0.02)}
    assert b.to_dict() == d and list(b.to_dict()) == list(d)
    assert b.means() == BaselineLosses(1.0, 0.5, {"unigram": 1.5})
    assert BaselineLosses.from_dict(b.means().to_dict()) == b.means()
    assert "Estimate(1.0000 ± 0.0100)" in repr(b) and len(repr(b)) < 200
