import json
import subprocess
import sys

from causal_grad.cli import main


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
    assert r.stderr.strip().splitlines() == ["causal-grad: error: vocab_size must be >= 2, got 1"]


def test_every_subcommand_has_help():
    from causal_grad.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "sample" in sub.choices
    for name, p in sub.choices.items():
        assert p.format_help().startswith("usage: causal-grad " + name)
