"""Shared test configuration: a derandomised hypothesis profile (reproducible CI) and golden-value loading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# One CPU device in the test processes (and the subprocesses they start), whatever the machine: the golden numbers
# and the bitwise references of the determinism tests are single-device float32 results, and data parallelism sums
# the batch in another order (equal to float32 rounding only). The CLI and causal_grad.devices.use_all_cores would
# otherwise give JAX one device per core; tests of the multi-device paths ask for them explicitly
# (tests/test_devices.py clears this variable in its subprocesses).
os.environ.setdefault("CAUSAL_GRAD_CPU_DEVICES", "1")

# One persistent XLA compilation cache for the test processes and every subprocess they start (inherited through
# the environment; JAX reads these variables at import). Most of the suite's time is XLA compiling the same small
# programs again in another worker or a fresh `causal-grad` subprocess; a cached executable is the same executable,
# so no number changes. Fresh (empty) on a new machine such as CI's; delete .cache/ to start cold locally.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "jax-tests"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# The tests' programs are compiled with LLVM's optimisation level 0 (XLA's own HLO passes are unchanged). On a
# fresh machine most of the suite's time is compiling, and level 0 compiles about a third faster
# (tests/test_training.py with tests/test_models.py, cold cache: 88 s against 132 s); the programs are small, so
# running them unoptimised costs little. LLVM keeps IEEE semantics at every level (no reassociation without
# fast-math, which XLA leaves off), so the values are the same. Subprocesses that set their own XLA_FLAGS (the
# multi-device tests) compile at the default level.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIRS = [REPO.parent / "shared" / "golden", REPO / "tests" / "golden"]


def golden_names() -> list[str]:
    for d in GOLDEN_DIRS:
        if d.is_dir():
            return sorted(p.stem for p in d.glob("*.json"))
    return []


def load_golden(name: str) -> dict:
    for d in GOLDEN_DIRS:
        p = d / f"{name}.json"
        if p.exists():
            return json.loads(p.read_text())
    raise FileNotFoundError(name)


@pytest.fixture(params=golden_names() or ["missing"])
def golden(request):
    if request.param == "missing":
        pytest.fail("golden files not found (expected ../shared/golden or tests/golden)")
    return load_golden(request.param)


if os.environ.get("CAUSAL_GRAD_COMPILE_LOG"):  # diagnostics: where the suite's XLA compile time goes
    import logging

    _h = logging.FileHandler(f"{os.environ['CAUSAL_GRAD_COMPILE_LOG']}.{os.getpid()}")
    _h.setLevel(logging.WARNING)
    logging.getLogger("jax._src.dispatch").addHandler(_h)
    logging.getLogger("jax._src.dispatch").setLevel(logging.WARNING)
    import jax

    jax.config.update("jax_log_compiles", True)  # this process only (subprocesses' output stays as tested)

    @pytest.fixture(autouse=True)
    def _mark_test(request):
        _h.stream.write(f"TEST {request.node.nodeid}\n")
        yield
