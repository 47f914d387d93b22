"""Traversal and sampling over the persona graph, in the networkx style: take the store, return plain data.

Every function works on many seeds at once and asks the store for the neighbours of all the nodes
it needs at a step in one call (`GraphStore.neighbours`, one query per `batch_size` ids), so 1,000
seeds cost a handful of queries per hop or step, not one per seed. Edges count in both directions
and across every relationship type; only personas with a live status are stepped onto. Randomness
comes from `random.Random(seed)`, so the same seed gives the same walks and clusters.

    >>> ego_networks(store, ["p_a"], k=2)
    {'p_a': {'p_a': 0, 'p_b': 1, 'p_c': 2}}
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from personagraph.graph.store import LIVE_STATUSES, GraphStore

__all__ = ["ego_networks", "random_walks", "connected_clusters"]


def _rng(rng: random.Random | int | None) -> random.Random:
    """A `random.Random` from an int seed, an existing generator, or None (unseeded)."""
    return rng if isinstance(rng, random.Random) else random.Random(rng)


class _NeighbourCache:
    """Neighbour lists fetched in batches and kept for the rest of one call."""

    def __init__(self, store: GraphStore, statuses: Sequence[str]) -> None:
        self.store = store
        self.statuses = list(statuses)
        self.lists: dict[str, list[str]] = {}

    def fetch(self, ids: Iterable[str]) -> None:
        """Fetch the neighbours of every id not fetched yet, in one batched store call."""
        missing = [i for i in dict.fromkeys(ids) if i not in self.lists]
        if not missing:
            return
        found = self.store.neighbours(missing, self.statuses)
        for node_id in missing:
            self.lists[node_id] = found.get(node_id, [])

    def __getitem__(self, node_id: str) -> list[str]:
        return self.lists[node_id]


def ego_networks(
    store: GraphStore, seeds: Sequence[str], k: int, statuses: Sequence[str] = LIVE_STATUSES
) -> dict[str, dict[str, int]]:
    """Personas within `k` hops of each seed with their distance (the seed at 0), like
    `nx.single_source_shortest_path_length(g.to_undirected(), seed, cutoff=k)` for every seed.

    >>> ego_networks(store, ["p_a"], k=1)
    {'p_a': {'p_a': 0, 'p_b': 1}}
    """
    cache = _NeighbourCache(store, statuses)
    dist: dict[str, dict[str, int]] = {s: {s: 0} for s in dict.fromkeys(seeds)}
    frontier: dict[str, list[str]] = {s: [s] for s in dist}
    for hop in range(1, k + 1):
        frontier = {s: f for s, f in frontier.items() if f}
        if not frontier:
            break
        cache.fetch(n for f in frontier.values() for n in f)
        for seed, nodes in frontier.items():
            seen = dist[seed]
            nxt: list[str] = []
            for node in nodes:
                for nbr in cache[node]:
                    if nbr not in seen:
                        seen[nbr] = hop
                        nxt.append(nbr)
            frontier[seed] = nxt
    return dist


def random_walks(
    store: GraphStore,
    seeds: Sequence[str],
    length: int,
    rng: random.Random | int | None = None,
    statuses: Sequence[str] = LIVE_STATUSES,
) -> dict[str, list[str]]:
    """A random walk of `length` steps from each seed (seed first), each step to a uniformly chosen
    neighbour; a walk that reaches a persona without neighbours stops there.

    >>> random_walks(store, ["p_a"], length=3, rng=7)
    {'p_a': ['p_a', 'p_b', 'p_a', 'p_c']}
    """
    rand = _rng(rng)
    cache = _NeighbourCache(store, statuses)
    walks: dict[str, list[str]] = {s: [s] for s in dict.fromkeys(seeds)}
    active = list(walks)
    for _ in range(length):
        if not active:
            break
        cache.fetch(walks[s][-1] for s in active)
        still: list[str] = []
        for seed in active:
            options = cache[walks[seed][-1]]
            if options:
                walks[seed].append(rand.choice(options))
                still.append(seed)
        active = still
    return walks


def connected_clusters(
    store: GraphStore,
    seeds: Sequence[str],
    size: int,
    rng: random.Random | int | None = None,
    statuses: Sequence[str] = LIVE_STATUSES,
) -> dict[str, list[str]]:
    """A connected set of `size` personas grown from each seed by adding a uniformly chosen frontier
    node at a time (fewer if the seed's component is smaller); members in the order they joined.

    Every member joins as a neighbour of an earlier member, so the cluster is connected when edge
    direction is ignored.

    >>> connected_clusters(store, ["p_a"], size=3, rng=7)
    {'p_a': ['p_a', 'p_c', 'p_b']}
    """
    rand = _rng(rng)
    cache = _NeighbourCache(store, statuses)
    members: dict[str, list[str]] = {s: [s] for s in dict.fromkeys(seeds)}
    in_cluster: dict[str, set[str]] = {s: {s} for s in members}
    frontier: dict[str, list[str]] = {s: [] for s in members}
    on_frontier: dict[str, set[str]] = {s: set() for s in members}
    newest: dict[str, str] = {s: s for s in members}
    active = [s for s in members if size > 1]
    while active:
        cache.fetch(newest[s] for s in active)
        still: list[str] = []
        for seed in active:
            for nbr in cache[newest[seed]]:
                if nbr not in in_cluster[seed] and nbr not in on_frontier[seed]:
                    on_frontier[seed].add(nbr)
                    frontier[seed].append(nbr)
            options = frontier[seed]
            if not options:
                continue  # the component is exhausted
            pick = rand.randrange(len(options))
            options[pick], options[-1] = options[-1], options[pick]
            chosen = options.pop()
            on_frontier[seed].discard(chosen)
            in_cluster[seed].add(chosen)
            members[seed].append(chosen)
            newest[seed] = chosen
            if len(members[seed]) < size:
                still.append(seed)
        active = still
    return members
