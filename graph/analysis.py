"""networkx as the bridge for analysis: the persona graph, or a part of it, in one call.

    >>> g = to_networkx(store)                      # every live persona and relationship
    >>> g = to_networkx(store, ids=cluster_ids)     # the subgraph induced by some personas
    >>> nx.number_weakly_connected_components(g)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

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
