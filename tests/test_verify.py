"""`causal-grad verify` on a reduced claim set: the report's structure, and statuses that follow the numbers."""

import json

import numpy as np
import pytest

from causal_grad.cli import main
from causal_grad.verify import CLAIMS, ClaimResult, run_verify


def test_every_claim_is_registered_in_order():
    from causal_grad.verify import claims  # noqa: F401

    assert sorted(CLAIMS, key=lambda c: int(c[1:])) == [f"C{k}" for k in range(1, 10)]


@pytest.fixture(scope="module")
def c4_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify")
    rc = main(["verify", "--claims", "C4", "--out", str(out)])
    return rc, out


def test_report_structure(c4_report):
    rc, out = c4_report
    assert rc == 0  # C4 is partial (the diagonal wins on some draws), which is not a failure
    data = json.loads((out / "verify.json").read_text())
    assert [d["id"] for d in data] == ["C4"]
    r = data[0]
    assert r["status"] == "partial"
    assert set(r) >= {"id", "title", "status", "summary", "numbers", "checked_by", "figures", "seconds"}
    assert r["checked_by"] and all(c.startswith("causal_grad.") for c in r["checked_by"])
    for f in r["figures"]:
        assert (out / "figures" / f.split("/")[-1]).exists()
    md = (out / "verify.md").read_text()
    assert "| C4 | **partial** |" in md and "![C4]" in md
    # the summary quotes the computed numbers
    pri = r["numbers"]["priors"]["dirichlet(0.1) S=3"]
    assert f"{pri['win_prob']:.2f}" in r["summary"] and f"{pri['mean_trace']:.3f}" in r["summary"]


def test_status_follows_the_numbers(monkeypatch, tmp_path):
    """Feed C4 a prior report in which the diagonal wins on average: the check must turn to fail (exit 1)."""
    import causal_grad.mi as mi
    from causal_grad.mi import SelfEntryReport

    real = mi.self_entry_over_prior

    def rigged(prior, S, key, num):
        r = real(prior, S, key, 200)
        tr = r.parent_entry + 0.5  # diagonal 0.5 above the parent entry on every draw
        return SelfEntryReport(trace=tr, parent_entry=r.parent_entry, margin=tr - r.parent_entry,
                               wins=np.ones_like(tr, bool), ties=np.zeros_like(tr, bool))

    monkeypatch.setattr(mi, "self_entry_over_prior", rigged)
    rc = main(["verify", "--claims", "C4", "--out", str(tmp_path)])
    assert rc == 1
    r = json.loads((tmp_path / "verify.json").read_text())[0]
    assert r["status"] == "fail" and r["numbers"]["failures"]


def test_unknown_claim_and_bad_status(tmp_path):
    with pytest.raises(ValueError, match="claims must be among"):
        run_verify(["C99"], out=tmp_path)
    with pytest.raises(ValueError, match="status"):
        ClaimResult("C0", "t", "maybe", "s", {}, [])
