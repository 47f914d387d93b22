"""MinHash dedup on Ray Data finds the pairs, the clusters and the merges of the one-process pass.

A local Ray of 2 CPUs for the module (Ray Data's start-up, ~20 s, is paid once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personagraph.api import Graph
from personagraph.config import DedupConfig
from personagraph.dedup.groups import UnionFind
from personagraph.dedup.pairs import Pairs, minhash_pairs, minhasher
from personagraph.dedup.ray_minhash import ray_minhash_pairs
from personagraph.executor import RayExecutor
from personagraph.graph.model import Edge, Persona
from personagraph.graph.store import GraphStore
from tests.conftest import graph_on

pytestmark = pytest.mark.usefixtures("local_ray")

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
    signatures = minhasher(config).signatures(texts)
    local = minhash_pairs(signatures, config)
    spread = ray_minhash_pairs(signatures, config, partitions=4)
    assert len(local) >= 27 and same_pairs(spread, local)
    assert clusters(spread) == clusters(local) and len(clusters(local)) >= 20


def same_pairs(found: Pairs, expected: Pairs) -> bool:
    """The same pairs in the same order, with the same similarities and methods."""
    return all(np.array_equal(getattr(found, f), getattr(expected, f)) for f in ("a", "b", "similarity", "method"))


@pytest.mark.parametrize("partitions", [1, 32])
def test_ray_pairs_equal_the_local_ones_with_buckets_larger_than_the_neighbours_kept(partitions: int) -> None:
    # Twelve copies of one text share every band's bucket; with 3 neighbours kept, the bucket is cut
    # to each member's 3 next and the pairs to each persona's 3 most similar, over all bands: the
    # reducers' own cut must not change which pairs survive the driver's.
    texts = personas_with_copies(40) + ["A person who keeps bees and repairs radios in Tartu"] * 12
    texts += [texts[-1] + f" and {word}" for word in WORDS[:6]]
    config = DedupConfig(method="minhash", minhash_neighbours=3)
    signatures = minhasher(config).signatures(texts)
    local = minhash_pairs(signatures, config)
    spread = ray_minhash_pairs(signatures, config, partitions=partitions)
    copies = set(range(len(texts) - 18, len(texts)))
    assert sum(a in copies for a in local.a.tolist()) > 12 and same_pairs(spread, local)


def merged_graph(g: Graph) -> dict[str, Any]:
    """What a dedup pass leaves: live ids, each survivor's merged ids and aliases, each tombstone's survivor, edges."""
    return {
        "live": {r["id"] for r in g.query("MATCH (p:Persona) WHERE p.status <> 'merged' RETURN p.id AS id")},
        "survivors": {(r["id"], tuple(sorted(r["m"])), tuple(sorted(r["a"]))) for r in g.query(
            "MATCH (p:Persona) WHERE p.merged_ids IS NOT NULL RETURN p.id AS id, p.merged_ids AS m, p.aliases AS a")},
        "tombstones": {(r["id"], r["s"]) for r in g.query(
            "MATCH (p:Persona {status: 'merged'}) RETURN p.id AS id, p.merged_into AS s")},
        "edges": {(r["a"], r["t"], r["b"]) for r in g.query("MATCH (a)-[e]->(b) RETURN a.id AS a, type(e) AS t, b.id AS b")},
    }


@pytest.mark.parametrize("method", ["minhash", "both"])
def test_dedup_with_the_ray_executor_merges_the_groups_of_the_local_pass(
        method: str, store: GraphStore, other_store: GraphStore, tmp_path: Path) -> None:
    people = [Persona(description=t) for t in personas_with_copies(40)]
    # Edges decide survivors (the most connected member survives), so plant some on copies.
    edges = [Edge(source=people[i].id, target=people[i + 1].id, type="KNOWS") for i in range(0, len(people) - 1, 4)]
    local, on_ray = graph_on(store, tmp_path / "cache_local"), graph_on(other_store, tmp_path / "cache_ray")
    on_ray.executor = RayExecutor(workers=2)
    # One creation time per persona in both graphs: the clock can tie a batch's rows in one and not the other.
    created = {"rows": [{"id": p.id, "t": float(i)} for i, p in enumerate(people)]}
    for g in (local, on_ray):
        g.store.upsert_personas(people)
        g.store.add_edges(edges)
        g.store.run("UNWIND $rows AS r MATCH (p:Persona {id: r.id}) SET p.created_at = r.t", created)
    one = local.dedup(method=method, minhash_neighbours=4)
    spread = on_ray.dedup(method=method, minhash_neighbours=4)
    assert one.merged >= 15 and (spread.merged, spread.pairs) == (one.merged, one.pairs)
    assert [g.model_dump() for g in spread.groups] == [g.model_dump() for g in one.groups]
    assert merged_graph(on_ray) == merged_graph(local)
