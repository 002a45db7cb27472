"""causal_grad.plots: (figure, axes) returns, output formats, the attention figures, the animation."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle
from PIL import Image

from causal_grad import plots
from causal_grad.graphs import chain, two_parent

MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}


def _attention(graph, H=2, seed=0):
    """Causal rows, head m putting 0.9 on each position's m-th parent."""
    T = graph.n
    rng = np.random.default_rng(seed)
    a = np.tril(rng.uniform(0.0, 1.0, (H, T, T)))
    a /= a.sum(-1, keepdims=True)
    for i, ps in enumerate(graph.parent_sets):
        for m, p in enumerate(ps[:H]):
            a[m, i] = 0.1 * np.tril(np.ones((T, T)))[i] / (i + 1)
            a[m, i, p] += 0.9
    return a


def _outlines(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]


def test_every_function_returns_figure_and_axes_and_writes_nothing_without_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = two_parent(9)
    att = _attention(g)
    calls = [
        lambda: plots.heatmaps([("a", np.eye(3)), ("b", np.ones((3, 3)))], edges=[(1, 0)]),
        lambda: plots.scatter([1, 2], [3, 4], xlabel="x", ylabel="y"),
        lambda: plots.histogram([1.0, 2.0, 2.5], xlabel="v"),
        lambda: plots.curves([1, 2, 3], {"a": [1, 2, 3]}, xlabel="x", ylabel="y"),
        lambda: plots.panels([{"kind": "heatmap", "data": np.eye(2)}]),
        lambda: plots.errorbars([1, 2], {"a": ([1, 2], [0.5, 1.5], [1.5, 2.5])}),
        lambda: plots.bars(["a", "b"], {"s": [1, 2]}),
        lambda: plots.loss_curve([0, 10, 20], [3.0, 2.5, 2.0], {"in_context": 1.9, "unigram": 2.7}),
        lambda: plots.attention_heatmap(att, g),
        lambda: plots.head_parents(att, g),
    ]
    for call in calls:
        fig, axes = call()
        assert isinstance(fig, matplotlib.figure.Figure)
        first = np.asarray(axes, dtype=object).flat[0]
        assert isinstance(first, matplotlib.axes.Axes)
        matplotlib.pyplot.close(fig)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_the_suffix_chooses_the_format(tmp_path, fmt):
    path = tmp_path / "sub" / f"loss.{fmt}"
    fig, ax = plots.loss_curve([0, 1, 2], [2.0, 1.5, 1.2], {"in_context": 1.1}, path=path, dpi=72)
    assert path.read_bytes()[:5].startswith(MAGIC[fmt])
    assert not matplotlib.pyplot.fignum_exists(fig.number)  # closed once saved


def test_dpi_sets_the_raster_size(tmp_path):
    sizes = []
    for dpi in (50, 100):
        p = tmp_path / f"h{dpi}.png"
        plots.heatmaps([("a", np.eye(4))], path=p, dpi=dpi)
        sizes.append(Image.open(p).size)
    assert sizes[1][0] == pytest.approx(2 * sizes[0][0], rel=0.05)


