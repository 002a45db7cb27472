"""The documentation stays true to the code: cited names resolve, cited sections exist, no missing files cited."""

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "theory.md"
CITE = re.compile(r"`(causal_grad(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")
#: A section citation: "§4", "§7.3", or a range "§3–4" / "§4.2-4.5" (both ends must exist).
SECTION = re.compile(r"§(\d+(?:\.\d+)?)(?:\s*[–-]\s*(\d+(?:\.\d+)?))?")
HEADING = re.compile(r"^#{1,6}\s+§(\d+(?:\.\d+)*)\s", flags=re.M)


def resolve(path: str):
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def test_cited_names_resolve():
    cites = sorted(set(CITE.findall(DOC.read_text())))
    assert cites, "docs/theory.md cites no function"
    missing = []
    for c in cites:
        try:
            resolve(c)
        except (ImportError, AttributeError):
            missing.append(c)
    assert not missing, f"docs/theory.md cites names that do not exist: {missing}"


def theory_sections() -> set[str]:
    return set(HEADING.findall(DOC.read_text()))


def _citing_files() -> list[Path]:
    files = sorted((ROOT / "causal_grad").rglob("*.py")) + sorted((ROOT / "experiments").glob("*.py"))
    return files + sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def test_theory_has_the_stable_sections():
    """The numbering the docstrings rely on: §1 … §7, and the claims §7.1 (C1) … §7.11 (C10)."""
    sections = theory_sections()
    assert {str(n) for n in range(1, 8)} <= sections
    assert {f"7.{k}" for k in range(1, 12)} <= sections
    text = DOC.read_text()
    for k, cid in enumerate([f"C{n}" for n in range(1, 10)] + ["SC", "C10"], start=1):
        assert re.search(rf"^### §7\.{k} {cid}:", text, flags=re.M), f"§7.{k} must be claim {cid}"


def test_every_cited_section_exists():
    """Every "§n" / "§n.m" (or range) in a docstring, comment or doc page is a heading of docs/theory.md."""
    sections = theory_sections()
    missing = []
    for path in _citing_files():
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            for m in SECTION.finditer(line):
                for ref in filter(None, m.groups()):
                    if ref not in sections:
                        missing.append(f"{path.relative_to(ROOT)}:{lineno}: §{ref}")
    assert not missing, "cited sections missing from docs/theory.md:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", ["THEORY.md", "PERFORMANCE.md"])
def test_no_citation_of_files_the_repository_lacks(name):
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in _citing_files()
        for i, line in enumerate(p.read_text().splitlines(), start=1)
        if name in line
    ]
    assert not hits, f"{name} is not in the repository but is cited at {hits}"


def test_bench_report_lists_every_row():
    """results/bench.md (``make bench``): the machine, each topic's definition and every printed row."""
    from causal_grad.commands.bench import machine_description, render_report

    rows = [
        {"topic": "dp", "name": "a | b", "value": 0.5, "unit": "s", "target": "< 1 s", "ok": True},
        {"topic": "dp", "name": "c", "value": 12345, "unit": "seq/s", "note": "n"},
        {"topic": "mi", "name": "d", "value": "x", "unit": "", "ok": False},
    ]
    importlib.import_module("causal_grad.benchmarks.dp")
    machine = machine_description()
    assert {"date", "machine", "jax"} <= set(machine)
    text = render_report(rows, machine, quick=True, command="causal-grad bench --quick")
    assert text.startswith("# Benchmark report")
    assert "## dp" in text and "## mi" in text and "polynomial-time exact gradient" in text
    assert "| a \\| b | 0.5 | s | < 1 s | yes |" in text
    assert "| c | 12,345 | seq/s |  |  | n |" in text
    assert "| d | x |  |  | **no** |" in text
    assert machine["jax"] in text


def test_api_reference_lists_the_public_modules():
    """``make docs``: one API page per public module, found in the source tree (docs/_mkdocs/hooks.py)."""
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "_mkdocs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    mods = hooks.public_modules()
    assert {"causal_grad", "causal_grad.mi", "causal_grad.gradients.dp", "causal_grad.benchmarks"} <= set(mods)
    assert not [m for m in mods if m.startswith("causal_grad.commands") or "._" in m]


GUIDE = ROOT / "docs" / "guide.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_guide_extension_examples_run():
    """The 'Extending' examples of docs/guide.md run as written and do what they say."""
    blocks = _python_blocks(GUIDE.read_text())
    ext = [b for b in blocks if "star_of_chains" in b or "class Banded" in b]
    assert len(ext) == 2
    ns: dict = {}
    exec("import causal_grad as cg\n" + "\n".join(ext), ns)
    g = ns["star_of_chains"](3, 4)
    assert g.n == 13 and g.parents[1] == 0 and g.parents[5] == 0
    import jax
    import numpy as np

    pis = np.asarray(ns["task"].sample_pi(jax.random.key(0), 4))
    np.testing.assert_allclose(pis.sum(-1), 1.0, atol=1e-5)
    assert np.all(pis[:, 0, 2:] == 0)  # the band


def test_guide_icl_mc_config_and_command_line_agree_with_the_experiment():
    """docs/guide.md's ICL-MC section: its Python config runs as written and is experiments/icl_mc.py's (but for
    the held-out key, the seed's in the experiment), and its command line builds the same config."""
    import shlex

    from causal_grad.cli import build_parser
    from causal_grad.commands.figures import load_experiment
    from causal_grad.commands.train import config_from_args

    text = GUIDE.read_text()
    (block,) = [b for b in _python_blocks(text) if "icl_mc = TrainConfig(" in b]
    ns: dict = {}
    exec(block, ns)
    cfg = ns["icl_mc"]
    want = load_experiment("icl_mc").config("quick", 0)
    assert (cfg.task, cfg.model, cfg.optim) == (want.task, want.model, want.optim)
    assert (cfg.run.steps, cfg.run.batch, cfg.run.eval_every, cfg.run.eval_size) == (
        want.run.steps,
        want.run.batch,
        want.run.eval_every,
        want.run.eval_size,
    )
    (line,) = re.findall(r"^causal-grad train --preset standard --objective next_token.*?(?=\n```)", text, re.M | re.S)
    argv = shlex.split(line.replace("\\\n", " "))[1:]
    assert config_from_args(build_parser().parse_args(argv)) == cfg
