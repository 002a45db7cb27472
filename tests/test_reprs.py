"""causal_grad.reprs: short reprs of results and parameter pytrees."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from causal_grad.reprs import array_summary, compact_repr


@dataclasses.dataclass(frozen=True)
class _Result:
    params: dict
    history: dict
    final: dict
    name: str = "run"

    __repr__ = compact_repr


class _Pair(NamedTuple):
    G: np.ndarray
    num: int


def test_arrays_are_dtype_and_shape():
    assert array_summary(np.zeros((20, 20), np.float32)) == "f32[20,20]"
    assert array_summary(np.float64(1.25)) == "f64[]=1.25"
    assert array_summary(jnp.zeros((2, 5), jnp.int32)) == "i32[2,5]"
    assert compact_repr(_Pair(np.ones((3, 3)), 7)) == "_Pair(G=f64[3,3], num=7)"


def test_a_training_result_repr_stays_short():
    res = _Result(
        params={"A": [np.zeros((1, 30, 30)), np.zeros((1, 60, 60))], "W": np.zeros((120, 10))},
        history={
            "eval": [{"step": s, "loss": 2.0 + 1 / (s + 1), "heads": {"split": True}} for s in range(0, 4000, 25)],
            "losses": list(np.linspace(3, 2, 4000)),
        },
        final={"loss": 1.9, "recovered": 1.0},
    )
    text = repr(res)
    assert len(text) < 600, text
    assert "A': [f64[1,30,30], f64[1,60,60]]" in text and "…152 more" in text and "4000 numbers" in text
    assert text.startswith("_Result(params={") and "name='run'" in text


class _Owns:
    """A class writing its own short repr, and one whose repr calls compact_repr (no recursion)."""

    def __repr__(self) -> str:
        return "Owns()"


@dataclasses.dataclass(frozen=True)
class _Calls:
    x: np.ndarray
    inner: object

    def __repr__(self) -> str:
        return "calls:" + compact_repr(self)


def test_nested_objects_keep_their_own_short_repr():
    from causal_grad.graphs import Graph

    text = compact_repr({"graph": Graph((-1, 0, 0, 1)), "roots": (), "o": _Owns()})
    assert text == "{'graph': Graph((-1, 0, 0, 1)), 'roots': (), 'o': Owns()}"
    assert repr(_Calls(np.zeros(3), _Owns())) == "calls:_Calls(x=f64[3], inner=Owns())"


def test_the_results_users_meet_most_have_short_reprs():
    import jax

    from causal_grad import exact_population_gradient, mi_approximation
    from causal_grad.graphs import random_tree
    from causal_grad.mi import dpi_report
    from causal_grad.priors import Dirichlet
    from causal_grad.task import InContextTask

    task = InContextTask(random_tree(jax.random.key(0), 6), 3, 1.0)
    pis = np.asarray(Dirichlet(1.0).sample(jax.random.key(1), (4,), 3))
    M = mi_approximation(task, pis)
    assert repr(M).startswith("MIApproximation(M=f64[6,6], per_pi=f64[4,6,6]") and "graph=Graph((-1" in repr(M)
    report = dpi_report(task.graph, pis.astype(np.float64))
    assert len(repr(report)) < 700 and "self_entry=SelfEntryReport(trace=" in repr(report)
    T = task.seq_len
    g = exact_population_gradient(task, pis, jnp.zeros((T, T)), jnp.zeros((3, 3)), eps=1e-3)
    assert repr(g).startswith("ExactGradient(loss=f64[]=") and "dA1=f64[7,7]" in repr(g)


def test_a_run_history_and_its_records_have_short_reprs():
    import json
    from pathlib import Path

    from causal_grad.training import History

    for name in ("history_forest", "history_dag"):
        h = History.from_dict(json.loads((Path(__file__).parent / "data" / f"{name}.json").read_text()))
        assert len(repr(h)) < 200 and "evaluations to step" in repr(h), repr(h)
        assert all(len(repr(e)) < 300 for e in h.evals) and repr(h.evals[0]).startswith("EvalRecord(step=0, loss=")
        assert len(repr(h.baselines)) < 200
