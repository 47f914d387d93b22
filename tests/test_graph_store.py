"""GraphStore on the real embedded FalkorDB: schema, batched idempotent writes, typed edges, reads."""

from __future__ import annotations

import asyncio
import doctest
import gc
import re
from collections.abc import Callable
from typing import Any

import networkx as nx
import pytest
from pydantic import ValidationError

from personagraph import cypher
from personagraph.graph import encoding, merge
from personagraph.graph.analysis import to_networkx
from personagraph.graph.model import Edge, InvalidName, Persona, Source, check_rel_type, gc_frozen, persona_id
from personagraph.graph.store import LIVE_STATUSES, FalkorStore, GraphStore, QueryError, ReadOnlyViolation
from tests.graphs import count_queries, personas, write_random_graph


def test_schema_is_idempotent_and_enforces_unique_ids(store: GraphStore) -> None:
    store.ensure_schema()  # a second time: no error
    (p,) = personas(1)
    store.upsert_personas([p])
    with pytest.raises(QueryError):
        store.run("CREATE (:Persona {id: $id})", {"id": p.id})
    assert store.run("MATCH (n:Persona) RETURN count(n)").value() == 1


def test_reimporting_the_same_personas_changes_nothing(store: GraphStore) -> None:
    people = personas(1200)  # more than one batch (batch_size 500)
    first = store.upsert_personas(people)
    before = store.get_personas([p.id for p in people])
    again = store.upsert_personas(personas(1200))  # same texts, new objects (new created_at)
    assert first.nodes_created == 1200
    assert again.nodes_created == 0 and again.properties_set == 0
    assert store.get_personas([p.id for p in people]) == before
    assert store.run("MATCH (n) RETURN count(n)").value() == 1200


def test_ids_are_content_hashes_and_attributes_become_properties(store: GraphStore) -> None:
    p = Persona(description="  A Pediatric   nurse in Lyon ", attributes={"age_group": "adult", "domain": "health"})
    store.upsert_personas([p, Persona(description="a pediatric nurse in lyon")])
    assert p.id == persona_id("a pediatric nurse in lyon")
    (node,) = store.get_personas([p.id]).values()
    assert node["age_group"] == "adult" and node["domain"] == "health"
    assert node["status"] == "accepted" and node["expanded"] is False
    assert store.region_counts("domain") == {"health": 1}


def test_reserved_attribute_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Persona(description="a nurse", attributes={"status": "rejected"})


def test_sources_upsert_idempotently(store: GraphStore) -> None:
    src = Source(text_hash="b" * 64, uri="https://example.org/a", props={"lang": "en"})
    assert store.upsert_sources([src]).nodes_created == 1
    assert store.upsert_sources([src]).nodes_created == 0
    assert store.run("MATCH (s:Source) RETURN s").value() == {"id": src.id, "uri": src.uri, "text_hash": src.text_hash, "lang": "en"}


def test_typed_edges_are_merged_once_per_type_and_pair(store: GraphStore) -> None:
    a, b, c = personas(3, prefix="edges")
    store.upsert_personas([a, b, c])
    edges = [
        Edge(source=a.id, target=b.id, type="PATIENT_OF", props={"hop": 1, "relation": "patient"}),
        Edge(source=a.id, target=b.id, type="COLLEAGUE_OF"),
        Edge(source=b.id, target=a.id, type="COLLEAGUE_OF"),
        Edge(source=a.id, target="p_missing", type="COLLEAGUE_OF"),
    ]
    stats = store.add_edges(edges)
    assert stats.relationships_created == 3 and stats.matched == 3  # the edge to a missing persona is not made
    assert store.add_edges(edges).relationships_created == 0
    got = {(e["source"], e["type"], e["target"]): e["props"] for e in store.iter_edges()}
    assert got == {
        (a.id, "PATIENT_OF", b.id): {"hop": 1, "relation": "patient"},
        (a.id, "COLLEAGUE_OF", b.id): {},
        (b.id, "COLLEAGUE_OF", a.id): {},
    }
    assert {r["type"]: r["edges"] for r in store.stats()["edges"]} == {"COLLEAGUE_OF": 2, "PATIENT_OF": 1}


