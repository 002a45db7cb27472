"""The ``causal-grad`` command line.

Each subcommand lives in ``causal_grad.commands.<name>`` and provides ``add_parser(subparsers)`` (which
registers its arguments and sets ``func``). Bad input prints one line ``causal-grad: error: …`` and exits with
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import sys

from .progress import quiet_progress

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

# In the order they appear in --help.
SUBCOMMANDS = ("sample", "mi", "gradient", "train", "plot", "compare", "verify", "figures", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="causal-grad",
        description="Exact gradients, mutual-information theory and fast training for 'How Transformers Learn "
                    "Causal Structure with Gradient Descent' (Nichani, Damian, Lee, ICML 2024).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        modname = f"causal_grad.commands.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # a subcommand's --no-progress hides every progress bar of the job (causal_grad.progress)
        with quiet_progress() if getattr(args, "no_progress", False) else contextlib.nullcontext():
            rc = args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"causal-grad: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM during training (TrainingInterrupted)
        detail = str(exc)
        print(f"causal-grad: interrupted{': ' + detail if detail else ''}", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
