"""Merging duplicates: which persona a duplicate merges into, where its edges go, what the survivor records.

The rows only, no queries: `GraphStore.merge_groups` reads the nodes and their edges, asks this module
for the rows, and writes them with `cypher/upsert_edges.cypher` and `cypher/merge_*.cypher`. Two
rows for one edge merge here too (`add_edge_row`), for the batched edge upserts as for moved edges.

    >>> owners([("p_a", ["p_b", "p_c"]), ("p_d", ["p_d"])])
    {'p_b': 'p_a', 'p_c': 'p_a'}
    >>> tombstone_rows({"p_b": "p_a"})
    [{'id': 'p_b', 'survivor': 'p_a'}]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from personagraph.graph.model import check_label, check_rel_type

# An EXTRACTED_FROM edge pools the stances of every write instead of keeping the first write's
# (cypher/upsert_extracted_from.cypher); every other edge type is upserted by cypher/upsert_edges.cypher.
STANCE_EDGE = "EXTRACTED_FROM"

__all__ = ["STANCE_EDGE", "add_edge_row", "moved_edge_rows", "owners", "survivor_rows", "tombstone_rows"]


def _stances(props: dict[str, Any]) -> list[str]:
    """The stances an EXTRACTED_FROM edge's properties record (`stances`, or a lone `stance` written before it)."""
    return list(props.get("stances") or ([props["stance"]] if props.get("stance") else []))


def add_edge_row(pairs: dict[tuple[str, str], list[Any]], src: str, dst: str, props: dict[str, Any], rel_type: str) -> None:
    """Add the row `[src, dst, props]` unless the pair has one already.

    The first row wins: FalkorDB applies the ON CREATE SET of the *last* of several rows that MERGE
    one new edge in one batch, Neo4j that of the first, so duplicates are dropped before they reach
    the database. Except that the stances of two EXTRACTED_FROM rows are pooled, as the database does.
    """
    row = pairs.setdefault((src, dst), [src, dst, props])
    if row[2] is not props and rel_type == STANCE_EDGE:
        row[2] = {**row[2], "stances": sorted(set(_stances(row[2])) | set(_stances(props)))}


def _union(*lists: Iterable[Any]) -> list[Any]:
    """Order-preserving union of lists (aliases, merged ids)."""
    seen: dict[Any, None] = {}
    for items in lists:
        for item in items or ():
            seen.setdefault(item, None)
    return list(seen)


def owners(groups: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """Each duplicate id mapped to the survivor of its group (a survivor listed among its own duplicates is skipped).

    Raises ValueError for an id that is a survivor in one group and a duplicate in another.
    """
    owner: dict[str, str] = {}
    for survivor, dups in groups:
        for d in dups:
            if d != survivor:
                owner[d] = survivor
    for survivor, dups in groups:
        # A group with nothing to merge keeps no one, so it cannot conflict with another group.
        if survivor in owner and any(d != survivor for d in dups):
            raise ValueError(f"{survivor} is both a survivor and a duplicate in one merge call")
    return owner


def moved_edge_rows(incident: Iterable[tuple[str, dict[str, Any]]],
                    owner: Mapping[str, str]) -> dict[tuple[str, str, str], list[list[Any]]]:
    """Upsert rows `[src, dst, props]` by (type, source label, target label) for the edges of the duplicates.

    `incident` holds ("out" or "in", record) pairs from `cypher/incident_out.cypher` and
    `cypher/incident_in.cypher`. Every edge keeps its type, direction and properties with each
    persona end replaced by its survivor; an edge between two members of one group is dropped
    unless it was a self-loop already; rows for one edge are merged (`add_edge_row`).
    """
    moved: dict[tuple[str, str, str], dict[tuple[str, str], list[Any]]] = defaultdict(dict)
    for direction, rec in incident:
        node, other, label = rec["node"], rec["other"], rec["other_label"] or "Persona"
        new_node = owner.get(node, node)
        new_other = owner.get(other, other) if label == "Persona" else other
        was_loop = node == other and label == "Persona"
        if label == "Persona" and new_node == new_other and not was_loop:
            continue  # an edge inside the group would become a new self-loop
        if direction == "out":
            src, dst, src_label, dst_label = new_node, new_other, "Persona", label
        else:
            src, dst, src_label, dst_label = new_other, new_node, label, "Persona"
        key = (check_rel_type(rec["type"]), check_label(src_label), check_label(dst_label))
        add_edge_row(moved[key], src, dst, rec["props"] or {}, rec["type"])
    return {key: list(rows.values()) for key, rows in moved.items()}


def survivor_rows(owner: Mapping[str, str], nodes: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `cypher/merge_survivors.cypher`: each survivor's `aliases` (its duplicates' descriptions
    and aliases, not its own description) and `merged_ids` (its duplicates' ids and merged ids).

    `nodes` holds the property maps of the survivors and of the duplicates still there.
    """
    members_of: dict[str, list[str]] = defaultdict(list)
    for d, survivor in owner.items():
        if d in nodes:
            members_of[survivor].append(d)
    rows = []
    for survivor in dict.fromkeys(owner.values()):
        s = nodes[survivor]
        members = members_of[survivor]
        aliases = _union(s.get("aliases"), *[[nodes[d]["description"]] + list(nodes[d].get("aliases") or []) for d in members])
        aliases = [a for a in aliases if a != s.get("description")]
        merged = _union(s.get("merged_ids"), *[[d] + list(nodes[d].get("merged_ids") or []) for d in members])
        rows.append({"id": survivor, "aliases": aliases, "merged_ids": merged})
    return rows


def tombstone_rows(owner: Mapping[str, str]) -> list[dict[str, Any]]:
    """Rows of `cypher/merge_tombstones.cypher` and `cypher/merge_repoint.cypher`: each duplicate and its survivor."""
    return [{"id": d, "survivor": survivor} for d, survivor in owner.items()]
