"""The claim registry: claim id -> (title, check). The built-in checks of :mod:`.claims` are listed there in
:data:`causal_grad.verify.claims.CHECKS` and entered here; :func:`claim` adds another (a paper claim ``C<k>``
or a study such as ``SC``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .claims import CHECKS
from .records import ClaimResult, VerifyContext

__all__ = ["CLAIMS", "claim", "ordered_ids"]

#: claim id -> (title, check function)
CLAIMS: dict[str, tuple[str, Callable[[VerifyContext], ClaimResult]]] = {}


def claim(cid: str, title: str) -> Callable[[Callable[[VerifyContext], ClaimResult]], Callable]:
    """Register ``check(ctx) -> ClaimResult`` as the check of ``cid``: a paper claim ``C<k>``, or a study that
    is not a claim of the paper, named by two to eight capital letters (``SC``: sample complexity). Studies run
    after the claims, in the order registered."""
    if not isinstance(cid, str) or not re.fullmatch(r"C\d+|[A-Z]{2,8}", cid):
        raise (TypeError if not isinstance(cid, str) else ValueError)(
            f"cid must be a claim id such as 'C1' or a study id such as 'SC', got {cid!r}"
        )
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")

    def deco(fn):
        CLAIMS[cid] = (title, fn)
        return fn

    return deco


def ordered_ids(ids: Iterable[str]) -> list[str]:
    """The paper's claims ``C<k>`` by ``k``, then the studies in the order given."""
    if isinstance(ids, str) or not hasattr(ids, "__iter__"):
        raise TypeError(f"ids must be an iterable of claim ids, got {type(ids).__name__}")
    ids = list(ids)
    if not all(isinstance(c, str) for c in ids):
        raise TypeError("ids must all be claim-id strings such as 'C1' or 'SC'")
    return sorted((c for c in ids if re.fullmatch(r"C\d+", c)), key=lambda c: int(c[1:])) + [
        c for c in ids if not re.fullmatch(r"C\d+", c)
    ]


for _cid, _title, _fn in CHECKS:
    claim(_cid, _title)(_fn)
