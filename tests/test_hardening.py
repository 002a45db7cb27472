"""Regression tests of the hardening issue II (issue 16): no silent NaN, refusals at the door (API side; the
command line is in tests/test_cli.py, the families in tests/test_fuzz.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import causal_grad as cg
from causal_grad import _validate as v
from causal_grad import baselines

KEY = jax.random.key(0)


@pytest.fixture
def memory_16g(monkeypatch):
    """A fixed memory limit, so that the size refusals do not depend on the machine the tests run on."""
    monkeypatch.setenv("CAUSAL_GRAD_MEMORY_BYTES", str(16 * 2**30))


# ---------------------------------------------------------------------- D1: α whose draws underflow
def test_concentration_floor_is_derived_from_the_sampler():
    for d in (np.float32, np.float64):
        fi = np.finfo(d)
        assert v.concentration_floor(d) == pytest.approx(-math.log(float(fi.tiny)) / float(fi.max), rel=1e-12)
    assert 1e-38 < v.concentration_floor(np.float32) < 1e-36
    assert 1e-320 < v.concentration_floor(np.float64) < 1e-304


def test_tiny_alpha_refused_at_the_door():
    task = cg.InContextTask(cg.chain(3), 3, 1e-38)  # valid for float64 draws
    with pytest.raises(ValueError, match=r"alpha must be >= .* float32"):
        task.sample(KEY, 4)
    with pytest.raises(ValueError, match=r"alpha must be >= .* float32"):
        task.sample_pi(KEY, 2)
    for bad in (1e-320, 1e-310):
        for build in (
            lambda a: cg.InContextTask(cg.chain(3), 3, a),
            lambda a: cg.Dirichlet(a),
            lambda a: cg.MultiParentTask(cg.two_parent(5), 3, a),
        ):
            with pytest.raises(ValueError, match=r"alpha must be >= .* float64"):
                build(bad)
    with pytest.raises(ValueError, match=r"alpha"):
        cg.kernels.dirichlet(KEY, 1e-38, (2,), 3)
    with pytest.raises(ValueError, match=r"alpha"):
        cg.kernels.log_gamma_variates(KEY, 1e-38, (2,))


def test_alpha_just_above_the_floor_gives_finite_rows():
    a = 2 * v.concentration_floor(np.float32)
    task = cg.InContextTask(cg.chain(3), 3, a)
    tokens, y, pis = task.sample_with_pi(KEY, 64)
    assert np.all(np.isfinite(np.asarray(pis))) and np.all(np.isfinite(np.asarray(y)))
    np.testing.assert_allclose(np.asarray(pis).sum(-1), 1.0, atol=1e-6)


# ---------------------------------------------------------------------- D2: NaN never becomes a number
@pytest.mark.parametrize(
    "fn", [cg.mutual_information, cg.chi2_mutual_information, cg.conditional_entropy, cg.information.joint_entropy]
)
def test_information_measures_propagate_nan(fn):
    P = np.full((2, 2, 2), 0.25)
    P[0, 0, 1] = np.nan
    out = np.asarray(fn(P))
    assert np.isnan(out[0]) and np.isfinite(out[1])


def test_entropies_and_cross_entropy_propagate_nan_and_keep_valid_values():
    p = np.array([[0.5, np.nan, 0.5], [0.5, 0.5, 0.0]])
    for f in (cg.entropy, baselines.entropy):
        out = np.asarray(f(p))
        assert np.isnan(out[0]) and out[1] == pytest.approx(math.log(2), rel=1e-6)
    ce = np.asarray(baselines.cross_entropy(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[0.5, np.nan], [0.5, 0.5]])))
    assert np.isnan(ce[0]) and ce[1] == pytest.approx(math.log(2), rel=1e-6)
    assert np.isnan(baselines.cross_entropy(np.array([np.nan, 1.0]), np.array([0.5, 0.5])))
    assert np.isnan(cg.weighted_inner(np.full((2, 2), 0.25), np.full((2, 2), 0.25), np.array([np.nan, 0.5])))
    # the conventions on valid input are unchanged: 0 log 0 = 0, independence gives 0
    assert float(cg.mutual_information(np.full((2, 2), 0.25))) == 0.0
    assert float(baselines.cross_entropy(np.array([1.0, 0.0]), np.array([1.0, 0.0]))) == 0.0


# ---------------------------------------------------------------------- D7: enumeration size without overflow
def test_enumeration_check_has_no_overflow():
    task = cg.InContextTask(cg.chain(1999), 3, 1.0)
    with pytest.raises(ValueError, match=r"enumeration needs .* = 10\^954"):
        cg.exact_population_gradient(task, np.eye(3)[None], np.zeros((2000, 2000)), np.eye(3), eps=1e-3)
    from causal_grad.gradients.enumerate import MAX_ENUMERATION_COST, enumeration_cost, exceeds_enumeration_limit

    for T in range(1, 40):
        for S in (2, 3, 5, 17):
            for k in (1, 8):
                assert exceeds_enumeration_limit(T, S, k) == (enumeration_cost(T, S, k) > MAX_ENUMERATION_COST)


# ---------------------------------------------------------------------- D10: β0 that underflows the gradient
def test_scale_floor_refuses_subnormal_beta0():
    assert v.scale_floor(np.float64) == pytest.approx(np.finfo(np.float64).tiny / np.finfo(np.float64).eps)
    with pytest.raises(ValueError, match=r"beta0 must be 0 or >= .* float64"):
        v.check_scale("beta0", 1e-320, np.float64, allow_zero=True)
    assert v.check_scale("beta0", 0.0, np.float64, allow_zero=True) == 0.0
    task = cg.InContextTask(cg.chain(3), 3, 1.0)
    with pytest.raises(ValueError, match=r"beta0"):
        cg.population.population_gd(task, np.eye(3)[None], steps=1, lr=1.0, beta0=1e-320)
    with pytest.raises(ValueError, match=r"beta0"):
        cg.preset("reduced", cg.chain(3), vocab=3, beta0=1e-40)


# ---------------------------------------------------------------------- D12: sizes against memory
def test_sizes_beyond_memory_refused_before_compute(memory_16g):
    with pytest.raises(ValueError, match=r"memory"):
        cg.InContextTask(cg.chain(8), 2**31 - 1, 1.0).sample(KEY, 1)
    with pytest.raises(ValueError, match=r"^k: .*memory"):
        cg.InContextTask(cg.chain(3), 3, 1.0).sample_pi(KEY, 10**9)
    with pytest.raises(ValueError, match=r"^n: .*memory"):
        cg.random_tree(KEY, 10**7)
    with pytest.raises(ValueError, match=r"memory"):
        cg.Graph(list(range(-1, 10**6 - 1)))
    for f in (cg.pairwise_joint, cg.mi_matrix):
        with pytest.raises(ValueError, match=r"graph/pi: .*memory"):
            f(cg.chain(10**4), np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"^pi: .*memory"):
        cg.stationary(np.broadcast_to(np.eye(3), (10**9, 3, 3)))
    with pytest.raises(ValueError, match=r"eval_size: .*memory"):
        cg.preset("reduced", cg.chain(3), vocab=3, eval_size=10**12)
    with pytest.raises(ValueError, match=r"memory"):
        cg.disentangled_zeros(10**4, 10**4)
    with pytest.raises(ValueError, match=r"memory .*16 GiB"):
        v.check_fits_memory("x", 17 * 2**30, "a test")


# ---------------------------------------------------------------------- D14: one π dtype policy
@pytest.mark.parametrize(
    "call",
    [
        lambda pi: cg.stationary(pi),
        lambda pi: cg.mi_matrix(cg.chain(3), pi),
        lambda pi: cg.pairwise_joint(cg.chain(3), pi),
        lambda pi: cg.mi_approximation(cg.InContextTask(cg.chain(3), 3, 1.0), pi[None]),
        lambda pi: cg.dpi_report(cg.chain(3), pi[None]),
        lambda pi: cg.priors.UniformOver(pi[None]),
    ],
)
def test_float16_pi_refused_everywhere(call):
    pi = np.full((3, 3), 1 / 3, dtype=np.float16)
    with pytest.raises(TypeError, match=r"float32 or float64"):
        call(pi)
    call(np.full((3, 3), 1 / 3, dtype=np.float32))  # the same matrix in float32 is accepted


def test_one_row_sum_tolerance_rule():
    pi = np.full((3, 3), 1 / 3, dtype=np.float32)
    pi[0] *= 1 + 3e-6  # off by 3e-6: beyond the 1e-6 floor, within 8·S·eps of float32 (2.9e-6 ... 3e-6)
    tol = v.row_sum_atol(np.float32, 3)
    assert tol == pytest.approx(max(1e-6, 8 * 3 * float(np.finfo(np.float32).eps)))
    ok = abs(float(pi[0].astype(np.float64).sum()) - 1) <= tol
    for f in (lambda p: v.check_transition_matrices("pi", p), lambda p: v.check_stochastic("pi", p)):
        if ok:
            f(pi)
        else:
            with pytest.raises(ValueError, match="sum to 1"):
                f(pi)


# ---------------------------------------------------------------------- minor items
def test_float64_sampling_outside_x64_refused():
    task = cg.InContextTask(cg.chain(3), 3, 1.0)
    if jax.config.jax_enable_x64:  # pragma: no cover - the suite runs without global x64
        pytest.skip("x64 is on globally")
    for f in (
        lambda: task.sample(KEY, 2, jnp.float64),
        lambda: task.sample_pi(KEY, 2, jnp.float64),
        lambda: cg.kernels.dirichlet(KEY, 1.0, (2,), 3, jnp.float64),
    ):
        with pytest.raises(ValueError, match=r"float64 needs x64"):
            f()
    with cg.x64():
        assert task.sample(KEY, 2, jnp.float64)[1].dtype == jnp.float64


def test_train_config_eps_in_open_unit_interval():
    for eps in (1.0, 0.0, 1.5):
        with pytest.raises(ValueError, match=r"eps must lie in \(0, 1\)"):
            cg.preset("reduced", cg.chain(3), vocab=3, eps=eps)
    assert v.check_eps("eps", 0.0, allow_zero=True) == 0.0


def test_output_paths(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match=r"not a folder"):
        v.check_output_path("out", f, kind="dir")
    with pytest.raises(ValueError, match=r"is a file, not a folder"):
        v.check_output_path("out", f / "a" / "b", kind="dir")
    with pytest.raises(ValueError, match=r"is a folder"):
        v.check_output_path("out", tmp_path, kind="file")
    assert v.check_output_path("out", tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    from causal_grad.comparison import ClosedFormVsTraining, comparison_figures
    from causal_grad.verify.runner import run_verify

    with pytest.raises(ValueError, match=r"^out: "):
        run_verify(["C3"], out=f)
    with pytest.raises(ValueError, match=r"claims is empty"):
        run_verify([], out=tmp_path)
    res = object.__new__(ClosedFormVsTraining)
    with pytest.raises(ValueError, match=r"^out_dir: "):
        comparison_figures(res, f / "figs")


def test_debug_is_an_attribute():
    assert cg.debug.guard is not None and "debug" in dir(cg)
