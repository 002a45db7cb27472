"""Distance to the in-context strategies over training (causal_grad.training.strategies; issue 18 item 3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_grad.ngram import NGramTask
from causal_grad.training.strategies import (
    StrategyCurves,
    ngram_strategies,
    strategy_curves_of,
    strategy_kl,
    transition_summary,
)


def test_kl_is_zero_at_the_strategy_and_matches_the_definition():
    task = NGramTask(3, 1, 12, alpha=1.0)
    tok, _ = task.sample_next_token(jax.random.key(0), 8)
    refs = ngram_strategies(task, tok)
    assert set(refs) == {"uniform", "unigram", "in_context", "exact_bayes"}  # Dirichlet, uniform start: closed form
    kl = strategy_kl(jnp.log(refs["unigram"]), refs)
    assert float(kl["unigram"]) == pytest.approx(0.0, abs=1e-6)
    p, q = np.asarray(refs["in_context"], np.float64), np.asarray(refs["unigram"], np.float64)
    want = np.mean(np.sum(p * (np.log(p) - np.log(q)), -1))
    assert float(kl["in_context"]) == pytest.approx(want, rel=1e-5)
    # the in-context estimator is exact Bayes here
    np.testing.assert_allclose(refs["exact_bayes"], refs["in_context"], rtol=1e-6)
    q_refs = ngram_strategies(task, tok, positions="query")
    assert q_refs["unigram"].shape == (8, 3)
    # the stationary start has no closed form: exact Bayes is left out
    assert "exact_bayes" not in ngram_strategies(NGramTask(3, 1, 12, initial="stationary"), tok)


def _curves(kl):
    return StrategyCurves(tuple(range(0, 10 * len(kl["uniform"]), 10)), {k: np.array(v) for k, v in kl.items()})


def test_transitions_and_progression():
    c = _curves(
        {
            "uniform": [0.0, 0.1, 0.3, 0.5, 0.6, 0.6],
            "unigram": [0.2, 0.05, 0.02, 0.3, 0.4, 0.4],
            "in_context": [0.4, 0.3, 0.25, 0.1, 0.01, 0.01],
        }
    )
    assert c.nearest() == ["uniform", "unigram", "unigram", "in_context", "in_context", "in_context"]
    assert c.transitions(persist=2) == {"uniform": None, "unigram": 10, "in_context": 30}
    assert c.transitions(persist=1) == {"uniform": 0, "unigram": 10, "in_context": 30}
    assert c.progression() and c.nearest_step() == {"uniform": 0, "unigram": 20, "in_context": 40}
    # straight to the bigram estimator: no progression
    d = _curves({"uniform": [0.0, 0.5, 0.6], "unigram": [0.2, 0.3, 0.4], "in_context": [0.4, 0.1, 0.01]})
    assert not d.progression()
    s = transition_summary([c, d])
    assert s["in_context"]["steps"] == [30, 10] and s["in_context"]["median"] == 20.0
    assert s["unigram"]["reached"] == 1 and s["progression_fraction"] == 0.5
    h = {"eval": [{"step": 10 * i, "strategy_kl": {k: float(v[i]) for k, v in c.kl.items()}} for i in range(6)]}
    assert strategy_curves_of(h).transitions() == c.transitions()


def test_refusals():
    with pytest.raises(ValueError, match="strategies"):
        strategy_kl(jnp.zeros((2, 3)), {"u": jnp.ones((2, 4)) / 4})
    with pytest.raises(ValueError, match="one value per step"):
        StrategyCurves((0, 1), {"uniform": np.zeros(3)})
    with pytest.raises(ValueError, match="strategy_kl"):
        strategy_curves_of({"eval": [{"step": 0, "loss": 1.0}]})
