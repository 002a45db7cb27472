"""The ``causal-grad`` command line.

Each subcommand lives in ``causal_grad.commands.<name>`` and provides ``add_parser(subparsers)`` (which
registers its arguments and sets ``func``). The command modules import JAX and the numerical modules inside
their ``run()`` only (the accepted exception to module-level imports, so that startup stays fast), and the
package namespace is lazy (:mod:`causal_grad`), so parsing and the checks of the flags run before JAX is
imported: a bad flag answers in a fraction of a second.

Every error prints one line and exits with status 2, never a traceback: argparse's own errors as
``causal-grad <subcommand>: error: …`` (the subcommand's prog, a mistyped flag with the closest one suggested),
and the values a subcommand refuses as ``causal-grad: error: …`` naming the flag (``--vocab``, not the Python
parameter ``vocab_size``).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import importlib.util
import re
import sys

from .devices import use_all_cores
from .progress import quiet_progress

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

# In the order they appear in --help.
SUBCOMMANDS = ("sample", "mi", "gradient", "train", "plot", "compare", "verify", "figures", "bench")

#: Python parameter names (as the library's messages say them) -> the flag that sets them, where they differ
#: from the flag's own ``dest``.
PARAMETER_FLAGS = {"vocab_size": "--vocab", "vocab": "--vocab", "num_pis": "--num-pi", "k": "--draws"}


class _Parser(argparse.ArgumentParser):
    """One-line errors: ``<prog>: error: <message>`` (no usage block), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="causal-grad",
        description="Exact gradients, mutual-information theory and fast training for 'How Transformers Learn "
        "Causal Structure with Gradient Descent' (Nichani, Damian, Lee, ICML 2024).",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="JAX host CPU devices (default: one per core, training data-parallel over them; 1 = one "
        "device, as plain JAX; the environment variable CAUSAL_GRAD_CPU_DEVICES does the same)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        modname = f"causal_grad.commands.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).add_parser(sub)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def _unrecognized(sub: argparse.ArgumentParser, extras: list[str]) -> str:
    """``unrecognized arguments: …``, with the closest known flag for each mistyped one."""
    flags = sorted(s for s in sub._option_string_actions if s.startswith("--"))
    hints = []
    for tok in extras:
        if tok.startswith("-"):
            close = difflib.get_close_matches(tok.split("=", 1)[0], flags, n=1, cutoff=0.6)
            if close:
                hints.append((tok.split("=", 1)[0], close[0]))
    msg = f"unrecognized arguments: {' '.join(extras)}"
    if len(hints) == 1:
        return msg + f"; did you mean {hints[0][1]}?"
    return msg + (f"; did you mean {', '.join(f'{c} for {t}' for t, c in hints)}?" if hints else "")


def _flag_message(message: str, sub: argparse.ArgumentParser) -> str:
    """``message`` with the Python parameter names of the subcommand's options replaced by their flags: the
    leading word when it is an option's ``dest`` (``steps must be …`` -> ``--steps must be …``) and, anywhere,
    names with an underscore (``eval_size``) or listed in :data:`PARAMETER_FLAGS` at the start."""
    flags = {}
    for action in sub._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs:
            flags[action.dest] = longs[0]
    lead = dict(flags, **{k: v for k, v in PARAMETER_FLAGS.items() if v in sub._option_string_actions})

    def first(m: re.Match[str]) -> str:
        return lead.get(m.group(1), m.group(1))

    message = re.sub(r"^([A-Za-z_][A-Za-z0-9_]*)(?![\w-])", first, message)
    for dest, flag in flags.items():
        if "_" in dest:
            message = re.sub(rf"(?<![\w-]){re.escape(dest)}(?![\w-])", flag, message)
    if "vocab_size" in message and "--vocab" in sub._option_string_actions:
        message = re.sub(r"(?<![\w-])vocab_size(?![\w-])", "--vocab", message)
    return message


def main(argv=None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    sub = _subparser(parser, getattr(args, "command", None))
    if extras:
        sub.error(_unrecognized(sub, extras))
    if args.devices is not None and args.devices < 1:
        parser.error(f"argument --devices: must be an integer >= 1 (1 = one CPU device), got {args.devices}")
    try:
        # every core by default (one host CPU device each), set before JAX is imported (devices does not import it)
        use_all_cores(args.devices)
        # a subcommand's --no-progress hides every progress bar of the job (causal_grad.progress)
        with quiet_progress() if getattr(args, "no_progress", False) else contextlib.nullcontext():
            rc = args.func(args)
    except (ValueError, TypeError) as exc:
        msg = " ".join(str(exc).split("\n"))
        print(f"causal-grad: error: {_flag_message(msg, sub)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM during training (TrainingInterrupted)
        detail = str(exc)
        print(f"causal-grad: interrupted{': ' + detail if detail else ''}", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
