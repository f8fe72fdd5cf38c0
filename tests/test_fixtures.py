from sentence_transformers import SentenceTransformer


def test_tiny_model_loads_offline_and_embeds(tiny_model_dir, tiny_model_dir_b):
    a = SentenceTransformer(str(tiny_model_dir), device="cpu")
    b = SentenceTransformer(str(tiny_model_dir_b), device="cpu")
    va = a.encode(["a star and a galaxy", "flour and butter"])
    vb = b.encode(["a star and a galaxy"])
    assert va.shape == (2, 32)
    assert vb.shape == (1, 48)
    assert abs(float(va[0] @ va[1])) > 0  # not degenerate
