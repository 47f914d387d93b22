"""Persona-to-Persona expansion on the real embedded store, through the real LLM client, against the fake endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personagraph.graph.model import Edge, Persona, Source, persona_id
from personagraph.graph.store import GraphStore
from personagraph.api import Graph
from personagraph.coverage import region_coverage
from personagraph.expand import ExpandSummary
from tests.conftest import graph_on
from tests.expand_fake import ExpandFakeLLM, ExpansionAsk, default_proposals, expand_fake_server

SEEDS = [
    "A pediatric nurse in a busy Lyon hospital who calms anxious parents during night shifts",
    "A retired fisherman in Izmir who mends nets for the harbour cooperative every morning",
    "A primary school teacher in Pune who runs a weekend chess club for her pupils",
    "A small bakery owner in Leeds who buys flour from a family mill and opens at five",
]


@pytest.fixture(scope="module")
def fake() -> Iterator[ExpandFakeLLM]:
    """The expansion-aware fake endpoint, one per module."""
    with expand_fake_server() as server:
        yield server


LLM = {"model": "fake-model", "concurrency": 8, "timeout": 20, "max_retries": 1}


def graph_for(store: GraphStore, fake: ExpandFakeLLM, cache: Path) -> Graph:
    """The API on the expansion fake, with the dedup index on MinHash alone (no embedding model needed)."""
    return graph_on(store, cache, llm=LLM | {"base_url": fake.base_url}, dedup={"method": "minhash"})


@pytest.fixture
def g(store: GraphStore, fake: ExpandFakeLLM, tmp_path: Path) -> Iterator[Graph]:
    """The API over this test's graph on the fake endpoint, with its own response cache."""
    fake.propose = default_proposals
    fake.reset()
    graph = graph_for(store, fake, tmp_path / "cache")
    yield graph
    graph.close()


def seed_graph(store: GraphStore, descriptions: list[str] = SEEDS, **attributes: Any) -> list[str]:
    store.upsert_personas([Persona(description=d, attributes=attributes) for d in descriptions])
    return [persona_id(d) for d in descriptions]


def run(g: Graph, **options: Any) -> ExpandSummary:
    """Expand with small chunks, proposals matched by exact text and no relevance check (unless the test says)."""
    return g.expand(**{"chunk_seeds": 3, "dedup": "exact", "relevance_check": False, **options})


def personas(store: GraphStore) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in store.iter_personas(statuses=None)}


def edges(store: GraphStore) -> list[dict[str, Any]]:
    return [e for e in store.iter_edges() if e["type"] not in ("EXTRACTED_FROM",)]


def test_hop_limit_is_honoured_and_a_later_run_goes_deeper(store: GraphStore, g: Graph) -> None:
    seed_graph(store)
    summary = run(g, hops=2, fanout=2, relations_per_seed=2)
    nodes = personas(store)
    hops = {n["hop"] for n in nodes.values()}
    assert hops == {0, 1, 2}
    assert [r.hop for r in summary.rounds] == [0, 1]
    assert all(n["expanded"] for n in nodes.values() if n["hop"] < 2 and n["status"] == "accepted")
    assert not any(n["expanded"] for n in nodes.values() if n["hop"] == 2)
    assert max(e["props"]["hop"] for e in edges(store)) == 2
    assert summary.created == sum(1 for n in nodes.values() if n["hop"] > 0 and n["status"] == "accepted")
    assert store.get_personas(["x"]) == {}

    # the same run again finds nothing to do; a deeper one starts from the unexpanded hop-2 personas
    again = run(g, hops=2, fanout=2, relations_per_seed=2)
    assert (again.requests, again.created) == (0, 0)
    deeper = run(g, hops=3, fanout=2, relations_per_seed=2)
    assert [r.hop for r in deeper.rounds if r.seeds] == [2]
    assert max(n["hop"] for n in personas(store).values()) == 3


def test_edges_are_typed_by_relation_with_direction_and_properties(store: GraphStore, g: Graph) -> None:
    [nurse] = seed_graph(store, SEEDS[:1])
    summary = run(g, hops=1, fanout=3, relations=["patient", "child"], relations_per_seed=2)
    found = edges(store)
    assert {e["type"] for e in found} == {"PATIENT_OF", "PARENT_OF"}
    for e in found:
        assert e["props"] == {"relation": e["props"]["relation"], "hop": 1, "run_id": summary.run_id, "model": "fake-model"}
        if e["type"] == "PATIENT_OF":  # (patient)-[:PATIENT_OF]->(nurse)
            assert (e["target"], e["props"]["relation"]) == (nurse, "patient")
        else:  # (nurse)-[:PARENT_OF]->(child)
            assert (e["source"], e["props"]["relation"]) == (nurse, "child")
    new = [n for n in personas(store).values() if n["hop"] == 1]
    assert new and all(n["origin"] == "expand" and n["expanded_from"] == nurse and n["age_group"] for n in new)


