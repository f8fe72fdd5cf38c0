"""Cut documents into the chunks that models embed and mining works on.

``chunks.text`` is exactly what a model embeds: the document's title, a newline, then a slice of the
document (``documents.text[start_char:end_char]``), so offsets always lead back to the source. Each
chunk's ``chunker`` JSON holds the parameters that made it plus the document's ``content_hash`` at the
time (``doc_hash``); a run re-chunks only documents that have no chunks, whose text changed, or whose
chunks were made with other parameters, and it replaces their chunks in one transaction.

Strategies:

- ``whole``: one chunk per document.
- ``tokens``: windows of ``size`` tokens of a model's tokenizer with ``overlap`` tokens shared, cut at
  word boundaries so re-tokenising a slice gives the same tokens. ``size`` counts the tokens of
  ``chunks.text`` without special tokens (title included), so with the model's special tokens a chunk
  always fits ``max_seq_length``; the default is the model's whole capacity.
- ``sentences``: whole sentences packed up to ``size`` characters (tokens when a model is given), with
  ``overlap`` sentences carried into the next chunk. A sentence longer than ``size`` is its own chunk in
  character mode and is split into token windows in token mode (a chunk must fit the model).
- ``lines`` and ``paragraphs``: the same packing over the text's own structure: its non-blank lines
  (a meeting transcript's turns, a list's items) or its paragraphs (blocks between blank lines: the
  sections and paragraphs that HTML, Markdown and PDF extraction leave).

A document too short to split is one chunk with every strategy, so mining always works on chunks.
A title is prepended only when it takes at most half of ``size`` (``"titled"`` in ``chunker`` says
whether it was).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from hnm_db.errors import EmptySelection, InvalidParams, ModelLoadError, UnknownIds
from hnm_db.models.registry import digest_fingerprint, file_digests, resolve_model_path, tokenizer_files
from hnm_db.options import MAX, int_or_max, param
from hnm_db.sources.text import content_hash
from hnm_db.store import Store

STRATEGIES = ("whole", "tokens", "sentences", "lines", "paragraphs")
#: The strategies that pack whole units of the text (sentences, lines, paragraphs) up to ``size``.
PACKED = ("sentences", "lines", "paragraphs")
#: Default ``size`` of the sentences strategy in character mode (token modes default to the model's capacity).
DEFAULT_SENTENCE_CHARS = 1000
#: Keys of ``chunker`` that describe one document rather than the run's parameters.
_PER_DOC_KEYS = ("doc_hash", "titled")
#: ``fits(start, end)``: whether a slice (with its title prefix) fits the model.
Fits = Callable[[int, int], bool]


@dataclass(frozen=True)
class ChunkParams:
    """How to chunk; ``size=None`` means the default of the strategy (see the module docstring)."""

    strategy: str = param(
        "whole",
        choices=STRATEGIES,
        help="whole: one chunk per document; tokens: token windows of --model's tokenizer; "
        "sentences, lines, paragraphs: whole sentences, lines or blank-line separated paragraphs packed up "
        "to --size.",
    )
    size: int | None = param(
        None,
        parse=int_or_max,
        metavar="N|max",
        help="Chunk size: tokens of the chunk text (title included, special tokens not) for --strategy "
        "tokens and for sentences with --model; characters for sentences without --model. With --model it "
        "is at most the model's max_seq_length minus its special tokens, which is also the default and "
        "what '--size max' asks for: 254 for minilm-l6, 126 for minilm-l3, 382 for mpnet-base "
        "(max_seq_length 256, 128, 384, minus 2). Default without --model: 1000 characters.",
    )
    overlap: int = param(
        0,
        help="Tokens shared by consecutive windows (tokens), or sentences, lines or paragraphs carried over "
        "(the packing strategies).",
    )
    model: str | None = param(
        None,
        help="Model name, built-in alias or folder whose tokenizer counts tokens (required by tokens; with "
        "sentences it makes --size count tokens and splits an overlong sentence into token windows).",
    )
    title: bool = param(
        True,
        help="Prepend the document title and a newline to each chunk (when it takes at most half of --size).",
    )

    def __post_init__(self) -> None:
        if self.size == MAX:  # the model's whole capacity: stored as no size, which is the default
            if not self.model:
                raise InvalidParams("size 'max' needs a model (the model's capacity is the size)")
            object.__setattr__(self, "size", None)
        if self.strategy not in STRATEGIES:
            raise InvalidParams(f"strategy must be one of {', '.join(STRATEGIES)} (got {self.strategy!r})")
        if self.size is not None and self.size <= 0:
            raise InvalidParams(f"size must be > 0 (got {self.size})")
        if self.overlap < 0:
            raise InvalidParams(f"overlap must be >= 0 (got {self.overlap})")
        if self.size is not None and self.overlap >= self.size:
            raise InvalidParams(f"overlap must be < size (got overlap {self.overlap}, size {self.size})")
        if self.strategy == "tokens" and not self.model:
            raise InvalidParams("model is required by the tokens strategy (a model name or folder)")
        if self.strategy == "whole" and self.model:
            raise InvalidParams("model is not used by the whole strategy (drop it)")


@dataclass(frozen=True)
class ChunkSummary:
    """What a chunk run did: documents (re)chunked, chunks written, documents left as they were,
    old chunks removed (replaced ones and those of documents that no longer exist)."""

    documents: int
    chunks: int
    unchanged: int
    removed: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------
# tokenizer


@dataclass(frozen=True)
class DocTokens:
    """A text's tokens as character offsets, and the token indices where a word starts (safe cuts)."""

    offsets: list[tuple[int, int]]
    cuts: list[int]


