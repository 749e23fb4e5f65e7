"""Reading and writing the trainer's files safely: hashes, one lock, atomic replacement.

``write_lock(root)`` serialises every write of the workbench across threads and processes on
this machine (``fcntl.flock`` on ``var/traener.lock`` under the trainer root, plus a thread
lock, since flock is per open file). An edit form carries ``digest()`` of the text the trainer
started from; ``Conflict`` says somebody saved a change in between.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

_thread_lock = threading.RLock()
_held = threading.local()  # how deep this thread is inside write_lock (flock is taken once)


class TrainerError(ValueError):
    """Something the trainer can fix; ``str()`` is a Danish sentence for the page."""

    status = 400


class Conflict(TrainerError):
    """Somebody else saved a change since this trainer loaded what she edits."""

    status = 409


class NotFound(TrainerError):
    status = 404


def digest(text: Optional[str]) -> str:
    """A short fingerprint of a text (what a trainer saw when she started editing)."""
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()[:16]


@contextmanager
def write_lock(root: Path) -> Iterator[None]:
    """Hold the workbench's write lock for ``root`` (re-entrant within a thread)."""
    with _thread_lock:
        depth = getattr(_held, "depth", 0)
        if depth:
            _held.depth = depth + 1
            try:
                yield
            finally:
                _held.depth = depth
            return
        lock_dir = root / "var"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / "traener.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            _held.depth = 1
            try:
                yield
            finally:
                _held.depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a reader never sees half a file), keeping its permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777)
    except FileNotFoundError:
        pass
    os.replace(tmp, path)


def shown(root: Path, path: Path) -> str:
    """``path`` relative to the checkout, as a trainer sees it in ``git diff``."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
