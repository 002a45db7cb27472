"""``causal-grad figures``: run the experiment scripts of ``experiments/`` (the paper's figures and the studies)
and write each one's PNG and JSON under ``<out>/<name>/`` (``make figures`` = ``causal-grad figures --full``).

The scripts live in the source tree, not in the package: they are loaded by path from the folder
``experiments/`` beside the package (``causal_grad/../experiments``). Each provides
``run(quick: bool, out: Path, seed: int = 0) -> dict`` (its key numbers) and ``main()``. The scripts of the
studies (sample complexity, OOD, finite-T departure) are thin wrappers around :mod:`causal_grad.studies`, which
is where Python code (the checks of ``causal-grad verify``) calls them; the figure scripts are reached with
:func:`load_experiment`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import plots
from ..progress import progress

__all__ = [
    "EXPERIMENTS",
    "PAPER_FIGURES",
    "experiments_dir",
    "load_experiment",
    "write_gallery",
    "add_parser",
    "run",
]

#: The experiments, in the order ``causal-grad figures`` runs them, with a one-line description.
EXPERIMENTS = {
    "fig2_chain": "Fig. 2: chain, induction head (first-layer attention, A2, loss vs estimator)",
    "fig6_icl_tree": "Fig. 6: icl pairs and a random tree",
    "fig5_7_two_parent": "Figs. 5/7: two-parent DAG, heads [2,1]: each head takes one parent",
    "fig8_standard": "Fig. 8: standard transformer with MLP on the chain",
    "fig9_many_forests": "Fig. 9: parent attention over random forests (S=3)",
    "sample_complexity": "sequences needed to recover a tree: gradient at init, training, Chow-Liu",
    "ood": "C8: trained on Dirichlet(0.1), evaluated on other priors",
    "finite_t_departure": "C1: exact finite-T gradient vs M as T grows",
    "icl_mc": "ICL-MC (Edelman et al.): uniform -> unigram -> bigram stages, and the fig-2 task, over seeds",
}

#: The paper's own figures (``--paper``, ``make figures``): each at the paper's settings under ``--full``. The
#: other experiments are this toolkit's studies and a neighbouring paper's setting (``make studies``).
PAPER_FIGURES = ("fig2_chain", "fig6_icl_tree", "fig5_7_two_parent", "fig8_standard", "fig9_many_forests")

#: Longest side, in pixels, of a gallery thumbnail (:func:`write_gallery`).
GALLERY_PX = 1000


#: The source tree's root (the folder holding ``causal_grad/`` and ``experiments/``).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def experiments_dir() -> Path:
    """The source tree's ``experiments/`` folder (beside the package). ``FileNotFoundError`` with a clear
    message when the package was installed without its source tree."""
    d = SOURCE_ROOT / "experiments"
    if not (d / "_expkit.py").is_file():
        raise FileNotFoundError(
            f"the experiment scripts are not at {d}: `causal-grad figures` needs the source tree (a clone of the "
            f"repository, installed with `pip install -e .`), since experiments/ is not part of the package"
        )
    return d


def load_experiment(name: str) -> ModuleType:
    """Import ``experiments/<name>.py`` by path and return the module (with ``run`` and ``main``)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if name not in EXPERIMENTS:
        raise ValueError(f"name must be one of {', '.join(EXPERIMENTS)}, got {name!r}")
    path = experiments_dir() / f"{name}.py"
    modname = f"causal_grad_experiments.{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None  # a .py path always gets the source-file loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[modname]
        raise
    return module