def test_a_proposal_equal_to_an_existing_persona_links_instead_of_duplicating(
    store: GraphStore, g: Graph, fake: ExpandFakeLLM
) -> None:
    [nurse, fisherman] = seed_graph(store, SEEDS[:2])
    store.set_properties([{"id": fisherman, "props": {"expanded": True}}])  # only the nurse is a seed
    fresh = "A night porter at the Lyon hospital who wheels patients to the scanner before dawn"

    def propose(ask: ExpansionAsk) -> list[dict[str, Any]]:
        # the fisherman again, in other case and spacing, and one new person
        return [{"description": "  " + SEEDS[1].upper().replace(" ", "  ")}, {"description": fresh}]

    fake.propose = propose
    summary = run(g, hops=1, fanout=2, relations=["patient"], relations_per_seed=1)
    nodes = personas(store)
    assert set(nodes) == {nurse, fisherman, persona_id(fresh)}
    assert (summary.created, summary.linked) == (1, 1)
    assert {(e["source"], e["type"], e["target"]) for e in edges(store)} == {
        (fisherman, "PATIENT_OF", nurse), (persona_id(fresh), "PATIENT_OF", nurse)}
    assert nodes[fisherman]["hop"] == 0 and nodes[fisherman]["description"] == SEEDS[1]


def test_a_reworded_proposal_links_to_the_existing_persona_through_the_dedup_index(
    store: GraphStore, g: Graph, fake: ExpandFakeLLM
) -> None:
    [nurse, fisherman] = seed_graph(store, SEEDS[:2])
    store.set_properties([{"id": fisherman, "props": {"expanded": True}}])
    reworded = "A retired fisherman in Izmir who mends the nets for the harbour cooperative each morning."
    fake.propose = lambda ask: [{"description": reworded}]
    summary = run(g, hops=1, fanout=1, relations=["neighbour"], relations_per_seed=1, dedup="index")
    assert (summary.created, summary.linked) == (0, 1)
    assert set(personas(store)) == {nurse, fisherman}
    assert [(e["source"], e["type"], e["target"]) for e in edges(store)] == [(nurse, "NEIGHBOUR_OF", fisherman)]


def test_free_form_relations_become_edge_types_only_when_valid(
    store: GraphStore, g: Graph, fake: ExpandFakeLLM
) -> None:
    [nurse] = seed_graph(store, SEEDS[:1])
    fake.propose = lambda ask: [
        {"description": "A respiratory therapist who shares the night shift with her on the children's ward",
         "relation": "night-shift colleague"},
        {"description": "A hospital volunteer who reads stories to the children on the ward on Sundays",
         "relation": "related"},
        {"description": "A junior doctor who started on the ward this autumn and asks her about every chart",
         "relation": "x` DETACH DELETE n //"},
    ]
    summary = run(g, hops=1, fanout=3, relations=["colleague"], relations_per_seed=1)
    types = sorted(e["type"] for e in edges(store))
    assert types == ["COLLEAGUE_OF", "COLLEAGUE_OF", "NIGHT_SHIFT_COLLEAGUE_OF"]
    reasons = list(summary.relation_rejected)
    assert len(reasons) == 2
    assert any("too vague" in r for r in reasons) and any("not allowed" in r for r in reasons)
    night = next(e for e in edges(store) if e["type"] == "NIGHT_SHIFT_COLLEAGUE_OF")
    assert night["target"] == nurse and night["props"]["relation"] == "night_shift_colleague"


def test_rejected_proposals_are_counted_with_reasons_and_get_no_edge(
    store: GraphStore, g: Graph, fake: ExpandFakeLLM
) -> None:
    [nurse] = seed_graph(store, SEEDS[:1])
    fake.propose = lambda ask: [
        {"description": "A person"},
        {"description": SEEDS[0]},
        {"description": "A hospital pharmacist who prepares the night's medication trays for her ward"},
    ]
    summary = run(g, hops=1, fanout=3, relations=["colleague"], relations_per_seed=1)
    # The seed proposed again is the seed, and a copy of the text it was made from (specificity).
    assert summary.rejected == {"specificity": 2, "same as the seed": 1}
    assert summary.created == 1
    rejected = [n for n in personas(store).values() if n["status"] == "rejected"]
    assert [n["description"] for n in rejected] == ["A person"]
    assert any("specificity" in r for r in rejected[0]["filter_reasons"])
    assert len(edges(store)) == 1 and edges(store)[0]["source"] == nurse


