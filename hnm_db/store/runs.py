"""Judgements and mining runs as every stage reads them: the one qrels read, the run record mining and
denoising write, and the one lookup of a run by name."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from hnm_db._version import __version__
from hnm_db.errors import NotFound
from hnm_db.store.connection import Store


# -- judgements: the one qrels read ----------------------------------------------------------------------
def effective_qrels(db: Store, split: str) -> dict[str, dict[str, int]]:
    """query -> {doc: graded score} of ``split``, judgements counted in their effective split (the
    ``effective_qrels`` view: qrels ingested without a split count in the split ``hnm-db split`` gave
    their query)."""
    qrels: dict[str, dict[str, int]] = {}
    for qid, doc, score in db.execute(
        "SELECT query_id, doc_id, score FROM effective_qrels WHERE split = ? ORDER BY query_id, doc_id",
        [split],
    ).fetchall():
        qrels.setdefault(qid, {})[doc] = int(score)
    return qrels


# -- mining runs: the record every writer stores ------------------------------------------------------
@dataclass(frozen=True)
class RunRecord:
    """A ``mining_runs`` row as mining and denoising write it (``stats`` goes in beside it)."""

    run_id: str
    name: str
    method: str
    split: str
    params: dict[str, Any]
    seed: int
    ensemble_id: str | None
    cluster_run_id: str | None
    models: list[Any]
    code_version: str = __version__

    def values(self) -> dict[str, Any]:
        """Column -> value, the JSON columns as sorted-key JSON text."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["params"] = json.dumps(self.params, sort_keys=True)
        out["models"] = json.dumps(self.models, sort_keys=True)
        return out


# -- mining runs by name: the one lookup ---------------------------------------------------------------
def resolve_runs(db: Store, names: Sequence[str]) -> list[tuple[str, str]]:
    """(run_id, name) of each mining run named, in the order given; :class:`NotFound` names the missing
    ones and lists the known runs."""
    known = dict(db.execute("SELECT name, run_id FROM mining_runs ORDER BY name").fetchall())
    missing = [n for n in names if n not in known]
    if missing:
        listing = ", ".join(known) if known else "none (run hnm-db mine first)"
        raise NotFound(f"unknown mining run {', '.join(map(repr, missing))}; known runs: {listing}")
    return [(known[n], n) for n in names]


def run_id_of(db: Store, name: str) -> str:
    """The run_id of mining run ``name`` (:class:`NotFound` lists the known runs)."""
    return resolve_runs(db, [name])[0][0]


def existing_run_id(db: Store, name: str) -> str | None:
    """The run_id of mining run ``name``, or None when there is none (a name about to be written)."""
    return db.scalar("SELECT run_id FROM mining_runs WHERE name = ?", [name])


def run_record(db: Store, name: str) -> dict[str, Any]:
    """Mining run ``name``'s row, its JSON columns (params, stats, models) decoded."""
    row = db.sql("SELECT * FROM mining_runs WHERE run_id = ?", [run_id_of(db, name)]).row(0, named=True)
    for key in ("params", "stats", "models"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row
