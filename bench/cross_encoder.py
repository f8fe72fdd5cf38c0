"""Cross-encoder speed: hnm-db's length-bucketed training and scoring vs plain CrossEncoder.fit / predict.

Same pairs, same base (minilm-l6 with a fresh head), same max length, same batch size, in one process:
SciFact train queries, each with its judged document (positive) and one seeded random document
(negative). Training is one epoch of BCE on the labelled pairs (fit's default loss); scoring is raw logits
of every pair. Both sides run alternately on slices (--rounds), so other jobs' load hits both alike. Prints a markdown table and writes bench/results/cross_encoder.md.

    nice -n 10 .venv/bin/python bench/cross_encoder.py [--triplets 256] [--max-length 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
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


def train_ours(ce, examples, args) -> float:
    params = T.TrainParams(
        run="bench",
        base="-",
        out="-",
        loss="bce",
        batch_size=args.batch_size // 2,  # a triplet gives 2 labelled pairs: same pairs per step as fit
        max_length=args.max_length,
        seed=args.seed,
        lr=2e-5,
        head_lr=2e-5,
    )
    start = time.perf_counter()
    T.train_loop(ce, examples, params, device=args.device, progress=False)
    return time.perf_counter() - start


def fit_method(ce):
    """CrossEncoder.fit runs the HF Trainer, which needs `accelerate` (not a dependency of hnm-db); without
    it the pre-v4 loop old_fit is the plain baseline."""
    if importlib.util.find_spec("accelerate") is not None:
        return ce.fit, "CrossEncoder.fit"
    return ce.old_fit, "CrossEncoder.old_fit (fit needs accelerate)"


def train_fit(ce, examples, args) -> float:
    from sentence_transformers import InputExample
    from torch.utils.data import DataLoader

    data = [InputExample(texts=[e.query, e.positive], label=1.0) for e in examples]
    data += [InputExample(texts=[e.query, e.negatives[0]], label=0.0) for e in examples]
    random.Random(args.seed).shuffle(data)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
    fit, _ = fit_method(ce)
    start = time.perf_counter()
    fit(loader, epochs=1, warmup_steps=max(1, len(loader) // 10), show_progress_bar=False)
    return time.perf_counter() - start


def score_ours(ce, pairs, args) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = T.score_pairs(
        ce, [p[0] for p in pairs], [p[1] for p in pairs], batch_size=args.batch_size,
        max_length=args.max_length, device=args.device,
    )  # fmt: skip
    return time.perf_counter() - start, out


def score_predict(ce, pairs, args) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = ce.predict(
        pairs, batch_size=args.batch_size, activation_fn=torch.nn.Identity(), show_progress_bar=False
    )
    return time.perf_counter() - start, np.asarray(out, dtype=np.float64)


def interleaved(rounds: int, runs: dict, items: list) -> dict[str, float]:
    """Total seconds of each implementation over ``rounds`` slices of ``items``, alternating which runs
    first, so that load from other jobs on a shared machine hits both sides alike."""
    totals = dict.fromkeys(runs, 0.0)
    for r, idx in enumerate(np.array_split(np.arange(len(items)), rounds)):
        names = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for name in names:
            totals[name] += runs[name]([items[i] for i in idx])
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SCIFACT)
    ap.add_argument("--base", default="minilm-l6")
    ap.add_argument("--triplets", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32, help="pairs per step / per scoring batch")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=4, help="slices run alternately by both implementations")
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
    ours_ce = fresh(base, args.max_length, args.device, args.seed)
    fit_ce = fresh(base, args.max_length, args.device, args.seed)
    _, how = fit_method(fit_ce)
    train_s = interleaved(
        args.rounds,
        {"ours": lambda ex: train_ours(ours_ce, ex, args), "fit": lambda ex: train_fit(fit_ce, ex, args)},
        examples,
    )
    t_ours, t_fit = train_s["ours"], train_s["fit"]

    ce = fresh(base, args.max_length, args.device, args.seed)
    scores: dict[str, list] = {"ours": [], "predict": []}

    def timed(name, fn):
        def run(part):
            sec, out = fn(ce, part, args)
            scores[name].append(out)
            return sec

        return run

    score_s = interleaved(
        args.rounds, {"ours": timed("ours", score_ours), "predict": timed("predict", score_predict)}, pairs
    )
    s_ours, s_pred = score_s["ours"], score_s["predict"]
    agree = float(np.max(np.abs(np.concatenate(scores["ours"]) - np.concatenate(scores["predict"]))))
    qs, ps = [p[0] for p in pairs], [p[1] for p in pairs]

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
        f" ({os.cpu_count()} CPUs, shared with other jobs: compare rows, not absolute numbers); "
        f"both sides alternate over {args.rounds} slices.",
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
