"""The merge primitive (GraphStore.merge_groups) keeps every edge: examples and a hypothesis property test."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from personagraph.graph.model import Edge, Source
from personagraph.graph.store import FalkorStore, GraphStore, StoreConfig
from tests.graphs import personas

_graphs = itertools.count()
TYPES = ("COLLEAGUE_OF", "PATIENT_OF", "SUPPLIER_OF")


@contextmanager
def fresh_store(data_dir: Path) -> Iterator[GraphStore]:
    """A schema-ready graph of its own on the session server (one per hypothesis example), deleted after."""
    st_ = FalkorStore(StoreConfig(data_dir=data_dir, graph=f"m{os.getpid()}_{next(_graphs)}", batch_size=7))
    st_.ensure_schema()
    try:
        yield st_
    finally:
        st_._graph.delete()
        st_.close()


def edge_list(store: GraphStore) -> list[tuple[str, str, str]]:
    """Every edge as (source id, type, target id), duplicates kept so parallel edges show."""
    return [(e["source"], e["type"], e["target"]) for e in store.iter_edges()]


def edge_props(store: GraphStore) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Properties of every edge keyed by (source id, type, target id)."""
    return {(e["source"], e["type"], e["target"]): e["props"] for e in store.iter_edges()}


@st.composite
def merge_cases(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, int, str, str]], list[list[int]]]:
    """(personas, sources, edges, groups): edges are (from, to, type, kind) with kind persona->persona
    ("pp"), persona->source ("ps") or source->persona ("sp"); groups are disjoint persona index lists,
    survivor first."""
    n = draw(st.integers(2, 8))
    n_sources = draw(st.integers(0, 2))
    kinds = ["pp"] + (["ps", "sp"] if n_sources else [])
    raw = draw(st.lists(st.tuples(st.sampled_from(kinds), st.integers(0, 7), st.integers(0, 7), st.sampled_from(TYPES)), max_size=25))
    edges = []
    for kind, a, b, t in raw:
        a = a % (n if kind[0] == "p" else n_sources)
        b = b % (n if kind[1] == "p" else n_sources)
        edges.append((a, b, t, kind))
    order = draw(st.permutations(range(n)))
    cuts = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    groups, i = [], 0
    for size in cuts:
        group = list(order[i : i + size + 1])
        if len(group) >= 2:
            groups.append(group)
        i += size + 1
    return n, n_sources, edges, groups or [list(order[:2])]


def test_merge_moves_both_directions_and_records_the_duplicates(store: GraphStore) -> None:
    nurse, nurse2, patient, supplier = personas(4, prefix="merge")
    src = Source(text_hash="a" * 64, uri="https://example.org/nursing")
    store.upsert_personas([nurse, nurse2, patient, supplier])
    store.upsert_sources([src])
    store.add_edges([
        Edge(source=patient.id, target=nurse2.id, type="PATIENT_OF", props={"hop": 1}),
        Edge(source=nurse2.id, target=supplier.id, type="SUPPLIER_OF"),
        Edge(source=nurse.id, target=supplier.id, type="SUPPLIER_OF", props={"hop": 0}),
        Edge(source=nurse.id, target=nurse2.id, type="COLLEAGUE_OF"),
    ])
    store.add_edges([Edge(source=nurse2.id, target=src.id, type="EXTRACTED_FROM", props={"stance": "writer"})], target_label="Source")

    store.merge_nodes(nurse.id, [nurse2.id])

    assert sorted(edge_list(store)) == sorted([
        (patient.id, "PATIENT_OF", nurse.id),
        (nurse.id, "SUPPLIER_OF", supplier.id),
        (nurse.id, "EXTRACTED_FROM", src.id),
    ])
    props = edge_props(store)
    assert props[(patient.id, "PATIENT_OF", nurse.id)] == {"hop": 1}
    assert props[(nurse.id, "SUPPLIER_OF", supplier.id)] == {"hop": 0}  # the survivor's own edge wins
    assert props[(nurse.id, "EXTRACTED_FROM", src.id)] == {"stance": "writer", "stances": ["writer"]}
    nodes = store.get_personas([nurse.id, nurse2.id])
    assert nodes[nurse.id]["aliases"] == [nurse2.description]
    assert nodes[nurse.id]["merged_ids"] == [nurse2.id]
    assert nodes[nurse2.id]["status"] == "merged" and nodes[nurse2.id]["merged_into"] == nurse.id
    assert store.degrees([nurse2.id]) == {nurse2.id: 0}


def test_merged_personas_pool_the_stances_that_extracted_them_from_one_source(store: GraphStore) -> None:
    reader, writer, liker = personas(3, prefix="stance")
    src = Source(text_hash="e" * 64)
    store.upsert_personas([reader, writer, liker])
    store.upsert_sources([src])
    store.add_edges([Edge(source=p.id, target=src.id, type="EXTRACTED_FROM", props={"stances": [stance], "chunk": 0})
                     for p, stance in [(reader, "read"), (writer, "write"), (liker, "like")]], target_label="Source")
    store.merge_nodes(writer.id, [reader.id, liker.id])
    assert edge_props(store) == {(writer.id, "EXTRACTED_FROM", src.id): {
        "stances": ["like", "read", "write"], "stance": "like,read,write", "chunk": 0}}


