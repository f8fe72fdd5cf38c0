"""Every export layout trains unchanged with sentence-transformers' trainers (one step each, tiny model).

Exported with --keep-ids and --parquet, loaded with ``load_dataset(DIR)``: the default config must hold
only what a trainer reads (ids, ranks and scores live in the ``ids`` config), and the environment that
built the data must be able to train on it (accelerate installed).
"""

from __future__ import annotations

import logging

import datasets
import pytest

from hnm_db.export.datasets import ExportParams, export

LAYOUTS = {"triplet": {}, "n-tuple": {"num_negatives": 2}, "labeled-pair": {}}


@pytest.fixture
def exported(mined_db, tmp_path):
    """layout -> the default config of a --keep-ids --parquet export of runs ens-top and random."""

    def load(layout: str) -> datasets.Dataset:
        out = tmp_path / layout
        params = ExportParams(
            runs=("ens-top", "random"), to=out, layout=layout, keep_ids=True, parquet=True, **LAYOUTS[layout]
        )
        export(mined_db.store, params)
        assert "query_id" in datasets.load_dataset(str(out), "ids", split="train").column_names
        return datasets.load_dataset(str(out), split="train")

    return load


def _args(cls, tmp_path):  # noqa: ANN001, ANN202 (the two trainers' argument classes)
    return cls(
        output_dir=str(tmp_path / "trainer"), max_steps=1, per_device_train_batch_size=4, report_to=[],
        use_cpu=True, save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=0,
    )  # fmt: skip


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_sentence_transformer_trainer_takes_one_step_on_each_layout(
    exported, tiny_model_dir, tmp_path, layout
):
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers import SentenceTransformerTrainingArguments as Args

    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    dataset = exported(layout)
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    loss = (
        losses.CoSENTLoss(model) if layout == "labeled-pair" else losses.MultipleNegativesRankingLoss(model)
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=_args(Args, tmp_path), train_dataset=dataset, loss=loss
    )
    result = trainer.train()
    assert result.global_step == 1


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_cross_encoder_trainer_takes_one_step_on_each_layout(exported, tiny_model_dir, tmp_path, layout):
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, losses
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as Args

    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    dataset = exported(layout)
    model = CrossEncoder(str(tiny_model_dir), num_labels=1, device="cpu")
    if layout == "labeled-pair":
        loss = losses.BinaryCrossEntropyLoss(model)
    else:
        loss = losses.MultipleNegativesRankingLoss(model, num_negatives=2)
    trainer = CrossEncoderTrainer(model=model, args=_args(Args, tmp_path), train_dataset=dataset, loss=loss)
    result = trainer.train()
    assert result.global_step == 1
