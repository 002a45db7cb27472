"""Figures of the toolkit (matplotlib): ``causal-grad verify``, the experiment scripts, notebooks.

Every plotting function returns ``(figure, axes)`` (``axes`` a numpy array of matplotlib ``Axes`` for the
multi-panel ones, one ``Axes`` for the single-panel ones) and takes

* ``path=None``: an output file; its suffix chooses the format (``.png``, ``.pdf``, ``.svg``, anything
  ``figure.canvas.get_supported_filetypes()`` lists). Nothing is written when it is ``None`` — in Jupyter the
  figure shows below the cell;
* ``dpi``: raster resolution of the file (default :data:`DEFAULT_DPI`; vector formats ignore it);
* ``close``: close the figure after saving (default: when a ``path`` is given, so that scripts drawing many
  figures do not keep them all open).

:func:`save` writes any figure the same way. The first-layer attention plots outline the graph's edges with
one colour per parent slot (:data:`PARENT_COLORS`: red for a position's first parent, cyan for its second, …),
so that on a two-parent graph one sees which head took which parent (docs/theory.md §6, §7.7).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib import animation as manim
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.patches import Rectangle
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from ._validate import check_int, check_output_path
from .graphs import Graph
from .logs import load_snapshots

__all__ = [
    "DEFAULT_DPI",
    "PARENT_COLORS",
    "FORMATS",
    "save",
    "output_options",
    "output_path",
    "parent_slot_edges",
    "heatmaps",
    "scatter",
    "histogram",
    "curves",
    "panels",
    "errorbars",
    "bars",
    "loss_curve",
    "attention_heatmap",
    "head_parents",
    "animate_attention",
    "save_animation",
    "plot_run",
]

#: Resolution of raster files when ``dpi`` is not given.
DEFAULT_DPI = 150
#: Outline colour of the edges to a position's parent slot ``m`` (slot order of ``Graph.parent_sets``).
PARENT_COLORS = ("red", "cyan", "yellow", "magenta", "lime", "orange")
#: Display names of the reference losses of :func:`loss_curve` (other names are shown as given).
REFERENCE_LABELS = {
    "in_context": "in-context estimator",
    "exact_bayes": "exact Bayes",
    "unigram": "unigram",
    "entropy_floor": "entropy floor",
    "bayes": "in-context estimator",
}
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th", "6th")


#: Formats offered by ``--format`` of ``causal-grad figures`` and the experiment scripts.
FORMATS = ("png", "pdf", "svg")
_OUTPUT: contextvars.ContextVar[tuple[str | None, float | None]] = contextvars.ContextVar(
    "causal_grad_plots_output", default=(None, None)
)


@contextlib.contextmanager
def output_options(format: str | None = None, dpi: float | None = None):
    """Within the block, every figure file is written in ``format`` (its path's suffix replaced: ``"pdf"``
    turns ``fig.png`` into ``fig.pdf``) and at ``dpi`` unless the call gives its own; ``None`` keeps the
    default. Used by ``--format``/``--dpi`` of ``causal-grad figures`` and the experiment scripts, so that
    the scripts keep naming their files ``*.png``."""
    if format is not None:
        if not isinstance(format, str) or format.lower().lstrip(".") not in FigureCanvasBase.get_supported_filetypes():
            raise ValueError(f"format must be a figure format such as {', '.join(FORMATS)}, got {format!r}")
        format = format.lower().lstrip(".")
    if dpi is not None:
        dpi = _check_dpi(dpi)
    token = _OUTPUT.set((format, dpi))
    try:
        yield
    finally:
        _OUTPUT.reset(token)


def output_path(path) -> Path:
    """``path`` with the suffix of the active :func:`output_options` format (unchanged outside one): the
    file a plotting call given ``path`` writes."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
    p = Path(path)
    fmt = _OUTPUT.get()[0]
    return p if fmt is None else p.with_suffix("." + fmt)


def _plt():
    """``matplotlib.pyplot``, on the Agg backend unless a backend was chosen (Jupyter's inline backend, an
    ``MPLBACKEND``, or pyplot already imported)."""
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: pyplot after the Agg backend is chosen

    return plt


def _check_path(path) -> Path | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike) or None, got {type(path).__name__}")
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if not fmt:
        raise ValueError(f"path must end with a format suffix such as .png, .pdf or .svg, got {str(p)!r}")
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"path: unknown figure format {fmt!r} (suffix of {str(p)!r}); choose from {', '.join(sorted(supported))}"
        )
    return p


def _check_dpi(dpi) -> float:
    if dpi is None:
        active = _OUTPUT.get()[1]
        return float(DEFAULT_DPI) if active is None else active
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not np.isfinite(dpi) or dpi <= 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    return float(dpi)


def save(fig, path, *, dpi: float | None = None) -> Path:
    """Write ``fig`` to ``path`` in the format of its suffix (PNG, PDF, SVG, …) at ``dpi`` (raster formats);
    creates the parent folder. Returns the path written (see :func:`output_options`)."""
    if path is None:
        raise TypeError("path must be a file path, got None")
    p = _check_path(output_path(_check_path(path)))
    assert p is not None  # path is not None (checked above), so neither is the checked output path
    d = _check_dpi(dpi)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=d, bbox_inches="tight")
    return p


