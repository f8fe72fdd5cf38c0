"""SQL files shipped inside the package (``hnm_db/sql`` links to the top-level ``sql/`` folder).

Read through ``importlib.resources`` so a wheel install works the same as a checkout.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable

_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def _sql_dir() -> Traversable:
    return resources.files("hnm_db") / "sql"


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in sql/migrations, in version order."""
    found = []
    for entry in (_sql_dir() / "migrations").iterdir():
        m = _MIGRATION.match(entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in sql/migrations: {versions}")
    return found


def sql_files(folder: str) -> dict[str, str]:
    """name (without .sql) -> text for every .sql file in sql/<folder>, sorted by name."""
    out = {}
    for entry in sorted((_sql_dir() / folder).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            out[entry.name[:-4]] = entry.read_text(encoding="utf-8")
    return out


def sql_file(folder: str, name: str) -> str:
    """The text of sql/<folder>/<name>.sql."""
    return (_sql_dir() / folder / f"{name}.sql").read_text(encoding="utf-8")
