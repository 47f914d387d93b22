"""Traversal and sampling (graph/traversal.py) against the real embedded FalkorDB, checked with networkx."""

from __future__ import annotations

import networkx as nx
import pytest

from personagraph.graph.model import Edge
from personagraph.graph.store import GraphStore
from personagraph.graph.traversal import connected_clusters, ego_networks, random_walks
from tests.graphs import count_queries, personas, write_random_graph


@pytest.fixture
def graph(store: GraphStore) -> nx.Graph:
    """A random 80-persona graph in the store, and its undirected networkx twin."""
    return write_random_graph(store, n_nodes=80, n_edges=120, seed=3).to_undirected(as_view=False)


def test_ego_networks_match_networkx_shortest_paths(store: GraphStore, graph: nx.Graph, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = sorted(graph.nodes)[:40]
    sent = count_queries(store, monkeypatch)
    got = ego_networks(store, seeds, k=3)
    assert len(sent) <= 3  # one neighbours query per hop for all 40 seeds (batch_size 500)
    for seed in seeds:
        assert got[seed] == nx.single_source_shortest_path_length(graph, seed, cutoff=3)


def test_ego_network_of_an_isolated_persona_is_itself(store: GraphStore) -> None:
    (lonely,) = personas(1, prefix="lonely")
    store.upsert_personas([lonely])
    assert ego_networks(store, [lonely.id], k=2) == {lonely.id: {lonely.id: 0}}


def test_random_walks_step_along_edges_and_reproduce_with_the_same_seed(store: GraphStore, graph: nx.Graph) -> None:
    seeds = [n for n in sorted(graph.nodes) if graph.degree(n) > 0][:30]
    walks = random_walks(store, seeds, length=10, rng=42)
    assert set(walks) == set(seeds)
    for seed, walk in walks.items():
        assert walk[0] == seed
        assert len(walk) == 11  # a connected node always has a next step (edges are walked both ways)
        for a, b in zip(walk, walk[1:]):
            assert graph.has_edge(a, b)
    assert random_walks(store, seeds, length=10, rng=42) == walks
    assert random_walks(store, seeds, length=10, rng=43) != walks


def test_random_walk_stops_at_a_persona_without_neighbours(store: GraphStore) -> None:
    a, b = personas(2, prefix="dead end")
    store.upsert_personas([a, b])
    assert random_walks(store, [a.id], length=5, rng=1) == {a.id: [a.id]}


def test_connected_clusters_are_connected_distinct_and_reproducible(
    store: GraphStore, graph: nx.Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = sorted(graph.nodes)
    components = {n: len(c) for c in nx.connected_components(graph) for n in c}
    sent = count_queries(store, monkeypatch)
    clusters = connected_clusters(store, seeds, size=8, rng=5)
    assert len(sent) <= 8  # one neighbours query per growth step for all 80 seeds
    for seed, members in clusters.items():
        assert members[0] == seed
        assert len(set(members)) == len(members) == min(8, components[seed])
        assert nx.is_connected(graph.subgraph(members))
    assert connected_clusters(store, seeds, size=8, rng=5) == clusters
    assert connected_clusters(store, seeds, size=8, rng=6) != clusters


def test_traversal_steps_only_onto_live_personas(store: GraphStore) -> None:
    a, b, c = personas(3, prefix="status")
    store.upsert_personas([a, b, c])
    store.add_edges([Edge(source=a.id, target=b.id, type="COLLEAGUE_OF"), Edge(source=b.id, target=c.id, type="COLLEAGUE_OF")])
    store.set_properties([{"id": b.id, "props": {"status": "rejected"}}])
    assert ego_networks(store, [a.id], k=2) == {a.id: {a.id: 0}}
    assert connected_clusters(store, [a.id], size=3, rng=0) == {a.id: [a.id]}
    assert random_walks(store, [a.id], length=3, rng=0) == {a.id: [a.id]}
