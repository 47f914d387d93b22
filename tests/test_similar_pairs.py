"""Embedding neighbour pairs: exact faiss search, and the IVF index that takes over on large inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bench.planted_duplicates import make_corpus
from personagraph.config import DedupConfig
from personagraph.dedup.embedding import embed, similar_pairs
from personagraph.dedup.pairs import embedding_pairs


@pytest.fixture(scope="module")
def planted_vectors() -> np.ndarray:
    """Embeddings of ~3,200 templated personas, a third of them with perturbed copies."""
    return embed(make_corpus(2000, seed=3).texts)


def pair_set(found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> set[tuple[int, int]]:
    return set(zip(found[0].tolist(), found[1].tolist()))


def test_the_ivf_index_finds_99_percent_of_the_exact_pairs_at_the_dedup_threshold(planted_vectors) -> None:
    threshold = DedupConfig().embedding_threshold
    exact = similar_pairs(planted_vectors, threshold)
    approximate = similar_pairs(planted_vectors, threshold, ann_min_size=1000, nprobe=DedupConfig().ann_nprobe)
    assert len(exact[0]) > 500
    recall = len(pair_set(approximate) & pair_set(exact)) / len(pair_set(exact))
    assert recall >= 0.99
    # Every pair it reports is a true pair with its exact cosine.
    a, b, sims = approximate
    assert np.allclose(sims, (planted_vectors[a] * planted_vectors[b]).sum(axis=1), atol=1e-5)
    assert (sims >= threshold).all() and (a < b).all()


def test_below_ann_min_size_the_search_is_exact(planted_vectors) -> None:
    small = planted_vectors[:500]
    exact = similar_pairs(small, 0.9)
    assert pair_set(similar_pairs(small, 0.9, ann_min_size=501)) == pair_set(exact)
    config = DedupConfig(ann_min_size=None)
    assert pair_set(tuple(getattr(embedding_pairs(small, config), f) for f in ("a", "b", "similarity"))) == pair_set(exact)


def test_search_takes_a_strided_view_of_the_vectors() -> None:
    vectors = np.zeros((6, 4), dtype=np.float32)
    vectors[:, 0] = 1
    vectors[1::2] = vectors[1::2] * -1  # odd rows point the other way
    a, b, sims = similar_pairs(vectors[::2], 0.99)  # a strided view: rows 0, 2, 4
    assert sorted(zip(a.tolist(), b.tolist())) == [(0, 1), (0, 2), (1, 2)]
