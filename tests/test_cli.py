import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from causal_grad.cli import build_parser, main


def test_sample_json(capsys):
    assert main(["sample", "--graph", "chain", "--n", "5", "--vocab", "3", "--batch", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["graph"]["parents"] == [-1, 0, 1, 2, 3] and len(out["tokens"]) == 2


def test_sample_explicit_parents(capsys):
    assert main(["sample", "--graph=-1,0,0,1", "--vocab", "2", "--batch", "1"]) == 0
    assert "Graph(forest, n=4" in capsys.readouterr().out


def test_bad_input_one_line_exit_2():
    r = subprocess.run([sys.executable, "-m", "causal_grad", "sample", "--vocab", "1"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["causal-grad: error: --vocab must be >= 2, got 1"]


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "sample" in sub.choices
    for name, p in sub.choices.items():
        assert p.format_help().startswith("usage: causal-grad " + name)


# ---------------------------------------------------------------------- hardening II (issue 16)


def _cli(*argv, timeout=120):
    return subprocess.run([sys.executable, "-m", "causal_grad", *argv], capture_output=True, text=True, timeout=timeout)


def test_mistyped_flag_suggests_the_closest_with_the_subcommands_prog():
    r = _cli("train", "--stesp", "3")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("causal-grad train: error: ") and "did you mean --steps?" in lines[0]
    assert "usage:" not in r.stderr


def test_argparse_errors_are_one_line_naming_the_flag():
    for argv, word in (
        (["sample", "--batch", "abc"], "--batch"),
        (["train", "--model", "cnn"], "--model"),
        (["nope"], "COMMAND"),
        ([], "COMMAND"),
    ):
        r = _cli(*argv)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and ": error: " in lines[0] and word in lines[0], r.stderr


def test_bad_flags_answer_before_jax_is_imported():
    """The parser and the flag checks never import JAX (so a bad flag answers in well under a second on an
    idle machine: about 0.4 s here, against 10-24 s when every command imported the package first)."""
    code = (
        "import sys\nfrom causal_grad.cli import main\n"
        "for argv in (['train', '--steps', '0'], ['sample', '--alpha', '1e-38'], ['mi', '--alpha', '1e-320'],"
        " ['verify', '--claims', ''], ['train', '--out', '/etc/passwd']):\n"
        "    assert main(argv) == 2, argv\n"
        "assert 'jax' not in sys.modules, 'jax was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    t0 = time.perf_counter()
    r = _cli("train", "--stesp", "3")
    assert r.returncode == 2 and time.perf_counter() - t0 < 10  # generous: the test machine is shared


def test_explicit_n_must_agree_with_an_explicit_parent_list(capsys):
    assert main(["sample", "--graph=-1,0,1", "--n", "5"]) == 2
    err = capsys.readouterr().err
    assert "--n 5 disagrees with the explicit parent list" in err and len(err.strip().splitlines()) == 1
    assert main(["sample", "--graph=-1,0,1", "--n", "3", "--batch", "1"]) == 0  # agreeing is fine


def test_empty_claims_refused(capsys):
    assert main(["verify", "--claims", ""]) == 2
    assert "--claims names no claim id" in capsys.readouterr().err
    assert main(["verify", "--claims", " , "]) == 2


def test_alpha_below_the_dtypes_floor_refused_naming_the_flag(capsys):
    assert main(["sample", "--alpha", "1e-38"]) == 2
    err = capsys.readouterr().err
    assert "--alpha must be >=" in err and "float32" in err
    assert main(["mi", "--alpha", "1e-320"]) == 2
    err = capsys.readouterr().err
    assert "--alpha" in err and "float64" in err and "pis" not in err
    assert (
        main(
            [
                "train",
                "--n",
                "4",
                "--vocab",
                "3",
                "--alpha",
                "1e-38",
                "--steps",
                "2",
                "--batch",
                "8",
                "--eval-size",
                "64",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "--alpha" in capsys.readouterr().err


def test_tiny_beta0_refused(capsys):
    assert main(["gradient", "--beta0", "1e-320"]) == 2
    assert "--beta0 must be 0 or >=" in capsys.readouterr().err
    assert main(["compare", "--beta0", "1e-40"]) == 2
    assert main(["train", "--beta0", "1e-40", "--no-progress"]) == 2


@pytest.mark.parametrize(
    "cmd",
    [["sample"], ["verify", "--claims", "C3"], ["compare", "--steps", "1"], ["train", "--steps", "1", "--no-progress"]],
)
def test_bad_out_refused_before_compute(cmd, tmp_path, capsys):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    (tmp_path / "d.npz").mkdir()
    for out in (
        (str(a_file / "sub"), str(a_file)) if cmd[0] != "sample" else (str(a_file / "sub"), str(tmp_path / "d.npz"))
    ):
        assert main(cmd + ["--out", out]) == 2, out
        err = capsys.readouterr().err
        assert err.startswith("causal-grad: error: --out") and len(err.strip().splitlines()) == 1, err


def test_sample_out_reports_the_real_path(tmp_path, capsys):
    out = tmp_path / "seqs"
    assert main(["sample", "--n", "3", "--batch", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "seqs.npz").is_file() and f"to {tmp_path / 'seqs.npz'}" in printed
    with np.load(tmp_path / "seqs.npz") as z:
        assert z["tokens"].shape == (2, 4)


def test_debug_and_submodules_without_explicit_import():
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import causal_grad as cg, sys; assert 'jax' not in sys.modules; "
            "assert callable(cg.debug.guard); assert callable(cg.stationary); "
            "import causal_grad.stationary; assert callable(cg.stationary)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert r.returncode == 0, r.stderr


def test_train_choices_match_the_presets_and_the_registry():
    """The train parser names the presets and models without importing JAX; they must be the real ones."""
    from causal_grad.commands.train import MODEL_NAMES, PRESET_NAMES
    from causal_grad.models.registry import model_names
    from causal_grad.training.presets import PRESETS

    assert PRESET_NAMES == tuple(PRESETS)
    assert MODEL_NAMES == model_names()


def test_train_names_match_the_library():
    """The objectives, initial laws, decays and default betas the parser offers (named there without importing
    JAX) are the library's."""
    from causal_grad.commands.train import DECAY_NAMES, DEFAULT_BETAS, INITIAL_NAMES, OBJECTIVE_NAMES
    from causal_grad.ngram import NGRAM_INITIAL
    from causal_grad.training import OptimConfig
    from causal_grad.training.config import OBJECTIVES
    from causal_grad.training.schedules import ADAM_BETAS, DECAYS

    assert OBJECTIVE_NAMES == OBJECTIVES and INITIAL_NAMES == NGRAM_INITIAL and DECAY_NAMES == DECAYS
    assert DEFAULT_BETAS == ADAM_BETAS == (OptimConfig().b1, OptimConfig().b2)


def _train_help() -> str:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    return " ".join(sub.format_help().split())


def test_train_help_shows_the_icl_mc_flags_with_their_defaults():
    text = _train_help()
    for flag, default in (
        ("--objective {query,next_token}", "(default: query)"),
        ("--initial {uniform,stationary}", "(default: uniform)"),
        ("--b1 B1", "(default: 0.9, optax's"),
        ("--b2 B2", "(default: 0.999, optax's"),
        ("--no-mlp", "(default: the MLP is kept)"),
        ("--decay {cosine,constant}", "(default: the preset's, cosine)"),
    ):
        assert flag in text and default in text, (flag, default)


ICL_MC_ARGV = (
    "train --preset standard --objective next_token --initial stationary --T 101 --vocab 2 --alpha 1 --d-model 16 "
    "--layers 2 --heads 1 --no-mlp --lr 5e-4 --b1 0.9 --b2 0.95 --weight-decay 0.1 --decay constant --batch 64 "
    "--steps 2000"
).split()


def test_train_flags_build_the_icl_mc_config():
    """The command line of docs/guide.md builds Edelman et al.'s ICL-MC configuration (experiments/icl_mc.py's)."""
    from causal_grad.commands.train import config_from_args
    from causal_grad.models.registry import model_config
    from causal_grad.ngram import ngram_graph
    from causal_grad.training import OptimConfig, TaskConfig

    cfg = config_from_args(build_parser().parse_args(ICL_MC_ARGV))
    assert cfg.task == TaskConfig(ngram_graph(101, 1), 2, 1.0, objective="next_token", initial="stationary")
    assert cfg.seq_len == 101
    assert cfg.model == model_config("standard", d_model=16, layers=2, heads=1, mlp=False)
    assert cfg.optim == OptimConfig("joint", "adamw", lr=5e-4, weight_decay=0.1, decay="constant", b1=0.9, b2=0.95)
    assert (cfg.run.steps, cfg.run.batch) == (2000, 64)
    # the graph defaults to the chain (the bigram graph) with next_token; --n counts its positions
    argv = ["train", "--objective", "next_token", "--model", "standard", "--n", "6", "--vocab", "2"]
    assert config_from_args(build_parser().parse_args(argv)).task.graph == ngram_graph(5, 1)


def test_train_icl_mc_flags_refused_before_jax_naming_the_flag():
    code = (
        "import sys\nfrom causal_grad.cli import main\n"
        "for argv in (['train', '--b1', '1.0'], ['train', '--b2', 'nan'], ['train', '--b1=-0.1'],"
        " ['train', '--initial', 'stationary']):\n"
        "    assert main(argv) == 2, argv\n"
        "assert 'jax' not in sys.modules, 'jax was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    errs = r.stderr.strip().splitlines()
    assert len(errs) == 4 and all(e.startswith("causal-grad: error: ") for e in errs), errs
    assert "--b1 must lie in [0, 1), got 1.0" in errs[0] and "--b2 must lie in [0, 1), got nan" in errs[1]
    assert "--b1 must lie in [0, 1)" in errs[2]
    assert "--initial stationary" in errs[3] and "needs --objective next_token" in errs[3]
    for argv, word in (
        (["train", "--objective", "nexttoken"], "--objective"),
        (["train", "--initial", "stationnary"], "--initial"),
        (["train", "--decay", "linear"], "--decay"),
        (["train", "--b1", "x"], "--b1"),
    ):
        r = _cli(*argv)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and word in lines[0] and "usage:" not in r.stderr, r.stderr


def test_train_icl_mc_flags_refused_with_the_wrong_model_graph_or_optimizer(capsys):
    for argv, msg in (
        (["train", "--model", "reduced", "--no-mlp"], "--no-mlp applies to the standard transformer only"),
        (
            ["train", "--model", "standard", "--objective", "next_token", "--graph", "random-tree"],
            "--objective next_token trains on the n-gram graph",
        ),
        (["train", "--model", "reduced", "--b2", "0.95"], "b2 apply to adamw only"),
        (
            ["train", "--model", "standard", "--optimizer", "sgd", "--weight-decay", "0", "--b1", "0.5"],
            "b2 apply to adamw only",
        ),
    ):
        assert main(argv + ["--no-progress"]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("causal-grad: error: ") and msg in err[0], err


def test_train_icl_mc_run_on_the_command_line(capsys):
    """A tiny ICL-MC run through the command line: its summary names the objective, the start and the betas, and
    the KL from each strategy over every position (no exact Bayes with the stationary start)."""
    small = ["--T", "9", "--steps", "2", "--batch", "8", "--eval-size", "32", "--eval-every", "2", "--no-progress"]
    argv = [a for a in ICL_MC_ARGV if a not in ("--T", "101", "--steps", "2000", "--batch", "64")] + small
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "standard / joint / adamw lr=0.0005 (b1 0.9, b2 0.95), next-token loss, stationary start: 2 steps of 8" in out
    )
    assert "held-out next-token loss (mean over every position)" in out
    kl = next(line for line in out.splitlines() if line.startswith("KL from each strategy to the model"))
    assert "uniform" in kl and "unigram" in kl and "in_context" in kl and "exact_bayes" not in kl
    assert "one-parent estimators" not in out
