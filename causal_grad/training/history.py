"""The typed records of a run's ``history.json``: one held-out evaluation (:class:`EvalRecord`) and the whole
history (:class:`History`).

``to_dict()`` gives exactly the JSON content :func:`causal_grad.training.train` writes (same keys in the same
order, fields that a model or graph does not have left out), so ``history.json`` keeps its format; ``from_dict``
reads that content back, also from files of earlier versions (the estimator once called ``"bayes"`` and its
excess ``"excess_over_bayes"``; keys this version does not know are kept in ``extra`` and written back).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..baselines import BaselineLosses
from .metrics import HeadParents

__all__ = ["EvalRecord", "History"]


#: The order of an evaluation's keys in ``history.json`` (the evaluator's order).
_EVAL_KEYS = (
    "step",
    "time_s",
    "loss",
    "strategy_kl",
    "excess_over_in_context",
    "mean_parent_attention",
    "min_parent_attention",
    "recovered",
    "all_recovered",
    "shd",
    "previous_token",
    "diag_minus_offdiag",
    "diag_argmax_rows",
    "heads",
)
#: Keys of files written before the estimator was renamed ``in_context``: old name, new name.
_OLD_EVAL_KEYS = (("excess_over_bayes", "excess_over_in_context"),)
#: The optional top-level keys of ``history.json``, in the order they are written.
_HISTORY_KEYS = ("interrupted_at", "wall_s", "steps_done", "smoothing")


def _mapping(what: str, d) -> dict[str, Any]:
    if not isinstance(d, Mapping):
        raise TypeError(f"{what} must be a mapping (as read from history.json), got {type(d).__name__}")
    return dict(d)


def _num(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else repr(x)


@dataclass(frozen=True, repr=False)
class EvalRecord:
    """One held-out evaluation of a run (an entry of ``history.json``'s ``"eval"`` list).

    Always: ``step`` — the training steps done (0: the initial parameters); ``time_s`` — seconds since the
    :func:`~causal_grad.training.train` call began; ``loss`` — the held-out loss (nats);
    ``excess_over_in_context`` — ``loss`` minus the in-context estimator's loss on the same sequences.

    ``strategy_kl`` — the KL (nats) from each strategy to the model (uniform, unigram, in-context, and exact Bayes
    where it has a closed form; :mod:`causal_grad.training.strategies`), at the query for the query objective and
    averaged over every position for the next-token one; ``None`` in files written before it was recorded.

    Forests (head 0 of the first layer, :class:`~causal_grad.training.metrics.GraphMetrics`):
    ``mean_parent_attention``, ``min_parent_attention`` — the weight ``α[i, p(i)]`` on the parent over child
    positions; ``recovered`` — the fraction of child positions whose row argmax is the parent, ``all_recovered``
    whether all are; ``shd`` — the structural Hamming distance of the argmax graph to the true one. Also
    (:class:`~causal_grad.training.metrics.InductionMetrics`) ``previous_token`` — the mean weight on the previous
    position; for models with a layer-2 token block ``diag_minus_offdiag`` and ``diag_argmax_rows`` — its diagonal
    dominance. Multi-parent graphs instead: ``heads`` — which parent each first-layer head takes
    (:class:`~causal_grad.training.metrics.HeadParents`). A metric the run's model or graph does not have is
    ``None`` and absent from :meth:`to_dict`. ``extra`` — keys of an older file this version does not write."""

    step: int
    time_s: float
    loss: float
    excess_over_in_context: float
    strategy_kl: dict[str, float] | None = None
    mean_parent_attention: float | None = None
    min_parent_attention: float | None = None
    recovered: float | None = None
    all_recovered: bool | None = None
    shd: int | None = None
    previous_token: float | None = None
    diag_minus_offdiag: float | None = None
    diag_argmax_rows: float | None = None
    heads: HeadParents | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``history.json`` entry: the fields in the evaluator's order, ``None`` ones left out, then ``extra``."""
        out: dict[str, Any] = {}
        for name in _EVAL_KEYS:
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, HeadParents):
                v = v.to_dict()
            elif isinstance(v, dict):
                v = dict(v)
            out[name] = v
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalRecord:
        """Read a ``history.json`` entry (:meth:`to_dict`'s dict, or one of an earlier version) back."""
        rest = _mapping("an evaluation entry", d)
        for old, new in _OLD_EVAL_KEYS:
            if old in rest and new not in rest:
                rest[new] = rest.pop(old)
        missing = [k for k in ("step", "time_s", "loss", "excess_over_in_context") if k not in rest]
        if missing:
            raise ValueError(f"an evaluation entry must hold {', '.join(missing)}; got keys {sorted(rest)}")
        kw = {k: rest.pop(k) for k in _EVAL_KEYS if k in rest}
        if kw.get("heads") is not None:
            kw["heads"] = HeadParents(**_mapping("heads", kw["heads"]))
        if kw.get("strategy_kl") is not None:
            kw["strategy_kl"] = _mapping("strategy_kl", kw["strategy_kl"])
        return cls(**kw, extra=rest)

    def __repr__(self) -> str:
        parts = [f"step={self.step}", f"loss={_num(self.loss)}", f"excess={_num(self.excess_over_in_context)}"]
        for name in ("recovered", "mean_parent_attention", "shd", "previous_token", "diag_argmax_rows"):
            v = getattr(self, name)
            if v is not None:
                parts.append(f"{name}={_num(v)}")
        if self.heads is not None:
            parts.append(f"heads: dominant {self.heads.dominant_parent}, split {self.heads.split}")
        if self.strategy_kl is not None:
            parts.append(f"strategy_kl: {len(self.strategy_kl)} strategies")
        return f"EvalRecord({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class History:
    """A run's history (the content of ``history.json``).

    ``config`` — the run's configuration as JSON (:meth:`TrainConfig.to_json
    <causal_grad.training.TrainConfig.to_json>`; ``None`` in a file without it); ``baselines`` — the held-out
    reference losses (:class:`~causal_grad.baselines.BaselineLosses`); ``evals`` — the held-out evaluations in
    step order (``"eval"``); ``train`` — ``(step, mean training loss of the chunk ending there)`` pairs;
    ``interrupted_at`` — the step a SIGINT/SIGTERM stopped the run at (``None`` unless interrupted);
    ``wall_s`` — the run's wall time in seconds (a resumed run's calls together; reloading a finished run keeps
    it) and ``steps_done`` — the steps it did (both ``None`` in the file
    written during the run, after each evaluation, before it ends); ``smoothing`` — for the reduced model, what
    its readout smoothing costs when the graph is learnt exactly (:func:`~causal_grad.training.run.smoothing_penalty`
    and ``ideal_excess_over_in_context``), else ``None``; ``extra`` — keys of a file this version does not write."""

    baselines: BaselineLosses
    evals: tuple[EvalRecord, ...] = ()
    train: tuple[tuple[int, float], ...] = ()
    config: dict[str, Any] | None = None
    interrupted_at: int | None = None
    wall_s: float | None = None
    steps_done: int | None = None
    smoothing: dict[str, float] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def final(self) -> EvalRecord | None:
        """The last evaluation (``None`` when there is none)."""
        return self.evals[-1] if self.evals else None

    def to_dict(self) -> dict[str, Any]:
        """The ``history.json`` content, keys in the order :func:`~causal_grad.training.train` writes them."""
        out: dict[str, Any] = {} if self.config is None else {"config": self.config}
        out["baselines"] = self.baselines.to_dict()
        out["eval"] = [e.to_dict() for e in self.evals]
        out["train"] = [[s, v] for s, v in self.train]
        for name in _HISTORY_KEYS:
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        """Read ``history.json``'s content (:meth:`to_dict`'s dict, or that of an earlier version) back."""
        rest = _mapping("history", d)
        if "baselines" not in rest:
            raise ValueError(f"history must hold baselines (as history.json does); got keys {sorted(rest)}")
        evals = rest.pop("eval", [])
        train = rest.pop("train", [])
        if not isinstance(evals, list) or not isinstance(train, list):
            raise TypeError("history's eval and train must be lists (as history.json holds them)")
        kw = {k: rest.pop(k) for k in ("config", *_HISTORY_KEYS) if k in rest}
        return cls(
            baselines=BaselineLosses.from_dict(rest.pop("baselines")),
            evals=tuple(EvalRecord.from_dict(e) for e in evals),
            train=tuple((int(s), float(v)) for s, v in train),
            **kw,
            extra=rest,
        )

    def __repr__(self) -> str:
        f = self.final
        ran = f"to step {f.step}, final loss {_num(f.loss)}" if f is not None else "none"
        done = "" if self.steps_done is None else f", steps_done={self.steps_done}"
        stop = "" if self.interrupted_at is None else f", interrupted_at={self.interrupted_at}"
        wall = "" if self.wall_s is None else f", wall_s={self.wall_s:.1f}"
        return (
            f"History({len(self.evals)} evaluations {ran}; {len(self.train)} training means{done}{stop}{wall}; "
            f"in_context={_num(self.baselines.in_context)})"
        )
