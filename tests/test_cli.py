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
