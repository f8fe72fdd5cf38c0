"""Atomic files: the one publish by rename (exports, trained models, warm starts, sample data)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from hnm_db.errors import AlreadyExists, InvalidParams

#: What :func:`publish` does when the target already exists.
EXISTING = ("refuse", "replace", "keep")


def publish(staged: Path, target: Path, *, existing: str = "refuse") -> Path:
    """Move the finished folder or file ``staged`` onto ``target`` by rename (atomic on one file system),
    so a reader never sees half of it; returns ``target``.

    When ``target`` exists: ``refuse`` raises :class:`AlreadyExists` and leaves both; ``replace`` swaps
    the old one out first and removes it after (put back if the rename fails); ``keep`` keeps it (another
    process won the race) and removes ``staged``.
    """
    if existing not in EXISTING:
        raise InvalidParams(f"existing must be one of {', '.join(EXISTING)}, not {existing!r}")
    try:
        if not target.exists():
            os.rename(staged, target)
            return target
    except OSError:
        if not target.exists():
            raise  # not a lost race: a real failure
    if existing == "refuse":
        raise AlreadyExists(f"{target} exists")
    if existing == "keep":
        _remove(staged)
        return target
    old = target.with_name(f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.rename(target, old)
    try:
        os.rename(staged, target)
    except BaseException:
        os.rename(old, target)
        raise
    _remove(old)
    return target


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
