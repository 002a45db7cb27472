"""Every ``causal-grad`` subcommand with invalid input: one line ``causal-grad: error: …`` and exit status 2.

Values the subcommand's own code refuses (a ``ValueError``/``TypeError`` turned into one line by
:func:`causal_grad.cli.main`) must name the option (or its parameter) and be raised before any compute (the
:func:`test_fuzz.no_compute` tripwire). Values argparse refuses (not a number, an unknown choice) exit with
status 2 with one line ``causal-grad <subcommand>: error: …`` (no usage block). Most cases call
:func:`causal_grad.cli.main` in-process; a few run the
real ``python -m causal_grad`` in a subprocess to check that no traceback reaches the terminal.
"""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz import ComputeStarted, no_compute

from causal_grad.cli import SUBCOMMANDS, build_parser, main


@dataclasses.dataclass(frozen=True)
class BadFlag:
    """Invalid values of one option: ``values`` draws the argv fragment (a list of strings); ``argparse``: the
    refusal is argparse's own (usage + error); else ``names`` (any of which must appear in the one-line
    message)."""

    flag: str
    what: str
    values: object
    names: tuple[str, ...] = ()
    argparse: bool = False


def _num(strat):
    return strat.map(lambda v: [repr(v) if isinstance(v, float) else str(v)])


def flag_ints(flag: str, minimum: int, *names: str) -> list[BadFlag]:
    names = names or (flag.lstrip("-").replace("-", "_"),)
    return [
        BadFlag(flag, f"< {minimum}", st.integers(minimum - 1000, minimum - 1).map(lambda v: [f"{flag}={v}"]), names),
        BadFlag(flag, "not an integer", st.sampled_from(["abc", "1.5", ""]).map(lambda v: [flag, v]), argparse=True),
    ]


def flag_floats(
    flag: str, *names: str, allow_zero: bool = False, upper: float | None = None, open_upper: bool = True
) -> list[BadFlag]:
    names = names or (flag.lstrip("-").replace("-", "_"),)
    bad = [
        st.floats(max_value=0.0, exclude_max=allow_zero, allow_nan=False, allow_infinity=False),
        st.sampled_from([math.nan, math.inf, -math.inf]),
    ]
    if upper is not None:
        bad.append(st.floats(min_value=upper, exclude_min=not open_upper, allow_nan=False))
    rng = "outside [0, 1)" if upper == 1 else ("negative" if allow_zero else "<= 0")
    return [
        BadFlag(flag, f"{rng}, NaN or infinite", st.one_of(*bad).map(lambda v: [f"{flag}={v!r}"]), names),
        BadFlag(flag, "not a number", st.sampled_from(["abc", "1,2"]).map(lambda v: [flag, v]), argparse=True),
    ]


GRAPH = [
    BadFlag(
        "--graph",
        "an unknown family",
        st.sampled_from(["tri", "ring", "Chain"]).map(lambda v: ["--graph", v]),
        ("graph", "name"),
    ),
    BadFlag(
        "--graph",
        "a parent list with self-loops, forward edges, cycles or parents < -1",
        st.sampled_from(["0", "-1,1", "-1,5,0", "-1,2,1", "-1,-3"]).map(lambda v: [f"--graph={v}"]),
        ("graph", "parents"),
    ),
    BadFlag(
        "--graph",
        "a parent list that is not integers",
        st.sampled_from(["-1,a", "-1,,0", "-1,0.5"]).map(lambda v: [f"--graph={v}"]),
        ("graph",),
    ),
]


def graph_flags(*, vocab_min: int = 2) -> list[BadFlag]:
    return (
        GRAPH
        + flag_ints("--vocab", vocab_min, "vocab", "vocab_size")
        + flag_ints("--n", 1, "n")
        + flag_floats("--alpha", "alpha")
        + [
            BadFlag(
                "--p-root",
                "outside [0, 1]",
                st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.001), st.just(math.nan)).map(
                    lambda v: ["--graph", "random-forest", f"--p-root={v!r}"]
                ),
                ("p_root",),
            ),
            BadFlag(
                "--seed",
                "outside the int64 range",
                st.sampled_from([2**63, 2**70, -(2**63) - 1]).map(lambda v: [f"--seed={v}"]),
                ("seed",),
            ),
            BadFlag(
                "--seed",
                "outside the int64 range (explicit parents)",
                st.just(["--graph=-1,0", f"--seed={2**64}"]),
                ("seed",),
            ),
        ]
    )


BIG = ["--graph", "chain", "--n", "40", "--vocab", "3"]  # S^(T-1) = 3^40: beyond exact enumeration

