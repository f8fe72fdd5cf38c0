"""Cross-encoder speed: hnm-db's length-bucketed training and scoring vs plain CrossEncoder.fit / predict.

Same pairs, same base (minilm-l6 with a fresh head), same max length, same batch size, in one process:
SciFact train queries, each with its judged document (positive) and one seeded random document
(negative). Training is one epoch of BCE on the labelled pairs (fit's default loss); scoring is raw logits
of every pair. Prints a markdown table and writes bench/results/cross_encoder.md.

    nice -n 10 .venv/bin/python bench/cross_encoder.py [--triplets 256] [--max-length 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hnm_db import train as T  # noqa: E402

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "scifact"


def load_triplets(folder: Path, n: int, seed: int) -> list[T.Example]:
    """(query, judged document, random other document) for the first n judged train pairs."""
    docs = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs[d["_id"]] = (d.get("title", "") + " " + d["text"]).strip()
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels = []
    with open(folder / "qrels" / "train.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0 and qid in queries and did in docs:
                qrels.append((qid, did))
    rng = np.random.default_rng(seed)
    ids = sorted(docs)
    judged = {(q, d) for q, d in qrels}
    out = []
    for qid, did in qrels[:n]:
        neg = ids[int(rng.integers(len(ids)))]
        while (qid, neg) in judged:
            neg = ids[int(rng.integers(len(ids)))]
        out.append(T.Example(queries[qid], docs[did], (docs[neg],)))
    return out


def padding_share(
    tokenizer, pairs: list[tuple[str, str]], batches: list[list[int]], max_length: int
) -> float:
    """Share of pad tokens over all positions fed to the model for the given batching."""
    lengths = [
        len(x)
        for x in tokenizer(
            [p[0] for p in pairs], [p[1] for p in pairs], truncation="longest_first", max_length=max_length
        )["input_ids"]
    ]
    real = sum(lengths)
    fed = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - real / fed


def fresh(base: Path, max_length: int, device: str, seed: int):
    return T.load_cross_encoder(base, max_length=max_length, device=device, seed=seed)


def warm_up(base, pairs, args) -> None:
    ce = fresh(base, args.max_length, args.device, args.seed)
    enc = T.tokenize_pairs(
        ce.tokenizer, [p[0] for p in pairs], [p[1] for p in pairs], args.max_length, args.device
    )
    ce.model.train()
    ce.model(**enc).logits.sum().backward()


def bench_train_ours(base, examples, args, device) -> tuple[float, float]:
    ce = fresh(base, args.max_length, device, args.seed)
    params = T.TrainParams(
        run="bench",
        base=str(base),
        out="-",
        loss="bce",
        batch_size=args.batch_size // 2,
        max_length=args.max_length,
        seed=args.seed,
        lr=2e-5,
        head_lr=2e-5,
    )
    start = time.perf_counter()
    curve = T.train_loop(ce, examples, params, device=device, progress=False)
    return time.perf_counter() - start, float(np.mean(curve[-5:]))


def bench_train_fit(base, examples, args, device) -> tuple[float, str]:
    """CrossEncoder.fit (the HF Trainer path); falls back to old_fit when accelerate is missing."""
    from sentence_transformers import InputExample
    from torch.utils.data import DataLoader

    ce = fresh(base, args.max_length, device, args.seed)
    data = [InputExample(texts=[e.query, e.positive], label=1.0) for e in examples]
    data += [InputExample(texts=[e.query, e.negatives[0]], label=0.0) for e in examples]
    random.Random(args.seed).shuffle(data)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
    kwargs = dict(epochs=1, warmup_steps=max(1, len(loader) // 10), show_progress_bar=False)
    start = time.perf_counter()
    try:
        ce.fit(loader, **kwargs)
        how = "CrossEncoder.fit"
    except ImportError as exc:  # the Trainer needs `accelerate`, which hnm-db does not depend on
        print(
            f"note: CrossEncoder.fit unavailable ({str(exc).splitlines()[0][:80]}); using old_fit",
            file=sys.stderr,
        )
        loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
        start = time.perf_counter()
        ce.old_fit(loader, **kwargs)
        how = "CrossEncoder.old_fit (fit needs accelerate)"
    return time.perf_counter() - start, how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SCIFACT)
    ap.add_argument("--base", default="minilm-l6")
    ap.add_argument("--triplets", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32, help="pairs per step / per scoring batch")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cross_encoder.md")
    args = ap.parse_args()

    base = T.resolve_base(None, args.base)
    examples = load_triplets(args.data, args.triplets, args.seed)
    pairs = [(e.query, p) for e in examples for p in (e.positive, e.negatives[0])]
    n = len(pairs)
    print(
        f"{len(examples)} triplets = {n} pairs, base {args.base}, max_length {args.max_length}, "
        f"batch {args.batch_size} pairs, torch threads {torch.get_num_threads()}, device {args.device}",
        file=sys.stderr,
    )

    warm_up(base, pairs[: args.batch_size], args)  # first-call costs (allocator, kernels) hit neither side
    t_ours, _ = bench_train_ours(base, examples, args, args.device)
    t_fit, how = bench_train_fit(base, examples, args, args.device)

    ce = fresh(base, args.max_length, args.device, args.seed)
    qs, ps = [p[0] for p in pairs], [p[1] for p in pairs]
    start = time.perf_counter()
    ours = T.score_pairs(
        ce, qs, ps, batch_size=args.batch_size, max_length=args.max_length, device=args.device
    )
    s_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = ce.predict(
        pairs, batch_size=args.batch_size, activation_fn=torch.nn.Identity(), show_progress_bar=False
    )
    s_pred = time.perf_counter() - start
    agree = float(np.max(np.abs(ours - np.asarray(theirs, dtype=np.float64))))

    tok = ce.tokenizer
    lengths = np.array(
        [len(x) for x in tok(qs, ps, truncation="longest_first", max_length=args.max_length)["input_ids"]]
    )
    sorted_batches = [
        list(b) for b in np.array_split(np.argsort(-lengths), int(np.ceil(n / args.batch_size)))
    ]
    random_batches = [
        list(b)
        for b in np.array_split(np.random.default_rng(0).permutation(n), int(np.ceil(n / args.batch_size)))
    ]
    pad_sorted = padding_share(tok, pairs, sorted_batches, args.max_length)
    pad_random = padding_share(tok, pairs, random_batches, args.max_length)

    rows = [
        ("train (1 epoch, BCE)", "hnm-db train_loop (length-bucketed)", n / t_ours, t_ours),
        ("train (1 epoch, BCE)", how + " (shuffled batches)", n / t_fit, t_fit),
        ("score", "hnm-db score_pairs (token-length sorted)", n / s_ours, s_ours),
        ("score", "CrossEncoder.predict", n / s_pred, s_pred),
    ]
    lines = [
        "# Cross-encoder speed (bench/cross_encoder.py)",
        "",
        f"SciFact train pairs: {n} ({len(examples)} queries x positive + random negative); base `{args.base}` "
        f"(fresh head), max length {args.max_length}, {args.batch_size} pairs per batch, device {args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
        f" ({os.cpu_count()} CPUs, shared with other jobs: compare rows, not absolute numbers).",
        "",
        "| task | implementation | pairs/s | seconds |",
        "|---|---|---:|---:|",
        *[f"| {t} | {impl} | {rate:.1f} | {sec:.1f} |" for t, impl, rate, sec in rows],
        "",
        f"Training speed-up {t_fit / t_ours:.2f}x, scoring speed-up {s_pred / s_ours:.2f}x. "
        f"Padding share of fed positions: {pad_random:.0%} with random batches, {pad_sorted:.0%} sorted by length. "
        f"Max |score difference| ours vs predict (raw logits): {agree:.2e}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
