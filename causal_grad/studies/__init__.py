"""The studies beyond the paper's figures (docs/theory.md §6, §7), one module each, with a public
``run(quick, out, seed=0, *, smoke=False) -> dict`` that computes the study and writes its PNG and JSON:

* :mod:`causal_grad.studies.sample_complexity` — sequences needed to recover a tree: the gradient at
  initialisation, a trained model, Chow–Liu (row SC of ``causal-grad verify``);
* :mod:`causal_grad.studies.finite_t_departure` — the exact finite-T gradient against M as T grows (C1);
* :mod:`causal_grad.studies.ood` — models trained on Dirichlet(0.1) evaluated on other priors (C8);
* :mod:`causal_grad.studies.common` — what they share (summaries, training runs, modes).

The scripts ``experiments/{sample_complexity,finite_t_departure,ood}.py`` are thin command-line wrappers around
them (``--quick``, ``--out``, ``--seed``).
"""

__all__: list[str] = []
