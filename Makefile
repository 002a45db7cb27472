# causal_grad — the jobs (install, test, verify, bench, figures; lint, docs). PYTHON may point at a virtual environment's interpreter.
PYTHON ?= python3
PYTEST_WORKERS ?= 2

.PHONY: install install-interop test test-fast verify bench figures studies lint format docs docs-serve clean

# The package with the test, lint and documentation tools (the dev and docs extras).
install:
	$(PYTHON) -m pip install -e ".[dev,docs]"

# The interop extra (torch + TransformerLens) for the TransformerLens export and its tests (skipped without it);
# CI installs it. TORCH picks the torch build: 2.13.0, the CPU wheel where the machine keeps one (as CI's does),
# otherwise PyPI's build for the platform (on Linux a CUDA one of several GB); e.g. TORCH="torch>=2.1".
TORCH ?= torch==2.13.0
install-interop:
	$(PYTHON) -m pip install "$(TORCH)" -e ".[interop]"

# The whole suite, derandomised hypothesis profile, two workers; multi-device tests run in subprocesses.
test:
	HYPOTHESIS_PROFILE=ci $(PYTHON) -m pytest -n $(PYTEST_WORKERS) -q

test-fast:
	HYPOTHESIS_PROFILE=ci $(PYTHON) -m pytest -n $(PYTEST_WORKERS) -q -m "not slow"

# Check every claim C1-C9 and the sample-complexity study SC at quick scale; writes results/verify.md and figures.
verify:
	$(PYTHON) -m causal_grad verify

# Every speed figure beside its target; writes results/bench.md (date, machine, JAX version, every row).
bench:
	$(PYTHON) -m causal_grad bench --out results/bench.md

# The paper's figures (2, 6, 5/7, 8, 9) at the paper's settings, with a gallery in results/gallery (docs/figures/ holds
# one such run); resumable (checkpoints under results/<name>/runs/).
figures:
	$(PYTHON) -m causal_grad figures --full --paper --gallery results/gallery

# The studies (sample complexity, OOD, finite-T departure, ICL-MC) at their full sizes (hours on a 2-core CPU).
studies:
	$(PYTHON) -m causal_grad figures --full sample_complexity ood finite_t_departure icl_mc

# ruff (lint, then the formatting check) and pyright (basic mode) on the package; configured in pyproject.toml.
lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pyright --pythonpath "$$($(PYTHON) -c 'import sys; print(sys.executable)')" causal_grad

# Apply ruff's safe fixes and its formatting (then run make lint).
format:
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

# The documentation site (theory, guide, API reference from the docstrings) into site/, warnings as errors.
docs:
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict

docs-serve:
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs serve

clean:
	rm -rf results site .pytest_cache .hypothesis build *.egg-info
