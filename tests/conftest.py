"""Shared fixtures: a tiny corpus, a temporary database, and a tiny random BERT that loads offline.

Nothing here downloads anything: the tokenizer is trained on the fixture text and the model weights
are random (seeded), so tests are hermetic and fast. Real models run only under the `integration` marker.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hnm_db  # noqa: E402

TOPICS = {
    "astro": ["star", "galaxy", "orbit", "telescope", "planet", "nebula", "comet", "gravity"],
    "bio": ["cell", "protein", "gene", "enzyme", "membrane", "tissue", "virus", "mutation"],
    "cook": ["flour", "oven", "butter", "sugar", "dough", "recipe", "knife", "spice"],
    "sport": ["goal", "match", "league", "coach", "striker", "stadium", "referee", "season"],
}


def _make_corpus() -> tuple[list[dict], list[dict], list[tuple[str, str, str]]]:
    """40 documents in 4 topics, 16 queries (12 train, 4 test) each judged against 1-2 documents."""
    docs, queries, qrels = [], [], []
    for t, (topic, words) in enumerate(TOPICS.items()):
        for i in range(10):
            w = [words[(i + j) % len(words)] for j in range(6)]
            text = (
                f"The {w[0]} and the {w[1]} are studied here. "
                f"Every {w[2]} relates to a {w[3]} in document {topic} {i}. "
                f"Results about {w[4]} and {w[5]} follow from these observations."
            )
            docs.append({"_id": f"{topic}-{i}", "title": f"{topic.title()} note {i}", "text": text})
        for q in range(4):
            qid = f"q-{topic}-{q}"
            queries.append({"_id": qid, "text": f"what links the {words[q]} to the {words[q + 1]}?"})
            split = "test" if q == 3 else "train"
            qrels.append((qid, f"{topic}-{q}", split))
            if q % 2 == 0:
                qrels.append((qid, f"{topic}-{q + 5}", split))
    return docs, queries, qrels


CORPUS, QUERIES, QRELS = _make_corpus()


def write_beir(folder: Path) -> Path:
    """Write the tiny corpus in BEIR layout and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for d in CORPUS:
            f.write(json.dumps(d) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in QUERIES:
            f.write(json.dumps(q) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split in ("train", "test"):
        with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid, did, s in QRELS:
                if s == split:
                    f.write(f"{qid}\t{did}\t1\n")
    return folder


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "beir")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture
def db(db_path: Path):
    database = hnm_db.open(db_path)
    yield database
    database.close()


def _all_fixture_text() -> list[str]:
    texts = [d["title"] + " " + d["text"] for d in CORPUS] + [q["text"] for q in QUERIES]
    return texts * 3


def build_tiny_model(folder: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A sentence-transformers folder: WordPiece tokenizer trained on the fixture text + random BERT."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece
    from tokenizers.processors import TemplateProcessing
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(_all_fixture_text(), WordPieceTrainer(vocab_size=400, special_tokens=special))
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    hf_tok.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    transformer = models.Transformer(str(folder), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-d, 2-layer random BERT sentence-transformers folder (session-wide, built once)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-a", seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model (48-d, other seed) so ensembles can mix dimensions."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-b", seed=1, hidden=48)
