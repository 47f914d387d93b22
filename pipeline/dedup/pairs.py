"""Candidate duplicate pairs from MinHash LSH and from embedding neighbours, each verified."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHashLSH

from personagraph.config import DedupConfig, DedupMethod
from personagraph.dedup.embedding import similar_pairs
from personagraph.dedup.minhash import MinHasher, estimated_jaccard


_FOLD = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: folds a band's rows into one key


METHODS = (DedupMethod.minhash.value, DedupMethod.embedding.value)  # the detectors; "both" is the two together


@dataclass(frozen=True)
class Pairs:
    """Verified pairs as parallel arrays (a million personas give millions of pairs): positions
    `a[i] < b[i]` in the input, the similarity that decided each, and its method (index in METHODS)."""

    a: np.ndarray
    b: np.ndarray
    similarity: np.ndarray
    method: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray, similarity: np.ndarray, method: str) -> Pairs:
        """Pairs found by one method."""
        return cls(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
                   np.asarray(similarity, dtype=np.float32), np.full(len(a), METHODS.index(method), dtype=np.uint8))

    @classmethod
    def concat(cls, parts: Sequence[Pairs]) -> Pairs:
        """All pairs of `parts`, in order."""
        if not parts:
            return cls.of(np.empty(0), np.empty(0), np.empty(0), "minhash")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("a", "b", "similarity", "method")))

    def __len__(self) -> int:
        return len(self.a)

    def select(self, mask: np.ndarray) -> Pairs:
        """The pairs where `mask` is true."""
        return Pairs(self.a[mask], self.b[mask], self.similarity[mask], self.method[mask])

    def counts(self) -> dict[str, int]:
        """Pairs per method name."""
        found = np.bincount(self.method, minlength=len(METHODS))
        return {m: int(n) for m, n in zip(METHODS, found) if n}


def minhasher(config: DedupConfig) -> MinHasher:
    """The MinHasher that `config` describes."""
    return MinHasher(num_perm=config.num_perm, shingle_size=config.shingle_size, seed=config.seed, unit=config.shingles)


def new_lsh(config: DedupConfig) -> MinHashLSH:
    """An empty datasketch LSH index tuned (bands x rows) for `config.minhash_threshold`."""
    return MinHashLSH(threshold=config.minhash_threshold, num_perm=config.num_perm)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys: each band's `rows` signature values folded into one 64-bit hash."""
    sig = signatures[:, : bands * rows].reshape(len(signatures), bands, rows).astype(np.uint64)
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    for j in range(rows):
        keys = (keys * _FOLD) ^ sig[:, :, j]
    return keys


def minhash_pairs(signatures: np.ndarray, config: DedupConfig, max_bucket: int = 64) -> Pairs:
    """Pairs that share an LSH band and whose estimated Jaccard reaches the threshold.

    The banding (b bands of r rows) is the one datasketch's MinHashLSH picks for the threshold; the
    bucketing is vectorised (sort each band's keys, pair members of equal runs) instead of a Python
    dict insert per band per item, which dominates at a million personas. In a bucket larger than
    `max_bucket` each member is paired with its next `max_bucket` neighbours only; union-find still
    links the rest through them.
    """
    n = len(signatures)
    lsh = new_lsh(config)
    keys = band_keys(signatures, lsh.b, lsh.r)
    found: list[np.ndarray] = []
    for band in range(lsh.b):
        order = np.argsort(keys[:, band], kind="stable")
        sorted_keys = keys[order, band]
        for d in range(1, max_bucket + 1):
            same = np.flatnonzero(sorted_keys[d:] == sorted_keys[:-d])
            if not len(same):
                break
            a, b = order[same], order[same + d]
            found.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
    if not found:
        return Pairs.concat([])
    codes = np.unique(np.concatenate(found))
    a, b = codes // n, codes % n
    sims = np.concatenate([
        estimated_jaccard(signatures[a[i : i + 65536]], signatures[b[i : i + 65536]]) for i in range(0, len(a), 65536)
    ])
    keep = sims >= config.minhash_threshold
    return Pairs.of(a[keep], b[keep], sims[keep], "minhash")


def embedding_pairs(vectors: np.ndarray, config: DedupConfig) -> Pairs:
    """Pairs among each item's nearest neighbours whose cosine reaches the threshold."""
    a, b, sims = similar_pairs(vectors, config.embedding_threshold, k=config.embedding_neighbours)
    return Pairs.of(a, b, sims, "embedding")


def pairs_from_arrays(
    signatures: np.ndarray | None, vectors: np.ndarray | None, config: DedupConfig, method: DedupMethod
) -> Pairs:
    """Verified pairs from precomputed signatures and/or unit vectors (rows = items).

    With "both", a MinHash pair must also reach `config.verify_cosine` unless its Jaccard reaches
    `config.trust_jaccard`: shingle overlap proposes, meaning confirms, so two different people
    described with the same template words are kept apart, while a copy with a few typos (which can
    move a small embedding model's cosine a lot) stands on its overlap alone.
    """
    parts: list[Pairs] = []
    if method in ("minhash", "both") and signatures is not None:
        found = minhash_pairs(signatures, config)
        if method == "both" and vectors is not None and len(found):
            cos = np.einsum("ij,ij->i", vectors[found.a], vectors[found.b])
            found = found.select((cos >= config.verify_cosine) | (found.similarity >= config.trust_jaccard))
        parts.append(found)
    if method in ("embedding", "both") and vectors is not None:
        parts.append(embedding_pairs(vectors, config))
    return Pairs.concat(parts)
