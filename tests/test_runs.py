"""Training runs as a careless user meets them (issues 16 and 17): one writer per folder, damaged checkpoints,
refusals at the door, non-finite starts named by their cause, SIGINT during start-up, metrics.csv / TensorBoard /
wandb, attention snapshots and the animation, and the end-of-run explanation."""

from __future__ import annotations

import csv
import glob
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from causal_grad.cli import main
from causal_grad.commands.train import summary
from causal_grad.graphs import Graph, chain
from causal_grad.runlock import LOCK_NAME, RunLock, RunLockedError, lock_holder
from causal_grad.training import BaselineLosses, EvalRecord, History, RunConfig, TaskConfig, load_run, preset, train
from causal_grad.training import run as run_mod
from causal_grad.training.checkpoint import MANIFEST_NAME, checkpoint_problem, usable_checkpoints

#: One tiny configuration shared by the tests (its compiled context is reused within a worker).
BASE = dict(vocab=3, steps=12, batch=16, eval_size=32, eval_every=3, log_every=3)


def _cfg(**kw):
    return preset("reduced-joint", chain(3), **{**BASE, **kw})


def _same_bits(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def _no_compute(monkeypatch):
    """Any context build (task, model, compilation) fails the test: what follows must be refused before."""

    def boom(*a, **k):
        raise AssertionError("the run started its expensive start-up")

    monkeypatch.setattr(run_mod, "_context", boom)


# ---------------------------------------------------------------------- D6: one writer per run folder
def _holder_process(folder):
    code = (
        "import sys, time\nfrom causal_grad.runlock import RunLock\n"
        f"RunLock({str(folder)!r}).acquire()\nprint('held', flush=True)\ntime.sleep(120)\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert p.stdout.readline().strip() == "held"
    return p


def test_second_writer_is_refused_with_the_holders_pid_before_any_compute(tmp_path, monkeypatch, capsys):
    d = tmp_path / "run"
    holder = _holder_process(d)
    try:
        (d / "theirs.txt").write_text("the first run's output")
        assert lock_holder(d) == holder.pid
        _no_compute(monkeypatch)
        with pytest.raises(RunLockedError, match=rf"process {holder.pid}\b.*{LOCK_NAME}") as e:
            train(_cfg(), d, progress=False)
        assert e.value.pid == holder.pid
        with pytest.raises(RunLockedError, match=str(holder.pid)):
            train(_cfg(), d, resume=True, progress=False)
        rc = main(["train", "--model", "reduced", "--graph", "chain", "--n", "3", "--out", str(d), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and str(holder.pid) in err and "--out" in err and len(err.strip().splitlines()) == 1
        assert (d / "theirs.txt").read_text() == "the first run's output"  # nothing of theirs touched
        assert sorted(os.listdir(d)) == [LOCK_NAME, "theirs.txt"]
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is stale and the next writer takes it over, saying so
    assert lock_holder(d) is None
    said = []
    with RunLock(d, echo=said.append) as lock:
        assert lock.held and str(os.getpid()) == (d / LOCK_NAME).read_text().split()[0]
        with pytest.raises(RunLockedError):  # one writer, even within one process
            RunLock(d).acquire()
    assert len(said) == 1 and f"process {holder.pid}" in said[0] and "no longer running" in said[0]
    assert not (d / LOCK_NAME).exists()


def test_two_concurrent_cli_trainings_into_one_folder(tmp_path):
    """The second `causal-grad train --out D` started while the first runs is refused (exit 2, the first's pid);
    the first finishes with its own complete outputs."""
    d = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "causal_grad",
        "train",
        "--model",
        "reduced",
        "--schedule",
        "joint",
        "--graph",
        "chain",
        "--n",
        "3",
        "--vocab",
        "3",
        "--steps",
        "12",
        "--batch",
        "16",
        "--eval-size",
        "32",
        "--eval-every",
        "3",
        "--log-every",
        "3",
        "--no-progress",
        "--out",
        str(d),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 300
        while lock_holder(d) is None and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert lock_holder(d) == first.pid
        second = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        out, err = first.communicate(timeout=600)
    finally:
        first.kill()
    assert second.returncode == 2 and str(first.pid) in second.stderr, second.stderr
    assert first.returncode == 0, err
    assert {"config.json", "history.json", "metrics.csv", "weights.npz", "attention.npz"} <= set(os.listdir(d))
    assert not (d / LOCK_NAME).exists()
    assert load_run(d).history.steps_done == 12


# ---------------------------------------------------------------------- D13: damaged checkpoints
def _corrupt(step_dir, how):
    if how == "missing _METADATA":
        os.remove(step_dir / "default" / "_METADATA")
    elif how == "overwritten":
        for f in glob.glob(str(step_dir / "default" / "**" / "d" / "*"), recursive=True):
            with open(f, "r+b") as fh:
                fh.write(b"\0" * 16)
    else:  # truncated metadata
        (step_dir / "_CHECKPOINT_METADATA").write_text("")


@pytest.mark.parametrize("how", ["missing _METADATA", "overwritten", "truncated"])
def test_damaged_newest_checkpoint_resumes_from_the_previous_one_bit_identical(tmp_path, monkeypatch, how):
    cfg = _cfg(checkpoint_every=3, snapshot_every=3)
    full = train(cfg, tmp_path / "full", progress=False)
    part = train(cfg, tmp_path / "part", progress=False, stop_when=lambda m: m.step >= 9)
    assert part.history.steps_done == 9
    ck = tmp_path / "part" / "checkpoints"
    assert usable_checkpoints(ck) == ([3, 6, 9], {}) and (ck / "9" / MANIFEST_NAME).is_file()
    _corrupt(ck / "9", how)
    why = checkpoint_problem(ck / "9")
    assert why is not None and str(ck / "9") in why  # names the file
    # the damage is found before the expensive start-up: the notice comes before the context is built
    events = []
    real = run_mod._context
    monkeypatch.setattr(run_mod, "_context", lambda *a, **k: (events.append("start-up"), real(*a, **k))[1])
    resumed = train(cfg, tmp_path / "part", resume=True, progress=False, echo=events.append)
    assert events[0].startswith("resume: skipping checkpoint 9: ") and str(ck / "9") in events[0], events
    assert "resuming from checkpoint 6" in events[0] and events[1] == "start-up"
    assert _same_bits(full.params, resumed.params)
    assert [e.loss for e in resumed.evals] == [e.loss for e in full.evals]
    assert (tmp_path / "part" / "checkpoints.skipped" / "9").is_dir()  # kept for inspection
    assert usable_checkpoints(ck)[0] == [6, 9, 12] and not usable_checkpoints(ck)[1]
    # metrics.csv and the snapshots: rows up to step 6 kept, then the resumed ones, no step twice
    with open(tmp_path / "part" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    with open(tmp_path / "full" / "metrics.csv") as fh:
        full_rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == [r["step"] for r in full_rows] == [str(s) for s in range(0, 13, 3)]
    assert [r["eval/loss"] for r in rows] == [r["eval/loss"] for r in full_rows]
    assert [r["train/loss"] for r in rows] == [r["train/loss"] for r in full_rows]
    a, b = np.load(tmp_path / "part" / "attention.npz"), np.load(tmp_path / "full" / "attention.npz")
    assert a["steps"].tolist() == b["steps"].tolist() and np.array_equal(a["attention"], b["attention"])


def test_resume_without_a_run_is_refused(tmp_path, monkeypatch, capsys):
    _no_compute(monkeypatch)
    with pytest.raises(ValueError, match="nothing to resume in .*does not exist"):
        train(_cfg(), tmp_path / "nope", resume=True, progress=False)
    assert not (tmp_path / "nope").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="nothing to resume in .*no config.json"):
        train(_cfg(), tmp_path / "empty", resume=True, progress=False)
    assert main(["train", "--resume", "--out", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "--resume" in err
    assert not (tmp_path / "nope").exists()


# ---------------------------------------------------------------------- D8, D9, D11: refusals at the door
def test_configs_refuse_what_training_cannot_run():
    with pytest.raises(ValueError, match=r"seed must be <= 9223372036854775807"):
        RunConfig(seed=2**64)
    with pytest.raises(ValueError, match=r"seed must be <="):
        _cfg(seed=2**64)
    with pytest.raises(ValueError, match=r"beta0 = 1e\+39 is outside the float32 range"):
        _cfg(beta0=1e39)
    with pytest.raises(ValueError, match=r"lr = 1e\+40 is outside the float32 range"):
        _cfg(lr=1e40)
    with pytest.raises(ValueError, match=r"alpha must be >= .* for float32"):
        TaskConfig(chain(3), 3, 1e-38)
    with pytest.raises(ValueError, match=r"graph: training needs at least 2 token positions"):
        preset("reduced-joint", Graph([-1]), **BASE)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--T", "2"], ["--T must be >= 3", "forest"]),
        (["--n", "1"], ["--n must be >= 2"]),
        (["--beta0", "1e39"], ["--beta0", "float32"]),
        (["--seed", str(2**64)], ["--seed", "<="]),
        (["--log", "tensorboard"], ["--log needs --out"]),
        (["--log", "mlflow", "--out", "/tmp/x"], ["--log must name"]),
        (["--snapshot-every", "-1"], ["--snapshot-every must be >= 0"]),
    ],
)
def test_cli_refuses_before_compiling_naming_the_flag(argv, words, monkeypatch, capsys):
    _no_compute(monkeypatch)
    try:
        rc = main(["train", "--model", "reduced", "--graph", "chain", "--no-progress", *argv])
    except SystemExit as exc:  # argparse's own errors (a --log value its type refuses)
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and all(w in err for w in words), err


def test_non_finite_start_names_its_cause_not_the_learning_rate(tmp_path, monkeypatch):
    # a held-out set whose targets are NaN (as with an underflowing alpha) is refused before the first step
    real = run_mod._context

    def nan_targets(*a, **k):
        ctx = real(*a, **k)
        bad = run_mod.HeldOut(
            ctx.held.tokens, ctx.held.targets * np.nan, ctx.held.in_context, ctx.held.entropy_floor, ctx.held.others
        )
        return type(
            "Ctx", (), {**{n: getattr(ctx, n) for n in ("spec", "stages", "evaluate", "runner")}, "held": bad}
        )()

    monkeypatch.setattr(run_mod, "_context", nan_targets)
    with pytest.raises(ValueError, match=r"alpha = .*targets are not finite.*not the learning rate"):
        train(_cfg(), tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()  # refused before anything was written
    monkeypatch.setattr(run_mod, "_context", real)
    # a loss that is not finite at the initial parameters (here: the evaluator made to say so) names the
    # model's hyper-parameters, before any step
    with pytest.raises(
        ValueError,
        match=r"initial parameters is nan, before any training step \(so not the "
        r"learning rate\).*beta0=1",
    ):
        run_mod._check_initial_loss(_cfg(), EvalRecord(0, 0.0, float("nan"), float("nan")))


# ---------------------------------------------------------------------- SIGINT during start-up
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_first_sigint_during_start_up_stops_at_once(tmp_path, monkeypatch):
    def slow_start_up(*a, **k):  # a compilation that takes a while; the user presses Ctrl-C at once
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
        raise AssertionError("the start-up ran to its end despite SIGINT")

    monkeypatch.setattr(run_mod, "_context", slow_start_up)
    before = signal.getsignal(signal.SIGINT)
    t0 = time.perf_counter()
    with pytest.raises(run_mod.TrainingInterrupted, match="SIGINT at step 0; during start-up") as e:
        train(_cfg(), tmp_path / "r", progress=False)
    assert time.perf_counter() - t0 < 10 and e.value.signum == signal.SIGINT
    assert not (tmp_path / "r").exists()
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are restored


# ---------------------------------------------------------------------- #17: logs, snapshots, plots, summary
def test_run_writes_csv_tensorboard_snapshots_and_plots(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    d = tmp_path / "run"
    res = train(_cfg(snapshot_every=2), d, progress=False, log=("tensorboard",))
    with open(d / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    ev = {e.step: e for e in res.evals}
    train_loss = dict(res.history.train)
    # a row per chunk boundary: step 0 (held-out only), every log/eval/snapshot boundary after it
    assert [int(r["step"]) for r in rows] == [0, 2, 3, 4, 6, 8, 9, 10, 12]
    for r in rows:
        s = int(r["step"])
        if s in ev:
            assert float(r["eval/loss"]) == ev[s].loss and float(r["eval/shd"]) == ev[s].shd
        if s:
            assert float(r["train/loss"]) == train_loss[s]
    acc = ea_mod.EventAccumulator(str(d / "tensorboard"))
    acc.Reload()
    assert {"train/loss", "eval/loss", "eval/mean_parent_attention"} <= set(acc.Tags()["scalars"])
    got = {e.step: e.value for e in acc.Scalars("eval/loss")}
    assert got == {s: np.float32(e.loss) for s, e in ev.items()}
    steps, att = np.load(d / "attention.npz")["steps"], np.load(d / "attention.npz")["attention"]
    assert steps.tolist() == [0, 2, 4, 6, 8, 10, 12] and att.shape == (7, 1, 4, 4)
    np.testing.assert_allclose(att.sum(-1)[:, 0, :], 1.0, rtol=1e-6)  # rows of a causal softmax
    assert main(["plot", str(d)]) == 0
    printed = capsys.readouterr().out
    assert "attention.gif" in printed and (d / "loss.png").is_file() and (d / "attention.png").is_file()
    from PIL import Image

    with Image.open(d / "attention.gif") as gif:
        assert gif.n_frames == len(steps)  # one frame per snapshot
    assert len(repr(res)) < 300
    lines = "\n".join(summary(res))
    assert "at least 0.5" in lines and f"see: causal-grad plot {d}" in lines


def test_wandb_offline_run_of_a_training(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(_cfg(snapshot_every=0), tmp_path / "w", progress=False, log="wandb")
    assert not (tmp_path / "w" / "attention.npz").exists()  # snapshot_every=0: none
    files = list((tmp_path / "w" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1 and files[0].stat().st_size > 0


def test_the_smoothing_penalty_explains_the_reduced_models_excess():
    """docs/theory.md §7.5: ε/S is all a token absent from the copied ones gets; the penalty is that mass times
    -log(ε/S), and the reduced model with its graph learnt exactly scores ``ideal_loss``."""
    cfg = _cfg(eps=1e-3)
    tokens = np.array([[0, 0, 1, 0], [2, 2, 2, 2], [0, 1, 2, 1]], np.int32)  # chain(3): T = 4, query last
    targets = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    p = run_mod.smoothing_penalty(cfg, tokens, targets)
    # chain(3) children: s1 (parent s0) and s2 (parent s1). Row 0, q = 0: both parents are 0, children 0 and 1:
    # c = (1/2, 1/2, 0). Row 1, q = 2: children 2, 2: c = (0, 0, 1). Row 2, q = 1: only s1 = 1, child s2 = 2:
    # c = (0, 0, 1) while the target is token 0, absent: it gets eps/S
    eps, S = 1e-3, 3
    yhat = lambda c: (1 - eps) * np.asarray(c) + eps / S  # noqa: E731
    ce = [
        -(0.5 * np.log(yhat([0.5, 0.5, 0])[0]) + 0.5 * np.log(yhat([0.5, 0.5, 0])[1])),
        -np.log(yhat([0, 0, 1])[2]),
        -np.log(yhat([0, 0, 1])[0]),
    ]
    assert p["ideal_loss"] == pytest.approx(np.mean(ce), rel=1e-12)
    assert p["absent_mass"] == pytest.approx(1 / 3) and p["floor_nats"] == pytest.approx(-np.log(eps / S))
    assert run_mod.smoothing_penalty(preset("disentangled", chain(3), vocab=3), tokens, targets) is None
    with pytest.raises(ValueError, match="targets must have shape"):
        run_mod.smoothing_penalty(cfg, tokens, targets[:, :2])


def test_train_result_renders_in_treescope():
    treescope = pytest.importorskip("treescope")
    history = History(BaselineLosses(1.0, 0.5, {"unigram": 1.5}))  # no evaluation yet
    res = run_mod.TrainResult(_cfg(), {"A1": np.zeros((4, 4)), "A2": np.eye(3)}, history)
    assert len(repr(res)) < 200
    text = treescope.render_to_text(res)
    assert "TrainResult" in text and "A1" in text


def test_history_and_config_name_the_file_when_unreadable(tmp_path):
    cfg = _cfg(checkpoint_every=6)
    train(cfg, tmp_path / "r", progress=False, stop_when=lambda m: m.step >= 6)
    (tmp_path / "r" / "history.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"history.json .*not readable JSON"):
        train(cfg, tmp_path / "r", resume=True, progress=False)
    json.loads((tmp_path / "r" / "config.json").read_text())  # untouched
    assert not (tmp_path / "r" / LOCK_NAME).exists()  # released after the refusal


def test_reloading_a_finished_run_keeps_its_wall_time_and_resuming_adds_to_it(tmp_path):
    cfg = _cfg(checkpoint_every=10)
    d = tmp_path / "r"
    first = train(cfg, d, progress=False)
    assert first.history.wall_s is not None and first.history.wall_s > 0
    again = train(cfg, d, resume=True, progress=False)  # finished: reloaded, nothing trained
    assert again.history.wall_s == first.history.wall_s
    assert json.loads((d / "history.json").read_text())["wall_s"] == first.history.wall_s
    longer = train(_cfg(checkpoint_every=10, steps=cfg.run.steps + 10), d, resume=True, progress=False)
    assert longer.history.steps_done == cfg.run.steps + 10
    assert longer.history.wall_s > first.history.wall_s  # the extension's own time added to the earlier call's
