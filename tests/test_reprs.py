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
    res = _Result(params={"A": [np.zeros((1, 30, 30)), np.zeros((1, 60, 60))], "W": np.zeros((120, 10))},
                  history={"eval": [{"step": s, "loss": 2.0 + 1 / (s + 1), "heads": {"split": True}}
                                    for s in range(0, 4000, 25)], "losses": list(np.linspace(3, 2, 4000))},
                  final={"loss": 1.9, "recovered": 1.0})
    text = repr(res)
    assert len(text) < 600, text
    assert "A': [f64[1,30,30], f64[1,60,60]]" in text and "…152 more" in text and "4000 numbers" in text
    assert text.startswith("_Result(params={") and "name='run'" in text
