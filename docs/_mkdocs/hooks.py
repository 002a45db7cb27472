"""mkdocs hook: one API reference page per public module of causal_grad, generated at build time.

The module list comes from the source tree (no import), so a module added, renamed or removed needs no edit here.
Public = no path component starting with an underscore; the command-line internals (``causal_grad.commands``,
``__main__``) are left out, the ``causal_grad.cli`` entry point is kept.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "causal_grad"
EXCLUDE = ("causal_grad.commands",)


def public_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts):
            continue
        name = ".".join(parts)
        if name.startswith(EXCLUDE):
            continue
        names.append(name)
    return sorted(names)


def _page(name: str) -> str:
    return f"api/{name}.md"


def on_config(config, **kwargs):
    api = [{name: _page(name)} for name in public_modules()]
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and "API reference" in entry:
            entry["API reference"] = api
            break
    return config


def on_files(files, config, **kwargs):
    for name in public_modules():
        content = f"# `{name}`\n\n::: {name}\n"
        files.append(File.generated(config, _page(name), content=content))
    return files
