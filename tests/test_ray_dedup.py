"""MinHash dedup on Ray Data finds the pairs, and so the clusters, of the one-process pass."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import ray
import ray.data

from personagraph.config import DedupConfig
from personagraph.dedup.groups import UnionFind
from personagraph.dedup.pairs import Pairs, minhash_pairs, minhasher
from personagraph.dedup.ray_minhash import ray_minhash_pairs

WORDS = ("nurse fisherman teacher baker crane operator midwife plumber archivist Lyon Izmir Pune Leeds Rotterdam Fez "
         "Osaka Quito Tartu Accra night shifts harbour nets chess club flour mill apprentices weekend evenings choir "
         "garden bees violin repairs bicycles radio ham football coach library maps ferries tea orchard loom pottery "
         "kiln sailing lighthouse observatory comet market stall spices archive letters printing press").split()


def personas_with_copies(n: int = 80) -> list[str]:
    """`n` personas of random words (seeded), a third of them with a reworded copy and a few with two."""
    rng = np.random.default_rng(7)
    texts = []
    for i in range(n):
        words = rng.choice(WORDS, size=14, replace=False).tolist()
        base = "A person who " + " ".join(words)
        texts.append(base)
        if i % 3 == 0:
            texts.append(base.replace(words[5], words[5] + "s"))
        if i % 10 == 0:
            texts.append(base + " and more")
    return texts


def clusters(pairs: Pairs) -> set[frozenset[int]]:
    found: UnionFind[int] = UnionFind()
    for a, b in zip(pairs.a.tolist(), pairs.b.tolist()):
        found.union(a, b)
    return {frozenset(group) for group in found.groups()}


def test_ray_data_finds_the_pairs_and_clusters_of_the_local_pass() -> None:
    texts = personas_with_copies()
    config = DedupConfig(method="minhash", minhash_neighbours=4)
    local = minhash_pairs(minhasher(config).signatures(texts), config)
    spread = ray_minhash_pairs(texts, config, blocks=4)
    as_set = lambda p: set(zip(p.a.tolist(), p.b.tolist(), np.round(p.similarity, 6).tolist()))  # noqa: E731
    assert len(local) >= 27 and as_set(spread) == as_set(local)
    assert clusters(spread) == clusters(local) and len(clusters(local)) >= 20
