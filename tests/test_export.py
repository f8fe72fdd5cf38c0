"""Export: HuggingFace datasets in sentence-transformers' layouts, loaded back and compared with SQL."""

from __future__ import annotations

from pathlib import Path

import datasets
import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml

from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, NotFound, TooFewNegatives
from hnm_db.export.datasets import ExportParams, export, size_category, source_name

TRIPLETS_SQL = """
SELECT q.text AS anchor, pc.text AS positive, nc.text AS negative, t.query_id, t.positive_chunk_id,
       t.negative_chunk_id, t.rank, t.score
FROM triplets t
JOIN mining_runs r USING (run_id)
JOIN queries q USING (query_id)
JOIN chunks pc ON pc.chunk_id = t.positive_chunk_id
JOIN chunks nc ON nc.chunk_id = t.negative_chunk_id
WHERE r.name = ?
ORDER BY t.query_id, t.positive_chunk_id, t.rank, t.negative_chunk_id
"""


def _front_matter(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def load_ids(folder: Path) -> pl.DataFrame:
    """The ``ids`` dataset of a --keep-ids export (save_to_disk layout) as a polars frame."""
    return pl.from_arrow(datasets.load_from_disk(str(folder / "ids")).data.table)


def test_triplet_export_loads_back_with_the_rows_of_sql(mined_db, tmp_path):
    out = tmp_path / "ens"
    summary = export(mined_db.store, ExportParams(runs=("ens-top",), to=out, batch_size=5))
    expected = mined_db.sql(TRIPLETS_SQL, ["ens-top"])
    count = mined_db.scalar("SELECT count(*) FROM triplets WHERE run_id = 'run-ens'")
    assert summary.rows == count == expected.height == 12
    loaded = datasets.load_from_disk(str(out))
    assert loaded.column_names == ["anchor", "positive", "negative"]
    assert loaded.num_rows == count
    assert loaded.to_dict() == expected.select("anchor", "positive", "negative").to_dict(as_series=False)
    assert summary.parquet_files == [] and not (out / "data").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_parquet_export_is_a_hub_folder_that_load_dataset_reads(mined_db, tmp_path):
    out = tmp_path / "hub"
    summary = export(
        mined_db.store, ExportParams(runs=("ens-top",), to=out, parquet=True, keep_ids=True, batch_size=5)
    )
    expected = mined_db.sql(TRIPLETS_SQL, ["ens-top"])
    assert not (out / "state.json").exists()  # load_dataset refuses a save_to_disk folder
    loaded = datasets.load_dataset(str(out), split="train")
    assert loaded.column_names == ["anchor", "positive", "negative"]
    assert loaded.to_dict() == expected.select("anchor", "positive", "negative").to_dict(as_series=False)
    assert datasets.load_dataset(str(out))["train"].num_rows == 12
    ids = datasets.load_dataset(str(out), "ids", split="train")
    assert (
        ids.column_names[:3] == loaded.column_names
        and ids["negative_chunk_id"] == expected["negative_chunk_id"].to_list()
    )
    parquet = out / "data" / "train-00000-of-00001.parquet"
    assert summary.parquet_files == [parquet, out / "ids" / "train-00000-of-00001.parquet"]
    assert pl.read_parquet(parquet).equals(expected.select("anchor", "positive", "negative"))
    assert pq.read_table(parquet).to_pydict() == loaded.to_dict()


def test_keep_ids_adds_ids_ranks_and_scores_matching_the_triplets(mined_db, tmp_path):
    summary = export(mined_db.store, ExportParams(runs=("bm25-top",), to=tmp_path / "b", keep_ids=True))
    assert datasets.load_from_disk(str(tmp_path / "b")).column_names == ["anchor", "positive", "negative"]
    loaded = load_ids(tmp_path / "b")
    assert summary.id_columns == loaded.columns == [
        "anchor", "positive", "negative", "query_id", "positive_doc_id", "positive_chunk_id",
        "negative_doc_id", "negative_chunk_id", "rank", "score", "positive_score", "run",
    ]  # fmt: skip
    expected = mined_db.sql(TRIPLETS_SQL, ["bm25-top"])
    cols = ["query_id", "positive_chunk_id", "negative_chunk_id", "rank", "score"]
    assert loaded.select(cols).to_dicts() == expected.select(cols).to_dicts()
    assert set(loaded["run"]) == {"bm25-top"}


def test_ntuple_rows_list_negatives_in_rank_order(mined_db, tmp_path):
    summary = export(
        mined_db.store, ExportParams(runs=("ens-top",), to=tmp_path / "n", layout="n-tuple", keep_ids=True)
    )
    assert datasets.load_from_disk(str(tmp_path / "n")).column_names == summary.columns == [
        "anchor", "positive", "negative_1", "negative_2", "negative_3",
    ]  # fmt: skip
    rows = load_ids(tmp_path / "n").to_dicts()
    assert summary.num_negatives == 3 and len(rows) == 4  # one row per query-positive pair
    assert list(rows[0])[:5] == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    first = rows[0]
    assert (first["query_id"], first["positive_chunk_id"]) == ("q1", "d1#0")
    assert first["negative_chunk_ids"] == ["d5#0", "d6#0", "d7#0"] and first["ranks"] == [0, 1, 2]
    texts = dict(mined_db.store.execute("SELECT chunk_id, text FROM chunks").fetchall())
    assert [first[f"negative_{i}"] for i in (1, 2, 3)] == [texts[c] for c in first["negative_chunk_ids"]]


def test_ntuple_needing_more_negatives_than_the_run_has_fails_naming_short_queries(
    mined_db, tmp_path, digest
):
    before = digest(mined_db)
    with pytest.raises(TooFewNegatives, match=r"3 negatives: 1 of 3 queries \(1 query-positive pairs\)"):
        export(
            mined_db.store,
            ExportParams(runs=("bm25-top",), to=tmp_path / "n", layout="n-tuple", num_negatives=3),
        )
    assert not (tmp_path / "n").exists()
    assert digest(mined_db) == before
    summary = export(mined_db.store, ExportParams(runs=("bm25-top",), to=tmp_path / "n", layout="n-tuple",
                                            num_negatives=3, drop_short=True))  # fmt: skip
    assert (summary.rows, summary.dropped_pairs) == (3, 1)
    assert "q2" not in datasets.load_from_disk(str(tmp_path / "n"))["anchor"][0]


def test_labeled_pair_gives_each_positive_once_then_its_negatives(mined_db, tmp_path):
    export(
        mined_db.store,
        ExportParams(runs=("random",), to=tmp_path / "p", layout="labeled-pair", keep_ids=True),
    )
    assert datasets.load_from_disk(str(tmp_path / "p")).column_names == ["query", "passage", "label"]
    rows = load_ids(tmp_path / "p").to_dicts()
    pairs = mined_db.scalar(
        "SELECT count(DISTINCT (query_id, positive_chunk_id)) FROM triplets WHERE run_id = 'run-rnd'"
    )
    triplets = mined_db.scalar("SELECT count(*) FROM triplets WHERE run_id = 'run-rnd'")
    assert len(rows) == pairs + triplets == 12
    assert [r["label"] for r in rows[:3]] == [1.0, 0.0, 0.0]
    assert [r["passage_chunk_id"] for r in rows[:3]] == ["d1#0", "d7#0", "d8#0"]
    assert list(rows[0])[:3] == ["query", "passage", "label"]


def test_several_runs_export_each_triple_once_first_run_first(mined_db, tmp_path):
    summary = export(mined_db.store, ExportParams(runs=("ens-top", "bm25-top"), to=tmp_path / "m", keep_ids=True,
                                            batch_size=2))  # fmt: skip
    distinct = mined_db.scalar(
        "SELECT count(DISTINCT (query_id, positive_chunk_id, negative_chunk_id)) FROM triplets "
        "WHERE run_id IN ('run-ens', 'run-bm25')"
    )
    loaded = load_ids(tmp_path / "m")
    assert summary.rows == loaded.height == distinct
    shared = loaded.filter((pl.col("query_id") == "q1") & (pl.col("negative_chunk_id") == "d5#0"))
    assert shared["run"].to_list() == ["ens-top"]
    order = loaded.select("query_id", "positive_chunk_id", "rank", "negative_chunk_id")
    assert order.equals(order.sort(order.columns))


def test_dataset_card_has_hub_front_matter_and_run_provenance(mined_db, tmp_path):
    export(mined_db.store, ExportParams(runs=("ens-top",), to=tmp_path / "c", parquet=True))
    meta, body = _front_matter(tmp_path / "c")
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == ["n<1K"]
    assert meta["source_datasets"] == ["extended|tiny-corpus"]  # the Hub's form for derived data
    assert meta["pretty_name"] == "Hard negatives mined by hnm-db: ens-top (triplet)"
    assert "language" not in meta and "Language: not recorded (export --language sets it)." in body
    assert "sentence-transformers" in meta["tags"] and meta["task_categories"]
    files = meta["configs"][0]["data_files"][0]
    assert files["split"] == "train"
    assert list((tmp_path / "c").glob(files["path"])) == [tmp_path / "c/data/train-00000-of-00001.parquet"]
    for fact in (
        "ensemble",
        "seed 1",
        "fp-aaaa",
        "fp-bbbb",
        "tiny-a",
        '"max_score_ratio": 0.95',
        "2025-01-01",
        "12 triplets over 3 queries",
        '"dropped_false_negatives": 2',
        "hnm-db 0.1.0",
    ):
        assert fact in body, fact


def test_card_license_falls_back_to_option_or_unknown(mined_db, tmp_path):
    mined_db.store.execute("UPDATE documents SET meta = NULL")
    export(mined_db.store, ExportParams(runs=("random",), to=tmp_path / "u"))
    assert _front_matter(tmp_path / "u")[0]["license"] == "unknown"
    assert "configs" not in _front_matter(tmp_path / "u")[0]
    export(mined_db.store, ExportParams(runs=("random",), to=tmp_path / "o", license="mit"))
    assert _front_matter(tmp_path / "o")[0]["license"] == "mit"


def test_unknown_run_is_not_found_and_lists_known_runs(mined_db, tmp_path, digest):
    before = digest(mined_db)
    with pytest.raises(NotFound, match=r"unknown mining run 'nope'; known runs: bm25-top, ens-top, random"):
        export(mined_db.store, ExportParams(runs=("ens-top", "nope"), to=tmp_path / "x"))
    assert not (tmp_path / "x").exists() and digest(mined_db) == before


def test_existing_target_is_an_error_unless_overwrite(mined_db, tmp_path, digest):
    out = tmp_path / "t"
    export(mined_db.store, ExportParams(runs=("random",), to=out))
    (out / "marker.txt").write_text("old")
    before = digest(mined_db)
    with pytest.raises(AlreadyExists, match="export folder exists: .*--overwrite"):
        export(mined_db.store, ExportParams(runs=("ens-top",), to=out))
    assert (out / "marker.txt").exists() and digest(mined_db) == before
    export(mined_db.store, ExportParams(runs=("ens-top",), to=out, overwrite=True))
    assert not (out / "marker.txt").exists()
    assert datasets.load_from_disk(str(out)).num_rows == 12
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # old copy and staging removed


def test_overwrite_refuses_a_folder_that_is_not_an_export(mined_db, tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("keep me")
    with pytest.raises(AlreadyExists, match="not an earlier export"):
        export(mined_db.store, ExportParams(runs=("random",), to=tmp_path / "home", overwrite=True))
    assert (tmp_path / "home" / "notes.txt").read_text() == "keep me"


def test_split_without_triplets_is_an_empty_selection(mined_db, tmp_path):
    with pytest.raises(EmptySelection, match="no triplets in split 'dev' \\(splits: train\\)"):
        export(mined_db.store, ExportParams(runs=("random",), to=tmp_path / "d", split="dev"))


def test_triplets_pointing_at_deleted_chunks_block_the_export(mined_db, tmp_path):
    mined_db.store.execute("DELETE FROM chunks WHERE chunk_id = 'd7#0'")
    with pytest.raises(NotFound, match="triplets of run\\(s\\) random point at queries or chunks"):
        export(mined_db.store, ExportParams(runs=("random",), to=tmp_path / "g"))
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"runs": ()}, "runs"),
        ({"layout": "pairs"}, "layout"),
        ({"num_negatives": 2}, "num_negatives"),
        ({"layout": "n-tuple", "num_negatives": 0}, "num_negatives"),
        ({"split": "../x"}, "split"),
    ],
)
def test_export_params_name_the_bad_field(kwargs, field, tmp_path):
    with pytest.raises(InvalidParams, match=f"^{field}:"):
        ExportParams(**{"runs": ("r",), "to": tmp_path, **kwargs})