def test_a_numbered_or_quoted_proposal_is_stored_without_its_list_mark(store: GraphStore, g: Graph, fake: ExpandFakeLLM) -> None:
    """Weak models number their answers ("1. the supplier of ..."): the persona keeps only the description."""
    seed_graph(store, SEEDS[:1])
    fake.propose = lambda ask: [
        {"description": "1. A hospital pharmacist who prepares the night's medication trays for her ward"},
        {"description": '**"A night porter who wheels patients between wards and the X-ray room"**'},
    ]
    summary = run(g, hops=1, fanout=2, relations=["colleague"], relations_per_seed=1)
    assert summary.created == 2
    assert {n["description"] for n in personas(store).values()} >= {
        "A hospital pharmacist who prepares the night's medication trays for her ward",
        "A night porter who wheels patients between wards and the X-ray room",
    }


def test_budgets_stop_the_run(store: GraphStore, g: Graph) -> None:
    seed_graph(store)
    calls = run(g, hops=3, fanout=2, relations_per_seed=2, max_calls=10)
    assert calls.requests == 10 and calls.stopped_by == "max_calls"
    assert g.llm.usage.requests == 10
    new = run(g, hops=3, fanout=2, relations_per_seed=2, max_new=5)
    assert new.created == 5 and new.stopped_by == "max_new"
    assert sum(1 for n in personas(store).values() if n["run_id"] == new.run_id) == 5


def test_a_seed_cut_short_by_the_call_budget_is_not_marked_and_dry_run_counts_what_is_left(
    store: GraphStore, g: Graph
) -> None:
    ids = seed_graph(store)
    opts = {"hops": 1, "fanout": 2, "relations_per_seed": 2, "chunk_seeds": 4, "dedup": "exact", "relevance_check": False}
    before = g.estimate(g.expand_stage(**opts))
    assert before.lines[0][1].startswith("hop 0 -> 1, 4 seeds")
    assert before.llm is not None and (before.llm.requests, before.llm.cached) == (8, 0)
    run(g, max_calls=3, **opts)  # seed 0: both relations; seed 1: one of two
    marked = {i for i, n in personas(store).items() if n["expanded"]}
    frontier = sorted(ids)
    assert marked == {frontier[0]}
    after = g.estimate(g.expand_stage(**opts))
    assert after.lines[0][1].startswith("hop 0 -> 1, 3 seeds")
    assert after.llm is not None and (after.llm.requests, after.llm.cached, after.llm.calls) == (6, 1, 5)


def test_expansion_path_leads_back_to_the_root_and_its_source(store: GraphStore, g: Graph) -> None:
    [nurse, *_] = seed_graph(store)
    store.upsert_sources([Source(text_hash="ab" * 32, uri="https://example.org/night-shift")])
    store.add_edges([Edge(source=nurse, target="s_" + "ab" * 10, type="EXTRACTED_FROM", props={"stance": "write"})],
                    target_label="Source")
    summary = run(g, hops=2, fanout=2, relations_per_seed=2)
    deep = [n for n in personas(store).values()
            if n["hop"] == 2 and personas(store)[n["expanded_from"]]["expanded_from"] == nurse]
    assert deep
    [row] = store.run_named("queries/expansion_path", {"id": deep[0]["id"]}).records()
    assert [p["hop"] for p in row["personas"]] == [0, 1, 2]
    assert row["personas"][0]["id"] == nurse and row["personas"][-1]["id"] == deep[0]["id"]
    assert [s["hop"] for s in row["steps"]] == [1, 2] and all(s["relation"] and s["type"] for s in row["steps"])
    first = personas(store)[row["personas"][1]["id"]]
    assert row["steps"][0] == {"relation": first["via_relation"], "type": first["via_edge"], "hop": 1, "run_id": summary.run_id}
    # the step is a real edge of that type between the two personas
    pair = {row["personas"][0]["id"], row["personas"][1]["id"]}
    assert any({e["source"], e["target"]} == pair and e["type"] == first["via_edge"] for e in edges(store))
    assert store.run_named("queries/expansion_path", {"id": nurse}).records()[0]["steps"] == []
    assert row["sources"] == [{"id": "s_" + "ab" * 10, "uri": "https://example.org/night-shift", "stance": "write"}]


