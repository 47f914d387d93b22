"""Small persona graphs for tests: written to a real store and mirrored in networkx to compare against."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import networkx as nx
import pytest

from personagraph.graph.model import Edge, Persona
from personagraph.graph.store import GraphStore, QueryResult

REL_TYPES = ("COLLEAGUE_OF", "PATIENT_OF", "SUPPLIER_OF", "PARENT_OF")


def personas(n: int, prefix: str = "persona") -> list[Persona]:
    """`n` distinct personas with descriptions long enough to pass import checks."""
    return [Persona(description=f"{prefix} number {i}, a nurse who reads about trains") for i in range(n)]


def write_random_graph(
    store: GraphStore, n_nodes: int, n_edges: int, seed: int, types: Sequence[str] = REL_TYPES
) -> nx.MultiDiGraph:
    """Write `n_nodes` personas and up to `n_edges` random typed edges; return the same graph in networkx."""
    rand = random.Random(seed)
    people = personas(n_nodes, prefix=f"g{seed}")
    store.upsert_personas(people)
    ids = [p.id for p in people]
    g = nx.MultiDiGraph()
    g.add_nodes_from(ids)
    edges: dict[tuple[str, str, str], Edge] = {}
    for _ in range(n_edges):
        a, b, t = rand.choice(ids), rand.choice(ids), rand.choice(types)
        edges[(a, b, t)] = Edge(source=a, target=b, type=t)
    store.add_edges(list(edges.values()))
    for a, b, t in edges:
        g.add_edge(a, b, key=t)
    return g


def count_queries(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every query the store sends from now on, from a thread or an event loop (the real store still runs them)."""
    sent: list[str] = []
    real_run, real_arun = store.run, store.arun

    def run(query: str, params: dict[str, Any] | None = None, *, write: bool = True) -> QueryResult:
        sent.append(query)
        return real_run(query, params, write=write)

    async def arun(query: str, params: dict[str, Any] | None = None, *, write: bool = True) -> QueryResult:
        sent.append(query)
        return await real_arun(query, params, write=write)

    monkeypatch.setattr(store, "run", run)
    if type(store).arun is not GraphStore.arun:  # an asyncio client of its own (the default sends through `run`)
        monkeypatch.setattr(store, "arun", arun)
    return sent