def test_edges_to_sources_use_the_given_labels(store: GraphStore) -> None:
    (a,) = personas(1, prefix="reader")
    src = Source(text_hash="c" * 64)
    store.upsert_personas([a])
    store.upsert_sources([src])
    store.add_edges([Edge(source=a.id, target=src.id, type="EXTRACTED_FROM", props={"stance": "reader"})], target_label="Source")
    (edge,) = store.iter_edges()
    assert edge == {"source": a.id, "source_label": "Persona", "type": "EXTRACTED_FROM", "target": src.id,
                    "target_label": "Source", "props": {"stance": "reader", "stances": ["reader"]}}
    assert store.degrees([a.id]) == {a.id: 0}  # persona-persona degree only


def test_extracted_from_edges_pool_every_stance_in_any_order(store: GraphStore) -> None:
    a, b, c = personas(3, prefix="stances")
    src = Source(text_hash="f" * 64)
    store.upsert_personas([a, b, c])
    store.upsert_sources([src])

    def extracted(persona: Persona, *stances: str) -> Edge:
        return Edge(source=persona.id, target=src.id, type="EXTRACTED_FROM", props={"stances": list(stances)})

    for first, second in [("write", "read"), ("read", "write")]:  # a: write first, b: read first
        persona = a if first == "write" else b
        store.add_edges([extracted(persona, first)], target_label="Source")
        store.add_edges([extracted(persona, second), extracted(persona, first)], target_label="Source")
    store.add_edges([extracted(c, "like"), extracted(c, "read", "write")], target_label="Source")  # one batch
    store.add_edges([Edge(source=c.id, target=src.id, type="EXTRACTED_FROM", props={"stance": "read"})],
                    target_label="Source")  # a row in the form written before `stances`
    props = {e["source"]: e["props"] for e in store.iter_edges()}
    assert props[a.id] == props[b.id] == {"stances": ["read", "write"], "stance": "read,write"}
    assert props[c.id] == {"stances": ["like", "read", "write"], "stance": "like,read,write"}