def test_focused_run_raises_the_focused_regions_share(fake: ExpandFakeLLM, store_options: Any, tmp_path: Path) -> None:
    from personagraph.graph.store import FalkorStore

    shares = {}
    for label, focus in (("unfocused", {}), ("focused", {"age_group": ["child"]})):
        store = FalkorStore(store_options.model_copy(update={"graph": f"{store_options.graph}_{label}"}))
        try:
            store.ensure_schema()
            seed_graph(store, age_group="adult")
            run(graph_for(store, fake, tmp_path / label), hops=2, fanout=3, relations_per_seed=2, max_new=30, focus=focus)
            report = region_coverage(store)
            assert report.total == len(SEEDS) + 30
            shares[label] = report.share("age_group", "child")
        finally:
            store._graph.delete()
            store.close()
    assert shares["focused"] >= shares["unfocused"] + 0.3, shares


def test_chinese_prompt_takes_the_same_variables_and_names_the_region() -> None:
    from personagraph import prompts

    en, zh = prompts.load("expand/propose", "en"), prompts.load("expand/propose", "zh")
    assert zh.variables() == en.variables() == {"seed", "relation", "relation_description", "fanout", "region"}
    messages = zh.render(seed="一位在里昂工作的儿科护士", relation="patient", relation_description="病人", fanout=3,
                         region="age_group = child")
    assert "age_group = child" in messages[-1]["content"] and "3 个" in messages[-1]["content"]


def test_proposed_attributes_are_normalised_to_the_region_vocabulary() -> None:
    from personagraph.expand import ProposedPersona

    p = ProposedPersona.model_validate({"description": "x", "age_group": "Young Adult", "visibility": "Behind the scenes",
                                        "language": "English", "occupation": " Night Cleaner ", "domain": ""})
    assert p.attributes() == {"age_group": "young_adult", "visibility": "behind-the-scenes", "language": "en",
                              "occupation": "night cleaner"}
    assert ProposedPersona(description="x", age_group="toddler", language="中文").attributes() == {"language": "zh"}


def test_a_target_run_aims_at_the_shortest_region_and_stops_when_within_tolerance(store: GraphStore, g: Graph) -> None:
    seed_graph(store, age_group="adult", visibility="public-facing")
    target = {"age_group": {"child": 0.3}, "visibility": {"behind-the-scenes": 0.2}}
    summary = run(g, hops=4, fanout=3, relations_per_seed=2, target=target, tolerance=0.05)
    assert summary.stopped_by == "targets met", summary
    assert summary.rounds[0].focus == {"age_group": ["child"], "visibility": ["behind-the-scenes"]}
    assert {(t.attribute, t.value) for t in summary.target_gaps} == {("age_group", "child"), ("visibility", "behind-the-scenes")}
    assert all(t.gap <= 0.05 for t in summary.target_gaps)
    report = region_coverage(store)
    assert report.share("age_group", "child") >= 0.25

    # met already: the next run sends nothing
    again = run(g, hops=6, target=target, tolerance=0.05)
    assert (again.stopped_by, again.requests) == ("targets met", 0)


def test_a_target_run_stops_at_its_budget_and_reports_the_gaps_left(store: GraphStore, g: Graph) -> None:
    seed_graph(store, age_group="adult")
    summary = run(g, hops=3, fanout=2, relations_per_seed=1, target={"age_group": {"child": 0.9}}, max_new=5)
    assert summary.stopped_by == "max_new"
    [child] = summary.target_gaps
    assert 0 < child.actual < child.target and child.gap > 0.02
    assert child.personas == 5


def test_a_targets_file_with_an_unknown_value_is_refused_naming_it(tmp_path: Path) -> None:
    from personagraph.targets import load_targets

    path = tmp_path / "targets.toml"
    path.write_text('[age_group]\nkid = 0.1\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown value 'kid' of age_group: use one of child, teenager"):
        load_targets(path)
    path.write_text('[shoe_size]\n"42" = 0.1\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown attribute 'shoe_size'"):
        load_targets(path)
    path.write_text('[age_group]\nchild = 0.7\nadult = 0.6\n', encoding="utf-8")
    with pytest.raises(ValueError, match="add up to 1.30: at most 1"):
        load_targets(path)
    path.write_text('[age_group]\nchild = 0\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"a share is a fraction in \(0, 1\]"):
        load_targets(path)