def test_size_category_buckets():
    assert [size_category(n) for n in (0, 999, 1000, 2_500_000)] == ["n<1K", "n<1K", "1K<n<10K", "1M<n<10M"]


def test_source_names_in_the_card_carry_no_local_paths():
    assert source_name("/data/beir/scifact/corpus.jsonl") == "scifact"
    assert source_name("/data/papers.parquet") == "papers"
    assert source_name("https://example.org/a/b.html") == "example.org"
    assert source_name("tiny-corpus") == "tiny-corpus"


@pytest.mark.parametrize("fmt", ["triplet", "n-tuple", "labeled-pair"])
def test_small_batches_and_query_slices_give_the_same_dataset(mined_db, tmp_path, fmt):
    from hnm_db.export.datasets import _slices

    runs = ("ens-top", "random")
    args = {"runs": ["run-ens", "run-rnd"], "split": "train"}
    # batch_size=1 reads slices of about 8 triplets: q1 + q2 (5 + 5 rows), then q3
    assert _slices(mined_db.store, args, 8) == [("q1", "q2"), ("q3", "q3")]
    kw = {"num_negatives": 3} if fmt == "n-tuple" else {}
    export(
        mined_db.store,
        ExportParams(runs=runs, to=tmp_path / "a", layout=fmt, keep_ids=True, batch_size=1, **kw),
    )
    export(mined_db.store, ExportParams(runs=runs, to=tmp_path / "b", layout=fmt, keep_ids=True, **kw))
    small, whole = (load_ids(tmp_path / x).to_dicts() for x in "ab")
    assert small == whole and len(small) > 3