def test_bad_paths_and_dpi_are_refused_before_drawing(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        plots.heatmaps([("a", np.eye(2))], path=tmp_path / "noext")
    with pytest.raises(ValueError, match="unknown figure format 'xyz'"):
        plots.heatmaps([("a", np.eye(2))], path=tmp_path / "f.xyz")
    with pytest.raises(ValueError, match="dpi must be a positive number"):
        plots.heatmaps([("a", np.eye(2))], path=tmp_path / "f.png", dpi=0)
    with pytest.raises(TypeError, match="path must be"):
        plots.loss_curve([0], [1.0], path=3)
    with pytest.raises(ValueError, match="same length"):
        plots.loss_curve([0, 1], [1.0])
    with pytest.raises(ValueError, match=r"\(H, T, T\)"):
        plots.attention_heatmap(np.ones((2, 3, 4)))


def test_output_options_change_format_and_dpi_of_every_file(tmp_path):
    with plots.output_options("pdf", 80):
        plots.heatmaps([("a", np.eye(2))], path=tmp_path / "a.png")
        out = plots.output_path(tmp_path / "a.png")
        assert plots.output_path(tmp_path / "b.png") == tmp_path / "b.pdf"
    assert out == tmp_path / "a.pdf" and out.read_bytes()[:4] == MAGIC["pdf"]
    assert not (tmp_path / "a.png").exists()
    assert plots.output_path(tmp_path / "b.png") == tmp_path / "b.png"  # reset after the block
    with pytest.raises(ValueError, match="format must be"):
        with plots.output_options("nope"):
            pass


def test_two_parent_edges_are_outlined_red_and_cyan_per_slot():
    g = two_parent(9)
    fig, axes = plots.attention_heatmap(_attention(g), g)
    for ax in axes.flat:
        colours = [p.get_edgecolor() for p in _outlines(ax)]
        n_red = sum(np.allclose(c, to_rgba("red")) for c in colours)
        n_cyan = sum(np.allclose(c, to_rgba("cyan")) for c in colours)
        assert n_red == n_cyan == sum(len(ps) == 2 for ps in g.parent_sets)
    assert "1st (red) 100%" in axes[0, 0].get_title() and "2nd (cyan) 100%" in axes[0, 1].get_title()
    assert plots.parent_slot_edges(g, 4) == [[(2, 0), (3, 1)], [(2, 1), (3, 2)]]
    matplotlib.pyplot.close(fig)


def test_heatmap_position_axes_have_integer_ticks():
    fig, axes = plots.heatmaps([("a", np.eye(5))])
    fig.canvas.draw()
    for axis in (axes[0, 0].xaxis, axes[0, 0].yaxis):
        ticks = [t for t in axis.get_ticklocs() if -0.5 <= t <= 4.5]
        assert ticks and all(float(t).is_integer() for t in ticks)
    matplotlib.pyplot.close(fig)


def test_log_axis_ticks_sit_on_the_values_without_minor_labels():
    Ts = [5, 9, 17, 33, 65]
    fig, ax = plots.curves(Ts, {"a": 1.0 / np.asarray(Ts)}, xlabel="T", ylabel="e", logx=True, logy=True)
    fig.canvas.draw()
    assert list(ax.xaxis.get_ticklocs()) == Ts
    assert [t.get_text() for t in ax.xaxis.get_ticklabels()] == [str(t) for t in Ts]
    assert all(t.get_text() == "" for t in ax.xaxis.get_ticklabels(minor=True))
    assert all(t.get_text() == "" for t in ax.yaxis.get_ticklabels(minor=True))
    matplotlib.pyplot.close(fig)


def test_bars_put_one_readable_label_per_category():
    names = ["dirichlet(0.1) [train]", "dirichlet(0.03)", "permutation-like(δ=0.1)"]
    fig, ax = plots.bars(names, {"model": [0.1, 0.2, 0.3], "unigram": ([0.5, 0.6, 0.7], [0.01, 0.02, 0.03])})
    fig.canvas.draw()
    labels = [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()]
    assert labels == names
    assert len(ax.patches) == 6
    # no label runs off the figure
    renderer = fig.canvas.get_renderer()
    fig_box = fig.get_window_extent(renderer)
    for t in ax.get_xticklabels():
        box = t.get_window_extent(renderer)
        assert box.x0 >= fig_box.x0 - 1 and box.x1 <= fig_box.x1 + 1
    matplotlib.pyplot.close(fig)


def test_loss_curve_names_the_references_with_their_values():
    fig, ax = plots.loss_curve(
        [0, 5], [3.0, 2.0], {"in_context": 1.86, "entropy_floor": 1.5, "other": 2.2}, marks={"stage 2 starts": 3}
    )
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "in-context estimator (1.860)" in texts and "entropy floor (1.500)" in texts
    assert "other (2.200)" in texts and "stage 2 starts" in texts
    matplotlib.pyplot.close(fig)


def test_head_parents_bars_are_the_parent_weights():
    g = two_parent(7)
    att = _attention(g)
    fig, axes = plots.head_parents(att, g)
    heights = sorted(round(p.get_height(), 12) for p in axes[0].patches)
    expected = sorted(round(att[0, i, ps[m]], 12) for i, ps in enumerate(g.parent_sets) for m in range(len(ps)))
    assert heights == expected
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="no parent"):
        plots.head_parents(np.eye(3)[None], [-1, -1, -1])