def _finish(fig, axes, path, dpi, close):
    """Save when ``path`` is given, close when asked (default: when saved); return ``(fig, axes)``."""
    if path is not None:
        save(fig, path, dpi=dpi)
    if close if close is not None else path is not None:
        _plt().close(fig)
    return fig, axes


def _real_1d(name: str, x, *, allow_empty: bool = False) -> np.ndarray:
    """``x`` as a 1-D float array (TypeError for non-numbers, ValueError for the wrong shape or emptiness)."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-D sequence of real numbers: {exc}") from None
    if a.ndim != 1 or (a.size == 0 and not allow_empty):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of real numbers, got shape {a.shape}")
    return a


def _is_integer_valued(x) -> bool:
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    return a.size > 0 and bool(np.all(a == np.round(a)))


def _integer_ticks(axis) -> None:
    axis.set_major_locator(MaxNLocator(integer=True))


def _log_ticks(axis, values=None) -> None:
    """Log-axis ticks that do not collide: at the data's own values when there are few (labels ``%g``), else
    decades (with 2 and 5 when the axis spans under two decades); no minor labels."""
    fmt = FuncFormatter(lambda v, _pos: f"{v:g}")
    if values is not None:
        v = np.unique(np.asarray(values, dtype=float))
        v = v[np.isfinite(v) & (v > 0)]
        if 0 < v.size <= 10:
            axis.set_major_locator(FixedLocator(v))  # pyright: ignore[reportArgumentType]  # stubs: any array-like works
            axis.set_major_formatter(fmt)
            axis.set_minor_formatter(NullFormatter())
            return
    lo, hi = axis.get_view_interval()
    span = np.log10(hi / lo) if lo > 0 and hi > lo else 10.0
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if span < 2 else (1.0,), numticks=12))
    axis.set_major_formatter(fmt if span < 6 else axis.get_major_formatter())
    axis.set_minor_formatter(NullFormatter())


def _axis_scales(ax, *, logx=False, logy=False, xvalues=None, yvalues=None) -> None:
    if logx:
        ax.set_xscale("log")
        _log_ticks(ax.xaxis, xvalues)
    elif xvalues is not None and _is_integer_valued(xvalues):
        _integer_ticks(ax.xaxis)
    if logy:
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, None)


def _outline_edges(ax, edges, color="red"):
    for i, j in edges:
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=color, linewidth=1.6))


def _check_edge_sets(edge_sets) -> dict:
    if edge_sets is None:
        return {}
    if not isinstance(edge_sets, Mapping):
        raise TypeError(f"edge_sets must be a mapping colour -> [(i, j), ...], got {type(edge_sets).__name__}")
    return {str(c): [(int(i), int(j)) for i, j in e] for c, e in edge_sets.items()}


def _graph(graph):
    if isinstance(graph, Graph):
        return graph
    try:
        return Graph(graph)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"graph must be a causal_grad.graphs.Graph or its parent list/parent sets: {exc}") from None


def parent_slot_edges(graph, T: int | None = None) -> list[list[tuple[int, int]]]:
    """``edges[m]`` = the cells ``(i, parent_sets[i][m])`` of the positions ``i < T`` that have an ``m``-th
    parent: the edges to parent slot ``m``, outlined in ``PARENT_COLORS[m]`` by the attention plots."""
    g = _graph(graph)
    sets = g.parent_sets if T is None else g.parent_sets[:T]
    k = max((len(ps) for ps in sets), default=0)
    return [[(i, ps[m]) for i, ps in enumerate(sets) if len(ps) > m] for m in range(k)]


def _slot_edge_sets(graph, T: int) -> dict:
    slots = parent_slot_edges(graph, T)
    if len(slots) > len(PARENT_COLORS):
        raise ValueError(f"graph: at most {len(PARENT_COLORS)} parents per position can be coloured, got {len(slots)}")
    return {PARENT_COLORS[m]: e for m, e in enumerate(slots)}


def _draw_heatmap(
    fig,
    ax,
    X,
    *,
    edge_sets=None,
    lower_only=True,
    cmap="viridis",
    vmin=None,
    vmax=None,
    title="",
    xlabel="j (attended)",
    ylabel="i (position)",
    colorbar=True,
):
    X = np.array(X, dtype=float)
    if lower_only and X.shape[0] == X.shape[1]:
        X = np.where(np.tril(np.ones_like(X, bool)), X, np.nan)
    im = ax.imshow(X, cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax)
    for color, edges in (edge_sets or {}).items():
        _outline_edges(ax, [(i, j) for i, j in edges if i < X.shape[0] and j < X.shape[1]], color=color)
    _integer_ticks(ax.xaxis)
    _integer_ticks(ax.yaxis)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def heatmaps(
    panels: Sequence[tuple[str, Any]],
    *,
    edges=(),
    edge_sets: Mapping | None = None,
    lower_only: bool = True,
    suptitle: str | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    path=None,
    dpi: float | None = None,
    close: bool | None = None,
):
    """Side-by-side heatmaps (row ``i`` = child, column ``j``), with the graph's ``edges`` ``(i, j)`` outlined
    in red, or ``edge_sets = {colour: edges}``; entries above the diagonal are blanked when ``lower_only``.
    Returns ``(figure, axes (nrow, ncol))``."""
    if not isinstance(panels, (list, tuple)) or not panels:
        raise TypeError(f"panels must be a non-empty list of (title, 2-D array) pairs, got {type(panels).__name__}")
    for k, panel in enumerate(panels):
        if not (isinstance(panel, (list, tuple)) and len(panel) == 2 and isinstance(panel[0], str)):
            raise TypeError(f"panels[{k}] must be a (title, 2-D array) pair")
        try:
            X = np.asarray(panel[1], dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"panels[{k}] must hold a real 2-D array") from None
        if X.ndim != 2:
            raise ValueError(f"panels[{k}] must hold a 2-D array, got shape {X.shape}")
    sets = _check_edge_sets(edge_sets)
    if edges:
        sets.setdefault("red", [(int(i), int(j)) for i, j in edges])
    _check_path(path)
    plt = _plt()
    k = len(panels)
    ncol = min(k, 4)
    nrow = -(-k // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.4 * nrow), squeeze=False)
    for ax in axes.flat[k:]:
        ax.axis("off")
    for ax, (title, X) in zip(axes.flat, panels):
        _draw_heatmap(fig, ax, X, edge_sets=sets, lower_only=lower_only, cmap=cmap, vmin=vmin, vmax=vmax, title=title)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return _finish(fig, axes, path, dpi, close)


def scatter(
    x,
    y,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    groups=None,
    diagonal: bool = False,
    logx: bool = False,
    logy: bool = False,
    path=None,
    dpi: float | None = None,
    close: bool | None = None,
):
    """A scatter plot; ``groups`` (same length as ``x``) colours the points by label. Returns ``(figure, ax)``."""
    xs, ys = _real_1d("x", x, allow_empty=True), _real_1d("y", y, allow_empty=True)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    _check_path(path)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    if groups is None:
        ax.scatter(xs, ys, s=12, alpha=0.7)
    else:
        groups = np.asarray(groups)
        for g in dict.fromkeys(groups.tolist()):
            m = groups == g
            ax.scatter(xs[m], ys[m], s=12, alpha=0.7, label=str(g))
        ax.legend(fontsize=8)
    if diagonal and xs.size:
        lo, hi = np.nanmin([xs.min(), ys.min()]), np.nanmax([xs.max(), ys.max()])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    _axis_scales(ax, logx=logx, logy=logy)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, ax, path, dpi, close)


def histogram(
    values,
    *,
    xlabel: str,
    title: str = "",
    bins: int = 60,
    logy: bool = True,
    vline: float | None = None,
    path=None,
    dpi: float | None = None,
    close: bool | None = None,
):
    """A histogram of ``values`` (log counts by default), optional red vertical line. Returns ``(figure, ax)``."""
    v = _real_1d("values", values)
    bins = check_int("bins", bins, minimum=1)
    _check_path(path)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.hist(v, bins=bins)
    if vline is not None:
        ax.axvline(vline, color="red", lw=1)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, ax, path, dpi, close)


def curves(
    x,
    series: dict,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    hlines: dict | None = None,
    logx: bool = False,
    logy: bool = False,
    bands: dict | None = None,
    path=None,
    dpi: float | None = None,
    close: bool | None = None,
):
    """Line plots of ``series[name] = y`` against ``x`` (or ``(x, y)`` pairs), optional shaded ``bands[name] =
    (lo, hi)`` and labelled horizontal reference lines ``hlines[name] = value``. Integer ``x`` gets integer
    ticks; a log axis gets ticks at the ``x`` values themselves when there are at most 10. For categories use
    :func:`bars`. Returns ``(figure, ax)``."""
    if not isinstance(series, dict) or not series:
        raise TypeError(f"series must be a non-empty dict of name -> y (or (x, y)), got {type(series).__name__}")
    for name, y in series.items():
        for part in y if isinstance(y, tuple) else (y,):
            _real_1d(f"series[{name!r}]", part, allow_empty=True)
    _check_path(path)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    all_x = []
    for name, y in series.items():
        xs, ys = y if isinstance(y, tuple) else (x, y)
        xs = np.asarray(xs, float)
        all_x.append(xs)
        ax.plot(xs, np.asarray(ys, float), label=name, lw=1.4, marker="o" if xs.size <= 12 else None, ms=3)
        if bands and name in bands:
            lo, hi = bands[name]
            ax.fill_between(xs, lo, hi, alpha=0.2)
    for k, (name, v) in enumerate((hlines or {}).items()):
        ax.axhline(v, ls="--", lw=1, color=f"C{len(series) + k}", label=name)
    _axis_scales(ax, logx=logx, logy=logy, xvalues=np.concatenate(all_x) if all_x else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, ax, path, dpi, close)


# ---------------------------------------------------------------------- multi-panel figures (experiment scripts)
PANEL_KINDS = ("heatmap", "curves", "errorbars", "bars")


def _check_panel(k: int, spec) -> dict:
    if not isinstance(spec, dict) or spec.get("kind") not in PANEL_KINDS:
        raise TypeError(f"specs[{k}] must be a dict with 'kind' one of {', '.join(PANEL_KINDS)}")
    kind = spec["kind"]
    need = {"heatmap": ("data",), "curves": ("series",), "errorbars": ("x", "series"), "bars": ("labels", "series")}
    missing = [key for key in need[kind] if key not in spec]
    if missing:
        raise ValueError(f"specs[{k}] ({kind}) needs {', '.join(missing)}")
    if kind == "heatmap":
        X = np.asarray(spec["data"], dtype=float)
        if X.ndim != 2:
            raise ValueError(f"specs[{k}] data must be a 2-D array, got shape {X.shape}")
        _check_edge_sets(spec.get("edge_sets"))
    elif not isinstance(spec["series"], dict) or not spec["series"]:
        raise TypeError(f"specs[{k}] series must be a non-empty dict")
    return spec


def _draw_heatmap_spec(fig, ax, spec):
    sets = _check_edge_sets(spec.get("edge_sets"))
    if spec.get("edges"):
        sets.setdefault("red", spec["edges"])
    _draw_heatmap(
        fig,
        ax,
        spec["data"],
        edge_sets=sets,
        lower_only=spec.get("lower_only", True),
        cmap=spec.get("cmap", "viridis"),
        vmin=spec.get("vmin"),
        vmax=spec.get("vmax"),
        title=spec.get("title", ""),
        xlabel=spec.get("xlabel", "j (attended)"),
        ylabel=spec.get("ylabel", "i (position)"),
    )


def _finish_axes(ax, spec, legend=True, xvalues=None):
    _axis_scales(ax, logx=spec.get("logx", False), logy=spec.get("logy", False), xvalues=xvalues)
    if spec.get("ylim") is not None:
        ax.set_ylim(*spec["ylim"])
    ax.set_xlabel(spec.get("xlabel", ""))
    ax.set_ylabel(spec.get("ylabel", ""))
    ax.set_title(spec.get("title", ""), fontsize=9)
    if legend:
        ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.25)


def _draw_curves(ax, spec):
    series, hlines = spec["series"], spec.get("hlines") or {}
    all_x = []
    for name, y in series.items():
        xs, ys = y if isinstance(y, tuple) else (spec["x"], y)
        all_x.append(np.asarray(xs, float))
        ax.plot(np.asarray(xs, float), np.asarray(ys, float), label=name, lw=1.4)
    styles = ("--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1)))
    for k, (name, v) in enumerate(hlines.items()):
        ax.axhline(v, ls=styles[k % len(styles)], lw=1.1, color=f"C{len(series) + k}", label=f"{name} ({v:.3f})")
    for name, v in (spec.get("vlines") or {}).items():
        ax.axvline(v, ls=":", lw=1, color="grey", label=name)
    _finish_axes(ax, spec, xvalues=np.concatenate(all_x) if all_x else None)


def _draw_errorbars(ax, spec):
    x = np.asarray(spec["x"], float)
    n = len(spec["series"])
    width = float(spec.get("dodge", 0.0))
    for k, (name, (y, lo, hi)) in enumerate(spec["series"].items()):
        y, lo, hi = (np.asarray(v, float) for v in (y, lo, hi))
        xs = x * (1 + width) ** (k - (n - 1) / 2) if spec.get("logx") else x + width * (k - (n - 1) / 2)
        ax.errorbar(
            xs,
            y,
            yerr=np.vstack([y - lo, hi - y]),
            marker=spec.get("marker", "o"),
            ms=4,
            capsize=3,
            lw=1.2,
            label=name,
            ls=spec.get("ls", "-"),
        )
    for k, (name, v) in enumerate((spec.get("hlines") or {}).items()):
        ax.axhline(v, ls="--", lw=1, color=f"C{n + k}", label=name)
    _finish_axes(ax, spec, xvalues=x)


def _wrap_label(label: str, width: int) -> str:
    lines = textwrap.wrap(str(label), width=width, break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines) or str(label)


def _draw_bars(ax, spec):
    labels = [_wrap_label(lab, int(spec.get("wrap", 16))) for lab in spec["labels"]]
    series = spec["series"]
    idx = np.arange(len(labels))
    w = 0.8 / len(series)
    for k, (name, val) in enumerate(series.items()):
        vals, errs = val if isinstance(val, tuple) else (val, None)
        ax.bar(
            idx + (k - (len(series) - 1) / 2) * w,
            np.asarray(vals, float),
            w,
            yerr=None if errs is None else np.asarray(errs, float),
            capsize=2,
            label=name,
        )
    ax.set_xticks(idx)
    rot = spec.get("rotation", 30)
    ax.set_xticklabels(labels, rotation=rot, ha="right" if rot else "center", rotation_mode="anchor", fontsize=8)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.axhline(0, color="k", lw=0.6)
    _finish_axes(ax, spec)
    ax.grid(False)
    ax.grid(True, axis="y", alpha=0.25)


def panels(
    specs: Sequence[dict],
    *,
    suptitle: str | None = None,
    ncol: int | None = None,
    panel_size: tuple[float, float] = (4.2, 3.6),
    path=None,
    dpi: float | None = None,
    close: bool | None = None,
):
    """One figure of several panels, each a dict ``spec`` with ``kind``:

    * ``"heatmap"``: ``data`` (2-D), optional ``edges`` ``(i, j)`` outlined in red or ``edge_sets =
      {colour: edges}``, ``lower_only`` (default true), ``title``, ``cmap``, ``vmin``/``vmax``, axis labels;
    * ``"curves"``: ``x`` and ``series[name] = y`` (or ``(x, y)``), labelled reference lines ``hlines[name] = v``
      (their values shown in the legend) and vertical markers ``vlines[name] = x``;
    * ``"errorbars"``: ``x`` and ``series[name] = (y, lo, hi)`` (absolute interval ends), ``dodge`` to offset
      the series horizontally (relative on a log axis), ``hlines``;
    * ``"bars"``: grouped bars, ``labels`` (categories, wrapped at ``wrap`` characters, tilted by ``rotation``
      degrees) and ``series[name] = values`` or ``(values, errors)``;

    and, for the plots, ``xlabel``, ``ylabel``, ``title``, ``logx``, ``logy``, ``ylim``. Returns ``(figure,
    axes (nrow, ncol))``.
    """
    if not isinstance(specs, (list, tuple)) or not specs:
        raise TypeError(f"specs must be a non-empty list of panel dicts, got {type(specs).__name__}")
    specs = [_check_panel(k, s) for k, s in enumerate(specs)]
    _check_path(path)
    plt = _plt()
    k = len(specs)
    ncol = min(k, 3) if ncol is None else max(1, min(int(ncol), k))
    nrow = -(-k // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(panel_size[0] * ncol, panel_size[1] * nrow), squeeze=False)
    for ax in axes.flat[k:]:
        ax.axis("off")
    draw = {"curves": _draw_curves, "errorbars": _draw_errorbars, "bars": _draw_bars}
    for ax, spec in zip(axes.flat, specs):
        if spec["kind"] == "heatmap":
            _draw_heatmap_spec(fig, ax, spec)
        else:
            draw[spec["kind"]](ax, spec)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return _finish(fig, axes, path, dpi, close)


def _single(fig_axes):
    fig, axes = fig_axes
    return fig, axes.flat[0]


def errorbars(x, series: dict, *, path=None, dpi: float | None = None, close: bool | None = None, **kw):
    """A single panel of :func:`panels` kind ``"errorbars"`` (``series[name] = (y, lo, hi)``). Returns
    ``(figure, ax)``."""
    fig, ax = _single(panels([dict(kind="errorbars", x=x, series=series, **kw)], panel_size=(5.6, 4.0), close=False))
    return _finish(fig, ax, path, dpi, close)


def bars(labels, series: dict, *, path=None, dpi: float | None = None, close: bool | None = None, **kw):
    """A single panel of :func:`panels` kind ``"bars"``: one group of bars per category ``labels[k]`` (readable
    tick labels), ``series[name] = values`` or ``(values, errors)``. Returns ``(figure, ax)``."""
    width = max(6.0, 0.9 * len(labels) + 1.5)
    fig, ax = _single(
        panels([dict(kind="bars", labels=labels, series=series, **kw)], panel_size=(width, 4.4), close=False)
    )
    return _finish(fig, ax, path, dpi, close)


# ---------------------------------------------------------------------- training figures
def loss_curve(
    steps,
    losses,
    references: Mapping[str, float] | None = None,
    *,
    label: str = "model (held out)",
    marks: Mapping[str, float] | None = None,
    title: str = "",
    ylabel: str = "held-out loss (nats)",
    logx: bool = False,
    path=None,
    dpi: float | None = None,
    close: bool | None = None,
):
    """The loss ``losses[k]`` at ``steps[k]`` against reference losses drawn as horizontal lines,
    ``references[name] = value`` (names ``in_context``, ``exact_bayes``, ``unigram``, ``entropy_floor`` get
    their display names of :data:`REFERENCE_LABELS`, others are shown as given; the value is in the legend),
    and vertical ``marks[name] = step`` (e.g. where stage 2 starts). Returns ``(figure, ax)``.

    The in-context estimator is the best loss a model that reads the context can reach, the entropy floor
    the loss of knowing the sequence's transition matrix, the unigram the loss of counting the context's
    tokens (docs/theory.md §2)."""
    s = _real_1d("steps", steps)
    y = _real_1d("losses", losses)
    if s.shape != y.shape:
        raise ValueError(f"steps and losses must have the same length, got {s.size} and {y.size}")
    refs = {} if references is None else references
    if not isinstance(refs, Mapping):
        raise TypeError(f"references must be a mapping name -> loss, got {type(refs).__name__}")
    refs = {REFERENCE_LABELS.get(str(k), str(k)): float(v) for k, v in refs.items() if v is not None}
    if marks is not None and not isinstance(marks, Mapping):
        raise TypeError(f"marks must be a mapping name -> step, got {type(marks).__name__}")
    _check_path(path)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    spec = dict(
        kind="curves",
        x=s,
        series={label: y},
        hlines=refs,
        vlines=dict(marks or {}),
        xlabel="step",
        ylabel=ylabel,
        title=title,
        logx=logx,
    )
    _draw_curves(ax, spec)
    fig.tight_layout()
    return _finish(fig, ax, path, dpi, close)


def _attention(name: str, attention) -> np.ndarray:
    try:
        a = np.asarray(attention, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real array") from None
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"{name} must have shape (H, T, T) or (T, T), got {a.shape}")
    return a


def attention_heatmap(
    attention,
    graph=None,
    *,
    titles: Sequence[str] | None = None,
    suptitle: str | None = None,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    cmap: str = "viridis",
    path=None,
    dpi: float | None = None,
    close: bool | None = None,
):
    """The first-layer attention ``attention[h, i, j]`` (H, T, T) (or one head (T, T)), one panel per head,
    with the graph's edges ``(i, parent_sets[i][m])`` outlined in ``PARENT_COLORS[m]`` (red: first parent,
    cyan: second, …); a panel's title says which parent slot the head's row argmax lands on most. Returns
    ``(figure, axes (1, H))``."""
    a = _attention("attention", attention)
    H, T, _ = a.shape
    g = None if graph is None else _graph(graph)
    sets = {} if g is None else _slot_edge_sets(g, T)
    if titles is not None and (not isinstance(titles, (list, tuple)) or len(titles) != H):
        raise ValueError(f"titles must be a list of {H} strings (one per head), got {titles!r}")
    _check_path(path)
    shares = None if g is None else _slot_shares(a, g)
    plt = _plt()
    fig, axes = plt.subplots(1, H, figsize=(3.9 * H, 3.6), squeeze=False)
    for h in range(H):
        t = titles[h] if titles is not None else f"layer-1 head {h}"
        if shares is not None and titles is None and shares.shape[1]:
            if shares.shape[1] == 1:
                t += f"\nrow argmax on the parent: {shares[h, 0]:.0%}"
            else:
                parts = [f"{_ORDINALS[m]} ({PARENT_COLORS[m]}) {shares[h, m]:.0%}" for m in range(shares.shape[1])]
                t += "\nargmax on parent " + ", ".join(parts)
        _draw_heatmap(fig, axes[0, h], a[h], edge_sets=sets, cmap=cmap, vmin=vmin, vmax=vmax, title=t)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return _finish(fig, axes, path, dpi, close)


def _slot_shares(a: np.ndarray, g) -> np.ndarray:
    """``share[h, m]``: the fraction of the positions with an ``m``-th parent whose head-``h`` row argmax (over
    ``j ≤ i``) is that parent."""
    H, T, _ = a.shape
    sets = g.parent_sets[:T]
    k = max((len(ps) for ps in sets), default=0)
    share = np.zeros((H, k))
    for m in range(k):
        rows = [(i, ps[m]) for i, ps in enumerate(sets) if len(ps) > m]
        for h in range(H):
            share[h, m] = np.mean([int(np.argmax(a[h, i, : i + 1])) == p for i, p in rows]) if rows else np.nan
    return share


def head_parents(attention, graph, *, title: str = "", path=None, dpi: float | None = None, close: bool | None = None):
    """Per head, the attention weight ``attention[h, i, parent_sets[i][m]]`` each position ``i`` puts on its
    ``m``-th parent, as bars coloured by parent slot (:data:`PARENT_COLORS`) against the position (integer
    ticks); the uniform weight ``1/(i+1)`` of a causal row is the dotted line. Returns ``(figure, axes (H,))``."""
    a = _attention("attention", attention)
    g = _graph(graph)
    H, T, _ = a.shape
    sets = g.parent_sets[:T]
    k = max((len(ps) for ps in sets), default=0)
    if k == 0:
        raise ValueError("graph has no edges among the attention's positions: no parent to show")
    _check_path(path)
    plt = _plt()
    fig, axes = plt.subplots(H, 1, figsize=(max(5.0, 0.32 * T + 2.0), 2.6 * H), squeeze=False)
    axes = axes[:, 0]
    w = 0.8 / k
    pos = np.arange(T)
    for h, ax in enumerate(axes):
        for m in range(k):
            xs = [i for i, ps in enumerate(sets) if len(ps) > m]
            ys = [a[h, i, sets[i][m]] for i in xs]
            ax.bar(
                np.asarray(xs) + (m - (k - 1) / 2) * w,
                ys,
                w,
                color=PARENT_COLORS[m % len(PARENT_COLORS)],
                edgecolor="k",
                lw=0.4,
                label=f"{_ORDINALS[m]} parent ({PARENT_COLORS[m % len(PARENT_COLORS)]})",
            )
        ax.step(pos, 1.0 / (pos + 1), where="mid", ls=":", color="grey", lw=1, label="uniform 1/(i+1)")
        ax.set_ylim(0, 1.05)
        ax.set_xlim(-0.6, T - 0.4)
        _integer_ticks(ax.xaxis)
        ax.set_ylabel(f"head {h}: weight")
        ax.grid(True, axis="y", alpha=0.25)
        if h == 0:
            ax.legend(fontsize=7, ncol=k + 1, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
            ax.set_title(title or "first-layer attention on each parent", fontsize=9, loc="left")
    axes[-1].set_xlabel("position i")
    fig.tight_layout()
    return _finish(fig, axes, path, dpi, close)


# ---------------------------------------------------------------------- attention over training
def animate_attention(
    snapshots,
    steps,
    graph=None,
    *,
    head_titles: Sequence[str] | None = None,
    interval_ms: int = 250,
    cmap: str = "viridis",
    title: str = "first-layer attention",
):
    """An animation of the first-layer attention over training: ``snapshots[k]`` (K, H, T, T) taken at step
    ``steps[k]``, one frame per snapshot, one panel per head, the graph's edges outlined by parent slot as in
    :func:`attention_heatmap`; colour scale fixed to [0, 1]. Returns ``(figure, animation)`` (a matplotlib
    ``FuncAnimation``; in Jupyter ``IPython.display.HTML(animation.to_jshtml())``); :func:`save_animation` writes
    it as GIF or MP4."""
    try:
        S = np.asarray(snapshots, dtype=float)
    except (TypeError, ValueError):
        raise TypeError("snapshots must be a real array (K, H, T, T)") from None
    if S.ndim == 3:
        S = S[:, None]
    if S.ndim != 4 or S.shape[2] != S.shape[3] or S.shape[0] == 0:
        raise ValueError(f"snapshots must have shape (K, H, T, T) with K >= 1, got {S.shape}")
    st = _real_1d("steps", steps)
    if st.shape[0] != S.shape[0]:
        raise ValueError(f"steps must have one entry per snapshot ({S.shape[0]}), got {st.shape[0]}")
    interval_ms = check_int("interval_ms", interval_ms, minimum=1)
    K, H, T, _ = S.shape
    if head_titles is not None and (not isinstance(head_titles, (list, tuple)) or len(head_titles) != H):
        raise ValueError(f"head_titles must be a list of {H} strings, got {head_titles!r}")
    sets = {} if graph is None else _slot_edge_sets(_graph(graph), T)
    plt = _plt()
    fig, axes = plt.subplots(1, H, figsize=(3.9 * H, 3.8), squeeze=False)
    mask = np.tril(np.ones((T, T), bool))
    ims = []
    for h in range(H):
        ht = head_titles[h] if head_titles is not None else f"head {h}"
        ims.append(_draw_heatmap(fig, axes[0, h], S[0, h], edge_sets=sets, cmap=cmap, vmin=0.0, vmax=1.0, title=ht))
    sup = fig.suptitle(f"{title}, step {st[0]:g}", fontsize=10)
    fig.tight_layout()

    def frame(k):
        for h in range(H):
            ims[h].set_data(np.where(mask, S[k, h], np.nan))
        sup.set_text(f"{title}, step {st[k]:g}")
        return [*ims, sup]

    anim = manim.FuncAnimation(fig, frame, frames=K, interval=interval_ms, blit=False, repeat=True)
    return fig, anim


def save_animation(animation, path, *, fps: float | None = None, dpi: float | None = 100, close: bool = True) -> Path:
    """Write a matplotlib animation (from :func:`animate_attention`) to ``path``: ``.gif`` with Pillow
    (always available: matplotlib depends on it), ``.mp4`` with ffmpeg (``ValueError`` when ffmpeg is not on
    the ``PATH``). ``fps`` defaults to the animation's own frame interval. Returns the path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    p = Path(path)
    fmt = p.suffix.lower()
    if fps is None:
        fps = 1000.0 / float(getattr(animation, "_interval", 250))
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if fmt == ".gif":
        writer = manim.PillowWriter(fps=fps)  # pyright: ignore[reportArgumentType]  # stubs say int; a float fps works
    elif fmt == ".mp4":
        if not manim.FFMpegWriter.isAvailable():
            raise ValueError(f"path {str(p)!r}: MP4 needs ffmpeg on the PATH (not found); write a .gif instead")
        writer = manim.FFMpegWriter(fps=fps)  # pyright: ignore[reportArgumentType]  # stubs say int; a float fps works
    else:
        raise ValueError(f"path must end with .gif or .mp4, got {str(p)!r}")
    p.parent.mkdir(parents=True, exist_ok=True)
    animation.save(str(p), writer=writer, dpi=_check_dpi(dpi))
    if close:
        _plt().close(animation._fig)
    return p