def _names(positional, text: str | None, paper: bool = False) -> list[str]:
    """The experiments named on the command line (positional names, ``--only``, ``--paper``), in the order given."""
    names = [n for n in (positional or [])] + (list(PAPER_FIGURES) if paper else [])
    if text is not None:
        names += [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise ValueError(f"only: no experiment named in {text!r} (choose from {', '.join(EXPERIMENTS)})")
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(
            f"only/names: unknown experiment(s) {', '.join(unknown)} (choose from {', '.join(EXPERIMENTS)})"
        )
    return list(dict.fromkeys(names)) or list(EXPERIMENTS)


def _claim_cell(summary: dict) -> str:
    c = summary.get("claim")
    if not c:
        return "(no claim: a study)"
    if c["held"]:
        return "held"
    return "NOT held: " + ", ".join(k["name"] for k in c["checks"] if not k["held"])


def _numbers(check: dict) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return str(v)

    return ", ".join(f"{k} {fmt(v)}" for k, v in check["numbers"].items() if v is not None)


def write_gallery(out: Path, gallery: Path, times: dict[str, float], command: str, machine: dict[str, str]) -> Path:
    """A gallery of one ``causal-grad figures`` run: for each experiment of ``times`` (name -> wall seconds of
    its script in that run) read ``out/<name>/summary.json``, write a thumbnail of each of its PNGs (longest
    side :data:`GALLERY_PX`) and a copy of the summary under ``gallery/``, and ``gallery/index.md``: the date,
    the machine, the command, each figure's wall time and whether its claim held (with the numbers of every
    check), the images. Returns the index's path."""
    from PIL import Image  # lazy: pillow (a matplotlib dependency) only when a gallery is written

    out, gallery = Path(out), Path(gallery)
    gallery.mkdir(parents=True, exist_ok=True)
    rows, sections = [], []
    for name, seconds in times.items():
        summary = json.loads((out / name / "summary.json").read_text())
        (gallery / f"{name}.json").write_text(json.dumps(summary, indent=1))
        images = [summary[k] for k in ("figure", "fig2_figure") if isinstance(summary.get(k), str)]
        images = [i for i in images if i.endswith(".png") and (out / name / i).is_file()]
        for img in images:
            with Image.open(out / name / img) as im:
                im.thumbnail((GALLERY_PX, GALLERY_PX))
                im.save(gallery / img, optimize=True)
        rows.append(f"| {name} | {EXPERIMENTS[name]} | {seconds / 60:.1f} min | {_claim_cell(summary)} |")
        lines = [f"## {name}", "", EXPERIMENTS[name], ""]
        claim = summary.get("claim")
        if claim:
            lines += [f"**Claim {'held' if claim['held'] else 'NOT held'}:** {claim['statement']}.", ""]
            lines += [
                f"- {'held' if k['held'] else '**failed**'}: {k['name']} ({k['rule']}): {_numbers(k)}"
                for k in claim["checks"]
            ]
            lines.append("")
        lines += [f"![{name}]({img})" for img in images] + ["", f"Summary: [{name}.json]({name}.json)", ""]
        sections.append("\n".join(lines))
    total = sum(times.values())
    head = [
        "# Gallery: the paper's figures at full size",
        "",
        f"One run of `{command}` (the results folder's figures, shrunk; each figure's `summary.json` beside it).",
        "",
        *[f"- {k}: {v}" for k, v in machine.items()],
        f"- wall time in all: {total / 60:.1f} min",
        "",
        "| experiment | what | wall time | claim |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ]
    index = gallery / "index.md"
    index.write_text("\n".join(head) + "\n" + "\n".join(sections))
    return index


def add_parser(sub: Any) -> None:
    lines = "\n".join(f"  {k:<20} {v}" for k, v in EXPERIMENTS.items())
    p = sub.add_parser(
        "figures",
        help="run the experiment scripts (paper figures, sample complexity, OOD) and write their figures",
        description="Run every experiment script of experiments/ (or those named) and write each one's "
        "PNG and summary.json under OUT/<name>/. Without --full each runs in quick mode (15-80 s each, "
        "about 5 minutes in all on an idle 2-core CPU; several times that on a shared one); --full uses "
        "the paper's settings (the paper's five figures, --paper: about 1.5 hours on a 2-core CPU; all with the "
        "studies several hours; each script's docstring gives its estimate; "
        "runs keep checkpoints under OUT/<name>/runs/, so an interrupted --full resumes). The theory figures "
        "(C1-C4, C9) come from "
        "`causal-grad verify`.\n\nexperiments:\n" + lines,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all, as listed above)")
    p.add_argument("--full", action="store_true", help="the paper's settings (hours); default: quick mode")
    p.add_argument("--only", default=None, help="comma-separated experiment names (the same as NAME ...)")
    p.add_argument(
        "--paper",
        action="store_true",
        help=f"the paper's figures ({', '.join(PAPER_FIGURES)}), besides any NAME given",
    )
    p.add_argument(
        "--gallery",
        default=None,
        metavar="DIR",
        help="also write a gallery of this run into DIR: thumbnails, summaries and index.md with the date, machine, "
        "command, each figure's wall time and claim (default: none)",
    )
    p.add_argument("--out", default="results", help="parent folder of the per-experiment folders (default: results)")
    p.add_argument("--seed", type=int, default=0, help="seed passed to every experiment (default: 0)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--format", default=None, choices=plots.FORMATS, help="figure file format (default: png)")
    p.add_argument("--dpi", type=float, default=None, help=f"raster figure resolution (default: {plots.DEFAULT_DPI})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for k, v in EXPERIMENTS.items():
            print(f"{k:<20} {v}")
        return 0
    names = _names(args.names, args.only, args.paper)
    if args.seed < 0:
        raise ValueError(f"seed must be >= 0, got {args.seed}")
    try:
        experiments_dir()
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    out = Path(args.out)
    mode = "full" if args.full else "quick"
    times, claims = {}, {}
    for name in progress(names, desc="figures", unit="experiment"):
        print(f"== {name} ({mode}): {EXPERIMENTS[name]}", flush=True)
        t0 = time.perf_counter()
        with plots.output_options(args.format, args.dpi):
            summary = load_experiment(name).run(quick=not args.full, out=out / name, seed=args.seed)
        times[name] = time.perf_counter() - t0
        c = summary.get("claim")
        claims[name] = "" if not c else ("claim held" if c["held"] else "claim NOT held")
        print(f"== {name}: {times[name]:.0f} s -> {out / name}", flush=True)
    print("\n" + "\n".join(f"{k:<20} {v:7.0f} s  {claims[k]}" for k, v in times.items()))
    print(f"{'in all':<20} {sum(times.values()):7.0f} s")
    if args.gallery:
        from .bench import machine_description  # lazy: CLI parsing stays JAX-free

        words = ["causal-grad", "figures"] + (["--full"] if args.full else []) + names
        words += ["--out", str(out), "--seed", str(args.seed)]
        command = " ".join(shlex.quote(w) for w in words)
        index = write_gallery(out, Path(args.gallery), times, command, machine_description())
        print(f"gallery: {index}")
    return 0
