"""causal_grad.devices: one host CPU device per core, set before JAX starts; opt-outs respected.

Each case runs in a fresh subprocess, since the device count is fixed when JAX's backend starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from causal_grad.devices import CpuDevices, core_count, use_all_cores

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = """
import json, sys
{before}
import causal_grad
from causal_grad.devices import use_all_cores
r = use_all_cores({arg})
import jax
print(json.dumps({{"set": r.devices, "reason": r.reason, "n": len(jax.devices()),
                   "platform": jax.devices()[0].platform}}))
"""


def _run(arg: str = "", before: str = "", **env):
    return _run_code(_SCRIPT.format(arg=arg, before=before), **env)


def _run_code(code: str, **env):
    e = {
        k: v
        for k, v in os.environ.items()
        if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES", "CAUSAL_GRAD_CPU_DEVICES", "JAX_PLATFORMS")
    }
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e["JAX_PLATFORMS"] = "cpu"
    e.update(env)
    r = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=e,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_default_one_device_per_core():
    out = _run()
    n = core_count()
    assert out["n"] == n
    assert out["set"] == (n if n > 1 else None)


def test_explicit_count_and_env_count():
    assert _run("3") == {"set": 3, "reason": "set", "n": 3, "platform": "cpu"}
    assert _run(CAUSAL_GRAD_CPU_DEVICES="3")["n"] == 3
    # an explicit argument wins over the environment
    assert _run("2", CAUSAL_GRAD_CPU_DEVICES="3")["n"] == 2


def test_opt_out():
    out = _run(CAUSAL_GRAD_CPU_DEVICES="1")
    assert out["n"] == 1 and out["set"] is None and "opt-out" in out["reason"]
    assert _run("1")["n"] == 1


def test_user_choices_are_kept():
    out = _run("3", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert out["n"] == 2 and out["set"] is None and "XLA_FLAGS" in out["reason"]
    out = _run("3", JAX_NUM_CPU_DEVICES="2")
    assert out["n"] == 2 and out["set"] is None


def test_import_uses_every_core_and_an_explicit_count_replaces_it():
    # import causal_grad alone (no call): one device per core, as the command line
    n = core_count()
    out = _run_code(
        "import json, causal_grad, jax\n"
        "print(json.dumps({'n': len(jax.devices()), 'set': causal_grad.CPU_DEVICES.devices}))"
    )
    assert out == {"n": n, "set": n if n > 1 else None}
    # an explicit count after the import wins (the CLI's --devices), 1 included, before and after importing JAX
    assert _run("3")["n"] == 3
    assert _run("1")["n"] == 1
    out = _run_code(
        "import json, causal_grad, jax\nfrom causal_grad.devices import use_all_cores\nr = use_all_cores(1)\n"
        "print(json.dumps({'n': len(jax.devices())}))"
    )
    assert out["n"] == 1
    # a user's own setting is not replaced by the import
    assert (
        _run_code("import json, causal_grad, jax; print(json.dumps(len(jax.devices())))", JAX_NUM_CPU_DEVICES="3") == 3
    )
    # a bad opt-out value warns at import (naming the variable) and leaves JAX alone
    out = _run_code(
        "import json, warnings\nwith warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n"
        "    import causal_grad\nimport jax\n"
        "print(json.dumps({'n': len(jax.devices()), 'w': [str(x.message) for x in w]}))",
        CAUSAL_GRAD_CPU_DEVICES="many",
    )
    assert out["n"] == 1 and any("CAUSAL_GRAD_CPU_DEVICES must be an integer" in m for m in out["w"])


def test_too_late_is_reported_not_raised():
    out = _run("3", before="import jax.numpy as jnp; jnp.zeros(1).block_until_ready()")
    assert out["n"] == 1 and out["set"] is None and "already started" in out["reason"]


def test_accelerator_platform_left_alone():
    # JAX_PLATFORMS naming an accelerator first: nothing is set (checked without starting JAX)
    code = (
        "import os; os.environ['JAX_PLATFORMS'] = 'cuda,cpu'\n"
        "from causal_grad.devices import use_all_cores; r = use_all_cores(3); print(r.devices, r.reason)"
    )
    e = dict(os.environ, PYTHONPATH=str(REPO))
    e.pop("JAX_PLATFORMS", None)
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=e, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("None accelerator"), r.stdout


def test_bad_values():
    with pytest.raises(ValueError, match="n must be >= 1"):
        use_all_cores(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        use_all_cores(2.0)  # type: ignore[arg-type]
    old = os.environ.get("CAUSAL_GRAD_CPU_DEVICES")
    os.environ["CAUSAL_GRAD_CPU_DEVICES"] = "many"
    try:
        with pytest.raises(ValueError, match="CAUSAL_GRAD_CPU_DEVICES must be an integer"):
            use_all_cores()
    finally:
        if old is None:
            del os.environ["CAUSAL_GRAD_CPU_DEVICES"]
        else:
            os.environ["CAUSAL_GRAD_CPU_DEVICES"] = old
    assert CpuDevices(2, "set").to_dict() == {"devices": 2, "reason": "set"}