# ---------------------------------------------------------------------- a run folder (causal-grad plot RUN)
def _run_references(baselines: Mapping) -> dict[str, float]:
    refs = {}
    for key in ("in_context", "bayes", "exact_bayes", "unigram", "entropy_floor"):
        v = baselines.get(key)
        if isinstance(v, Mapping):
            v = v.get("mean")
        if isinstance(v, (int, float)) and REFERENCE_LABELS.get(key, key) not in {
            REFERENCE_LABELS.get(k, k) for k in refs
        }:
            refs[key] = float(v)
    return refs


def _run_graph(config: Mapping):
    g = config.get("graph")
    if isinstance(g, Mapping):
        if g.get("parent_sets") is not None:
            return Graph([tuple(ps) for ps in g["parent_sets"]])
        if g.get("parents") is not None:
            return Graph(list(g["parents"]))
    if isinstance(g, (list, tuple)):
        return Graph(list(g))
    return None


def plot_run(
    run_dir,
    *,
    out=None,
    format: str = "png",
    dpi: float | None = None,
    animate: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """The figures of a training run folder (``config.json``, ``history.json``, optional ``attention.npz`` of
    :class:`causal_grad.logs.AttentionSnapshots`), written to ``out`` (default: the run folder):

    * ``loss.<format>`` — held-out loss against the in-context estimator, unigram and entropy floor
      (:func:`loss_curve`; the start of stage 2 marked for a layer-wise run);
    * with snapshots: ``attention.<format>`` — the last snapshot's first-layer attention with the graph's
      edges outlined per parent slot (:func:`attention_heatmap`), ``head_parents.<format>``
      (:func:`head_parents`), and ``attention.gif`` — one frame per snapshot (:func:`animate_attention`).

    Returns ``{name: path}``. ``ValueError`` naming the missing file when the folder is not a run."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir must be a folder path, got {type(run_dir).__name__}")
    if out is not None:
        check_output_path("out", out, kind="dir")
    run = Path(run_dir)
    supported = FigureCanvasBase.get_supported_filetypes()
    if format not in supported:
        raise ValueError(f"format must be one of {', '.join(sorted(supported))}, got {format!r}")
    if dpi is not None:
        _check_dpi(dpi)
    missing = [f for f in ("config.json", "history.json") if not (run / f).is_file()]
    if missing:
        raise ValueError(f"run_dir: {run} is not a training run folder (no {', '.join(missing)})")
    config = json.loads((run / "config.json").read_text())
    if isinstance(config.get("task"), Mapping):  # the layered config.json (format 2): its sections side by side
        config = {
            **config["task"],
            **config.get("optim", {}),
            **config.get("run", {}),
            "model": (config.get("model") or {}).get("name", "model"),
        }
    history = json.loads((run / "history.json").read_text())
    dest = run if out is None else Path(out)
    say = echo or (lambda _msg: None)
    written: dict[str, Path] = {}
    ev = [e for e in history.get("eval", []) if isinstance(e, Mapping) and "step" in e and "loss" in e]
    if ev:
        marks = {}
        if config.get("schedule") == "layerwise" and isinstance(config.get("steps"), int):
            s1 = config.get("stage1_steps")
            marks["stage 2 starts"] = config["steps"] // 2 if s1 is None else s1
        refs = _run_references(history.get("baselines") or {})
        title = f"{config.get('model', 'model')} ({config.get('schedule', '')}): final loss {ev[-1]['loss']:.3f}"
        loss_curve(
            [e["step"] for e in ev],
            [e["loss"] for e in ev],
            refs,
            marks=marks,
            title=title,
            path=dest / f"loss.{format}",
            dpi=dpi,
        )
        written["loss"] = output_path(dest / f"loss.{format}")
    else:
        say(f"{run}: history.json has no held-out evaluations: no loss curve")
    snap = run / "attention.npz"
    if snap.is_file():
        steps, att = load_snapshots(snap)
        graph = _run_graph(config)
        attention_heatmap(
            att[-1],
            graph,
            path=dest / f"attention.{format}",
            dpi=dpi,
            suptitle=f"first-layer attention at step {int(steps[-1])}",
        )
        written["attention"] = output_path(dest / f"attention.{format}")
        if graph is not None and any(graph.parent_sets[: att.shape[-1]]):
            head_parents(
                att[-1],
                graph,
                path=dest / f"head_parents.{format}",
                dpi=dpi,
                title=f"attention on each parent at step {int(steps[-1])}",
            )
            written["head_parents"] = output_path(dest / f"head_parents.{format}")
        if animate:
            _, anim = animate_attention(att, steps, graph)
            written["animation"] = save_animation(anim, dest / "attention.gif")
    else:
        say(f"{run}: no attention.npz (attention snapshots of the run): only the loss curve")
    return written


__all__ += ["STRATEGY_COLORS", "strategy_curves"]  # this function and its colours, appended below

#: Colours of the strategies in :func:`strategy_curves`.
STRATEGY_COLORS = {"uniform": "tab:gray", "unigram": "tab:orange", "in_context": "tab:blue", "exact_bayes": "tab:green"}


def strategy_curves(
    runs: Sequence[Mapping], *, title: str = "", path=None, dpi: float | None = None, close: bool | None = None
):
    """KL from the model to each strategy over training (:mod:`causal_grad.training.strategies`), one line per
    strategy and run: ``runs`` holds ``{"steps": [...], "kl": {name: [...]}, "transitions": {name: step}}``
    (``StrategyCurves.to_dict()``); the transition steps are marked by dotted vertical lines in the strategy's
    colour. Log-scaled KL. Returns ``(figure, ax)``."""
    if isinstance(runs, Mapping) or not isinstance(runs, Sequence) or not runs:
        raise TypeError("runs must be a non-empty sequence of StrategyCurves.to_dict() mappings")
    for k, r in enumerate(runs):
        if not isinstance(r, Mapping) or "steps" not in r or "kl" not in r:
            raise ValueError(f"runs[{k}] must be a mapping with 'steps' and 'kl'")
    _check_path(path)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, r in enumerate(runs):
        steps = _real_1d(f"runs[{k}]['steps']", r["steps"])
        for name, v in r["kl"].items():
            y = np.maximum(_real_1d(f"runs[{k}]['kl'][{name!r}]", v), 1e-8)
            c = STRATEGY_COLORS.get(name)
            ax.plot(
                steps,
                y,
                color=c,
                alpha=0.8 if len(runs) == 1 else 0.5,
                lw=1.2,
                label=REFERENCE_LABELS.get(name, name) if k == 0 else None,
            )
            t = (r.get("transitions") or {}).get(name)
            if t is not None and name != "uniform":
                ax.axvline(t, color=c, ls=":", lw=0.9, alpha=0.7)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("KL(strategy ‖ model) (nats)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, ax, path, dpi, close)
