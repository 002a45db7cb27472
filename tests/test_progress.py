"""causal_grad.progress: bars shown on a terminal, hidden in pipes/CI or with --no-progress."""

from __future__ import annotations

import pytest

from causal_grad import progress as P


def test_hidden_when_not_a_terminal_and_shown_when_forced(capsys, monkeypatch):
    monkeypatch.delenv("CAUSAL_GRAD_NO_PROGRESS", raising=False)
    # pytest captures stderr: not a terminal
    assert not P.progress_enabled()
    assert list(P.progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    with P.quiet_progress(False):
        assert P.progress_enabled()
        list(P.progress(range(3), desc="shown", leave=True))
    assert "shown" in capsys.readouterr().err
    with P.quiet_progress(False), P.quiet_progress(True):
        assert not P.progress_enabled()


def test_environment_variable_and_tty(monkeypatch):
    monkeypatch.setattr(P, "_interactive", lambda: True)
    monkeypatch.delenv("CAUSAL_GRAD_NO_PROGRESS", raising=False)
    assert P.progress_enabled()
    monkeypatch.setenv("CAUSAL_GRAD_NO_PROGRESS", "1")
    assert not P.progress_enabled()
    monkeypatch.setenv("CAUSAL_GRAD_NO_PROGRESS", "0")
    assert P.progress_enabled()


def test_bad_arguments():
    with pytest.raises(ValueError, match="total"):
        P.progress(total=-1)
    with pytest.raises(TypeError, match="enabled"):
        P.progress(range(2), enabled="yes")
    with pytest.raises(TypeError, match="quiet"):
        with P.quiet_progress("no"):
            pass


def test_monte_carlo_chunks_do_not_change_a_digit(monkeypatch):
    """The Monte Carlo sums run as up to CHUNKS jitted calls (one bar update each); one call gives the same bits."""
    import jax
    import numpy as np

    from causal_grad.gradients import monte_carlo as mc
    from causal_grad.graphs import chain
    from causal_grad.task import InContextTask

    task = InContextTask(chain(4), 3, 0.5)
    T = task.seq_len
    A1 = np.asarray(jax.random.normal(jax.random.key(1), (T, T)))
    A2 = 2.0 * np.eye(3)
    runs = []
    for chunks in (1, 7):
        monkeypatch.setattr(mc, "CHUNKS", chunks)
        g = mc.monte_carlo_gradient(task, jax.random.key(0), A1, A2, eps=1e-3, num=300, batch=16)
        lin = mc.monte_carlo_linearized_at_init(task, jax.random.key(0), eps=1e-3, num=300, batch=16)
        runs.append([np.asarray(x) for x in (*g, *lin)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_an_imported_ipykernel_is_not_a_notebook(monkeypatch):
    # a test that runs a notebook imports ipykernel into this process; that must not switch bars on here
    import types

    monkeypatch.delenv("CAUSAL_GRAD_NO_PROGRESS", raising=False)
    monkeypatch.setitem(P.sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setitem(P.sys.modules, "IPython", fake_ipython)
    assert not P._in_jupyter_kernel()
    fake_ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # type: ignore[attr-defined]
    assert P._in_jupyter_kernel()
