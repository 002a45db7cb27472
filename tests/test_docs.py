"""Every function docs/theory.md cites by import path must exist."""

import importlib
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "theory.md"
CITE = re.compile(r"`(causal_grad(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")


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


GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


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
