"""networkx as the bridge for analysis: the persona graph, or a part of it, in one call.

    >>> g = to_networkx(store)                      # every live persona and relationship
    >>> g = to_networkx(store, ids=cluster_ids)     # the subgraph induced by some personas
    >>> nx.number_weakly_connected_components(g)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import networkx as nx
from pydantic import BaseModel, Field

from personagraph.graph.store import LIVE_STATUSES, GraphStore


def to_networkx(
    store: GraphStore,
    ids: Sequence[str] | None = None,
    statuses: Sequence[str] | None = LIVE_STATUSES,
) -> nx.MultiDiGraph:
    """Personas as nodes (with their properties) and relationship edges (keyed by type).

    With `ids`, the subgraph induced by those personas; without, the whole graph (personas with
    the given statuses, and the edges among them). Source and other non-persona nodes are left out.
    """
    g = nx.MultiDiGraph()
    if ids is not None:
        nodes = store.get_personas(list(ids))
        for node_id, props in nodes.items():
            if statuses is None or props.get("status") in statuses:
                g.add_node(node_id, **props)
        for e in store.edges_among(list(g.nodes)):
            g.add_edge(e["source"], e["target"], key=e["type"], type=e["type"], **(e["props"] or {}))
        return g
    for props in store.iter_personas(statuses):
        g.add_node(props["id"], **props)
    for e in store.iter_edges():
        if e["source_label"] == "Persona" and e["target_label"] == "Persona" and e["source"] in g and e["target"] in g:
            g.add_edge(e["source"], e["target"], key=e["type"], type=e["type"], **(e["props"] or {}))
    return g


def degree_histogram(g: nx.MultiDiGraph) -> dict[int, int]:
    """Personas per total degree, like `GraphStore.degree_distribution` but in memory."""
    out: dict[int, int] = {}
    for _, d in g.degree():
        out[d] = out.get(d, 0) + 1
    return dict(sorted(out.items()))


def flatten_for_graphml(props: dict[str, Any]) -> dict[str, Any]:
    """GraphML holds only scalars: lists and maps become JSON strings, None is dropped."""
    import json

    out: dict[str, Any] = {}
    for k, v in props.items():
        if v is None:
            continue
        out[k] = json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v
    return out


class GraphMetrics(BaseModel):
    """The shape of the persona graph: how deep, how connected, how far expansion has yet to go."""

    personas: int = 0
    edges: int = 0
    hops: dict[int, int] = Field(default_factory=dict, description="Personas per hop depth")
    components: int = Field(default=0, description="Connected components (edge direction ignored)")
    component_sizes: dict[int, int] = Field(default_factory=dict, description="Components per size")
    largest_component: int = 0
    degrees: dict[int, int] = Field(default_factory=dict, description="Personas per total degree")
    relation_types: dict[str, int] = Field(default_factory=dict, description="Relationship edges per type")
    frontier: int = Field(default=0, description="Accepted personas not expanded yet")
    isolated: int = Field(default=0, description="Personas without any relationship")


def graph_metrics(g: nx.MultiDiGraph) -> GraphMetrics:
    """Hop depths, components, degrees, relation types, frontier and isolated personas of a persona graph.

        >>> g = nx.MultiDiGraph()
        >>> g.add_node("a", hop=0, status="accepted", expanded=True); g.add_node("b", hop=1, status="accepted")
        >>> _ = g.add_edge("a", "b", key="PARENT_OF", type="PARENT_OF"); g.add_node("c", hop=0, status="accepted")
        >>> m = graph_metrics(g)
        >>> m.hops, m.component_sizes, m.relation_types, m.frontier, m.isolated
        ({0: 2, 1: 1}, {1: 1, 2: 1}, {'PARENT_OF': 1}, 2, 1)
    """
    sizes = [len(c) for c in nx.connected_components(g.to_undirected(as_view=True))] if len(g) else []
    hops: dict[int, int] = {}
    for _, hop in g.nodes(data="hop"):
        if hop is not None:
            hops[int(hop)] = hops.get(int(hop), 0) + 1
    types: dict[str, int] = {}
    for *_, kind in g.edges(data="type"):
        types[str(kind)] = types.get(str(kind), 0) + 1
    degrees = degree_histogram(g)
    return GraphMetrics(
        personas=g.number_of_nodes(), edges=g.number_of_edges(), hops=dict(sorted(hops.items())),
        components=len(sizes), component_sizes=dict(sorted(Counter(sizes).items())), largest_component=max(sizes, default=0),
        degrees=degrees, relation_types=dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))),
        frontier=sum(1 for _, p in g.nodes(data=True) if p.get("status") == "accepted" and not p.get("expanded")),
        isolated=degrees.get(0, 0),
    )