@pytest.mark.parametrize("bad", ["patient_of", "PATIENT OF", "X]->() DETACH DELETE n //", "", "1ABC", "A" * 65])
def test_invalid_relationship_type_is_rejected_before_any_query(store: GraphStore, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    sent = count_queries(store, monkeypatch)
    with pytest.raises(InvalidName):
        check_rel_type(bad)
    with pytest.raises(ValidationError, match="invalid relationship type"):
        Edge(source="p_a", target="p_b", type=bad)
    edge = Edge.model_construct(source="p_a", target="p_b", type=bad, props={})  # skips validation
    with pytest.raises(InvalidName):
        store.add_edges([edge])
    with pytest.raises(InvalidName):
        store.add_edges([Edge(source="p_a", target="p_b", type="OK")], target_label="Bad Label")
    with pytest.raises(InvalidName):
        store.set_properties([{"id": "p_a", "props": {"bad key": 1}}])
    with pytest.raises(InvalidName):
        store.region_counts("domain) DETACH DELETE (n")
    assert sent == []


def test_set_properties_counts_matches_and_updates(store: GraphStore) -> None:
    a, b = personas(2, prefix="props")
    store.upsert_personas([a, b])
    stats = store.set_properties([{"id": a.id, "props": {"score": 0.9, "status": "rejected"}}, {"id": "p_nope", "props": {"score": 1}}])
    assert stats.matched == 1
    assert store.get_personas([a.id])[a.id]["score"] == 0.9
    assert list(store.iter_personas()) == [store.get_personas([b.id])[b.id]]  # rejected is not live
    assert {n["id"] for n in store.iter_personas(statuses=None)} == {a.id, b.id}


def test_reads_match_networkx(store: GraphStore) -> None:
    g = write_random_graph(store, n_nodes=60, n_edges=150, seed=11)
    ids = sorted(g.nodes)
    undirected = nx.Graph(g)
    nbrs = store.neighbours(ids)
    for n in ids:
        assert nbrs.get(n, []) == sorted(undirected.adj[n])
    # The store counts a self-loop once (one edge), networkx twice (two ends).
    degree = {n: g.degree(n) - g.number_of_edges(n, n) for n in ids}
    assert store.degrees(ids) == degree
    expected_hist: dict[int, int] = {}
    for d in degree.values():
        expected_hist[d] = expected_hist.get(d, 0) + 1
    assert store.degree_distribution() == expected_hist
    some = ids[:20]
    assert sorted((e["source"], e["target"], e["type"]) for e in store.edges_among(some)) == sorted(
        (u, v, k) for u, v, k in g.edges(keys=True) if u in some and v in some
    )
    whole = to_networkx(store)
    assert set(whole.nodes) == set(g.nodes) and set(whole.edges(keys=True)) == set(g.edges(keys=True))
    part = to_networkx(store, ids=some)
    assert set(part.edges(keys=True)) == set(g.subgraph(some).edges(keys=True))


def test_iter_nodes_pages_through_every_node(store: GraphStore) -> None:
    people = personas(53, prefix="page")
    store.upsert_personas(people)
    pages = list(store.iter_nodes("Persona", page=10))
    assert all(len(p) <= 10 for p in pages)
    assert sorted(n["id"] for page in pages for n in page) == sorted(p.id for p in people)


def test_stats_and_record_run_and_reset(store: GraphStore) -> None:
    store.upsert_personas(personas(4, prefix="stats"))
    store.record_run("import-1", {"read": 4, "stage": "import"})
    store.record_run("import-1", {"read": 5})
    stats = store.stats()
    assert {(r["label"], r["status"]): r["nodes"] for r in stats["nodes"]} == {("Persona", "accepted"): 4, ("Run", None): 1}
    assert stats["hops"] == [{"hop": 0, "personas": 4}]
    assert store.run("MATCH (r:Run {id: 'import-1'}) RETURN r").value() == {"id": "import-1", "read": 5, "stage": "import"}
    store.reset()
    assert store.run("MATCH (n) RETURN count(n)").value() == 0


def test_read_only_queries_cannot_write_and_errors_are_the_databases(store: GraphStore) -> None:
    with pytest.raises(ReadOnlyViolation):
        store.run("CREATE (:Persona {id: 'x'})", write=False)
    assert store.run("MATCH (n) RETURN count(n)", write=False).value() == 0
    with pytest.raises(QueryError) as info:
        store.run("MATCH (n RETURN n")
    assert "Invalid input" in str(info.value)


def test_duplicates_within_one_call_keep_the_first_occurrence(store: GraphStore) -> None:
    first = Persona(description="a night-shift baker", attributes={"domain": "food"})
    store.upsert_personas([first, Persona(description="A night-shift BAKER")])
    assert store.get_personas([first.id])[first.id]["domain"] == "food"
    a, b = personas(2, prefix="dup edges")
    store.upsert_personas([a, b])
    store.add_edges([Edge(source=a.id, target=b.id, type="FRIEND_OF", props={"hop": 1}),
                     Edge(source=a.id, target=b.id, type="FRIEND_OF", props={"hop": 2})])
    assert [e["props"] for e in store.iter_edges()] == [{"hop": 1}]


def test_values_survive_the_batched_write_path(store: GraphStore) -> None:
    text = 'a "quoted" back\\slash\nnew line, tab\t, caf\u00e9, \u4e2d\u6587, emoji \U0001F600 persona'
    p = Persona(description=text, attributes={"score": -1.5e-7, "big": 2**53, "flag": True, "off": False, "tags": ["x\"y", "z\\"]})
    store.upsert_personas([p])
    node = store.get_personas([p.id])[p.id]
    assert node["description"] == text.strip()
    assert (node["score"], node["big"], node["flag"], node["off"], node["tags"]) == (-1.5e-7, 2**53, True, False, ["x\"y", "z\\"])
    q = Persona(description="a second persona for the edge")
    store.upsert_personas([q])
    store.add_edges([Edge(source=p.id, target=q.id, type="KNOWS", props={"note": text, "w": 0.25, "hop": 0})])
    assert [e["props"] for e in store.iter_edges()] == [{"note": text, "w": 0.25, "hop": 0}]


def test_a_failing_batch_stops_the_batches_after_it(store: GraphStore) -> None:
    (existing,) = personas(1, prefix="constraint")
    store.upsert_personas([existing])
    rows = [{"id": existing.id}] + [{"id": f"p_new_{i}"} for i in range(1199)]  # three batches of 500
    with pytest.raises(QueryError):
        store._write_batches("UNWIND $rows AS r CREATE (:Persona {id: r.id})", rows)  # the write path every upsert uses
    assert store.run("MATCH (p:Persona) RETURN count(p)").value() == 1


def test_write_together_does_what_the_three_writes_do_in_one_query(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = personas(3, prefix="together")
    store.upsert_personas([a])
    edges = [Edge(source=a.id, target=b.id, type="PATIENT_OF", props={"hop": 1}),
             Edge(source=a.id, target=c.id, type="COLLEAGUE_OF", props={"hop": 1}),
             Edge(source=c.id, target=b.id, type="COLLEAGUE_OF")]
    marks = [{"id": a.id, "props": {"expanded": True}}]
    sent = count_queries(store, monkeypatch)
    stats = store.write_together([a, b, c], edges, marks, redirect_merged=False)
    assert len(sent) == 1  # personas, two edge types and the marks: one round trip
    assert (stats.nodes_created, stats.relationships_created) == (2, 3)  # `a` existed: left as it was
    got = {(e["source"], e["type"], e["target"]): e["props"] for e in store.iter_edges()}
    assert got == {(a.id, "PATIENT_OF", b.id): {"hop": 1}, (a.id, "COLLEAGUE_OF", c.id): {"hop": 1},
                   (c.id, "COLLEAGUE_OF", b.id): {}}
    assert store.get_personas([a.id])[a.id]["expanded"] is True
    again = store.write_together([a, b, c], edges, marks, redirect_merged=False)
    assert (again.nodes_created, again.relationships_created) == (0, 0)
    assert store.write_together().nodes_created == 0  # nothing to write is not an error


def test_personas_with_different_attribute_keys_land_whole_in_one_call(store: GraphStore) -> None:
    people = [Persona(description="a baker with no attributes"),
              Persona(description="a nurse", attributes={"age_group": "adult", "domain": "health"}),
              Persona(description="a child", attributes={"age_group": "child"}),
              Persona(description="a pilot", attributes={"domain": "aviation", "age_group": "adult", "tags": ["a", "b"]})]
    assert store.upsert_personas(people[:2]).nodes_created == 2
    assert store.write_together(people, redirect_merged=False).nodes_created == 2  # two of four were there
    nodes = store.get_personas([p.id for p in people])
    for p in people:
        got = {k: v for k, v in nodes[p.id].items() if k not in ("created_at", "expanded", "run_id", "origin")}
        assert got == {"id": p.id, "description": p.description, "status": "accepted", "hop": 0, "pending": "h0",
                       **p.attributes}


def test_write_together_lands_whole_or_not_at_all(store: GraphStore) -> None:
    a, b = personas(2, prefix="atomic")
    # The last part fails in the database (a map is not a property value) after the first parts ran.
    with pytest.raises(QueryError):
        store.write_together([a, b], [Edge(source=a.id, target=b.id, type="KNOWS")],
                             [{"id": a.id, "props": {"nested": {"not": "allowed"}}}])
    assert store.run("MATCH (p:Persona) RETURN count(p)").value() == 0
    assert list(store.iter_edges()) == []


def test_write_together_redirects_merged_endpoints_unless_told_the_ids_are_live(store: GraphStore) -> None:
    a, b, c = personas(3, prefix="redirect")
    store.upsert_personas([a, b, c])
    store.merge_nodes(a.id, [b.id])
    store.write_together(edges=[Edge(source=c.id, target=b.id, type="KNOWS")])
    assert [(e["source"], e["target"]) for e in store.iter_edges()] == [(c.id, a.id)]
    with pytest.raises(InvalidName):
        store.write_together(properties=[{"id": a.id, "props": {"bad key": 1}}])


def test_chained_queries_rename_their_rows_and_drop_inner_returns() -> None:
    text = cypher.chain([(cypher.fill(cypher.load("upsert_personas"), ATTRS=""), "personas"),
                         (cypher.fill(cypher.load("set_properties"), LABEL="Persona"), "marks")])
    assert "$rows" not in text and "$personas" in text and "$marks" in text
    assert "RETURN" not in text and text.count("WITH count(*) AS _") == 1
    with pytest.raises(ValueError, match="parameter name"):
        cypher.chain([("UNWIND $rows AS r RETURN r", "bad name")])


def test_gc_frozen_nests_and_restores_the_collector() -> None:
    before = gc.get_threshold()
    with gc_frozen(young_threshold=before[0] + 5000):
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == before[0] + 5000
        with gc_frozen():
            pass
        assert gc.get_freeze_count() > 0  # the inner block does not thaw the outer one
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
    gc.set_threshold(0)  # a caller that turned automatic collection off keeps it off
    try:
        with gc_frozen():
            assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_the_async_path_runs_the_same_queries_with_the_same_errors(store: GraphStore) -> None:
    a, b = personas(2, prefix="async")

    async def use() -> None:
        stats = await store.awrite_together([a, b], [Edge(source=a.id, target=b.id, type="KNOWS")],
                                            [{"id": b.id, "props": {"score": 0.5}}], redirect_merged=False)
        assert (stats.nodes_created, stats.relationships_created) == (2, 1)
        res = await store.arun_named("expand_match", {"ids": [a.id, "p_missing"]})
        assert res.rows == [[a.id, a.id]]
        with pytest.raises(ReadOnlyViolation):
            await store.arun("CREATE (:Persona {id: 'p_ro'})", write=False)
        with pytest.raises(QueryError):
            await store.arun("MATCH (p:Persona RETURN p")
        await store.aclose()

    async def count() -> int:  # no aclose: the next loop must not reuse this loop's client
        return int((await store.arun("MATCH (p:Persona) RETURN count(p)", write=False)).value())

    asyncio.run(use())
    assert asyncio.run(count()) == 2
    assert asyncio.run(count()) == 2  # a new event loop gets a client of its own
    assert store.get_personas([b.id])[b.id]["score"] == 0.5
    assert [(e["source"], e["target"]) for e in store.iter_edges()] == [(a.id, b.id)]


# Queries that start from many ids: `UNWIND $ids AS i MATCH (x:Label {id: i})...`.
ID_SEEDED = re.compile(r"^UNWIND \$\w+ AS (\w+)\s+MATCH \((\w+):(<<LABEL>>|\w+) \{id: \1\}\)")
SEEDED_QUERIES = sorted(p.stem for p in cypher.CYPHER_DIR.glob("*.cypher") if ID_SEEDED.match(cypher.load(p.stem, "falkordb")))
FILLS = {"TYPE": "KNOWS", "LABEL": "Persona", "SRC": "Persona", "DST": "Persona", "PROP": "domain", "ATTRS": ""}


@pytest.mark.parametrize("name", SEEDED_QUERIES)
def test_id_seeded_queries_start_from_the_id_lookup(store: GraphStore, name: str) -> None:
    """FalkorDB's planner may start from another indexed node of the pattern (a status index, a label
    scan) and repeat that scan for every id: 1,000 ids cost seconds to minutes instead of milliseconds.
    Every query that starts from ids must plan the id lookup as its only scan (pin it with `WITH`)."""
    assert isinstance(store, FalkorStore)
    text = cypher.load(name, "falkordb")
    seed = ID_SEEDED.match(text)
    assert seed is not None
    seed_var, label = seed.group(2), seed.group(3).replace("<<LABEL>>", FILLS["LABEL"])
    text = cypher.fill(text, **{k: FILLS[k] for k in re.findall(r"<<([A-Z_]+)>>", text)})
    row = {"id": "p_x", "src": "p_x", "dst": "p_y", "props": {}, "survivor": "p_y"}
    params = {n: 1 if n in ("limit", "hop") else ["accepted"] if n == "statuses" else [row] if n == "rows" else ["p_x"] if n.endswith("ids") else "x"
              for n in re.findall(r"\$(\w+)", text)}
    scans = [line.strip() for line in str(store._graph.explain(text, params)).splitlines() if "Scan" in line]
    assert scans == [f"Node By Index Scan | ({seed_var}:{label})"], f"{name}: {scans}"


def test_the_encoding_and_merge_examples_run_as_written() -> None:
    for module in (encoding, merge):
        assert doctest.testmod(module).failed == 0, module.__name__


def stage_graph(store: GraphStore) -> dict[str, Any]:
    """A small graph with something for each named function of the stages to find: two roots at
    hop 0 with regions, five personas proposed from them (one merged away, one rejected), samples."""
    roots = [Persona(description="a harbour master in Bergen", attributes={"age_group": "adult", "domain": "sea"}),
             Persona(description="a schoolgirl in Bergen who sails", attributes={"age_group": "child"})]
    proposed = [Persona(description=f"a deckhand number {i} on a Bergen ferry", hop=1, attributes={"age_group": "adult"})
                for i in range(4)]
    rejected = Persona(description="a person", hop=1, status="rejected")
    people = [*roots, *proposed, rejected]
    store.upsert_personas(people)
    store.add_edges([Edge(source=roots[i % 2].id, target=p.id, type="COLLEAGUE_OF", props={"relation": "crew mate"})
                     for i, p in enumerate([*proposed, rejected])]
                    + [Edge(source=proposed[0].id, target=proposed[1].id, type="FRIEND_OF")])
    store.merge_nodes(proposed[2].id, [proposed[3].id])
    store.upsert_samples([{"id": f"s_{i}", "persona_ids": [p.id], "props": {"task": "math_problem", "lang": "en", "text": f"problem {i}"}}
                          for i, p in enumerate(people[:4])])
    ids = [p.id for p in people]
    return {"ids": ids, "roots": [p.id for p in roots],
            "groups": [ids[:3], ids[2:6], [ids[0]], ids, [], ids[3:5]]}


# Each named function of the stages, called as a stage calls it on `stage_graph`; async twins run on a loop of their own.
def _on_a_loop(call: Callable[[], Any], store: GraphStore) -> Any:
    async def run() -> Any:
        try:
            return await call()
        finally:
            await store.aclose()

    return asyncio.run(run())


NAMED_READS: dict[str, Callable[[GraphStore, dict[str, Any]], Any]] = {
    "frontier": lambda store, g: store.frontier(0, {"age_group": ["child"]}),
    "afrontier": lambda store, g: _on_a_loop(lambda: store.afrontier(1), store),
    "match_ids": lambda store, g: store.match_ids([*g["ids"], "p_not_there"]),
    "amatch_ids": lambda store, g: _on_a_loop(lambda: store.amatch_ids([*g["ids"], "p_not_there"]), store),
    "seeds_of": lambda store, g: store.seeds_of(g["ids"]),
    "persona_fingerprint": lambda store, g: {k: v for k, v in store.persona_fingerprint().items() if k != "newest"},
    "max_persona_node_id": lambda store, g: store.max_persona_node_id(),
    "persona_ids_at": lambda store, g: store.persona_ids_at(range(store.max_persona_node_id() + 2), LIVE_STATUSES),
    "region_ids": lambda store, g: store.region_ids("age_group"),
    "edges_among_groups": lambda store, g: store.edges_among_groups(g["groups"]),
    "sample_members": lambda store, g: store.sample_members(g["ids"]),
    "incident_edges": lambda store, g: store.incident_edges(g["ids"]),
    "neighbour_samples": lambda store, g: sorted(store.neighbour_samples(g["ids"], "math_problem", "en"),
                                                 key=lambda r: (r["persona"], r["id"])),
}
# Those that take many ids (or groups) and split them into batches.
BATCHED = {"match_ids", "amatch_ids", "seeds_of", "persona_ids_at", "edges_among_groups", "sample_members", "neighbour_samples",
           "incident_edges"}


@pytest.mark.parametrize("name", sorted(NAMED_READS))
def test_a_named_read_in_small_batches_answers_what_one_batch_does(store: GraphStore, monkeypatch: pytest.MonkeyPatch,
                                                                    name: str) -> None:
    g = stage_graph(store)
    read = NAMED_READS[name]
    sent = count_queries(store, monkeypatch)
    whole = read(store, g)
    one_batch = len(sent)
    assert whole, f"{name} found nothing to batch over"
    monkeypatch.setattr(store.options, "batch_size", 2)
    assert read(store, g) == whole
    if name in BATCHED:
        assert len(sent) - one_batch > one_batch  # it did split


def test_named_reads_return_plain_data_about_the_graph(store: GraphStore) -> None:
    g = stage_graph(store)
    adult, child, p0, p1, p2, p3, rejected = g["ids"]
    assert [row["id"] for row in store.frontier(0, {"age_group": ["child"]})] == [child, adult]  # the focus region first
    assert store.match_ids([p2, p3, "p_not_there"]) == {p2: p2, p3: p2}  # p3 was merged into p2
    assert store.seeds_of([p0, adult]) == {p0: {"seed": "a harbour master in Bergen", "relation": "crew mate"},
                                           adult: {"seed": None, "relation": None}}
    assert store.region_ids("age_group") == {"adult": sorted([adult, p0, p1, p2]), "child": [child]}
    assert store.edges_among_groups([[p0, p1], [p1, adult]]) == [[{"source": p0, "target": p1, "type": "FRIEND_OF"}], []]
    assert store.sample_members([child]) == {child: {"id": child, "description": "a schoolgirl in Bergen who sails",
                                                     "age_group": "child"}}
    assert {(r["persona"], r["neighbour"], r["id"]) for r in store.neighbour_samples([p1], "math_problem", "en")} == {
        (p1, p0, "s_2"), (p1, child, "s_1")}
    assert store.persona_fingerprint()["live"] == 5  # merged and rejected personas are not live


def test_upserting_samples_in_small_batches_writes_what_one_batch_writes(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    people = personas(3, prefix="samples")
    store.upsert_personas(people)
    samples = [{"id": f"s_{i}", "persona_ids": [people[i % 3].id if i != 4 else "p_not_there"], "props": {"text": f"problem {i}"}}
               for i in range(7)]

    def write() -> tuple[Any, ...]:
        stats = store.upsert_samples(samples)
        edges = sorted((e["source"], e["type"], e["target"]) for e in store.iter_edges())
        nodes = store.run("MATCH (s:Sample) RETURN s.id, s.text ORDER BY s.id").rows
        store.run("MATCH (s:Sample) DETACH DELETE s")
        return stats, edges, nodes

    whole = write()
    assert whole[0].matched == 6 and len(whole[1]) == 6 and len(whole[2]) == 7  # the sample of a missing persona is not linked
    monkeypatch.setattr(store.options, "batch_size", 2)
    assert write() == whole


def test_purging_rejected_personas_in_small_batches_deletes_what_one_batch_deletes(store: GraphStore,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def purge() -> tuple[int, list[str]]:
        people = personas(4, prefix="kept") + [Persona(description=f"a vague person {i}", status="rejected") for i in range(5)]
        store.upsert_personas(people)
        store.add_edges([Edge(source=people[0].id, target=p.id, type="KNOWS") for p in people[1:]])
        deleted = store.purge_rejected()
        return deleted, sorted(f"{e['source']} {e['target']}" for e in store.iter_edges())

    whole = purge()
    assert whole[0] == 5 and len(whole[1]) == 3
    store.reset()
    monkeypatch.setattr(store.options, "batch_size", 2)
    assert purge() == whole