def test_folders_a_killed_export_left_behind_are_removed_by_the_next_one(mined_db, tmp_path):
    import os

    leftovers = [tmp_path / n for n in (".out.tmp-999999999-k1ll", ".out.old-999999999-0ld1")]
    kept = [  # a running export's folder, another target's, not ours (no PID: no hnm-db names it so)
        tmp_path / n
        for n in (f".out.tmp-{os.getpid()}-busy", ".other.tmp-999999999-x", ".out.tmpfile", ".out.tmp-ab12cd")
    ]
    for folder in leftovers + kept:
        folder.mkdir()
        (folder / "rows.arrow").write_bytes(b"partial")
    export(mined_db.store, ExportParams(runs=("random",), to=tmp_path / "out"))
    assert datasets.load_from_disk(str(tmp_path / "out")).num_rows == 8
    assert not [p for p in leftovers if p.exists()]
    assert all(p.exists() for p in kept)  # a running export's folder, another target's, not ours


def test_card_carries_license_language_and_dataset_info_is_filled(mined_db, tmp_path):
    import json

    mined_db.store.execute("""UPDATE documents SET meta = '{"license": "CC-BY-4.0", "language": "en"}'""")
    export(mined_db.store, ExportParams(runs=("ens-top",), to=tmp_path / "d"))
    meta, body = _front_matter(tmp_path / "d")
    assert (meta["license"], meta["language"]) == ("cc-by-4.0", ["en"]) and "Language: en." in body
    info = json.loads((tmp_path / "d" / "dataset_info.json").read_text())
    assert info["license"] == "cc-by-4.0"
    assert (
        info["description"].startswith("12 triplet rows of hard negatives")
        and "tiny-corpus" in info["description"]
    )
    export(
        mined_db.store,
        ExportParams(runs=("ens-top",), to=tmp_path / "o", language=("de", "fr"), license="mit"),
    )
    assert _front_matter(tmp_path / "o")[0]["language"] == ["de", "fr"]
    assert json.loads((tmp_path / "o" / "dataset_info.json").read_text())["license"] == "mit"


@pytest.mark.parametrize("parquet", [False, True])
def test_two_exports_of_one_run_are_byte_identical(mined_db, tmp_path, parquet):
    def files(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    for name in ("a", "b"):  # the card names the folder, so both are called "out"
        params = ExportParams(
            runs=("ens-top", "random"), to=tmp_path / name / "out", keep_ids=True, parquet=parquet
        )
        export(mined_db.store, params)
    first, second = files(tmp_path / "a" / "out"), files(tmp_path / "b" / "out")
    assert first.keys() == second.keys() and len(first) >= 3
    assert [k for k in first if first[k] != second[k]] == []
