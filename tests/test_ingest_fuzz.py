"""Fuzzing ingest with hostile JSONL: whatever the bytes, the outcome is rows or one line naming the place.

Seeded (``random.Random``), so a failure is reproducible from its case number. Each case writes a small
JSONL file of records mixing valid values with what real exports contain: lone surrogate escapes
(``\\ud800``), NaN and Infinity, NUL characters, lists and objects where text is expected, booleans,
huge numbers, empty and whitespace-only texts, duplicate ids.
"""

from __future__ import annotations

import json
import random

import pytest
from fixtures.cli import invoke

import hnm_db
from hnm_db.errors import HnmError
from hnm_db.sources.ingest import TableSpec, ingest_table

BLOCKS, PER_BLOCK = 4, 50
CASES = BLOCKS * PER_BLOCK

_ALPHABET = "abc xyz ÄÖü é 漢字 🙂\t\n"
_ESCAPES = ["\\ud800", "\\udfff", "\\ud83d", "\\u0000", "\\u00e9", "\\ud83d\\ude42"]


def _text(rng: random.Random) -> str:
    """JSON string *source* (escapes kept as written), so surrogates reach json.loads as escapes."""
    parts = []
    for _ in range(rng.randint(0, 6)):
        if rng.random() < 0.2:
            parts.append(rng.choice(_ESCAPES))
        else:
            parts.append(json.dumps(rng.choice(_ALPHABET))[1:-1])
    return '"' + "".join(parts) + '"'


def _value(rng: random.Random) -> str:
    """A JSON value source for a field meant to hold text."""
    kind = rng.random()
    if kind < 0.55:
        return _text(rng)
    return rng.choice(
        ["NaN", "Infinity", "-Infinity", "null", "true", "12", "1e400", "-0.5", "[]", '["a", 1]', '{"k": "v"}',
         '""', '"   "', "12345678901234567890123"]
    )  # fmt: skip


def _record(rng: random.Random, i: int) -> str:
    fields = {
        "_id": _value(rng) if rng.random() < 0.3 else json.dumps(f"d{rng.randint(0, i + 2)}"),
        "text": _value(rng),
    }
    if rng.random() < 0.5:
        fields["title"] = _value(rng)
    if rng.random() < 0.4:
        fields[json.loads(_text(rng)) if rng.random() < 0.1 else "extra"] = _value(rng)
    return (
        "{" + ", ".join(f"{json.dumps(k) if isinstance(k, str) else k}: {v}" for k, v in fields.items()) + "}"
    )


@pytest.mark.parametrize("block", range(BLOCKS))
def test_hostile_jsonl_gives_rows_or_one_line_naming_the_file_and_line(db, tmp_path, digest, block):
    """Cases run one after another on one database, so later ones also meet ids stored by earlier ones."""
    for case in range(block * PER_BLOCK, (block + 1) * PER_BLOCK):
        _check_case(db, tmp_path, digest, case)


def _check_case(db: hnm_db.Database, tmp_path, digest, case: int) -> None:
    rng = random.Random(case)
    lines = [_record(rng, i) for i in range(rng.randint(1, 5))]
    path = tmp_path / f"fuzz-{case}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    before = digest(db)
    try:
        ingest_table(db.store, path, TableSpec("documents", all_meta=True, on_duplicate="replace"))
    except HnmError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(path)), (case, message)
        assert " line " in message or "no records" in message, (case, message)
        assert digest(db) == before, case
        return
    for doc_id, title, text in db.store.execute("SELECT doc_id, title, text FROM documents").fetchall():
        # whatever was stored is real text: encodable, no NUL in ids, never a Python repr of a non-text
        for value in (doc_id, title, text):
            assert value is None or value.encode("utf-8"), case
        assert "\x00" not in doc_id and text.strip(), case
        assert text not in ("nan", "inf", "-inf", "True", "False") and not text.startswith(("[", "{")), case


def test_the_fuzzer_reaches_the_hostile_values():
    """The generator does produce surrogates, NaN and non-text values (so the test above means something)."""
    seen = "\n".join(_record(random.Random(c), i) for c in range(CASES) for i in range(3))
    for needle in ("\\ud800", "NaN", "Infinity", "\\u0000", '["a", 1]', "true"):
        assert needle in seen, needle


def test_a_surrogate_through_the_cli_is_one_line(tmp_path):

    path = tmp_path / "s.jsonl"
    path.write_text('{"_id": "s1", "text": "a\\ud800b"}\n', encoding="utf-8")
    db_path = tmp_path / "f.duckdb"
    hnm_db.open(db_path).close()
    result = invoke(db_path, "ingest", "jsonl", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == (
        f"Error: {path} line 1: field 'text' holds a lone surrogate \\ud800, which is not Unicode text\n"
    )