def test_edges_written_to_a_merged_persona_land_on_its_survivor(store: GraphStore) -> None:
    a, b, c = personas(3, prefix="redirect")
    store.upsert_personas([a, b, c])
    store.merge_nodes(a.id, [b.id])
    stats = store.add_edges([Edge(source=c.id, target=b.id, type="COLLEAGUE_OF")])
    assert stats.matched == 1
    assert edge_list(store) == [(c.id, "COLLEAGUE_OF", a.id)]


def test_merging_a_survivor_later_repoints_older_tombstones(store: GraphStore) -> None:
    a, b, c = personas(3, prefix="chain")
    store.upsert_personas([a, b, c])
    store.merge_nodes(b.id, [c.id])
    store.merge_nodes(a.id, [b.id])
    nodes = store.get_personas([a.id, b.id, c.id])
    assert nodes[c.id]["merged_into"] == a.id
    assert set(nodes[a.id]["merged_ids"]) == {b.id, c.id}
    assert set(nodes[a.id]["aliases"]) == {b.description, c.description}
    assert store.resolve_merged([b.id, c.id]) == {b.id: a.id, c.id: a.id}


def test_merge_refuses_a_survivor_that_is_also_a_duplicate_and_a_missing_survivor(store: GraphStore) -> None:
    a, b, c = personas(3, prefix="refuse")
    store.upsert_personas([a, b, c])
    with pytest.raises(ValueError, match="both a survivor and a duplicate"):
        store.merge_groups([(a.id, [b.id]), (b.id, [c.id])])
    with pytest.raises(KeyError, match="not found"):
        store.merge_nodes("p_00000000000000000000", [a.id])
    assert store.resolve_merged([a.id, b.id, c.id]) == {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=merge_cases())
def test_merge_keeps_every_edge(falkordb_dir: Path, case: tuple[int, int, list[tuple[int, int, str, str]], list[list[int]]]) -> None:
    n, n_sources, raw_edges, groups = case
    people = personas(n, prefix="prop")
    sources = [Source(text_hash=f"{i:02x}".ljust(64, "0")) for i in range(n_sources)]
    pid = [p.id for p in people]
    sid = [s.id for s in sources]
    owner = {pid[d]: pid[g[0]] for g in groups for d in g[1:]}

    def node(kind: str, i: int) -> str:
        return pid[i] if kind == "p" else sid[i]

    originals: dict[tuple[str, str, str], dict[str, Any]] = {}
    for k, (a, b, t, kind) in enumerate(raw_edges):
        originals.setdefault((node(kind[0], a), t, node(kind[1], b)), {"k": k})
    # Each original edge maps to its image on the survivors, unless it joined two members of one group.
    expected: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for (a, t, b), props in originals.items():
        ma, mb = owner.get(a, a), owner.get(b, b)
        if a != b and ma == mb:
            continue
        expected.setdefault((ma, t, mb), []).append(props)

    with fresh_store(falkordb_dir) as store:
        store.upsert_personas(people)
        store.upsert_sources(sources)
        for kind, labels in (("pp", ("Persona", "Persona")), ("ps", ("Persona", "Source")), ("sp", ("Source", "Persona"))):
            edges = [Edge(source=a, target=b, type=t, props=p) for (a, t, b), p in originals.items()
                     if (a.startswith("p_"), b.startswith("p_")) == (kind[0] == "p", kind[1] == "p")]
            store.add_edges(edges, *labels)
        loops_before = sum(a == b for a, _, b in originals)

        store.merge_groups([(pid[g[0]], [pid[d] for d in g[1:]]) for g in groups])

        after = edge_list(store)
        assert Counter(after) == Counter(list(expected))  # every edge mapped once, no parallel duplicates
        assert sum(a == b for a, _, b in after) <= loops_before  # no new self-loops
        for key, props in edge_props(store).items():
            assert props in expected[key]  # type, direction and properties kept
        nodes = store.get_personas(pid)
        for g in groups:
            survivor, dups = pid[g[0]], [pid[d] for d in g[1:]]
            assert sorted(nodes[survivor]["merged_ids"]) == sorted(dups)
            assert sorted(nodes[survivor]["aliases"]) == sorted(nodes[d]["description"] for d in dups)
            assert nodes[survivor]["status"] == "accepted"
            for d in dups:
                assert nodes[d]["status"] == "merged" and nodes[d]["merged_into"] == survivor
            assert all(degree == 0 for degree in store.degrees(dups).values())
            assert not any(d in (a, b) for a, _, b in after for d in dups)
        counts = {(r["label"], r["status"]): r["nodes"] for r in store.stats()["nodes"]}
        assert counts.get(("Persona", "merged"), 0) == len(owner)
        assert counts.get(("Persona", "accepted"), 0) == n - len(owner)
        assert counts.get(("Source", None), 0) == n_sources

        before_rerun = edge_props(store)
        store.merge_groups([(pid[g[0]], [pid[d] for d in g[1:]]) for g in groups])
        assert edge_props(store) == before_rerun and len(edge_list(store)) == len(after)
        assert store.get_personas(pid) == nodes