CASES: dict[str, tuple[list[str], list[BadFlag]]] = {
    # subcommand: (valid base argv, invalid flags)
    "sample": (["sample", "--n", "3", "--batch", "2"], graph_flags() + flag_ints("--batch", 1)),
    "mi": (
        ["mi", "--n", "3", "--draws", "2"],
        graph_flags() + flag_ints("--draws", 1) + flag_floats("--eps", "eps", upper=1),
    ),
    "gradient": (
        ["gradient", "--n", "3", "--num-pi", "2"],
        graph_flags()
        + flag_ints("--num-pi", 1, "num-pi", "num_pi")
        + flag_ints("--num", 2)
        + flag_floats("--eps", "eps", allow_zero=True, upper=1)
        + flag_floats("--beta0", "beta0", allow_zero=True)
        + [
            BadFlag(
                "--beta0",
                "S and T beyond exact enumeration (--beta0 > 0 needs the exact gradient)",
                st.just(BIG + ["--beta0", "1"]),
                ("S^(T-1)", "enumeration"),
            ),
            BadFlag("--graph", "a multi-parent DAG", st.just(["--graph", "two-parent", "--n", "5"]), ("graph",)),
        ],
    ),
    # train: a fixed graph, because the config (which needs the graph) is validated after a random one is drawn
    "train": (
        ["train", "--graph", "chain", "--n", "3", "--vocab", "3", "--steps", "2", "--batch", "4", "--no-progress"],
        graph_flags()
        + flag_ints("--steps", 1)
        + flag_ints("--batch", 1)
        + flag_ints("--eval-every", 1)
        + flag_ints("--eval-size", 1)
        + flag_floats("--lr", "lr")
        + flag_floats("--alpha", "alpha")
        + [
            BadFlag("--T", "< 2", st.integers(-100, 1).map(lambda v: [f"--T={v}"]), ("T",)),
            BadFlag(
                "--model", "an unknown model", st.sampled_from(["cnn", ""]).map(lambda v: ["--model", v]), argparse=True
            ),
            BadFlag(
                "--heads",
                "not comma-separated integers >= 1",
                st.sampled_from(["0,1", "-1"]).map(lambda v: ["--model", "disentangled", "--heads", v]),
                ("heads", "heads[0]"),
            ),
            BadFlag("--resume", "without --out", st.just(["--resume"]), ("--resume", "resume", "out")),
            BadFlag(
                "--checkpoint-every",
                "without --out",
                st.just(["--checkpoint-every", "1"]),
                ("--checkpoint-every", "checkpoint_every", "out"),
            ),
            BadFlag(
                "--weight-decay",
                "with plain gradient descent",
                st.just(["--optimizer", "sgd", "--weight-decay", "0.1"]),
                ("weight_decay",),
            ),
            BadFlag(
                "--objective",
                "an unknown objective",
                st.sampled_from(["nexttoken", "all"]).map(lambda v: ["--objective", v]),
                argparse=True,
            ),
            BadFlag(
                "--objective",
                "next_token on a graph family other than the chain (the bigram graph)",
                st.sampled_from(["random-tree", "icl-pairs"]).map(
                    lambda v: ["--objective", "next_token", "--graph", v]
                ),
                ("objective", "graph"),
            ),
            BadFlag(
                "--initial",
                "an unknown initial law",
                st.sampled_from(["stationnary", "first"]).map(lambda v: ["--initial", v]),
                argparse=True,
            ),
            BadFlag(
                "--initial",
                "stationary without --objective next_token",
                st.just(["--initial", "stationary"]),
                ("initial",),
            ),
            BadFlag(
                "--decay",
                "an unknown decay",
                st.sampled_from(["linear", "step"]).map(lambda v: ["--decay", v]),
                argparse=True,
            ),
            BadFlag(
                "--no-mlp", "with a model other than the standard transformer", st.just(["--no-mlp"]), ("--no-mlp",)
            ),
        ]
        + flag_floats("--b1", "b1", allow_zero=True, upper=1)
        + flag_floats("--b2", "b2", allow_zero=True, upper=1)
        + [BadFlag("--b2", "not the default with plain gradient descent", st.just(["--b2", "0.95"]), ("b2",))],
    ),
    "compare": (
        ["compare", "--n", "3", "--num-pi", "2", "--steps", "2", "--batch", "4", "--seeds", "1"],
        graph_flags()
        + flag_ints("--num-pi", 1, "num_pi", "num-pi")
        + flag_ints("--steps", 1)
        + flag_ints("--batch", 1)
        + flag_ints("--seeds", 1)
        + flag_ints("--record-every", 1)
        + flag_floats("--lr", "lr")
        + flag_floats("--beta0", "beta0")
        + flag_floats("--eps", "eps", allow_zero=True, upper=1)
        + [BadFlag("--n", "S and T beyond exact enumeration", st.just(BIG), ("S^(T-1)", "enumeration"))],
    ),
    "verify": (
        ["verify", "--claims", "C3"],
        [
            BadFlag(
                "--claims",
                "unknown claim ids",
                st.sampled_from(["C99", "C1,X", "c0"]).map(lambda v: ["--claims", v]),
                ("claims",),
            ),
            BadFlag(
                "--seed",
                "outside the int64 range",
                st.sampled_from([2**63, 2**70]).map(lambda v: [f"--seed={v}"]),
                ("seed",),
            ),
        ]
        + flag_ints("--seed", 0, "seed")[1:],
    ),
    "figures": (
        ["figures"],
        [
            BadFlag(
                "--only",
                "unknown experiment names",
                st.sampled_from(["nope", "fig2_chain,zzz"]).map(lambda v: [f"--only={v}"]),
                ("only",),
            ),
            BadFlag("--seed", "< 0", st.integers(-1000, -1).map(lambda v: [f"--seed={v}"]), ("seed",)),
        ],
    ),
    "plot": (
        ["plot", "/nonexistent/causal_grad_run"],
        [
            BadFlag("run", "not a training run folder", st.just([]), ("run_dir",)),
            BadFlag("--dpi", "<= 0", st.sampled_from(["0", "-5"]).map(lambda v: [f"--dpi={v}"]), ("dpi",)),
            BadFlag("--format", "an unknown format", st.just(["--format", "tiff"]), argparse=True),
        ],
    ),
    "bench": (
        ["bench", "--quick"],
        [
            BadFlag(
                "topics",
                "unknown benchmark topics",
                st.sampled_from(["nope", "sampler nope"]).map(str.split),
                ("topics",),
            )
        ],
    ),
}