class TokenCounter:
    """A fast HF tokenizer used only to count tokens and map them to character offsets."""

    def __init__(self, tokenizer: Any, max_length: int, fingerprint: str, name: str) -> None:
        self.backend = tokenizer.backend_tokenizer
        self.backend.no_truncation()
        self.backend.no_padding()
        self.max_length = max_length
        self.specials = self.backend.num_special_tokens_to_add(False)
        self.fingerprint = fingerprint
        self.name = name

    @property
    def capacity(self) -> int:
        """Content tokens that fit the model next to its special tokens."""
        return self.max_length - self.specials

    def counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text without special tokens (one batched call)."""
        if not texts:
            return []
        return [len(e.ids) for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def count(self, text: str) -> int:
        return self.counts([text])[0]

    def encode_many(self, texts: Sequence[str]) -> list[DocTokens]:
        out = []
        for enc in self.backend.encode_batch(list(texts), add_special_tokens=False) if texts else []:
            words = enc.word_ids
            cuts = [i for i in range(len(words)) if i == 0 or words[i] is None or words[i] != words[i - 1]]
            out.append(DocTokens(list(enc.offsets), cuts))
        return out


def _tokenizer_fingerprint(folder: Path, max_length: int) -> str:
    """The fingerprint of the files that decide tokenisation and the window length, so another
    vocabulary never counts as unchanged (:func:`hnm_db.models.registry.digest_fingerprint`)."""
    return digest_fingerprint(file_digests(folder, files=tokenizer_files(folder)), max_length=max_length)


def _model_folder(db: Store | None, name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    return Path(resolve_model_path(db, name))


def load_tokenizer(db: Store | None, name: str) -> TokenCounter:
    """The tokenizer of a model name, alias or folder; ``max_seq_length`` from its sentence-transformers
    config (the tokenizer's ``model_max_length`` otherwise)."""
    folder = _model_folder(db, name)
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - any loader failure is the user's model, not our bug
        raise ModelLoadError(f"cannot load the tokenizer of model {name}: {exc}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"model {name} has no fast tokenizer (character offsets are needed)")
    max_length = None
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        max_length = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
    if not max_length:
        max_length = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else 512
    return TokenCounter(tokenizer, int(max_length), _tokenizer_fingerprint(folder, int(max_length)), name)


def resolve_config(params: ChunkParams, tok: TokenCounter | None) -> dict[str, Any]:
    """The run's parameters as stored in ``chunker`` (defaults filled in, model checked)."""
    if params.strategy == "whole":
        return {"strategy": "whole", "title": params.title}
    size = params.size
    if tok is not None:
        if size is None:
            size = tok.capacity
        if size > tok.capacity:
            raise InvalidParams(
                f"size {size} is more than the {tok.capacity} content tokens model {tok.name} takes "
                f"(max_seq_length {tok.max_length} minus {tok.specials} special tokens); pass --size "
                f"{tok.capacity} or --size max"
            )
    elif size is None:
        size = DEFAULT_SENTENCE_CHARS
    if params.overlap >= size:
        raise InvalidParams(f"overlap must be < size (got overlap {params.overlap}, size {size})")
    config: dict[str, Any] = {
        "strategy": params.strategy,
        "size": size,
        "overlap": params.overlap,
        "title": params.title,
        "unit": "tokens" if tok is not None else "chars",
    }
    if tok is not None:
        config.update(model=tok.name, tokenizer=tok.fingerprint, max_length=tok.max_length)
    return config


# ---------------------------------------------------------------------------------------------------
# pure cutting functions

_ABBREVIATIONS = frozenset(
    "al approx ca cf ch dr e.g eq eqs etc fig figs i.e inc jr ltd mr mrs ms no nos prof ref refs resp "
    "sec sr st vol vs".split()
)
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")
_LINE_BREAK = re.compile(r"\n")
_LAST_WORD = re.compile(r"(\S+)$")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the word ending at ``dot`` is an abbreviation ("e.g.", "et al.", "Fig.", "U.S.")."""
    m = _LAST_WORD.search(text[max(0, dot - 30) : dot])
    if not m:
        return False
    word = m.group(1).lstrip("([\"'\u201c\u2018")
    return word.lower() in _ABBREVIATIONS or bool(_DOTTED.fullmatch(word))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) in ``text``, whitespace trimmed.

    A sentence ends at ., ! or ? (plus closing quotes or brackets) followed by whitespace and a capital
    letter or digit, unless the word is a known abbreviation; every line break also ends one.
    """
    cuts = {0, len(text)}
    cuts.update(m.end() for m in _SENTENCE_END.finditer(text) if not _is_abbreviation(text, m.start()))
    cuts.update(m.start() for m in _LINE_BREAK.finditer(text))
    return _trimmed(text, sorted(cuts))


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _trimmed(text: str, bounds: Sequence[int]) -> list[tuple[int, int]]:
    """The non-blank pieces between consecutive ``bounds``, whitespace trimmed."""
    spans = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        seg = text[a:b]
        stripped = seg.strip()
        if stripped:
            start = a + (len(seg) - len(seg.lstrip()))
            spans.append((start, start + len(stripped)))
    return spans


def split_lines(text: str) -> list[tuple[int, int]]:
    """Spans of the non-blank lines of ``text``, whitespace trimmed."""
    return _trimmed(text, sorted({0, len(text), *(m.start() for m in _LINE_BREAK.finditer(text))}))


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans of the paragraphs of ``text`` (blocks between blank lines), whitespace trimmed."""
    return _trimmed(text, sorted({0, len(text), *(m.start() for m in _PARAGRAPH_BREAK.finditer(text))}))


#: How each packing strategy cuts a text into the units it packs.
UNITS: dict[str, Callable[[str], list[tuple[int, int]]]] = {
    "sentences": split_sentences,
    "lines": split_lines,
    "paragraphs": split_paragraphs,
}


def pack_sentences(
    n: int, measure: Callable[[int, int], int], budget: int, overlap: int
) -> list[tuple[int, int]]:
    """Groups [i, j) of sentences whose ``measure(i, j)`` stays within ``budget``.

    The next group starts with up to ``overlap`` sentences of the previous one, fewer when they leave
    no room for a new sentence; a group always holds at least one sentence, so an overlong sentence is
    a group of its own. Every group adds at least one new sentence, so the loop ends.
    """
    groups: list[tuple[int, int]] = []
    i = 0
    while i < n:
        j = i + 1
        while j < n and measure(i, j + 1) <= budget:
            j += 1
        groups.append((i, j))
        if j >= n:
            break
        k = max(j - overlap, i + 1)
        while k < j and measure(k, j + 1) > budget:
            k += 1
        i = k
    return groups


def token_windows(
    toks: DocTokens, t0: int, t1: int, window: int, overlap: int, fits: Fits | None = None
) -> list[tuple[int, int]]:
    """Character spans of windows of at most ``window`` tokens over tokens [t0, t1).

    Windows end at word starts (so re-tokenising a slice gives the same tokens) unless one word is longer
    than the window; the next window starts about ``overlap`` tokens back, and always moves on.
    ``fits(start, end)`` may veto a window, which then shrinks by a word.
    """
    if t1 <= t0:
        return []
    cuts = [t0, *toks.cuts[bisect.bisect_right(toks.cuts, t0) : bisect.bisect_left(toks.cuts, t1)], t1]
    off = toks.offsets
    spans: list[tuple[int, int]] = []
    s = t0
    while True:
        e = min(s + window, t1)
        if e < t1:
            at = bisect.bisect_right(cuts, e) - 1
            e = cuts[at] if cuts[at] > s else e
        while fits is not None and e - s > 1 and not fits(off[s][0], off[e - 1][1]):
            at = bisect.bisect_left(cuts, e) - 1
            e = cuts[at] if cuts[at] > s else e - 1
        spans.append((off[s][0], off[e - 1][1]))
        if e >= t1:
            return spans
        at = bisect.bisect_left(cuts, max(e - overlap, s + 1))
        s = cuts[at] if cuts[at] < e else e


# ---------------------------------------------------------------------------------------------------
# one document


def title_prefixes(
    titles: Sequence[str | None], config: dict[str, Any], tok: TokenCounter | None
) -> list[tuple[str, int]]:
    """(prefix, its size in the run's unit) per document: ``title + "\\n"`` when titles are on, the
    document has one and (except for whole) it takes at most half of ``size``; ``("", 0)`` otherwise."""
    cands = [t.strip() + "\n" if config["title"] and t and t.strip() else "" for t in titles]
    if config["strategy"] == "whole":
        return [(c, 0) for c in cands]
    units = tok.counts(cands) if tok is not None else [len(c) for c in cands]
    return [(c, u) if u <= config["size"] // 2 else ("", 0) for c, u in zip(cands, units, strict=True)]


def _packed_spans(
    text: str, strategy: str, budget: int, overlap: int, toks: DocTokens | None, fits: Fits | None
) -> list[tuple[int, int]]:
    sentences = UNITS[strategy](text)
    starts = [a for a, _ in toks.offsets] if toks is not None else []

    def tok_at(char: int) -> int:
        return bisect.bisect_left(starts, char)

    def measure(i: int, j: int) -> int:
        a, b = sentences[i][0], sentences[j - 1][1]
        return b - a if toks is None else tok_at(b) - tok_at(a)

    spans = []
    for i, j in pack_sentences(len(sentences), measure, budget, overlap):
        a, b = sentences[i][0], sentences[j - 1][1]
        if toks is not None and (measure(i, j) > budget or (fits is not None and not fits(a, b))):
            spans.extend(token_windows(toks, tok_at(a), tok_at(b), budget, 0, fits))
        else:
            spans.append((a, b))
    return spans


def chunk_spans(
    text: str,
    prefix_units: int,
    config: dict[str, Any],
    toks: DocTokens | None = None,
    fits: Fits | None = None,
) -> list[tuple[int, int]]:
    """The (start, end) slices of one document, never empty.

    Token modes need the document's tokens ``toks``; ``prefix_units`` is what the title prefix uses of
    ``size``. ``fits(start, end)`` re-checks a slice with its prefix against the model, for tokenizers
    whose counts are not additive over word boundaries.
    """
    if config["strategy"] == "tokens":
        spans = token_windows(
            toks, 0, len(toks.offsets), config["size"] - prefix_units, config["overlap"], fits
        )
    elif config["strategy"] in PACKED:
        spans = _packed_spans(
            text, config["strategy"], config["size"] - prefix_units, config["overlap"], toks, fits
        )
    else:
        spans = []
    return spans or [(0, len(text))]


def document_spans(
    texts: Sequence[str],
    prefixes: Sequence[tuple[str, int]],
    config: dict[str, Any],
    tok: TokenCounter | None,
) -> list[list[tuple[int, int]]]:
    """Slices of a batch of documents; in token modes every chunk text is counted once more (batched) and
    a document with an over-long chunk is cut again with a check on each window."""
    toks = tok.encode_many(texts) if tok is not None else [None] * len(texts)
    spans = [chunk_spans(t, u, config, k) for t, (_, u), k in zip(texts, prefixes, toks, strict=True)]
    if tok is None:
        return spans
    chunk_texts = [p + t[a:b] for t, (p, _), sp in zip(texts, prefixes, spans, strict=True) for a, b in sp]
    over = iter(n > config["size"] for n in tok.counts(chunk_texts))
    for d, sp in enumerate(spans):
        if any([next(over) for _ in sp]):
            text, (prefix, units) = texts[d], prefixes[d]

            def fits(a: int, b: int, text: str = text, prefix: str = prefix) -> bool:
                return tok.count(prefix + text[a:b]) <= config["size"]

            spans[d] = chunk_spans(text, units, config, toks[d], fits)
    return spans


# ---------------------------------------------------------------------------------------------------
# database side


def _same_run(stored: str | None, config: dict[str, Any], doc_hash: str) -> bool:
    if stored is None:
        return False
    found = json.loads(stored)
    if found.get("doc_hash") != doc_hash:
        return False
    return {k: v for k, v in found.items() if k not in _PER_DOC_KEYS} == config


def plan(db: Store, config: dict[str, Any], doc_ids: Sequence[str] | None) -> tuple[list[str], int]:
    """Documents to (re)chunk, in id order, and how many are already chunked this way."""
    wanted = sorted(set(doc_ids)) if doc_ids is not None else None
    with db.registered("_chunk_wanted", pa.table({"doc_id": pa.array(wanted or [], pa.string())})):
        if wanted is not None:
            missing = db.sql(
                "SELECT doc_id FROM _chunk_wanted WHERE doc_id NOT IN (SELECT doc_id FROM documents) "
                "ORDER BY doc_id"
            )["doc_id"].to_list()
            if missing:
                raise UnknownIds(f"{len(missing)} unknown document ids, e.g. {', '.join(missing[:5])}")
        where = "WHERE d.doc_id IN (SELECT doc_id FROM _chunk_wanted)" if wanted is not None else ""
        rows = db.execute(
            f"""
            WITH stored AS (
                SELECT doc_id, min(chunker::VARCHAR) AS chunker, count(DISTINCT chunker::VARCHAR) AS kinds
                FROM chunks GROUP BY doc_id
            )
            SELECT d.doc_id, d.content_hash, CASE WHEN s.kinds = 1 THEN s.chunker END
            FROM documents d LEFT JOIN stored s USING (doc_id) {where}
            ORDER BY d.doc_id
            """
        ).fetchall()
    if not rows:
        raise EmptySelection("no documents to chunk: ingest some first")
    todo = [doc_id for doc_id, doc_hash, stored in rows if not _same_run(stored, config, doc_hash)]
    return todo, len(rows) - len(todo)


def build_rows(docs: pa.Table, config: dict[str, Any], tok: TokenCounter | None) -> pa.Table:
    """The chunk rows of a batch of documents (doc_id, title, text, content_hash) as an Arrow table."""
    ids, titles, texts, hashes = (docs[c].to_pylist() for c in ("doc_id", "title", "text", "content_hash"))
    prefixes = title_prefixes(titles, config, tok)
    spans = document_spans(texts, prefixes, config, tok)
    names = ("chunk_id", "doc_id", "ord", "text", "start_char", "end_char", "content_hash", "chunker")
    cols: dict[str, list[Any]] = {k: [] for k in names}
    for doc_id, text, doc_hash, (prefix, _), doc_spans in zip(
        ids, texts, hashes, prefixes, spans, strict=True
    ):
        chunker = json.dumps({**config, "doc_hash": doc_hash, "titled": bool(prefix)}, sort_keys=True)
        for ord_, (start, end) in enumerate(doc_spans):
            chunk_text = prefix + text[start:end]
            cols["chunk_id"].append(f"{doc_id}#{ord_}")
            cols["doc_id"].append(doc_id)
            cols["ord"].append(ord_)
            cols["text"].append(chunk_text)
            cols["start_char"].append(start)
            cols["end_char"].append(end)
            cols["content_hash"].append(content_hash(chunk_text))
            cols["chunker"].append(chunker)
    types = {"ord": pa.int32(), "start_char": pa.int32(), "end_char": pa.int32()}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})


def _replace(db: Store, doc_ids: list[str], rows: pa.Table, drop_orphans: bool) -> int:
    """Delete the old chunks of ``doc_ids`` (and of vanished documents) and insert ``rows``; returns
    the number of chunks deleted. Runs inside the caller's transaction."""
    removed = 0
    if drop_orphans:
        removed += db.scalar("SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)")
        db.execute("DELETE FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)")
    if doc_ids:
        docs = pa.table({"doc_id": pa.array(doc_ids, pa.string())})
        with db.registered("_chunk_docs", docs), db.registered("_chunk_rows", rows):
            removed += db.scalar(
                "SELECT count(*) FROM chunks WHERE doc_id IN (SELECT doc_id FROM _chunk_docs)"
            )
            db.execute("DELETE FROM chunks WHERE doc_id IN (SELECT doc_id FROM _chunk_docs)")
            db.execute(
                "INSERT INTO chunks "
                "(chunk_id, doc_id, ord, text, start_char, end_char, content_hash, chunker) "
                "SELECT chunk_id, doc_id, ord, text, start_char, end_char, content_hash, chunker::JSON "
                "FROM _chunk_rows"
            )
    return removed


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def chunk(
    db: Store,
    params: ChunkParams,
    doc_ids: Sequence[str] | None = None,
    *,
    progress: bool = False,
    batch_docs: int = 50_000,
) -> ChunkSummary:
    """Chunk the documents that need it (all, or ``doc_ids``) and replace their old chunks.

    Each batch of ``batch_docs`` documents is one transaction (SciFact is one), so an interrupted run
    keeps what it committed and the next run continues with the rest.
    """
    tok = load_tokenizer(db, params.model) if params.model else None
    config = resolve_config(params, tok)
    todo, unchanged = plan(db, config, doc_ids)
    written = removed = 0
    batches = list(_batches(todo, batch_docs)) or [[]]

    with tqdm(total=len(todo), unit="doc", desc="chunk", disable=not (progress and todo)) as bar:
        for i, batch in enumerate(batches):
            docs = _fetch(db, batch)
            rows = build_rows(docs, config, tok)
            with db.transaction():
                removed += _replace(db, batch, rows, drop_orphans=(i == 0 and doc_ids is None))
            written += rows.num_rows
            bar.update(len(batch))
    return ChunkSummary(documents=len(todo), chunks=written, unchanged=unchanged, removed=removed)


def _fetch(db: Store, doc_ids: list[str]) -> pa.Table:
    if not doc_ids:
        return pa.table({c: pa.array([], pa.string()) for c in ("doc_id", "title", "text", "content_hash")})
    with db.registered("_chunk_fetch", pa.table({"doc_id": pa.array(doc_ids, pa.string())})):
        return db.arrow(
            "SELECT d.doc_id, d.title, d.text, d.content_hash FROM documents d "
            "JOIN _chunk_fetch f USING (doc_id) ORDER BY d.doc_id"
        )
