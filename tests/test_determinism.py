"""Determinism: the same key (or seed) gives bit-identical results on one device, for every public random
function; a different key gives a different result (so the key is really used). Exact paths are bit-identical
from call to call. A subprocess test checks that a fresh process reproduces the same bits (no dependence on
hash seeds, import order or compilation caches).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import causal_grad as cg
from causal_grad import kernels, priors
from causal_grad.baselines import held_out_losses

K1, K2 = jax.random.key(11), jax.random.key(12)
S = 3
GRAPH = cg.chain(4)
TASK = cg.InContextTask(GRAPH, S, 0.5)
MTASK = cg.MultiParentTask(cg.two_parent(5), S, 0.5)
PIS = np.random.default_rng(0).dirichlet(np.ones(S), size=(2, S))


def leaves(x) -> list[np.ndarray]:
    """Every array in a result (pytrees, NamedTuples, Graphs, dicts of floats) as NumPy arrays."""
    if isinstance(x, cg.Graph):
        return [np.asarray(x.parents if x.is_forest else [len(p) for p in x.parent_sets])]
    if isinstance(x, dict):
        return [a for k in sorted(x) for a in leaves(x[k])]
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(x)]


def bit_identical(a, b) -> bool:
    la, lb = leaves(a), leaves(b)
    return len(la) == len(lb) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes() for x, y in zip(la, lb)
    )


def digest(x) -> str:
    h = hashlib.sha256()
    for a in leaves(x):
        h.update(str(a.dtype).encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def check_keyed(fn):
    """``fn(key)`` twice with one key: bit-identical; with another key: different."""
    a, b, c = fn(K1), fn(K1), fn(K2)
    assert bit_identical(a, b), "the same key gave different results"
    assert not bit_identical(a, c), "a different key gave the same result (is the key used?)"
    return a


# ---------------------------------------------------------------------- graphs
def test_random_tree():
    check_keyed(lambda k: cg.random_tree(k, 12))


def test_random_forest():
    check_keyed(lambda k: cg.random_forest(k, 12, 0.3))


def test_named_graph_seed():
    assert cg.named_graph("random-tree", 10, seed=3) == cg.named_graph("random-tree", 10, seed=3)


# ---------------------------------------------------------------------- priors
@pytest.mark.parametrize(
    "prior",
    [priors.Dirichlet(0.1), priors.Floored(0.5), priors.Sticky(0.3), priors.PermutationLike(), priors.UniformOver(PIS)],
    ids=repr,
)
def test_prior_sample(prior):
    check_keyed(lambda k: prior.sample(k, (8,), S))
    check_keyed(lambda k: prior.sample_batch_last(k, 8, S))


def test_gamma_and_dirichlet_variates():
    check_keyed(lambda k: kernels.log_gamma_variates(k, 0.1, (16,)))
    check_keyed(lambda k: kernels.log_gamma_variates(k, np.array([0.1, 2.0]), (4, 2)))  # array alpha path
    check_keyed(lambda k: kernels.gamma(k, 2.0, (16,)))
    check_keyed(lambda k: kernels.dirichlet(k, 0.5, (4,), S))


# ---------------------------------------------------------------------- the task
def test_task_sample():
    check_keyed(lambda k: TASK.sample(k, 16))


def test_task_sample_with_pi_matches_sample():
    a = check_keyed(lambda k: TASK.sample_with_pi(k, 16))
    tokens, y = TASK.sample(K1, 16)
    assert bit_identical((tokens, y), a[:2])  # same draws with or without returning π


def test_task_sample_pi():
    check_keyed(lambda k: TASK.sample_pi(k, 4))


def test_task_sample_given_pi():
    check_keyed(lambda k: TASK.sample_given_pi(k, np.repeat(PIS, 4, axis=0)))


def test_multi_parent_task_sample_and_tables():
    check_keyed(lambda k: MTASK.sample(k, 16))
    check_keyed(lambda k: MTASK.sample_tables(k, 4))


def test_held_out_losses():
    check_keyed(lambda k: held_out_losses(TASK, k, 16, 8, {"in_context": TASK.in_context}))


def test_self_entry_over_prior():
    check_keyed(lambda k: cg.self_entry_over_prior(priors.Dirichlet(0.5), S, k, num=16).trace)


# ---------------------------------------------------------------------- gradients: Monte Carlo and exact
def test_monte_carlo_gradient():
    T = TASK.seq_len
    check_keyed(lambda k: cg.monte_carlo_gradient(TASK, k, np.zeros((T, T)), np.eye(S), eps=1e-3, num=32, batch=16))
    check_keyed(
        lambda k: cg.monte_carlo_gradient(TASK, k, np.zeros((T, T)), np.eye(S), eps=1e-3, num=32, batch=16, pis=PIS)
    )


def test_monte_carlo_linearized_at_init():
    check_keyed(lambda k: cg.monte_carlo_linearized_at_init(TASK, k, eps=1e-3, num=32, batch=16))
    check_keyed(lambda k: cg.monte_carlo_linearized_at_init(TASK, k, eps=1e-3, num=32, batch=16, pis=PIS))


def test_exact_paths_bit_identical():
    T = TASK.seq_len
    for fn in (
        lambda: cg.exact_population_gradient(TASK, PIS, np.zeros((T, T)), 0.5 * np.eye(S), eps=1e-3),
        lambda: cg.linearized_gradient_at_init(TASK, PIS, eps=1e-3),
        lambda: cg.exact_gradient_at_init_dp(TASK, PIS, eps=1e-3),
        lambda: cg.mi_approximation(TASK, PIS).per_pi,
    ):
        assert bit_identical(fn(), fn())


# ---------------------------------------------------------------------- models' random initialisation
def test_model_initialisation():
    check_keyed(lambda k: cg.disentangled_normal(k, S, 5, (2, 1), scale=1e-2))
    module = cg.standard_model(S, 5, d_model=8, layers=1)
    check_keyed(lambda k: cg.standard_init(module, k))


# ---------------------------------------------------------------------- training (one device)
def test_training_weights_bit_identical():
    """Two runs of one config and seed end with the same weights, bit for bit; another seed differs."""
    from causal_grad.training import default_config, train

    def run(seed):
        cfg = default_config(
            "reduced",
            cg.chain(3),
            vocab=3,
            alpha=0.5,
            steps=6,
            stage1_steps=3,
            batch=32,
            eval_every=3,
            eval_size=64,
            seed=seed,
        )
        return train(cfg, progress=False).params

    a, b, c = run(0), run(0), run(1)
    assert bit_identical(a, b)
    assert not bit_identical(a, c)


# ---------------------------------------------------------------------- a fresh process gives the same bits
_SCRIPT = """
import json, sys
import jax, numpy as np
import causal_grad as cg
sys.path.insert(0, {tests!r})
from test_determinism import digest, TASK, PIS, S
k = jax.random.key(11)
T = TASK.seq_len
out = {{
    "random_tree": digest(cg.random_tree(k, 12)),
    "dirichlet": digest(cg.Dirichlet(0.1).sample(k, (8,), S)),
    "task.sample": digest(TASK.sample(k, 16)),
    "mc_gradient": digest(cg.monte_carlo_gradient(TASK, k, np.zeros((T, T)), np.eye(S), eps=1e-3, num=32, batch=16)),
    "linearized": digest(cg.linearized_gradient_at_init(TASK, PIS, eps=1e-3)),
}}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_fresh_process_reproduces_the_bits():
    k = K1
    T = TASK.seq_len
    here = {
        "random_tree": digest(cg.random_tree(k, 12)),
        "dirichlet": digest(priors.Dirichlet(0.1).sample(k, (8,), S)),
        "task.sample": digest(TASK.sample(k, 16)),
        "mc_gradient": digest(
            cg.monte_carlo_gradient(TASK, k, np.zeros((T, T)), np.eye(S), eps=1e-3, num=32, batch=16)
        ),
        "linearized": digest(cg.linearized_gradient_at_init(TASK, PIS, eps=1e-3)),
    }
    env = dict(os.environ, PYTHONHASHSEED="12345")
    r = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(tests=str(Path(__file__).parent))],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    there = json.loads(r.stdout.strip().splitlines()[-1])
    assert there == here


