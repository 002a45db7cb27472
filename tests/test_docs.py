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
