"""Candidate duplicate pairs from MinHash LSH and from embedding neighbours, each verified."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from datasketch import MinHashLSH
from pydantic import BaseModel

from pipeline.config import DedupConfig
from pipeline.dedup.embedding import embed, similar_pairs
from pipeline.dedup.minhash import MinHasher, estimated_jaccard

Method = Literal["minhash", "embedding", "both"]


class Pair(BaseModel):
    """Two items (positions in the input) judged duplicates, with the similarity that decided it."""

    a: int
    b: int
    similarity: float
    method: Literal["minhash", "embedding"]


def minhasher(config: DedupConfig) -> MinHasher:
    """The MinHasher that `config` describes."""
    return MinHasher(num_perm=config.num_perm, shingle_size=config.shingle_size, seed=config.seed)


def new_lsh(config: DedupConfig) -> MinHashLSH:
    """An empty datasketch LSH index tuned (bands x rows) for `config.minhash_threshold`."""
    return MinHashLSH(threshold=config.minhash_threshold, num_perm=config.num_perm)


def minhash_pairs(signatures: np.ndarray, config: DedupConfig) -> list[Pair]:
    """Pairs whose LSH buckets collide and whose estimated Jaccard reaches the threshold."""
    hasher = minhasher(config)
    lsh = new_lsh(config)
    with lsh.insertion_session() as session:
        for i, sig in enumerate(signatures):
            session.insert(i, hasher.lean(sig), check_duplication=False)
    cand_a: list[int] = []
    cand_b: list[int] = []
    for i, sig in enumerate(signatures):
        for j in lsh.query(hasher.lean(sig)):
            if j > i:
                cand_a.append(i)
                cand_b.append(j)
    if not cand_a:
        return []
    a, b = np.asarray(cand_a), np.asarray(cand_b)
    sims = estimated_jaccard(signatures[a], signatures[b])
    keep = np.flatnonzero(sims >= config.minhash_threshold)
    return [Pair(a=int(a[k]), b=int(b[k]), similarity=float(sims[k]), method="minhash") for k in keep]


def embedding_pairs(vectors: np.ndarray, config: DedupConfig) -> list[Pair]:
    """Pairs among each item's nearest neighbours whose cosine reaches the threshold."""
    return [
        Pair(a=i, b=j, similarity=s, method="embedding")
        for i, j, s in similar_pairs(vectors, config.embedding_threshold, k=config.embedding_neighbours)
    ]


def pairs_from_arrays(
    signatures: np.ndarray | None, vectors: np.ndarray | None, config: DedupConfig, method: Method
) -> list[Pair]:
    """Verified pairs from precomputed signatures and/or unit vectors (rows = items).

    With "both", a MinHash pair must also reach `config.verify_cosine`: word overlap proposes,
    meaning confirms, so two different people described with the same template words are kept apart.
    """
    pairs: list[Pair] = []
    if method in ("minhash", "both") and signatures is not None:
        found = minhash_pairs(signatures, config)
        if method == "both" and vectors is not None and found:
            a = np.asarray([p.a for p in found])
            b = np.asarray([p.b for p in found])
            cos = np.einsum("ij,ij->i", vectors[a], vectors[b])
            found = [p for p, c in zip(found, cos.tolist()) if c >= config.verify_cosine]
        pairs += found
    if method in ("embedding", "both") and vectors is not None:
        pairs += embedding_pairs(vectors, config)
    return pairs


def find_duplicate_pairs(texts: Sequence[str], config: DedupConfig, method: Method | None = None) -> list[Pair]:
    """Verified duplicate pairs among `texts` by MinHash, embeddings, or both."""
    method = method or config.method
    sigs = minhasher(config).signatures(texts) if method in ("minhash", "both") else None
    vecs = embed(texts, config.embed_batch_size) if method in ("embedding", "both") else None
    return pairs_from_arrays(sigs, vecs, config, method)
