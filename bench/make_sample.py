"""Rebuild hnm_db/data/sample (the demo's corpus) from SciFact in BEIR layout, deterministically.

    python bench/make_sample.py [--source ../shared/datasets/scifact] [--out hnm_db/data/sample]

Takes ``--train-queries`` train and ``--test-queries`` test queries (seeded draw), every document they
judge relevant, then random other documents (seeded) up to ``--docs`` in all. Files keep the source's
order, so the same inputs and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def read_qrels(path: Path) -> list[tuple[str, str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return [tuple(r) for r in rows[1:]]


def pick(ids: list[str], n: int, rng: np.random.Generator) -> set[str]:
    return {ids[i] for i in rng.choice(len(ids), size=min(n, len(ids)), replace=False)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "datasets" / "scifact")
    ap.add_argument("--out", type=Path, default=ROOT / "hnm_db" / "data" / "sample")
    ap.add_argument("--train-queries", type=int, default=120)
    ap.add_argument("--test-queries", type=int, default=40)
    ap.add_argument("--docs", type=int, default=280)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    corpus_lines = (args.source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    query_lines = (args.source / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    qrels = {s: read_qrels(args.source / "qrels" / f"{s}.tsv") for s in ("train", "test")}

    chosen: dict[str, set[str]] = {}
    for split, n in (("train", args.train_queries), ("test", args.test_queries)):
        ids = sorted({q for q, _, _ in qrels[split]})
        chosen[split] = pick(ids, n, rng)
    keep_queries = chosen["train"] | chosen["test"]
    positives = {d for s in qrels for q, d, _ in qrels[s] if q in chosen[s]}
    doc_ids = [json.loads(line)["_id"] for line in corpus_lines]
    others = sorted(set(doc_ids) - positives)
    keep_docs = positives | pick(others, max(0, args.docs - len(positives)), rng)

    out = args.out
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for doc_id, line in zip(doc_ids, corpus_lines, strict=True):
            if doc_id in keep_docs:
                f.write(line + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for line in query_lines:
            if json.loads(line)["_id"] in keep_queries:
                f.write(line + "\n")
    for split, rows in qrels.items():
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="\n") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for q, d, s in rows:
                if q in chosen[split]:
                    f.write(f"{q}\t{d}\t{s}\n")

    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.suffix != ".md")
    n_qrels = {s: sum(q in chosen[s] for q, _, _ in rows) for s, rows in qrels.items()}
    print(
        f"{len(keep_docs)} documents ({len(positives)} judged), {len(chosen['train'])} train and "
        f"{len(chosen['test'])} test queries, qrels train {n_qrels['train']} test {n_qrels['test']}, "
        f"{size / 1024:.0f} KiB -> {out}"
    )


if __name__ == "__main__":
    main()
