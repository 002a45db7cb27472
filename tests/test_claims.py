"""causal_grad.studies.claims: a figure's claim held exactly when every rule held on the numbers given."""

from __future__ import annotations

import math

import pytest

from causal_grad.studies.claims import GAP_CLOSED, forest_claim, gap_closed, many_forests_claim, two_parent_claim


def _forest(**kw):
    base = dict(
        loss=1.80,
        unigram=2.20,
        in_context=1.76,
        all_recovered=True,
        recovered=1.0,
        mean_parent_attention=0.74,
        min_parent_attention=0.6,
        shd=0,
        diag_argmax_rows=1.0,
        diag_minus_offdiag=3.0,
    )
    return base | kw


def test_gap_closed_is_the_fraction_of_the_gap():
    assert gap_closed(2.2, 2.2, 1.76) == 0.0
    assert gap_closed(1.76, 2.2, 1.76) == pytest.approx(1.0)
    assert gap_closed(1.98, 2.2, 1.76) == pytest.approx(0.5)
    assert math.isnan(gap_closed(1.9, 2.0, 2.0))  # no gap to close
    assert math.isnan(gap_closed(None, 2.0, 1.0))
    assert math.isnan(gap_closed(float("nan"), 2.0, 1.0))


def test_forest_claim_holds_and_fails_on_each_rule():
    ok = forest_claim({"chain": _forest()})
    assert ok.held and ok.failed() == [] and ok.line().startswith("claim held")
    assert [c.name for c in ok.checks] == [
        "chain: graph in the first layer",
        "chain: loss at the estimator",
        "chain: second layer matches tokens",
    ]
    # exactly at the threshold still holds; just below it fails
    at = 2.20 - GAP_CLOSED * (2.20 - 1.76)
    assert forest_claim({"chain": _forest(loss=at - 1e-9)}).held
    below = forest_claim({"chain": _forest(loss=at + 1e-3)})
    assert not below.held and below.failed() == ["chain: loss at the estimator"]
    assert "NOT held" in below.line() and "loss at the estimator" in below.line()
    miss = forest_claim({"a": _forest(), "b": _forest(all_recovered=False, recovered=0.9)})
    assert miss.failed() == ["b: graph in the first layer"]
    assert forest_claim({"chain": _forest(diag_argmax_rows=0.9)}).failed() == ["chain: second layer matches tokens"]
    no_second = forest_claim({"chain": _forest(diag_argmax_rows=None)}, second_layer=False)
    assert no_second.held and len(no_second.checks) == 2
    d = ok.to_dict()
    assert d["held"] is True and d["checks"][1]["numbers"]["gap_closed"] == pytest.approx((2.2 - 1.8) / (2.2 - 1.76))


def test_two_parent_claim():
    s = dict(
        loss=1.20,
        in_context=1.18,
        one_parent_0=1.45,
        one_parent_1=1.40,
        split=True,
        head_takes=["(i-1)//2", "i-1"],
        heads={"argmax": [[0.9, 0.1], [0.0, 1.0]], "weight": [[0.8, 0.1], [0.0, 0.9]]},
    )
    assert two_parent_claim(s).held
    assert two_parent_claim(s | {"split": False}).failed() == ["heads split"]
    worse = two_parent_claim(s | {"loss": 1.41})
    assert worse.failed() == ["uses both parents", "loss at the estimator"]


def test_many_forests_claim_names_the_missed_forests():
    per = [{"all_recovered": True}, {"all_recovered": False}, {"all_recovered": True}]
    c = many_forests_claim({"per_graph": per, "all_recovered_fraction": 2 / 3, "headline": 0.7, "headline_sd": 0.1})
    assert not c.held and c.checks[0].numbers["forests_missed"] == [1]
    assert many_forests_claim({"per_graph": [{"all_recovered": True}]}).held
    assert not many_forests_claim({"per_graph": []}).held  # no forest: nothing was shown
