# causal_grad — the five jobs. PYTHON may point at a virtual environment's interpreter.
PYTHON ?= python3
PYTEST_WORKERS ?= 2

.PHONY: install test test-fast verify bench figures clean

install:
	$(PYTHON) -m pip install -e ".[dev]"

# The whole suite, derandomised hypothesis profile, two workers; multi-device tests run in subprocesses.
test:
	HYPOTHESIS_PROFILE=ci $(PYTHON) -m pytest -n $(PYTEST_WORKERS) -q

test-fast:
	HYPOTHESIS_PROFILE=ci $(PYTHON) -m pytest -n $(PYTEST_WORKERS) -q -m "not slow"

# Check every claim C1-C9 and the sample-complexity study SC at quick scale; writes results/verify.md and figures.
verify:
	$(PYTHON) -m causal_grad verify

bench:
	$(PYTHON) -m causal_grad bench

# Every experiment at the paper's settings (long: hours on a 2-core CPU; see docs/guide.md).
figures:
	$(PYTHON) -m causal_grad figures --full

clean:
	rm -rf results .pytest_cache .hypothesis build *.egg-info
