"""Layering of the package, read from the source with ``ast`` (nothing is imported).

Two rules (the developers' guide):

(a) no module uses another module's private name: neither ``from causal_grad.x import _name`` nor
    ``x._name`` for a name ``x`` bound to a causal_grad module. Private *modules* (``_validate``, ``_x64``)
    with public names are fine, and so are dunder names;
(b) the module-level imports of causal_grad form no cycle (function-local imports, run at call time, and imports
    under ``if TYPE_CHECKING:`` are not edges; an import of ``a.b.c`` is an edge to ``a.b.c``, and importing a
    module's own ancestor packages is not an edge: they are initialised first anyway);
(c) imports are at module level; an import inside a function names its reason in a comment on the statement,
    ``# <reason>: <why>`` with ``<reason>`` one of ``LOCAL_IMPORT_REASONS``: ``lazy`` (CLI parsing stays
    JAX-free, pyplot after the Agg backend is chosen), ``optional`` (an optional dependency: torch, wandb, ...),
    ``cycle`` (breaks a true import cycle: name the module) or ``compat`` (a fallback for other JAX versions).

``KNOWN_PRIVATE`` lists the violations of (a) that remain in modules outside this branch's edit (the final pass
removes them); the test fails both on a new violation and on a listed one that has gone, so the list only shrinks.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "causal_grad"
PACKAGE = "causal_grad"

#: (importing module, private name used, imported module): known, to be removed by the final pass
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, level: int, target: str | None, modules: dict[str, Path]) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    is_package = modules[module].name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_level(tree: ast.Module):
    """Statements executed at import time: the module body, class bodies, if/try/with blocks; not function
    bodies, not ``if TYPE_CHECKING:`` blocks."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            todo.extend(getattr(node, field, []) or [])


def _imports(module: str, node, modules: dict[str, Path]) -> list[tuple[str, str | None, str, str]]:
    """``(imported module, imported name or None, bound local name, what it is bound to)`` for one import
    statement (``import a.b`` binds ``a`` to ``a``; ``import a.b as c`` binds ``c`` to ``a.b``)."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            head = a.name.split(".")[0]
            out.append((a.name, None, a.asname or head, a.name if a.asname else head))
    elif isinstance(node, ast.ImportFrom):
        src = _resolve(module, node.level, node.module, modules)
        for a in node.names:
            out.append((src, a.name, a.asname or a.name, f"{src}.{a.name}"))
    return out


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _private_uses(modules: dict[str, Path] = MODULES) -> set[tuple[str, str, str]]:
    found = set()
    for mod, path in modules.items():
        tree = _parse(path)
        aliases = {}  # local name -> causal_grad module it is bound to
        for node in ast.walk(tree):
            for src, name, local, bound in _imports(mod, node, modules):
                if not src.split(".")[0] == PACKAGE:
                    continue
                if name is None or bound in modules:  # a module: private modules are fine
                    aliases[local] = bound
                elif _is_private(name) and src != mod:
                    found.add((mod, name, src))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                target = _dotted(node.value, aliases, modules)
                if target and target in modules and target != mod:
                    found.add((mod, node.attr, target))
    return found


def _dotted(node, aliases, modules) -> str | None:
    """The causal_grad module an expression like ``x`` or ``x.y`` names, if any."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value, aliases, modules)
        if head is not None and f"{head}.{node.attr}" in modules:
            return f"{head}.{node.attr}"
    return None


def _graph(modules: dict[str, Path] = MODULES) -> dict[str, set[str]]:
    graph = {mod: set() for mod in modules}
    for mod, path in modules.items():
        ancestors = {".".join(mod.split(".")[:k]) for k in range(1, len(mod.split(".")) + 1)}
        for node in _module_level(_parse(path)):
            for src, name, _, bound in _imports(mod, node, modules):
                if not src.split(".")[0] == PACKAGE:
                    continue
                dest = bound if name is not None and bound in modules else src
                while dest not in modules:  # an attribute of a module
                    dest = dest.rsplit(".", 1)[0]
                if dest not in ancestors and dest != mod:
                    graph[mod].add(dest)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_modules_are_found():
    assert {"causal_grad", "causal_grad.task", "causal_grad.kernels", "causal_grad.training.loop"} <= set(MODULES)