def image(edges: dict[tuple[str, str, str], list[dict[str, Any]]], owner: dict[str, str]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Where a merge should move each edge: onto the survivors, dropped if it joined two members of one group."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for (a, t, b), props in edges.items():
        ma, mb = owner.get(a, a), owner.get(b, b)
        if a != b and ma == mb:
            continue
        out.setdefault((ma, t, mb), []).extend(props)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=merge_cases(), second=st.lists(st.lists(st.integers(0, 7), min_size=2, max_size=3, unique=True), max_size=2))
def test_a_second_merge_round_keeps_every_edge_and_follows_tombstones(
    falkordb_dir: Path, case: tuple[int, int, list[tuple[int, int, str, str]], list[list[int]]], second: list[list[int]]
) -> None:
    """Dedup runs again later: survivors of the second round may be tombstones of the first."""
    n, _, raw_edges, groups = case
    people = personas(n, prefix="rounds")
    pid = [p.id for p in people]
    first_owner = {pid[d]: pid[g[0]] for g in groups for d in g[1:]}
    # Second round: disjoint groups of indices taken mod n; duplicates must be live personas.
    used: set[int] = set()
    second_groups: list[tuple[str, list[str]]] = []
    for g in second:
        members = [i % n for i in g if i % n not in used]
        used.update(members)
        if len(members) >= 2:
            dups = [pid[i] for i in members[1:] if pid[i] not in first_owner]
            second_groups.append((pid[members[0]], dups))
    second_owner: dict[str, str] = {}
    for survivor, dups in second_groups:
        live = first_owner.get(survivor, survivor)
        second_owner.update({d: live for d in dups if d != live})
    assume(not set(second_owner) & set(second_owner.values()))  # a persona both kept and merged: refused

    originals = {(pid[a], t, pid[b]): [{"k": k}] for k, (a, b, t, kind) in enumerate(raw_edges) if kind == "pp"}
    expected = image(image(originals, first_owner), second_owner)
    final = {d: second_owner.get(s, s) for d, s in first_owner.items()} | second_owner

    with fresh_store(falkordb_dir) as store:
        store.upsert_personas(people)
        store.add_edges([Edge(source=a, target=b, type=t, props=p[0]) for (a, t, b), p in originals.items()])
        store.merge_groups([(pid[g[0]], [pid[d] for d in g[1:]]) for g in groups])
        store.merge_groups(second_groups)

        after = edge_list(store)
        assert Counter(after) == Counter(list(expected))
        for key, props in edge_props(store).items():
            assert props in expected[key]
        nodes = store.get_personas(pid)
        for survivor in set(final.values()):
            merged = sorted(d for d, s in final.items() if s == survivor)
            assert nodes[survivor]["status"] == "accepted"
            assert sorted(nodes[survivor]["merged_ids"]) == merged
            assert sorted(nodes[survivor]["aliases"]) == sorted(nodes[d]["description"] for d in merged)
        for dup, survivor in final.items():
            assert nodes[dup]["status"] == "merged" and nodes[dup]["merged_into"] == survivor
        assert all(degree == 0 for degree in store.degrees(list(final)).values())


def test_merging_into_a_persona_merged_away_lands_on_its_survivor(store: GraphStore) -> None:
    a, b, c, other = personas(4, prefix="tombstone survivor")
    store.upsert_personas([a, b, c, other])
    store.add_edges([Edge(source=c.id, target=other.id, type="FRIEND_OF")])
    store.merge_nodes(a.id, [b.id])
    store.merge_nodes(b.id, [c.id])  # b is a tombstone now: c goes to a
    assert edge_list(store) == [(a.id, "FRIEND_OF", other.id)]
    nodes = store.get_personas([a.id, b.id, c.id])
    assert nodes[c.id]["merged_into"] == a.id and set(nodes[a.id]["merged_ids"]) == {b.id, c.id}
    assert store.degrees([b.id, c.id]) == {b.id: 0, c.id: 0}


def test_a_group_with_nothing_to_merge_does_not_conflict(store: GraphStore) -> None:
    a, b, other = personas(3, prefix="empty group")
    store.upsert_personas([a, b, other])
    store.add_edges([Edge(source=b.id, target=other.id, type="FRIEND_OF")])
    # b is merged into a by one group and names itself as a survivor of nothing in another.
    store.merge_groups([(a.id, [b.id]), (b.id, [])])
    assert edge_list(store) == [(a.id, "FRIEND_OF", other.id)]
    with pytest.raises(ValueError, match="both a survivor and a duplicate"):
        store.merge_groups([(a.id, [other.id]), (other.id, [b.id])])
