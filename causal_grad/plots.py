"""Figures shared by ``causal-grad verify`` and the experiment scripts (matplotlib, Agg backend: no screen).

Every function draws into a new figure, saves it to ``path`` (PNG) and returns the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["heatmaps", "scatter", "histogram", "curves"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _outline_edges(ax, edges, color="red"):
    from matplotlib.patches import Rectangle

    for i, j in edges:
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=color, linewidth=1.6))


def heatmaps(path, panels: Sequence[tuple[str, np.ndarray]], *, edges=(), lower_only: bool = True,
             suptitle: str | None = None, cmap: str = "viridis") -> Path:
    """Side-by-side heatmaps (row ``i`` = child, column ``j``), with the graph's ``edges`` ``(i, j)``
    outlined in red; entries above the diagonal are blanked when ``lower_only``."""
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