def test_no_module_uses_another_modules_private_name():
    found = _private_uses()
    new = sorted(found - KNOWN_PRIVATE)
    assert not new, "private names used across modules (make them public, documented, or move them): " + "; ".join(
        f"{m} uses {n} of {s}" for m, n, s in new
    )
    gone = sorted(KNOWN_PRIVATE - found)
    assert not gone, f"remove these fixed entries from KNOWN_PRIVATE: {gone}"


def test_module_level_imports_have_no_cycle():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles among causal_grad modules: {cycles}"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .b import _x\n", {("causal_grad.a", "_x", "causal_grad.b")}),
        ("from . import b\nb._x\n", {("causal_grad.a", "_x", "causal_grad.b")}),
        ("from .b import x, __version__\nfrom . import _validate\n", set()),
    ],
)
def test_private_name_detector(tmp_path, source, expected):
    pkg = tmp_path / "causal_grad"
    pkg.mkdir()
    for name, text in (("__init__", ""), ("a", source), ("b", "_x = 1\nx = 2\n"), ("_validate", "")):
        (pkg / f"{name}.py").write_text(text)
    mods = {}
    for path in sorted(pkg.glob("*.py")):
        mods["causal_grad" if path.stem == "__init__" else f"causal_grad.{path.stem}"] = path
    assert _private_uses(mods) == expected


def test_cycle_detector():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


#: the reasons a function-local import may give (rule (c)), as ``# <reason>: <why>`` on the import statement
LOCAL_IMPORT_REASONS = ("lazy", "optional", "cycle", "compat")
_REASON = re.compile(r"#\s*(?:" + "|".join(LOCAL_IMPORT_REASONS) + r"):\s*\S")


def _unexplained_local_imports(path: Path) -> list[int]:
    """Line numbers of the imports inside a function of ``path`` with no reason comment on any of their lines."""
    source = path.read_text()
    comments: dict[int, list[str]] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments.setdefault(tok.start[0], []).append(tok.string)
    out = []

    def walk(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            if inside and isinstance(child, (ast.Import, ast.ImportFrom)):
                lines = range(child.lineno, (child.end_lineno or child.lineno) + 1)
                if not any(_REASON.search(c) for line in lines for c in comments.get(line, [])):
                    out.append(child.lineno)
            walk(child, inside)

    walk(ast.parse(source), False)
    return sorted(out)


def test_function_local_imports_give_their_reason():
    offenders = [
        f"{path.relative_to(ROOT.parent)}:{line}"
        for path in MODULES.values()
        for line in _unexplained_local_imports(path)
    ]
    assert not offenders, (
        "function-local imports without a reason comment (move them to the top of the module, or end the line with "
        f"`# <reason>: <why>`, <reason> one of {LOCAL_IMPORT_REASONS}):\n" + "\n".join(offenders)
    )


def test_local_import_detector(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "import os\n"
        "def f():\n"
        "    import jax\n"
        "    import wandb  # optional: wandb\n"
        "    from a import (  # lazy: CLI parsing stays JAX-free\n"
        "        b,\n"
        "    )\n"
        "    import c  # kept local\n"
        "    class K:\n"
        "        def g(self):\n"
        "            import d  # pyright: ignore[x]  # compat: JAX < 0.6\n"
        "            import e\n"
    )
    assert _unexplained_local_imports(path) == [3, 8, 12]


def test_package_all_matches_the_lazy_exports():
    """``causal_grad.__all__`` is written out (for type checkers, linters and the API reference); it must name
    exactly the names registered with ``_export`` (which the lazy ``__getattr__`` resolves), in the same order."""
    tree = ast.parse(MODULES[PACKAGE].read_text())
    exported, listed = [], None
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Name) and call.func.id == "_export":
                exported += [a.value for a in call.args[1:] if isinstance(a, ast.Constant)]
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            listed = ast.literal_eval(node.value)
    assert listed is not None, "causal_grad/__init__.py must assign a literal __all__"
    assert list(listed) == exported