def doc_rows() -> list[tuple[str, str, str]]:
    """Rows ``(subcommand, option, what)`` of docs/inputs.md's command-line table."""
    rows = []
    for cmd, (_, flags) in CASES.items():
        seen: dict[str, list[str]] = {}
        for f in flags:
            seen.setdefault(f.flag, []).append(f.what)
        rows += [(cmd, flag, "; ".join(dict.fromkeys(ws))) for flag, ws in seen.items()]
    rows.append(("any", "COMMAND", "an unknown subcommand (argparse)"))
    return rows


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        with no_compute():
            rc = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        rc = exc.code
    except ComputeStarted as exc:
        pytest.fail(f"causal-grad {' '.join(argv)}: computation started before the input was refused ({exc})")
    return rc, capsys.readouterr().err


def check_refused(cmd: str, base: list[str], bad: BadFlag, fragment: list[str], capsys) -> None:
    argv = base + fragment
    rc, err = run_main(argv, capsys)
    shown = "causal-grad " + " ".join(argv)
    assert rc == 2, f"{shown} ({bad.what}): exit status {rc}, expected 2; stderr {err!r}"
    assert "Traceback" not in err, f"{shown}: traceback on stderr: {err}"
    lines = err.strip().splitlines()
    if bad.argparse:  # argparse's own refusal: one line with the subcommand's prog, no usage block
        assert len(lines) == 1 and lines[0].startswith(f"causal-grad {cmd}: error: "), (
            f"{shown}: expected one line 'causal-grad {cmd}: error: …', got {err!r}"
        )
        return
    assert len(lines) == 1 and lines[0].startswith("causal-grad: error: "), (
        f"{shown} ({bad.what}): expected one line 'causal-grad: error: …', got {err!r}"
    )
    assert any(names_flag(lines[0], n) for n in bad.names), (
        f"{shown} ({bad.what}): the message does not name {'/'.join(bad.names)}: {lines[0]!r}"
    )


def names_flag(message: str, name: str) -> bool:
    """Whether ``message`` names ``name`` as a word or as its flag (``p_root`` or ``--p-root``)."""
    forms = {name, name.replace("_", "-"), name.lstrip("-")}
    return any(re.search(rf"(?<![\w-])(?:--)?{re.escape(f)}(?![\w])", message) for f in forms)


def test_every_subcommand_is_fuzzed():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) <= set(CASES), f"subcommands without CLI fuzz cases: {set(sub.choices) - set(CASES)}"
    assert set(sub.choices) <= set(SUBCOMMANDS)


@pytest.mark.parametrize("cmd", sorted(CASES))
def test_subcommand_refuses_bad_input(cmd, capsys):
    base, flags = CASES[cmd]
    if cmd not in next(a for a in build_parser()._actions if a.dest == "command").choices:
        pytest.skip(f"subcommand {cmd} is not in this checkout")

    @settings(max_examples=20)
    @given(st.tuples(*[f.values for f in flags]))
    def run(fragments):
        for bad, frag in zip(flags, fragments):
            check_refused(cmd, base, bad, frag, capsys)

    run()


def test_unknown_subcommand_and_missing_command(capsys):
    for argv in (["nope"], []):
        rc, err = run_main(argv, capsys)
        assert rc == 2 and "error:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, names",
    [
        (["sample", "--vocab", "1"], ("--vocab",)),
        (["mi", "--graph=-1,1"], ("parents",)),
        (["gradient", "--n", "40", "--beta0", "1"], ("S^(T-1)",)),
        (["train", "--steps", "0", "--no-progress"], ("steps",)),
        (["sample", "--seed", str(2**70)], ("seed",)),
    ],
)
def test_subprocess_one_line_no_traceback(argv, names):
    r = subprocess.run([sys.executable, "-m", "causal_grad", *argv], capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("causal-grad: error: "), r.stderr
    assert any(n in lines[0] for n in names), lines[0]
    assert r.stdout == ""
