"""causal_grad.logs: metrics.csv, TensorBoard event files read back with tensorboard's reader, wandb offline."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from causal_grad import logs


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_csv_rows_columns_and_new_keys(tmp_path):
    with logs.CSVWriter(tmp_path) as w:
        w.write(0, {"loss": 2.5, "lr": np.float32(0.5)})
        w.write(10, {"loss": float("nan")})  # lr missing: empty cell
        w.write(20, {"loss": 1.25, "lr": 0.25, "excess": 0.1})  # new key: widens the file
    rows = _read(tmp_path / "metrics.csv")
    assert rows == [
        ["step", "loss", "lr", "excess"],
        ["0", "2.5", "0.5", ""],
        ["10", "nan", "", ""],
        ["20", "1.25", "0.25", "0.1"],
    ]


def test_csv_strict_refuses_new_keys_and_bad_values(tmp_path):
    w = logs.CSVWriter(tmp_path / "m.csv", strict=True)
    w.write(0, {"loss": 1.0})
    with pytest.raises(ValueError, match="new key.*excess.*strict"):
        w.write(1, {"loss": 1.0, "excess": 0.0})
    with pytest.raises(TypeError, match=r"metrics\['heads'\] must be a real number"):
        w.write(1, {"heads": {"split": True}})
    with pytest.raises(TypeError, match="step must be a non-negative int"):
        w.write(-1, {"loss": 1.0})
    with pytest.raises(ValueError, match="'step' is the step column"):
        w.write(2, {"step": 3})
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(3, {"loss": 1.0})
    assert _read(tmp_path / "m.csv") == [["step", "loss"], ["0", "1.0"]]


def test_csv_resume_keeps_rows_up_to_the_step(tmp_path):
    with logs.CSVWriter(tmp_path) as w:
        for s in range(5):
            w.write(s * 10, {"loss": float(s)})
    with logs.CSVWriter(tmp_path, resume_from=20) as w:
        w.write(30, {"loss": 9.0})
    assert [r[0] for r in _read(tmp_path / "metrics.csv")] == ["step", "0", "10", "20", "30"]
    assert _read(tmp_path / "metrics.csv")[-1] == ["30", "9.0"]


def test_flatten_metrics():
    row = {
        "step": 5,
        "loss": 2.0,
        "name": "x",
        "heads": {"split": True, "weight": [[0.9, 0.1]]},
        "none": None,
        "arr": np.array([1, 2]),
    }
    assert logs.flatten_metrics(row) == {
        "loss": 2.0,
        "heads/split": 1.0,
        "heads/weight/0/0": 0.9,
        "heads/weight/0/1": 0.1,
        "arr/0": 1.0,
        "arr/1": 2.0,
    }


def test_open_writers_validates_the_kinds(tmp_path):
    with pytest.raises(ValueError, match="log must name writers among tensorboard, wandb"):
        logs.open_writers(tmp_path, log=["tensorbored"])
    with logs.open_writers(tmp_path / "run") as w:
        w.write(1, {"loss": 1.0})
    assert (tmp_path / "run" / "metrics.csv").exists()


def test_tensorboard_events_read_back_with_tensorboards_reader(tmp_path):
    pytest.importorskip("tensorboardX")
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    values = {0: 3.25, 50: 2.5, 100: 1.875}
    with logs.open_writers(tmp_path, log="tensorboard") as w:
        for s, v in values.items():
            w.write(s, {"loss": v, "parent_attention": v / 4})
    acc = ea_mod.EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"loss", "parent_attention"}
    got = {e.step: e.value for e in acc.Scalars("loss")}
    assert got == values  # exact in float32
    np.testing.assert_allclose(
        [e.value for e in acc.Scalars("parent_attention")], np.float32([v / 4 for v in values.values()]), rtol=0, atol=0
    )


def test_wandb_offline_run(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    w = logs.WandbWriter(project="causal_grad_test", name="t", config={"lr": 0.1}, dir=tmp_path)
    run = w.run
    w.write(0, {"loss": 2.0})
    w.write(5, {"loss": 1.5, "excess": 0.25})
    assert run.summary["loss"] == 1.5 and run.summary["excess"] == 0.25
    assert run.config["lr"] == 0.1
    w.close()
    assert w.run is None
    files = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1 and files[0].stat().st_size > 0
    del wandb


def test_attention_snapshots_round_trip_and_resume(tmp_path):
    s = logs.AttentionSnapshots()
    for k in range(3):
        s.add(10 * k, np.full((2, 4, 4), k / 4))
    with pytest.raises(ValueError, match="step must increase"):
        s.add(5, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="differs from the first"):
        s.add(40, np.zeros((1, 4, 4)))
    path = s.save(tmp_path / "attention.npz")
    steps, att = logs.load_snapshots(path)
    assert steps.tolist() == [0, 10, 20] and att.shape == (3, 2, 4, 4) and att.dtype == np.float32
    assert len(logs.AttentionSnapshots.load(path, up_to=10)) == 2
    with pytest.raises(ValueError, match="no attention snapshot file"):
        logs.load_snapshots(tmp_path / "nope.npz")
