import jax
import pytest

from causal_grad import InContextTask, chain
from causal_grad.ood import default_ood_priors, evaluate_ood
from causal_grad.priors import Dirichlet, Sticky


def test_estimator_as_model_has_zero_excess_and_unigram_positive():
    task = InContextTask(chain(15), 4, 0.1)
    priors = {"d": Dirichlet(0.1), "sticky": Sticky(0.1, 0.5)}
    res = evaluate_ood(task.in_context, task, priors, jax.random.key(0), num=2048, batch=1024)
    for r in res.values():
        assert r["excess"]["mean"] == 0.0 and r["excess"]["se"] == 0.0
        assert r["entropy_floor"]["mean"] < r["in_context"]["mean"]
    res_u = evaluate_ood(task.unigram, task, priors, jax.random.key(0), num=2048, batch=1024)
    for r in res_u.values():
        assert r["excess"]["mean"] > 4 * r["excess"]["se"]


def test_default_priors_and_bad_input():
    pri = default_ood_priors(0.1)
    assert any("[train]" in k for k in pri) and len(pri) >= 7
    task = InContextTask(chain(4), 3, 0.1)
    with pytest.raises(TypeError, match="Prior"):
        evaluate_ood(task.in_context, task, {"x": 3}, jax.random.key(0), num=8)
    with pytest.raises(ValueError, match="num"):
        evaluate_ood(task.in_context, task, pri, jax.random.key(0), num=1)
