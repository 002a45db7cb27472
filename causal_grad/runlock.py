"""One writer per run folder: the lock file ``<folder>/run.lock`` (standard library only, so the command line
checks it before JAX is imported).

A run that writes a folder (:func:`causal_grad.training.train` with ``out``) holds its lock from before any
compute until it ends. The lock file is created atomically (``os.open`` with ``O_CREAT | O_EXCL``: of two
processes that try at once exactly one succeeds) and holds the writer's process id and host name. A second
writer is refused with a :class:`RunLockedError` naming the holder's process id; a lock left behind by a process
that is no longer running (killed with SIGKILL, a crashed machine) is stale: the next writer takes it over and
says so. A lock written on another host cannot be checked from here and counts as held.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "lock_holder"]

#: The lock file's name inside a run folder.
LOCK_NAME = "run.lock"
#: A lock file found empty (its writer is between creating and writing it) counts as held for this long.
_EMPTY_GRACE_S = 30.0


class RunLockedError(ValueError):
    """Another live process holds the run folder's lock (``pid``, ``host``, ``path`` of the lock file)."""

    def __init__(self, folder: Path, pid: int | None, host: str, path: Path):
        self.folder, self.pid, self.host, self.path = folder, pid, host, path
        who = f"process {pid}" if pid is not None else "a process that is starting"
        where = "" if host in ("", socket.gethostname()) else f" on host {host}"
        super().__init__(
            f"out {folder} is being written by another run ({who}{where}, lock file {path}): wait for "
            f"it to end or choose another folder; if no such run is going, delete {path}"
        )


def _read(path: Path) -> tuple[int | None, str]:
    """``(pid, host)`` of a lock file; ``(None, "")`` when it is empty or unreadable."""
    try:
        text = path.read_text()
    except (FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError):
        return None, ""
    lines = text.split("\n")
    try:
        pid = int(lines[0])
    except ValueError:
        return None, ""
    return pid, (lines[1].strip() if len(lines) > 1 else "")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError as exc:  # pragma: no cover - platforms without signal 0
        return exc.errno != errno.ESRCH
    return True


def _holder(path: Path) -> tuple[str, int | None, str]:
    """The state of a lock file: ``("free" | "held" | "stale" | "mine", pid, host)``."""
    if not path.exists():
        return "free", None, ""
    pid, host = _read(path)
    if pid is None:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return "free", None, ""
        return ("held" if age < _EMPTY_GRACE_S else "stale"), None, host
    if host and host != socket.gethostname():
        return "held", pid, host
    if pid == os.getpid():
        return "mine", pid, host
    return ("held" if _alive(pid) else "stale"), pid, host


def lock_holder(folder: str | os.PathLike) -> int | None:
    """The process id holding ``folder``'s lock, or ``None`` when the folder is free (no lock, a stale one, or
    this process's own); ``-1`` for a holder whose process id is not written yet. Nothing is changed."""
    if isinstance(folder, bool) or not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path (str or os.PathLike), got {type(folder).__name__}")
    state, pid, _ = _holder(Path(folder) / LOCK_NAME)
    if state != "held":
        return None
    return -1 if pid is None else pid


class RunLock:
    """The lock of run folder ``folder`` (created if missing), as a context manager: ``with RunLock(out): ...``.

    :meth:`acquire` raises :class:`RunLockedError` when another live process holds it, takes over a stale lock
    (``echo`` says whose), and is re-entrant within one process (a nested acquire of a folder this process holds
    is refused too: one writer, even in one process). :meth:`release` removes the file if it is still this
    process's."""

    def __init__(self, folder: str | os.PathLike, *, echo: Callable[[str], None] | None = None):
        if isinstance(folder, bool) or not isinstance(folder, (str, os.PathLike)):
            raise TypeError(f"folder must be a path (str or os.PathLike), got {type(folder).__name__}")
        if echo is not None and not callable(echo):
            raise TypeError(f"echo must be callable, got {type(echo).__name__}")
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._echo = echo
        self.held = False

    def acquire(self) -> RunLock:
        if self.held:
            raise RuntimeError(f"the lock {self.path} is already held by this RunLock")
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(8):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                state, pid, host = _holder(self.path)
                if state in ("held", "mine"):
                    raise RunLockedError(self.folder, pid, host, self.path) from None
                if state == "stale":
                    who = f"process {pid}" if pid is not None else "a process that never wrote its id"
                    if self._echo is not None:
                        self._echo(f"taking over the stale lock {self.path} of {who}, which is no longer running")
                    if _read(self.path) == (pid, host):  # still the stale one (not a new writer's): remove it
                        try:
                            os.unlink(self.path)
                        except FileNotFoundError:
                            pass
                continue
            try:
                os.write(fd, f"{os.getpid()}\n{socket.gethostname()}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self.held = True
            return self
        raise RunLockedError(self.folder, None, "", self.path)  # pragma: no cover - a lock that keeps changing

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        pid, _ = _read(self.path)
        if pid == os.getpid():
            try:
                os.unlink(self.path)
            except FileNotFoundError:  # pragma: no cover
                pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunLock({str(self.folder)!r}, held={self.held})"
