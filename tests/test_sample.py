"""Sampling on the real embedded store: each strategy's promise, seeded reproducibility, the CLI's JSONL."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import networkx as nx
import pytest
from typer.testing import CliRunner

from personagraph.graph.model import Edge, Persona, PersonaStatus
from personagraph.graph.store import GraphStore, StoreConfig
from personagraph.cli import app
from personagraph.config import SampleConfig, Strategy
from personagraph.sample import MIN_SEED_TRIES, draw_samples, sample_personas
from tests.graphs import count_queries, personas

AGE_GROUPS = {"child": 30, "adult": 12, "senior": 9}
RELATIONS = ("COLLEAGUE_OF", "PATIENT_OF", "SUPPLIER_OF")


def build_graph(store: GraphStore, seed: int = 3) -> nx.Graph:
    """51 accepted personas in three unequal age groups, a ring with random chords, a separate
    3-persona component, and a rejected and a candidate persona hanging off the ring.
    Returns the accepted part as an undirected networkx graph (what the samples must agree with)."""
    rng = random.Random(seed)
    personas = [
        Persona(description=f"{group} persona number {i} who likes topic {i % 7}",
                attributes={"age_group": group, "domain": f"d{i % 4}"})
        for group, n in AGE_GROUPS.items() for i in range(n)
    ]
    ring = personas[:48]
    island = personas[48:]
    outsiders = [Persona(description="a rejected persona, too vague", status=PersonaStatus.rejected),
                 Persona(description="a candidate persona not yet filtered", status=PersonaStatus.candidate)]
    store.upsert_personas(personas + outsiders)
    edges = [Edge(source=a.id, target=b.id, type=RELATIONS[i % 3], props={"relation": "r"})
             for i, (a, b) in enumerate(zip(ring, ring[1:] + ring[:1]))]
    edges += [Edge(source=rng.choice(ring).id, target=rng.choice(ring).id, type="COLLEAGUE_OF") for _ in range(20)]
    edges += [Edge(source=island[0].id, target=island[1].id, type="PARENT_OF"),
              Edge(source=island[2].id, target=island[1].id, type="PARENT_OF")]
    edges += [Edge(source=ring[0].id, target=o.id, type="COLLEAGUE_OF") for o in outsiders]
    store.add_edges(edges)
    g = nx.Graph()
    g.add_nodes_from((p.id, dict(p.attributes)) for p in personas)
    g.add_edges_from((e.source, e.target) for e in edges if e.source in g and e.target in g)
    return g


@pytest.fixture
def graph(store: GraphStore) -> nx.Graph:
    return build_graph(store)


def sample_graph(sample_edges: list[dict], members: list[str]) -> nx.Graph:
    """The sample as an undirected graph made only of its own edge list."""
    g = nx.Graph()
    g.add_nodes_from(members)
    g.add_edges_from((e["source"], e["target"]) for e in sample_edges)
    return g


def add_isolated(store: GraphStore, graph: nx.Graph, n: int) -> list[str]:
    """`n` accepted personas without any edge, added to the store and to `graph`."""
    lonely = personas(n, prefix="lonely")
    store.upsert_personas(lonely)
    graph.add_nodes_from(p.id for p in lonely)
    return [p.id for p in lonely]


def test_connected_clusters_are_connected_through_their_own_edges(store: GraphStore, graph: nx.Graph) -> None:
    samples = sample_personas(store, SampleConfig(strategy="cluster", size=8, count=15, seed=1))
    assert len(samples) == 15
    for s in samples:
        ids = s.member_ids()
        assert s.seed_persona == ids[0] and len(set(ids)) == len(ids)
        g = sample_graph(s.edges, ids)
        assert nx.is_connected(g), s.sample_id  # every member reaches every other within the cluster
        assert len(ids) == 8  # never the 3-persona island: its seeds are skipped
        assert all(e["source"] in ids and e["target"] in ids and e["type"] for e in s.edges)


def test_cluster_seeds_whose_component_is_too_small_are_skipped_and_counted(store: GraphStore, graph: nx.Graph) -> None:
    isolated = set(add_isolated(store, graph, 30))  # 30 of 81 accepted personas alone, 3 more on the island
    draw = draw_samples(store, SampleConfig(strategy="cluster", size=5, count=15, seed=4))
    assert draw.shortfall() is None and draw.seeds_skipped > 0 and not draw.exhausted
    assert draw.seeds_tried >= 15 + draw.seeds_skipped
    assert [len(s.members) for s in draw.samples] == [5] * 15
    for s in draw.samples:
        assert not isolated & set(s.member_ids())
        assert nx.is_connected(sample_graph(s.edges, s.member_ids())), s.sample_id
    # The list-only face gives the same samples.
    spec = SampleConfig(strategy="cluster", size=5, count=15, seed=4)
    assert [s.member_ids() for s in sample_personas(store, spec)] == [s.member_ids() for s in draw.samples]


def test_smaller_clusters_only_when_asked_for(store: GraphStore, graph: nx.Graph) -> None:
    isolated = add_isolated(store, graph, 30)
    spec = SampleConfig(strategy="cluster", size=5, count=81, seed=4, min_size=1)
    draw = draw_samples(store, spec)  # one cluster per accepted persona, whatever its component holds
    assert draw.shortfall() is None and draw.seeds_skipped == 0
    sizes = {s.seed_persona: len(s.members) for s in draw.samples}
    assert len(sizes) == 81 and all(sizes[i] == 1 for i in isolated) and max(sizes.values()) == 5
    draw = draw_samples(store, spec.model_copy(update={"min_size": 3, "count": 51}))
    assert {len(s.members) for s in draw.samples} == {3, 5} and 0 < draw.seeds_skipped <= 30


def test_a_graph_that_cannot_supply_the_clusters_says_how_many_it_can(store: GraphStore) -> None:
    # Two 3-person chains joined only through a rejected persona, and two personas alone.
    a1, a2, a3, b1, b2, b3, c, d = personas(8, prefix="short")
    bridge = Persona(description="a rejected persona bridging the two chains", status=PersonaStatus.rejected)
    store.upsert_personas([a1, a2, a3, b1, b2, b3, c, d, bridge])
    store.add_edges([Edge(source=x.id, target=y.id, type="COLLEAGUE_OF")
                     for x, y in [(a1, a2), (a2, a3), (a3, bridge), (bridge, b1), (b1, b2), (b2, b3)]])
    draw = draw_samples(store, SampleConfig(strategy="cluster", size=3, count=10, seed=1))
    assert len(draw.samples) == 6 and draw.exhausted and draw.seeds_skipped == 2
    assert {frozenset(s.member_ids()) for s in draw.samples} == {frozenset({a1.id, a2.id, a3.id}),
                                                                  frozenset({b1.id, b2.id, b3.id})}
    assert draw.shortfall() == ("the graph can supply only 6 connected clusters of 3 accepted personas, not 10: "
                                "the other 2 such personas sit in components of fewer than 3")
    # Through live personas only: no cluster of 4 crosses the rejected bridge.
    draw = draw_samples(store, SampleConfig(strategy="cluster", size=4, count=1, seed=1))
    assert draw.samples == [] and draw.seeds_skipped == 8 and "only 0 connected clusters of 4" in draw.shortfall()
    draw = draw_samples(store, SampleConfig(strategy="cluster", size=4, count=9, seed=1, min_size=1))
    assert draw.shortfall() == "the graph has only 8 accepted personas to grow clusters from, not 9"


def test_a_hopeless_cluster_draw_stops_after_a_bounded_number_of_seeds_in_few_queries(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert_personas(personas(MIN_SEED_TRIES + 100, prefix="alone"))
    sent = count_queries(store, monkeypatch)
    draw = draw_samples(store, SampleConfig(strategy="cluster", size=2, count=1, seed=3))
    assert draw.samples == [] and draw.seeds_tried == draw.seeds_skipped == MIN_SEED_TRIES and not draw.exhausted
    assert draw.shortfall() == ("found only 0 connected clusters of 2 accepted personas in 1,000 seeds tried, not 1: "
                                "1,000 seeds sat in components of fewer than 2")
    assert len(sent) <= 20  # a few rounds, each a batched draw and one batched traversal


def test_stratified_gives_equal_shares_within_one_row(store: GraphStore, graph: nx.Graph) -> None:
    samples = sample_personas(store, SampleConfig(strategy="stratified", size=10, count=2, stratify_by="age_group", seed=5))
    everyone: Counter[str] = Counter()
    for s in samples:
        shares = Counter(m["age_group"] for m in s.members)
        assert set(shares) == set(AGE_GROUPS) and max(shares.values()) - min(shares.values()) <= 1
        everyone.update(shares)
    assert sum(everyone.values()) == 20 and max(everyone.values()) - min(everyone.values()) <= 1
    ids = [i for s in samples for i in s.member_ids()]
    assert len(set(ids)) == len(ids)  # drawn without replacement


def test_stratifying_by_a_missing_attribute_says_so(store: GraphStore, graph: nx.Graph) -> None:
    with pytest.raises(ValueError, match="'shoe_size' to stratify by"):
        sample_personas(store, SampleConfig(strategy="stratified", stratify_by="shoe_size"))


def test_uniform_draws_only_accepted_personas_without_repeats(store: GraphStore, graph: nx.Graph) -> None:
    samples = sample_personas(store, SampleConfig(strategy="uniform", size=20, count=5, seed=2))
    ids = [i for s in samples for i in s.member_ids()]
    assert [len(s.members) for s in samples] == [20, 20, 11]  # 51 accepted personas, then the graph runs out
    assert set(ids) == set(graph.nodes)
    assert all(set(m) >= {"id", "description", "age_group", "domain"} and "status" not in m
               for s in samples for m in s.members)


def test_a_seeded_draw_is_the_same_after_other_commands_wrote_nodes(store: GraphStore, graph: nx.Graph) -> None:
    spec = SampleConfig(strategy="uniform", size=7, count=2, seed=5)
    before = [s.member_ids() for s in sample_personas(store, spec)]
    for n in range(40):  # every command records a Run node; synthesis may add Sample nodes
        store.record_run(f"run-{n}", {"stage": "test"})
    assert [s.member_ids() for s in sample_personas(store, spec)] == before


def test_ego_networks_hold_the_nearest_personas_within_k_hops(store: GraphStore, graph: nx.Graph) -> None:
    for s in sample_personas(store, SampleConfig(strategy="ego", size=200, count=5, hops=2, seed=4)):
        expected = nx.single_source_shortest_path_length(graph, s.seed_persona, cutoff=2)
        assert set(s.member_ids()) == set(expected)
    for s in sample_personas(store, SampleConfig(strategy="ego", size=4, count=5, hops=2, seed=4)):
        dist = nx.single_source_shortest_path_length(graph, s.seed_persona, cutoff=2)
        kept = sorted(dist[i] for i in s.member_ids())
        assert len(kept) == min(4, len(dist)) and kept == sorted(dist.values())[: len(kept)]  # nearest first


def test_walks_and_communities_are_connected_around_their_seed(store: GraphStore, graph: nx.Graph) -> None:
    for strategy in ("walk", "community"):
        for s in sample_personas(store, SampleConfig(strategy=strategy, size=6, count=6, seed=9)):
            ids = s.member_ids()
            assert s.seed_persona in ids and 1 <= len(ids) <= 6
            assert nx.is_connected(graph.subgraph(ids)), (strategy, s.sample_id)


@pytest.mark.parametrize("strategy", list(Strategy))
def test_same_seed_same_samples(store: GraphStore, graph: nx.Graph, strategy: str) -> None:
    spec = SampleConfig(strategy=strategy, size=5, count=4, seed=11)
    first = [s.model_dump() for s in sample_personas(store, spec)]
    assert first and first == [s.model_dump() for s in sample_personas(store, spec)]
    other = [s.model_dump() for s in sample_personas(store, spec.model_copy(update={"seed": 12}))]
    assert other != first


def test_cli_writes_one_json_line_per_sample(store: GraphStore, store_options: StoreConfig, graph: nx.Graph, tmp_path: Path) -> None:
    out = tmp_path / "clusters.jsonl"
    args = ["--data-dir", str(store_options.data_dir), "--graph", store_options.graph,
            "sample", "--strategy", "cluster", "--size", "5", "-n", "7", "--seed", "3", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7
    assert all(set(r) == {"sample_id", "strategy", "seed_persona", "members", "edges"} for r in rows)
    assert all(r["strategy"] == "cluster" and r["seed_persona"] == r["members"][0]["id"] for r in rows)
    assert [len(r["members"]) for r in rows] == [5] * 7
    assert CliRunner().invoke(app, args).exit_code == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows


def test_cli_cluster_sample_reports_skipped_seeds_and_refuses_a_short_draw(
    store: GraphStore, store_options: StoreConfig, graph: nx.Graph, tmp_path: Path
) -> None:
    add_isolated(store, graph, 30)
    out = tmp_path / "clusters.jsonl"
    base = ["--data-dir", str(store_options.data_dir), "--graph", store_options.graph, "sample", "--strategy", "cluster",
            "--size", "5", "--seed", "4", "-o", str(out)]
    result = CliRunner().invoke(app, [*base, "-n", "15"])
    assert result.exit_code == 0, result.output
    assert [len(json.loads(line)["members"]) for line in out.read_text().splitlines()] == [5] * 15
    skipped = draw_samples(store, SampleConfig(strategy="cluster", size=5, count=15, seed=4)).seeds_skipped
    assert f"{skipped} seeds skipped, their component holding fewer than 5 accepted personas" in " ".join(result.output.split())
    out.unlink()
    result = CliRunner().invoke(app, [*base, "-n", "60"])  # 48 personas sit in components of 5 or more
    assert result.exit_code == 1 and not out.exists()
    message = " ".join(result.output.split())
    assert "the graph can supply only 48 connected clusters of 5 accepted personas, not 60" in message
    assert "--allow-smaller" in message and "Traceback" not in message
    result = CliRunner().invoke(app, [*base, "-n", "60", "--allow-smaller"])
    assert result.exit_code == 0, result.output
    sizes = [len(json.loads(line)["members"]) for line in out.read_text().splitlines()]
    assert len(sizes) == 60 and min(sizes) == 1 and max(sizes) == 5
    ego = [a if a != "cluster" else "ego" for a in base]
    result = CliRunner().invoke(app, [*ego, "--allow-smaller"])
    assert result.exit_code == 2 and "apply to --strategy cluster, not ego" in " ".join(result.output.split())


def test_weighted_stratified_samples_honour_the_weights_within_one_row(store: GraphStore, graph: nx.Graph) -> None:
    # child 60%, adult 30%, and the spare 10% to the unlisted value (senior)
    weights = {"child": 0.6, "adult": 0.3}
    samples = sample_personas(store, SampleConfig(strategy="stratified", size=7, count=4, weights={"age_group": weights}, seed=5))
    wanted = {"child": 0.6, "adult": 0.3, "senior": 0.1}
    everyone: Counter[str] = Counter()
    for s in samples:
        seats = Counter(m["age_group"] for m in s.members)
        assert len(s.members) == 7
        assert all(abs(seats[v] - 7 * share) < 1 for v, share in wanted.items()), seats
        everyone.update(seats)
    assert all(abs(everyone[v] - 28 * share) < 1 for v, share in wanted.items()), everyone
    ids = [i for s in samples for i in s.member_ids()]
    assert len(set(ids)) == len(ids)


def test_weights_from_a_targets_file_name_the_attribute_and_bad_ones_are_refused(store: GraphStore, graph: nx.Graph,
                                                                                 tmp_path: Path) -> None:
    weights = tmp_path / "weights.toml"
    weights.write_text("[domain]\nd0 = 0.5\n", encoding="utf-8")
    out = tmp_path / "s.jsonl"
    result = CliRunner().invoke(app, ["--data-dir", str(store.options.data_dir), "--graph", store.options.graph, "sample",
                                      "-o", str(out), "-s", "stratified", "--size", "8", "-n", "2", "--weights", str(weights)])
    assert result.exit_code == 0, result.output
    for line in out.read_text(encoding="utf-8").splitlines():
        assert Counter(m["domain"] for m in json.loads(line)["members"])["d0"] == 4
    weights.write_text("[age_group]\nchild = 2\n", encoding="utf-8")
    bad = CliRunner().invoke(app, ["--data-dir", str(store.options.data_dir), "--graph", store.options.graph, "sample",
                                   "-o", str(out), "-s", "stratified", "--weights", str(weights)])
    assert bad.exit_code == 2 and "a share is a fraction in (0, 1]" in bad.output
