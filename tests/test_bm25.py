import numpy as np
from rank_bm25 import BM25Okapi

from hnm_db.retrieval.bm25 import BM25Index, tokenize

TEXTS = [
    "The star and the galaxy orbit a black hole.",
    "Flour, butter and sugar make a dough for the oven.",
    "A galaxy holds many a star; stars orbit the centre of a galaxy.",
    "The striker scored a goal in the league match.",
    "",
]


def test_tokenize_lowercases_and_drops_stop_words():
    assert tokenize("The Star, and THE galaxy_x 42!") == ["star", "galaxy", "x", "42"]


def test_scores_equal_rank_bm25_get_scores():
    index = BM25Index.build(TEXTS)
    okapi = BM25Okapi([tokenize(t) or ["\x00"] for t in TEXTS])
    queries = ["galaxy star star", "butter oven", "nothing matches here", "goal"]
    ours = index.scores(queries)
    for j, q in enumerate(queries):
        np.testing.assert_allclose(ours[j], okapi.get_scores(tokenize(q)), rtol=1e-5, atol=1e-6)


def test_top_k_orders_best_first_with_index_tiebreak():
    index = BM25Index.build(TEXTS)
    idx, sc = index.top_k(["galaxy star", "nothing matches"], k=3, block=1)
    assert idx[0][0] in (0, 2) and set(idx[0][:2]) == {0, 2}
    assert np.all(np.diff(sc[0]) <= 0)
    assert list(idx[1]) == [0, 1, 2]  # all zero: ties broken by lower index