# ---------------------------------------------------------------------- interruption and exact resume
def _cfg(**kw):
    from causal_grad.training import default_config

    base = dict(
        vocab=3, alpha=0.5, steps=40, stage1_steps=20, batch=32, eval_every=5, eval_size=64, checkpoint_every=20, seed=3
    )
    return default_config("reduced", cg.chain(3), **{**base, **kw})


def test_signal_checkpoints_and_resume_gives_the_same_weights(tmp_path):
    """A SIGTERM during train() (raised here from the evaluation callback at step 15, so the point is
    deterministic) stops after the running chunk: the state is checkpointed, history.json is complete JSON, no
    weights.npz is written and TrainingInterrupted (a KeyboardInterrupt) is raised; resume=True then ends with
    weights bit-identical to an uninterrupted run (with and without periodic checkpoints)."""
    import signal

    from causal_grad.training import load_weights, train
    from causal_grad.training.run import TrainingInterrupted

    for every in (20, 0):
        cfg = _cfg(checkpoint_every=every)
        straight = train(cfg, progress=False).params
        out = tmp_path / f"every{every}"

        def stop(record):
            if record.step == 15:
                signal.raise_signal(signal.SIGTERM)
            return False

        with pytest.raises(TrainingInterrupted) as info:
            train(cfg, out, progress=False, stop_when=stop)
        assert info.value.step == 15 and info.value.signum == signal.SIGTERM
        assert not (out / "weights.npz").exists()
        hist = json.loads((out / "history.json").read_text())
        assert hist["interrupted_at"] == 15 and hist["eval"][-1]["step"] == 15
        assert (out / "checkpoints" / "15").is_dir()
        resumed = train(cfg, out, resume=True, progress=False)
        assert resumed.history.steps_done == cfg.run.steps
        assert bit_identical(straight, resumed.params)
        assert bit_identical(straight, load_weights(out / "weights.npz", straight))
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def _train_argv(out, steps):
    return [
        sys.executable,
        "-m",
        "causal_grad",
        "train",
        "--graph",
        "chain",
        "--n",
        "3",
        "--vocab",
        "3",
        "--alpha",
        "0.5",
        "--steps",
        str(steps),
        "--stage1-steps",
        str(steps // 2),
        "--batch",
        "256",
        "--eval-every",
        "50",
        "--eval-size",
        "64",
        "--checkpoint-every",
        "500",
        "--seed",
        "5",
        "--no-progress",
        "--out",
        str(out),
    ]


_STEPS = 1000  # about 5 s of training: time to interrupt it after step 100


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """The uninterrupted CLI run the resumed ones must reproduce (one subprocess, shared)."""
    out = tmp_path_factory.mktemp("straight") / "run"
    r = subprocess.run(_train_argv(out, _STEPS), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


def _wait_for_progress(proc, out, min_step, timeout=300.0):
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.stderr.read()}"
        try:
            hist = json.loads((out / "history.json").read_text())
            if hist["eval"] and hist["eval"][-1]["step"] >= min_step:
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    raise AssertionError("no progress")


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_cli_train_interrupted_by_signal_then_resumed(tmp_path, sig, straight_run):
    """A real ``causal-grad train`` subprocess gets SIGINT/SIGTERM mid-run: it writes a checkpoint, prints one
    line, exits with 128 + signal number and no traceback; ``--resume`` finishes with the weights of an
    uninterrupted run (same machine), and the JSON files are always complete."""
    import signal

    from causal_grad.training import load_weights

    steps = _STEPS
    out = tmp_path / "run"
    proc = subprocess.Popen(_train_argv(out, steps), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_progress(proc, out, 100)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    signum = getattr(signal, sig)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("causal-grad: interrupted")
    hist = json.loads((out / "history.json").read_text())
    stopped = hist["interrupted_at"]
    assert 100 <= stopped < steps and (out / "checkpoints" / str(stopped)).is_dir()
    assert not (out / "weights.npz").exists()
    r = subprocess.run(_train_argv(out, steps) + ["--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    a, b = load_weights(out / "weights.npz"), load_weights(straight_run / "weights.npz")
    assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


@pytest.mark.slow
def test_results_json_never_half_written_after_sigkill(tmp_path):
    """SIGKILL at arbitrary moments while history.json is rewritten after every evaluation: whatever is on disk
    parses (write to a temporary file, then os.replace)."""
    import signal
    import time

    for delay in (0.0, 0.013, 0.029):
        out = tmp_path / f"kill{delay}"
        proc = subprocess.Popen(_train_argv(out, _STEPS), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_progress(proc, out, 50)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            proc.kill()
        for name in ("config.json", "history.json"):
            json.loads((out / name).read_text())
