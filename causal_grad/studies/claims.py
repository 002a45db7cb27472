"""Whether a paper figure's qualitative claim held, with its numbers (each figure's ``summary.json`` ``"claim"``).

A figure's claim is a list of :class:`Check` (a named rule, whether it held and the numbers it was judged on);
the claim holds when every check does. The rules, fixed before any full-size run was looked at:

* **graph in the first layer** — every position's parent is its row's argmax in the first layer's position
  attention (the run's ``all_recovered``);
* **loss at the estimator** — the final held-out loss closed at least :data:`GAP_CLOSED` of the gap from the
  in-context unigram estimator (the strategy a model that ignores the graph can reach) to the in-context
  estimator of the graph: ``(unigram − loss) / (unigram − in_context) ≥ 0.9`` (:func:`gap_closed`);
* **second layer matches tokens** (disentangled model) — in the layer-2 token block every row's argmax is its
  diagonal (``diag_argmax_rows = 1``): the query's token is matched against the gathered one;
* **heads split** (two parents) — each first-layer head's argmax is, at half the two-parent positions or more, a
  different parent (:func:`causal_grad.training.metrics.head_parents` ``split``), and the loss is below both
  one-parent estimators' (the model uses both parents);
* **attention on the parents over many forests** — in every forest every parent is its row's argmax.

A claim that fails is reported as failed, with the numbers: nothing here adjusts a threshold to a result.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "GAP_CLOSED",
    "Check",
    "FigureClaim",
    "gap_closed",
    "forest_claim",
    "two_parent_claim",
    "many_forests_claim",
]

#: The fraction of the unigram-to-estimator gap a final loss must close to count as "at the estimator".
GAP_CLOSED = 0.9


@dataclasses.dataclass(frozen=True)
class Check:
    """One rule of a claim: ``name``, the ``rule`` in words, whether it ``held`` and the ``numbers`` behind it."""

    name: str
    rule: str
    held: bool
    numbers: Mapping[str, Any]

    def to_dict(self) -> dict:
        return {"name": self.name, "rule": self.rule, "held": bool(self.held), "numbers": dict(self.numbers)}


@dataclasses.dataclass(frozen=True)
class FigureClaim:
    """A figure's ``statement`` and its :class:`Check` s; ``held`` when every check held."""

    statement: str
    checks: tuple[Check, ...]

    @property
    def held(self) -> bool:
        return bool(self.checks) and all(c.held for c in self.checks)

    def failed(self) -> list[str]:
        """The names of the checks that did not hold."""
        return [c.name for c in self.checks if not c.held]

    def line(self) -> str:
        """One line for a terminal: held or not, and which checks failed."""
        if self.held:
            return f"claim held: {self.statement}"
        return f"claim NOT held ({', '.join(self.failed())} failed): {self.statement}"

    def to_dict(self) -> dict:
        return {"statement": self.statement, "held": self.held, "checks": [c.to_dict() for c in self.checks]}


def gap_closed(loss: float, start: float, target: float) -> float:
    """``(start − loss) / (start − target)``: 1 at the target's loss, 0 at the start's; NaN when the two
    reference losses coincide (no gap to close) or a value is missing."""
    try:
        loss, start, target = float(loss), float(start), float(target)
    except (TypeError, ValueError):
        return math.nan
    if not (math.isfinite(loss) and math.isfinite(start) and math.isfinite(target)) or start == target:
        return math.nan
    return (start - loss) / (start - target)


def _loss_check(name: str, loss, start, target, start_name: str, target_name: str) -> Check:
    g = gap_closed(loss, start, target)
    return Check(
        name,
        f"the loss closes >= {GAP_CLOSED:.0%} of the gap from {start_name} to {target_name}: "
        f"({start_name} - loss) / ({start_name} - {target_name}) >= {GAP_CLOSED}",
        bool(math.isfinite(g) and g >= GAP_CLOSED),
        {"loss": loss, start_name: start, target_name: target, "gap_closed": g},
    )


def forest_claim(graphs: Mapping[str, Mapping[str, Any]], *, second_layer: bool = True) -> FigureClaim:
    """The claim of figures 2, 6 and 8 from each graph's :func:`causal_grad.studies.common.forest_summary`:
    the graph in the first layer, the loss at the in-context estimator and (``second_layer``: the disentangled
    model's token block) the second layer matching tokens, for every graph."""
    checks = []
    for name, s in graphs.items():
        checks.append(
            Check(
                f"{name}: graph in the first layer",
                "every position's parent is its row's argmax in the first layer's position attention",
                bool(s.get("all_recovered")),
                {
                    "recovered": s.get("recovered"),
                    "mean_parent_attention": s.get("mean_parent_attention"),
                    "min_parent_attention": s.get("min_parent_attention"),
                    "shd": s.get("shd"),
                },
            )
        )
        checks.append(
            _loss_check(
                f"{name}: loss at the estimator",
                s.get("loss"),
                s.get("unigram"),
                s.get("in_context"),
                "unigram",
                "in_context",
            )
        )
        if second_layer:
            d = s.get("diag_argmax_rows")
            checks.append(
                Check(
                    f"{name}: second layer matches tokens",
                    "every row of the layer-2 token block has its argmax on the diagonal",
                    d is not None and float(d) == 1.0,
                    {"diag_argmax_rows": d, "diag_minus_offdiag": s.get("diag_minus_offdiag")},
                )
            )
    statement = (
        "training writes each graph into the first attention layer (an induction head on the chain)"
        + (", the second layer matches tokens" if second_layer else "")
        + " and the loss reaches the in-context estimator's"
    )
    return FigureClaim(statement, tuple(checks))


def two_parent_claim(s: Mapping[str, Any]) -> FigureClaim:
    """The claim of figures 5/7 from ``fig5_7_two_parent``'s summary: the heads split the two parents and the loss
    uses both (below both one-parent estimators, at the tuple estimator)."""
    one = min(float(s["one_parent_0"]), float(s["one_parent_1"]))
    heads = s.get("heads") or {}
    checks = (
        Check(
            "heads split",
            "each first-layer head's argmax is, at >= half the two-parent positions, a different parent",
            bool(s.get("split")),
            {"head_takes": s.get("head_takes"), "argmax": heads.get("argmax"), "weight": heads.get("weight")},
        ),
        Check(
            "uses both parents",
            "the loss is below both one-parent estimators'",
            bool(float(s["loss"]) < one),
            {"loss": s["loss"], "one_parent_0": s["one_parent_0"], "one_parent_1": s["one_parent_1"]},
        ),
        _loss_check("loss at the estimator", s["loss"], one, s["in_context"], "best_one_parent", "in_context"),
    )
    return FigureClaim(
        "with two parents per position each first-layer head takes one parent and the loss reaches the tuple "
        "estimator's",
        checks,
    )


def many_forests_claim(s: Mapping[str, Any]) -> FigureClaim:
    """The claim of figure 9 from ``fig9_many_forests``'s summary: in every forest every parent is its row's
    argmax (the mean parent attention is reported beside it)."""
    per = s.get("per_graph") or []
    missed = [i for i, r in enumerate(per) if not r.get("all_recovered")]
    check = Check(
        "attention on the parents in every forest",
        "in every forest every position's parent is its row's argmax",
        bool(per) and not missed,
        {
            "graphs": len(per),
            "all_recovered_fraction": s.get("all_recovered_fraction"),
            "forests_missed": missed,
            "mean_parent_attention": s.get("headline"),
            "mean_parent_attention_sd": s.get("headline_sd"),
        },
    )
    return FigureClaim("over random forests the first layer puts its attention on each position's parent", (check,))
