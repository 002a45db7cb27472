"""Data parallelism: the same loss trajectory on 8 (forced host) devices as on one.

The main test process has one device, so the check runs in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``; inside it the same configuration is trained on a mesh
of one device and on a mesh of all eight: the disentangled model (two chunks, 30 AdamW steps), the reduced model
with a frozen group (A2 during stage 1 of the layer-wise schedule) and the flax standard transformer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, jax, numpy as np
from causal_grad.graphs import random_tree
from causal_grad.task import InContextTask
from causal_grad.models import build_model, disentangled, reduced, standard
from causal_grad.training.loop import ChunkRunner, task_sampler
from causal_grad.training.schedules import make_optimizer
from causal_grad.training.sharding import check_batch_divisible, data_mesh

task = InContextTask(random_tree(jax.random.key(0), 7), 5, 0.1)
spec = build_model(disentangled.Config(heads=(2, 1), init="normal", init_scale=1e-2), 5, 8)
p0 = spec.init(jax.random.key(1))
out = {"devices": len(jax.devices())}
for n in (1, 8):
    r = ChunkRunner(spec.loss, task_sampler(task), make_optimizer("adamw", 3e-2, 30), p0, spec.groups(p0),
                    spec.group_names, 64, mesh=data_mesh(jax.devices()[:n]), max_chunk=15)
    st = r.init_state(p0)
    losses = []
    for _ in range(2):
        st, l = r(st, jax.random.key(7), 15)
        losses += np.asarray(l).tolist()
    out[n] = {"losses": losses, "params": [np.asarray(a).ravel().tolist() for a in jax.tree.leaves(st.params)],
              "all_reduce": "all-reduce" in r.compile(st, jax.random.key(7)).as_text(),
              "param_devices": len(jax.tree.leaves(st.params)[0].sharding.device_set)}
# the other models and a frozen group (stage 1 of the layer-wise schedule trains A1 only), one chunk each
out["others"] = {}
others = (("reduced", reduced.Config(), ("A1",)), ("standard", standard.Config(d_model=16), ("all",)))
for name, mc, trainable in others:
    sp = build_model(mc, 5, 8)
    q0 = sp.init(jax.random.key(2))
    runs = []
    for n in (1, 8):
        r = ChunkRunner(sp.loss, task_sampler(task), make_optimizer("adamw", 3e-2, 30), q0, sp.groups(q0),
                        trainable, 64, mesh=data_mesh(jax.devices()[:n]), max_chunk=10)
        st, l = r(r.init_state(q0), jax.random.key(8), 10)
        runs.append({"losses": np.asarray(l).tolist(),
                     "params": [np.asarray(a).ravel().tolist() for a in jax.tree.leaves(st.params)]})
    out["others"][name] = runs
try:
    check_batch_divisible(100, data_mesh())  # 100 sequences cannot be split evenly over 8 devices
    out["indivisible_raises"] = False
except ValueError as exc:
    out["indivisible_raises"] = "divisible by the number of devices" in str(exc)
print(json.dumps(out))
"""


@pytest.mark.multidevice
@pytest.mark.slow
def test_eight_devices_match_one():
    # eight host devices, with the suite's other XLA flags (tests/conftest.py)
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    one, eight = res["1"], res["8"]
    assert res["devices"] == 8
    assert res["indivisible_raises"]
    # the 8-device program really is data-parallel: replicated parameters, gradients all-reduced
    assert eight["all_reduce"] and eight["param_devices"] == 8
    assert not one["all_reduce"] and one["param_devices"] == 1
    # Same batches (partitionable threefry), same maths; only the order of float32 summations differs
    # (per-device partial sums, then an all-reduce), ~1e-7 relative per reduction, growing mildly over 30
    # AdamW steps.
    np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-5)
    for a, b in zip(eight["params"], one["params"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the reduced model with A2 frozen (A2 must come back unchanged) and the flax standard transformer
    for name, (o1, o8) in res["others"].items():
        np.testing.assert_allclose(o8["losses"], o1["losses"], rtol=1e-5, err_msg=name)
        for a, b in zip(o8["params"], o1["params"]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
    a2_before = np.eye(5).ravel()  # reduced model: A2 = beta0 * I, frozen in this stage
    np.testing.assert_array_equal(res["others"]["reduced"][1]["params"][1], a2_before)
