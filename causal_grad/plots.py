"""Figures shared by ``causal-grad verify`` and the experiment scripts (matplotlib, Agg backend: no screen).

Every function draws into a new figure, saves it to ``path`` (PNG) and returns the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["heatmaps", "scatter", "histogram", "curves", "panels", "errorbars", "bars"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _real_1d(name: str, x, *, allow_empty: bool = False) -> np.ndarray:
    """``x`` as a 1-D float array (TypeError for non-numbers, ValueError for the wrong shape or emptiness)."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-D sequence of real numbers: {exc}") from None
    if a.ndim != 1 or (a.size == 0 and not allow_empty):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of real numbers, got shape {a.shape}")
    return a


def _outline_edges(ax, edges, color="red"):
    from matplotlib.patches import Rectangle

    for i, j in edges:
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=color, linewidth=1.6))


def heatmaps(path, panels: Sequence[tuple[str, np.ndarray]], *, edges=(), lower_only: bool = True,
             suptitle: str | None = None, cmap: str = "viridis") -> Path:
    """Side-by-side heatmaps (row ``i`` = child, column ``j``), with the graph's ``edges`` ``(i, j)``
    outlined in red; entries above the diagonal are blanked when ``lower_only``."""
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
    plt = _plt()
    k = len(panels)
    ncol = min(k, 4)
    nrow = -(-k // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.4 * nrow), squeeze=False)
    for ax in axes.flat[k:]:
        ax.axis("off")
    for ax, (title, X) in zip(axes.flat, panels):
        X = np.array(X, dtype=float)
        if lower_only and X.ndim == 2 and X.shape[0] == X.shape[1]:
            X = np.where(np.tril(np.ones_like(X, bool)), X, np.nan)
        im = ax.imshow(X, cmap=cmap, interpolation="nearest")
        _outline_edges(ax, [(i, j) for i, j in edges if i < X.shape[0] and j < X.shape[1]])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("j (attended)")
        ax.set_ylabel("i (position)")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scatter(path, x, y, *, xlabel: str, ylabel: str, title: str = "", groups=None, diagonal: bool = False,
            logx: bool = False, logy: bool = False) -> Path:
    """A scatter plot; ``groups`` (same length as ``x``) colours the points by label."""
    xs, ys = _real_1d("x", x, allow_empty=True), _real_1d("y", y, allow_empty=True)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    x, y = np.asarray(x, float), np.asarray(y, float)
    if groups is None:
        ax.scatter(x, y, s=12, alpha=0.7)
    else:
        groups = np.asarray(groups)
        for g in dict.fromkeys(groups.tolist()):
            m = groups == g
            ax.scatter(x[m], y[m], s=12, alpha=0.7, label=str(g))
        ax.legend(fontsize=8)
    if diagonal:
        lo, hi = np.nanmin([x.min(), y.min()]), np.nanmax([x.max(), y.max()])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def histogram(path, values, *, xlabel: str, title: str = "", bins: int = 60, logy: bool = True,
              vline: float | None = None) -> Path:
    from ._validate import check_int

    _real_1d("values", values)
    bins = check_int("bins", bins, minimum=1)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.hist(np.asarray(values, float), bins=bins)
    if vline is not None:
        ax.axvline(vline, color="red", lw=1)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves(path, x, series: dict, *, xlabel: str, ylabel: str, title: str = "", hlines: dict | None = None,
           logx: bool = False, logy: bool = False, bands: dict | None = None) -> Path:
    """Line plots of ``series[name] = y`` against ``x`` (or ``(x, y)`` pairs), optional shaded ``bands[name] =
    (lo, hi)`` and labelled horizontal reference lines ``hlines[name] = value``."""
    if not isinstance(series, dict) or not series:
        raise TypeError(f"series must be a non-empty dict of name -> y (or (x, y)), got {type(series).__name__}")
    for name, y in series.items():
        for part in (y if isinstance(y, tuple) else (y,)):
            _real_1d(f"series[{name!r}]", part, allow_empty=True)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, y in series.items():
        xs, ys = (y if isinstance(y, tuple) else (x, y))
        ax.plot(np.asarray(xs, float), np.asarray(ys, float), label=name, lw=1.4)
        if bands and name in bands:
            lo, hi = bands[name]
            ax.fill_between(np.asarray(xs, float), lo, hi, alpha=0.2)
    for k, (name, v) in enumerate((hlines or {}).items()):
        ax.axhline(v, ls="--", lw=1, color=f"C{len(series) + k}", label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    elif not isinstance(spec["series"], dict) or not spec["series"]:
        raise TypeError(f"specs[{k}] series must be a non-empty dict")
    return spec


def _draw_heatmap(fig, ax, spec):
    X = np.array(spec["data"], dtype=float)
    if spec.get("lower_only", True) and X.shape[0] == X.shape[1]:
        X = np.where(np.tril(np.ones_like(X, bool)), X, np.nan)
    im = ax.imshow(X, cmap=spec.get("cmap", "viridis"), interpolation="nearest", vmin=spec.get("vmin"),
                   vmax=spec.get("vmax"))
    edge_sets = dict(spec.get("edge_sets") or {})
    if spec.get("edges"):
        edge_sets.setdefault("red", spec["edges"])
    for color, edges in edge_sets.items():
        _outline_edges(ax, [(i, j) for i, j in edges if i < X.shape[0] and j < X.shape[1]], color=color)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(spec.get("title", ""), fontsize=9)
    ax.set_xlabel(spec.get("xlabel", "j (attended)"))
    ax.set_ylabel(spec.get("ylabel", "i (position)"))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def _finish_axes(ax, spec, legend=True):
    if spec.get("logx"):
        ax.set_xscale("log")
    if spec.get("logy"):
        ax.set_yscale("log")
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
    for name, y in series.items():
        xs, ys = (y if isinstance(y, tuple) else (spec["x"], y))
        ax.plot(np.asarray(xs, float), np.asarray(ys, float), label=name, lw=1.4)
    styles = ("--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1)))
    for k, (name, v) in enumerate(hlines.items()):
        ax.axhline(v, ls=styles[k % len(styles)], lw=1.1, color=f"C{len(series) + k}", label=f"{name} ({v:.3f})")
    for name, v in (spec.get("vlines") or {}).items():
        ax.axvline(v, ls=":", lw=1, color="grey", label=name)
    _finish_axes(ax, spec)


def _draw_errorbars(ax, spec):
    x = np.asarray(spec["x"], float)
    n = len(spec["series"])
    width = float(spec.get("dodge", 0.0))
    for k, (name, (y, lo, hi)) in enumerate(spec["series"].items()):
        y, lo, hi = (np.asarray(v, float) for v in (y, lo, hi))
        xs = x * (1 + width) ** (k - (n - 1) / 2) if spec.get("logx") else x + width * (k - (n - 1) / 2)
        ax.errorbar(xs, y, yerr=np.vstack([y - lo, hi - y]), marker=spec.get("marker", "o"), ms=4, capsize=3,
                    lw=1.2, label=name, ls=spec.get("ls", "-"))
    for k, (name, v) in enumerate((spec.get("hlines") or {}).items()):
        ax.axhline(v, ls="--", lw=1, color=f"C{n + k}", label=name)
    _finish_axes(ax, spec)


def _draw_bars(ax, spec):
    labels = list(spec["labels"])
    series = spec["series"]
    idx = np.arange(len(labels))
    w = 0.8 / len(series)
    for k, (name, val) in enumerate(series.items()):
        vals, errs = val if isinstance(val, tuple) else (val, None)
        ax.bar(idx + (k - (len(series) - 1) / 2) * w, np.asarray(vals, float), w,
               yerr=None if errs is None else np.asarray(errs, float), capsize=2, label=name)
    ax.set_xticks(idx)
    ax.set_xticklabels(labels, rotation=spec.get("rotation", 30), ha="right", fontsize=7)
    ax.axhline(0, color="k", lw=0.6)
    _finish_axes(ax, spec)
    ax.grid(False)
    ax.grid(True, axis="y", alpha=0.25)


def panels(path, specs: Sequence[dict], *, suptitle: str | None = None, ncol: int | None = None,
           panel_size: tuple[float, float] = (4.2, 3.6)) -> Path:
    """One figure of several panels, each a dict ``spec`` with ``kind``:

    * ``"heatmap"``: ``data`` (2-D), optional ``edges`` ``(i, j)`` outlined in red or ``edge_sets =
      {colour: edges}``, ``lower_only`` (default true), ``title``, ``cmap``, ``vmin``/``vmax``, axis labels;
    * ``"curves"``: ``x`` and ``series[name] = y`` (or ``(x, y)``), labelled reference lines ``hlines[name] = v``
      (their values shown in the legend) and vertical markers ``vlines[name] = x``;
    * ``"errorbars"``: ``x`` and ``series[name] = (y, lo, hi)`` (absolute interval ends), ``dodge`` to offset
      the series horizontally (relative on a log axis), ``hlines``;
    * ``"bars"``: grouped bars, ``labels`` and ``series[name] = values`` or ``(values, errors)``;

    and, for the plots, ``xlabel``, ``ylabel``, ``title``, ``logx``, ``logy``, ``ylim``.
    """
    if not isinstance(specs, (list, tuple)) or not specs:
        raise TypeError(f"specs must be a non-empty list of panel dicts, got {type(specs).__name__}")
    specs = [_check_panel(k, s) for k, s in enumerate(specs)]
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
            _draw_heatmap(fig, ax, spec)
        else:
            draw[spec["kind"]](ax, spec)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def errorbars(path, x, series: dict, **kw) -> Path:
    """A single panel of :func:`panels` kind ``"errorbars"`` (``series[name] = (y, lo, hi)``)."""
    return panels(path, [dict(kind="errorbars", x=x, series=series, **kw)], panel_size=(5.6, 4.0))


def bars(path, labels, series: dict, **kw) -> Path:
    """A single panel of :func:`panels` kind ``"bars"`` (``series[name] = values`` or ``(values, errors)``)."""
    return panels(path, [dict(kind="bars", labels=labels, series=series, **kw)], panel_size=(7.0, 4.2))
