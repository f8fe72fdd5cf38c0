"""Cross-encoder re-rankers: finding a base folder, loading it with a one-logit head, fingerprinting a
trained folder, and scoring (query, passage) pairs. Training (:mod:`hnm_db.reranker.train`) and evaluation
(:mod:`hnm_db.reranker.evaluate`) both use this module, so a model is loaded and scored one way everywhere.

Scoring is ``CrossEncoder.predict`` returning raw logits (no activation), which is what ``eval_scores``
caches and the interpolation mixes. (An earlier length-sorted loop of our own measured 0.95x the speed
of ``predict`` on SciFact pairs, so it went.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hnm_db.errors import InvalidParams, ModelLoadError, UnknownModel
from hnm_db.models.registry import (
    digest_fingerprint,
    file_digests,
    quiet_transformers,
    resolve_model_path,
    tokenizer_files,
)
from hnm_db.store import Store

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
#: Beside a trained model: its files' digests at training time, so evaluating it does not re-hash them.
DIGESTS_FILE = ".hnm_digests.json"


def resolve_base(db: Store | None, name_or_path: str) -> Path:
    """The local transformer folder behind an alias, registered name or path; errors say what is wrong."""
    path = Path(resolve_model_path(db, name_or_path))
    check_transformer_folder(path)
    return path


def check_transformer_folder(path: Path) -> None:
    """A Hugging Face model folder has a config.json naming a model type; anything else is refused."""
    config = path / "config.json"
    if not path.is_dir():
        raise UnknownModel(f"model folder does not exist: {path}")
    if not config.is_file():
        raise ModelLoadError(
            f"{path} is not a transformer model folder (no config.json); pass a sentence-transformers or "
            "Hugging Face model folder, or an alias such as minilm-l6"
        )
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{config} is not a valid model config: {exc}") from None
    if not model_type:
        raise ModelLoadError(f"{config} names no model_type, so {path} is not a transformer model folder")


def load_cross_encoder(path: Path, *, max_length: int, device: str, seed: int | None = None) -> Any:
    """A CrossEncoder with one output logit; an embedding model gets a fresh head, seeded by ``seed``."""
    import torch
    from sentence_transformers import CrossEncoder

    if seed is not None:
        torch.manual_seed(seed)
    try:
        with quiet_transformers():
            return CrossEncoder(
                str(path), num_labels=1, max_length=max_length, device=device, local_files_only=True
            )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load {path} as a cross-encoder: {first}") from None


def pick_device(device: str | None) -> str:
    """``cuda`` when one is available and none was asked for; asking for a missing GPU is an error."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidParams("device cuda was asked for but no CUDA GPU is available")
    return device


def model_digests(folder: Path) -> dict[str, dict[str, Any]]:
    """Digests of a cross-encoder's weight and tokenizer files; those recorded at training time
    (:data:`DIGESTS_FILE`) are reused while a file's size and mtime still match.

    config files are left out on purpose: ``config.json`` carries the folder's own path
    (``_name_or_path``), and ``tokenizer_config.json`` gains default keys on every save/load round trip
    (a warm start reloaded from disk writes 458 bytes where the fresh one wrote 268), which would make two
    identical trainings look different. The vocabulary files decide tokenisation.
    """
    weights = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not weights:
        raise ModelLoadError(f"{folder} holds no weight files")
    known = folder / DIGESTS_FILE
    try:
        recorded = json.loads(known.read_text(encoding="utf-8")) if known.is_file() else None
    except (OSError, ValueError):
        recorded = None
    vocab = [p for p in tokenizer_files(folder) if not p.name.endswith("_config.json")]
    return file_digests(folder, recorded, sorted({*weights, *vocab}))


def model_fingerprint(folder: Path) -> str:
    """A cross-encoder's fingerprint: its weight and tokenizer files (:func:`model_digests`), in hnm-db's
    one fingerprint scheme (:func:`hnm_db.models.registry.digest_fingerprint`)."""
    return digest_fingerprint(model_digests(folder))


def record_digests(folder: Path) -> str:
    """Write :data:`DIGESTS_FILE` into a freshly trained model folder; returns its fingerprint."""
    digests = model_digests(folder)
    (folder / DIGESTS_FILE).write_text(json.dumps(digests, sort_keys=True), encoding="utf-8")
    return digest_fingerprint(digests)


def score_pairs(
    ce: Any,
    queries: Sequence[str],
    passages: Sequence[str],
    *,
    batch_size: int = 32,
    progress: bool = False,
) -> np.ndarray:
    """Raw logits s(q, p) for aligned lists: ``CrossEncoder.predict`` with no activation (it sorts pairs
    by length itself), at the max length and on the device ``ce`` was loaded with."""
    import torch

    if len(queries) == 0:
        return np.zeros(0, dtype=np.float64)
    was_training = ce.training
    scores = ce.predict(
        list(zip(queries, passages, strict=True)),
        batch_size=batch_size,
        activation_fn=torch.nn.Identity(),
        show_progress_bar=progress,
        convert_to_numpy=True,
    )
    ce.train(was_training)
    return np.asarray(scores, dtype=np.float64).reshape(-1)