def test_animation_has_one_frame_per_snapshot(tmp_path):
    g = chain(6)
    K = 5
    snaps = np.stack([_attention(g, H=1, seed=k) for k in range(K)])
    fig, anim = plots.animate_attention(snaps, np.arange(K) * 100, g)
    out = plots.save_animation(anim, tmp_path / "att.gif", dpi=40)
    with Image.open(out) as im:
        assert im.n_frames == K
    assert not matplotlib.pyplot.fignum_exists(fig.number)
    with pytest.raises(ValueError, match="one entry per snapshot"):
        plots.animate_attention(snaps, [0, 1])
    with pytest.raises(ValueError, match=r"\(K, H, T, T\)"):
        plots.animate_attention(np.ones((2, 1, 3, 4)), [0, 1])
    fig, anim = plots.animate_attention(snaps[:2], [0, 1])
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        plots.save_animation(anim, tmp_path / "att.avi")
    matplotlib.pyplot.close(fig)


def test_mp4_needs_ffmpeg(tmp_path):
    from matplotlib import animation

    fig, anim = plots.animate_attention(np.full((2, 1, 3, 3), 1 / 3), [0, 1])
    if animation.FFMpegWriter.isAvailable():
        out = plots.save_animation(anim, tmp_path / "a.mp4", dpi=40)
        assert out.stat().st_size > 0
    else:
        with pytest.raises(ValueError, match="ffmpeg"):
            plots.save_animation(anim, tmp_path / "a.mp4")
    matplotlib.pyplot.close(fig)


def _fake_run(folder, *, snapshots=True):
    import json

    from causal_grad.logs import AttentionSnapshots

    g = two_parent(7)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "graph": {"kind": "dag", "parent_sets": [list(p) for p in g.parent_sets]},
                "model": "disentangled",
                "schedule": "layerwise",
                "steps": 40,
                "stage1_steps": None,
            }
        )
    )
    (folder / "history.json").write_text(
        json.dumps(
            {
                "baselines": {"bayes": 1.2, "unigram": 1.5, "entropy_floor": 0.9},
                "eval": [{"step": s, "loss": 2.0 - s / 50} for s in range(0, 41, 10)],
            }
        )
    )
    if snapshots:
        s = AttentionSnapshots()
        for k in range(4):
            s.add(10 * k, _attention(g, seed=k))
        s.save(folder / "attention.npz")
    return folder


def test_plot_run_draws_loss_attention_and_one_frame_per_snapshot(tmp_path):
    run = _fake_run(tmp_path / "run")
    written = plots.plot_run(run, format="svg", dpi=60)
    assert set(written) == {"loss", "attention", "head_parents", "animation"}
    assert written["loss"] == run / "loss.svg" and written["loss"].read_bytes()[:5] == MAGIC["svg"]
    with Image.open(written["animation"]) as im:
        assert im.n_frames == 4
    bare = _fake_run(tmp_path / "bare", snapshots=False)
    msgs = []
    assert set(plots.plot_run(bare, echo=msgs.append)) == {"loss"}
    assert "no attention.npz" in msgs[0]
    with pytest.raises(ValueError, match="not a training run folder"):
        plots.plot_run(tmp_path)


def test_plot_command(tmp_path, capsys):
    from causal_grad.cli import main

    run = _fake_run(tmp_path / "run")
    assert main(["plot", str(run), "--out", str(tmp_path / "figs"), "--format", "pdf", "--no-animation"]) == 0
    assert (tmp_path / "figs" / "attention.pdf").read_bytes()[:4] == MAGIC["pdf"]
    assert not (tmp_path / "figs" / "attention.gif").exists()
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "not a training run folder" in capsys.readouterr().err
