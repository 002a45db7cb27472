"""One module per ``causal-grad`` subcommand; see :mod:`causal_grad.cli`."""
