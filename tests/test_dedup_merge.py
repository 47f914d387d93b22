"""Merge invariants of the dedup pass on a real graph, under hypothesis: random families of duplicate
personas, random typed edges (self-loops and edges inside a family included), one dedup pass."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personagraph.graph.model import Edge, Persona
from personagraph.graph.store import GraphStore
from personagraph.config import DedupConfig
from personagraph.dedup.stage import merge_duplicates

BASES = [
    "A pediatric nurse in Lyon who trains for marathons and reads crime novels.",
    "A retired school teacher from rural Ohio who volunteers at the local library on weekends.",
    "A long-haul truck driver from the Texas panhandle who restores old motorcycles in the garage.",
    "A beekeeper in the Scottish Highlands who sings in a church choir and fears flying.",
    "A graduate student in linguistics in Osaka who builds birdhouses for the neighbours.",
    "A street food vendor in Lagos who is raising three kids alone and saves for a cafe.",
]
# Copies every detector must call duplicates: punctuation only (case and spacing would give the same id).
VARIANTS = [lambda t: t.rstrip(".") + "!", lambda t: t.rstrip("."), lambda t: t.replace(" who ", ", who ", 1)]
TYPES = ["KNOWS", "PATIENT_OF"]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[str], list[int], list[tuple[int, str, int]]]:
    """(texts, family of each text, edges as (source index, type, target index))."""
    texts: list[str] = []
    family: list[int] = []
    for f in draw(st.lists(st.integers(0, len(BASES) - 1), min_size=2, max_size=5, unique=True)):
        texts.append(BASES[f])
        family.append(f)
        for v in draw(st.lists(st.integers(0, len(VARIANTS) - 1), max_size=3, unique=True)):
            texts.append(VARIANTS[v](BASES[f]))
            family.append(f)
    n = len(texts)
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(TYPES), st.integers(0, n - 1)), max_size=25))
    return texts, family, edges


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graphs())
def test_dedup_merge_keeps_every_edge_and_creates_no_loops_or_parallels(store: GraphStore, case) -> None:
    texts, family, edges = case
    store.reset()
    personas = [Persona(description=t) for t in texts]
    ids = [p.id for p in personas]
    store.upsert_personas(personas)
    store.add_edges([Edge(source=ids[s], target=ids[t], type=k) for s, k, t in edges])
    before = {(ids[s], k, ids[t]) for s, k, t in edges}

    with tempfile.TemporaryDirectory() as folder:
        report = merge_duplicates(store, DedupConfig(), Path(folder))

    rep = {pid: pid for pid in ids}
    for g in report.groups:
        for d in g.duplicates:
            rep[d] = g.survivor
    # The groups are exactly the families.
    assert {frozenset(k for k in ids if rep[k] == rep[i]) for i in ids} == {
        frozenset(ids[j] for j in range(len(ids)) if family[j] == f) for f in set(family)
    }
    after = [(e["source"], e["type"], e["target"]) for e in store.edges_among(ids)]
    expected = {(rep[s], k, rep[t]) for s, k, t in before if rep[s] != rep[t] or s == t}
    # No parallel duplicate edges, no edge lost, nothing invented, counts reconcile.
    assert not [e for e, c in Counter(after).items() if c > 1]
    assert set(after) == expected
    assert len(after) == len(expected)
    # A self-loop exists only where one existed before the merge.
    for s, k, t in after:
        if s == t:
            assert any(rep[a] == s and a == b and kk == k for a, kk, b in before)
    nodes = store.get_personas(ids)
    merged = [pid for pid in ids if rep[pid] != pid]
    assert report.merged == len(merged) == len(ids) - len(set(family))
    for pid in merged:
        assert nodes[pid]["status"] == "merged" and nodes[pid]["merged_into"] == rep[pid]
        assert pid in nodes[rep[pid]]["merged_ids"]
    assert sum(1 for n in nodes.values() if n["status"] != "merged") == len(set(family))


def test_merge_chunks_are_bounded_by_groups_and_by_personas(store: GraphStore, monkeypatch) -> None:
    """Large groups are merged a few at a time (a group larger than the bound goes alone), every
    group exactly once, and the report counts every duplicate."""
    from personagraph.dedup import stage as dedup_stage
    from personagraph.dedup.groups import DuplicateGroup
    from personagraph.dedup.stage import DedupReport

    sizes = [5, 4, 2, 2, 1, 1, 1]
    people = [[Persona(description=f"A keeper number {g}-{i} of the lighthouse archive") for i in range(n + 1)]
              for g, n in enumerate(sizes)]
    store.upsert_personas([p for group in people for p in group])
    groups = [DuplicateGroup(survivor=g[0].id, duplicates=[p.id for p in g[1:]], similarity=0.9) for g in people]
    calls: list[int] = []
    real = store.merge_groups
    monkeypatch.setattr(store, "merge_groups", lambda chunk: (calls.append(sum(len(d) for _, d in chunk)), real(chunk))[1])
    monkeypatch.setattr(dedup_stage, "MERGE_PERSONAS", 4)
    monkeypatch.setattr(dedup_stage, "MERGE_CHUNK", 2)
    report = DedupReport(personas=0)
    dedup_stage._merge(store, groups, report, lambda *_: None)
    assert calls == [5, 4, 4, 2, 1]  # 5 alone (over the bound), 4, 2+2, then 1+1 (two groups at most), 1
    assert report.merged == sum(sizes)
    assert {p["status"] for p in store.iter_personas(None) if p["id"] in {q.id for g in people for q in g[1:]}} == {"merged"}
