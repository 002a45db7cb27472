"""`causal-grad verify` on a reduced claim set: the report's structure, and statuses that follow the numbers."""

import json

import numpy as np
import pytest

from causal_grad.cli import main
from causal_grad.verify import CLAIMS, ClaimResult, run_verify


def test_every_claim_is_registered_in_order():
    from causal_grad.verify import ordered_ids

    # the paper's claims by number, then the studies (not claims of the paper) in the order registered
    assert ordered_ids(CLAIMS) == [f"C{k}" for k in range(1, 11)] + ["SC"]
    assert ordered_ids(["SC", "C10", "C2"]) == ["C2", "C10", "SC"]


def test_verify_modules_import_one_way():
    """records <- claims <- registry <- runner -> report -> records: no cycle, no import kept for a side effect."""
    import ast
    from pathlib import Path

    import causal_grad.verify as v

    here = Path(v.__file__).parent
    deps = {}
    for name in ("records", "claims", "registry", "runner", "report"):
        tree = ast.parse((here / f"{name}.py").read_text())
        deps[name] = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}
    assert deps["records"] == set() and deps["claims"] == {"records"} and deps["report"] == {"records"}
    assert deps["registry"] == {"claims", "records"} and deps["runner"] == {"records", "registry", "report"}


def test_claim_ids_are_claims_or_studies():
    from causal_grad.verify import claim

    claim("C1", "t")  # the decorator factory accepts both kinds without registering anything yet
    claim("SC", "t")
    for bad in ("", "X1", "sc", "S", "C"):
        with pytest.raises(ValueError, match="cid"):
            claim(bad, "t")


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
        return SelfEntryReport(
            trace=tr,
            parent_entry=r.parent_entry,
            margin=tr - r.parent_entry,
            wins=np.ones_like(tr, bool),
            ties=np.zeros_like(tr, bool),
        )

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


def test_progress_bar_counts_the_claims_and_no_progress_hides_it(monkeypatch, tmp_path, capsys):
    from causal_grad.progress import quiet_progress

    def check(ctx):
        ctx.echo("    inside the check")
        return ClaimResult("ZZ", "", "pass", "fine", {}, [])

    monkeypatch.setitem(CLAIMS, "ZZ", ("a quick stand-in claim", check))
    seen = []
    with quiet_progress(False):  # bars on, as on a terminal
        (r,) = run_verify(["ZZ"], out=tmp_path, echo=seen.append)
    err = capsys.readouterr().err
    assert "verify:" in err and "claim" in err  # the bar, on standard error
    assert seen[0].startswith("[1/1] ZZ") and "    inside the check" in seen and seen[-1].lstrip().startswith("PASS")
    assert r.title == "a quick stand-in claim"
    with quiet_progress(False):
        assert main(["verify", "--claims", "zz", "--out", str(tmp_path), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "verify:" not in captured.err and "[1/1] ZZ" in captured.out


# ---------------------------------------------------------------------- SC: the sample-complexity study
SC_METHODS = (
    "gradient at init",
    "gradient at init, one-hot target",
    "trained (reduced, stage 1)",
    "trained, one-hot target",
    "Chow–Liu",
    "Chow–Liu, fixed π (control)",
)


def _fake_study(successes: dict, trials: int = 12):
    """A stand-in for experiments/sample_complexity.py's ``run``: successes at the largest of two N per method."""
    from scipy.stats import binomtest

    def run(quick, out, seed=0, *, smoke=False, mode=None):
        (out / "sample_complexity.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        methods = {}
        for m in SC_METHODS:
            ks = [0, successes.get(m, trials)]
            ci = [binomtest(k, trials).proportion_ci(method="wilson") for k in ks]
            methods[m] = {
                "recovery": [k / trials for k in ks],
                "lo": [c.low for c in ci],
                "hi": [c.high for c in ci],
                "successes": ks,
                "parent_fraction": [0.5, 1.0],
                "N_50": 64,
                "N_90": 64,
            }
        mi = {"parent-child": 0.06, "siblings": 0.7, "same tree, other": 0.1, "different trees": 0.07}
        return {
            "Ns": [16, 64],
            "trials": trials,
            "methods": methods,
            "figure": "sample_complexity.png",
            "trees": [[-1, 0]],
            "settings": {},
            "pair_mi_trial0": {"fresh π per sequence": mi},
        }

    return run


@pytest.mark.parametrize(
    "successes, status",
    [
        ({"Chow–Liu": 0}, "pass"),  # Chow–Liu on fresh-π sequences is reported, never scored
        ({"trained (reduced, stage 1)": 8}, "partial"),  # 8/12: lower bound 0.39 < 0.5
        ({"Chow–Liu, fixed π (control)": 3}, "partial"),  # the control does not recover the tree
        ({"gradient at init": 5}, "fail"),
    ],
)
def test_sc_status_follows_the_numbers(monkeypatch, tmp_path, successes, status):
    from causal_grad.studies import sample_complexity

    monkeypatch.setattr(sample_complexity, "run", _fake_study(successes))
    rc = main(["verify", "--claims", "sc", "--out", str(tmp_path)])
    assert rc == (1 if status == "fail" else 0)
    r = json.loads((tmp_path / "verify.json").read_text())[0]
    assert r["id"] == "SC" and r["status"] == status
    assert "criterion" in r["numbers"] and "Chow–Liu" in r["summary"]
    assert (tmp_path / "figures" / "sc_sample_complexity.png").exists()


@pytest.mark.slow
def test_sc_row_runs_the_study(monkeypatch, tmp_path):
    """The row runs experiments/sample_complexity.py (here at its tests-only smoke preset) and reports its numbers."""
    from causal_grad.verify import claims

    monkeypatch.setitem(claims.SC_MODES, True, "smoke")
    (r,) = run_verify(["SC"], out=tmp_path, echo=lambda s: None)
    assert r.status in ("pass", "partial", "fail")
    assert r.numbers["experiment"].endswith("'smoke'")
    Ns, trials = r.numbers["Ns"], r.numbers["trials"]
    assert set(r.numbers["methods"]) == set(SC_METHODS)
    for at in r.numbers["at_largest_N"].values():
        assert at["N"] == Ns[-1] and at["trials"] == trials
        assert 0.0 <= at["wilson_lo"] <= at["recovery"] <= at["wilson_hi"] <= 1.0
        assert at["recovery"] == at["successes"] / trials
    md = (tmp_path / "verify.md").read_text()
    assert "| SC |" in md and "![SC](figures/sc_sample_complexity.png)" in md
    assert (tmp_path / "figures" / "sc_sample_complexity.png").read_bytes()[:4] == b"\x89PNG"
