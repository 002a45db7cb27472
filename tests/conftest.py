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
