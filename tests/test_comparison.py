import jax
import jax.numpy as jnp
import numpy as np
import pytest

import causal_grad as cg
from causal_grad import x64
from causal_grad.comparison import a1_agreement, closed_form_vs_training, recovery_steps
from causal_grad.priors import Dirichlet


@pytest.fixture(scope="module")
def run():
    g = cg.Graph((-1, 0, 1, -1, 3, 3, 0))
    task = cg.InContextTask(g, 3, 1.0)
    with x64():
        pis = np.asarray(Dirichlet(1.0).sample(jax.random.key(1), (6,), 3, jnp.float64))
    return task, closed_form_vs_training(task, pis, steps=30, lr=50.0, batch=256, seeds=tuple(range(8)), record_every=5)


def test_mean_over_seeds_approaches_exact_trajectory(run):
    _, res = run
    # E|mean of 8 runs - exact|^2 = E|one run - exact|^2 / 8 + bias^2: without bias the ratio of the distances is
    # about 1/sqrt(8) = 0.35; 0.6 leaves room for the chi-square fluctuation of 8 runs, not for a real bias
    rms_single = np.sqrt(np.mean(res.distance_seeds[:, 1:] ** 2, axis=0))
    assert np.all(res.distance[1:] < 0.6 * rms_single)
    assert np.all(res.distance[1:] < 0.1)


def test_a1_moves_along_closed_form(run):
    _, res = run
    for a in (res.exact[1], res.stochastic[1]):
        assert a.spearman > 0.3 and a.spearman_gradient > 0.8 and a.argmax_parent == 1.0
    att = [a.parent_attention for a in res.exact]
    assert np.all(np.diff(att) > 0)


def test_recovery_steps_and_order():
    steps = np.array([0, 1, 2, 3])
    A = np.zeros((4, 4, 4))
    A[1:, 2, 1] = 5.0  # row 2 recovered from step 1
    A[3, 3, 0] = 5.0  # row 3 recovered at the last record only
    r = recovery_steps(steps, A, (-1, 0, 1, 0))
    assert np.isnan(r[0]) and np.isnan(r[1]) and r[2] == 1 and r[3] == 3
    assert recovery_steps(steps, np.zeros((4, 4, 4)), (-1, 0, 1, 0))[2] == np.inf


def test_a1_agreement_perfect_for_M_itself():
    M = np.tril(np.random.default_rng(0).random((5, 5)))
    A1 = np.zeros((6, 6))
    A1[:5, :5] = M / np.arange(1, 6)[:, None]
    a = a1_agreement(A1, M, (-1, 0, 1, 2, 0))
    assert a.spearman == pytest.approx(1.0)


def test_comparison_figures_return_the_files_written(run, tmp_path):
    from pathlib import Path

    from causal_grad.comparison import comparison_figures
    from causal_grad.plots import output_options

    _, res = run
    paths = comparison_figures(res, tmp_path, prefix="t")
    assert [Path(p).name for p in paths] == ["t_heatmaps.png", "t_agreement.png", "t_margin_vs_recovery.png"]
    assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in paths)
    with output_options("svg"):  # --format of the figures command: the paths returned follow it
        paths = comparison_figures(res, tmp_path, prefix="s")
    assert all(p.endswith(".svg") and Path(p).is_file() for p in paths)
