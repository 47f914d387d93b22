"""Cluster export and round-based conversation on the real store, through the LLM layer and the fake endpoint."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import networkx as nx
import pytest
from typer.testing import CliRunner

from personagraph.graph.store import GraphStore, StoreConfig
from personagraph.cli import app
from personagraph.config import Settings
from personagraph.llm import LLMClient
from personagraph.config import SampleConfig
from personagraph.sample import sample_personas
from personagraph.simulate import Cluster, converse, export_clusters, turn_messages, write_clusters
from tests.fake_llm_server import FakeLLM
from tests.test_sample import add_isolated, build_graph


@pytest.fixture
def graph(store: GraphStore) -> nx.Graph:
    return build_graph(store)


def clusters_of(store: GraphStore, count: int = 4, size: int = 5, seed: int = 2) -> list[Cluster]:
    return export_clusters(sample_personas(store, SampleConfig(strategy="cluster", size=size, count=count, seed=seed)))


def test_exported_clusters_are_connected_agents_with_their_relationships(store: GraphStore, graph: nx.Graph,
                                                                          tmp_path: Path) -> None:
    clusters = clusters_of(store)
    paths = write_clusters(clusters, tmp_path / "out")
    assert len(paths) == 4
    for path, cluster in zip(paths, clusters):
        doc = json.loads(path.read_text(encoding="utf-8"))
        ids = [a["id"] for a in doc["agents"]]
        assert doc["cluster_id"] == cluster.cluster_id and doc["seed_persona"] == ids[0]
        assert all(a["persona"] and a["attributes"]["age_group"] for a in doc["agents"])
        g = nx.Graph([(r["source"], r["target"]) for r in doc["relationships"]])
        g.add_nodes_from(ids)
        assert nx.is_connected(g) and set(g) == set(ids)
        assert all(graph.has_edge(r["source"], r["target"]) and r["type"] for r in doc["relationships"])


def test_conversation_runs_along_the_edges_in_rounds(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                     tmp_path: Path) -> None:
    clusters = clusters_of(store)
    settings = Settings(llm={"base_url": fake_llm.base_url, "model": "fake-model", "timeout": 5.0},
                        store={"data_dir": tmp_path})
    with LLMClient.from_settings(settings) as client:
        summary = asyncio.run(converse(client, clusters, rounds=3, lang="zh", scenario="社区停水的一天"))
    edges = sum(len(c.relationships) for c in clusters)
    assert summary.messages == 3 * edges and summary.failed == 0
    for cluster in clusters:
        persona = {a.id: a.persona for a in cluster.agents}
        for m in cluster.transcript:
            rel = cluster.relationships[[(r.source, r.target, r.type) for r in cluster.relationships].index(
                (m.speaker, m.listener, m.relation) if m.round % 2 == 0 else (m.listener, m.speaker, m.relation))]
            assert m.text and rel.type == m.relation  # speaker and listener are the ends of a real edge
            assert m.speaker in persona and m.listener in persona and m.speaker != m.listener
        assert [m.round for m in cluster.transcript] == sorted(m.round for m in cluster.transcript)
    # A later round's prompt carries what the pair said before, marked as said by "you" or by "them".
    cluster = clusters[0]
    rel = cluster.relationships[0]
    _, _, messages = turn_messages(cluster, rel, 2, "zh", "社区停水的一天")
    pair = [m for m in cluster.transcript if {m.speaker, m.listener} == {rel.source, rel.target}]
    assert len(pair) >= 2
    for m in pair:
        assert f"{'你' if m.speaker == rel.source else '对方'}：{m.text}" in messages[-1]["content"]
    assert "社区停水的一天" in messages[-1]["content"]


def test_a_language_without_prompts_is_refused_before_any_call(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                                tmp_path: Path) -> None:
    settings = Settings(llm={"base_url": fake_llm.base_url, "model": "fake-model"}, store={"data_dir": tmp_path})
    with LLMClient.from_settings(settings) as client, pytest.raises(ValueError, match="there are: en, zh"):
        asyncio.run(converse(client, clusters_of(store), rounds=1, lang="fr"))
    assert fake_llm.stats.requests == 0


def test_cli_simulate_writes_transcripts(store: GraphStore, store_options: StoreConfig, graph: nx.Graph,
                                         fake_llm: FakeLLM, tmp_path: Path) -> None:
    args = ["--data-dir", str(store_options.data_dir), "--graph", store_options.graph, "simulate",
            "-n", "3", "--size", "4", "--rounds", "2", "--seed", "5", "-o", str(tmp_path / "sim")]
    env = {"OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_MODEL": "fake-model"}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    docs = [json.loads(p.read_text()) for p in sorted((tmp_path / "sim").glob("*.json"))]
    assert len(docs) == 3
    assert all(len(d["transcript"]) == 2 * len(d["relationships"]) for d in docs)
    assert {"round", "speaker", "listener", "relation", "text"} == set(docs[0]["transcript"][0])


def test_cli_simulate_clusters_have_the_size_asked_or_fail_before_any_call(
    store: GraphStore, store_options: StoreConfig, graph: nx.Graph, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    isolated = set(add_isolated(store, graph, 30))  # 33 of 81 accepted personas in components smaller than 5
    base = ["--data-dir", str(store_options.data_dir), "--graph", store_options.graph, "simulate", "--size", "5",
            "--seed", "5"]
    result = CliRunner().invoke(app, [*base, "-n", "8", "-o", str(tmp_path / "sim")])
    assert result.exit_code == 0, result.output
    docs = [json.loads(p.read_text()) for p in sorted((tmp_path / "sim").glob("*.json"))]
    assert [len(d["agents"]) for d in docs] == [5] * 8
    for d in docs:
        g = nx.Graph([(r["source"], r["target"]) for r in d["relationships"]])
        assert set(g) == {a["id"] for a in d["agents"]} and nx.is_connected(g) and not isolated & set(g)
    assert "seeds skipped" in result.output
    env = {"OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_MODEL": "fake-model"}
    result = CliRunner().invoke(app, [*base, "-n", "60", "--rounds", "2", "-o", str(tmp_path / "short")], env=env)
    assert result.exit_code == 1 and "can supply only 48 connected clusters of 5" in " ".join(result.output.split())
    assert fake_llm.stats.requests == 0 and not (tmp_path / "short").exists()


# -- the files simulators load: OASIS (camel-ai/oasis) and TinyTroupe (microsoft/TinyTroupe) ----------
# The columns and keys their loaders index (oasis/social_agent/agents_generator.py at 1e53712;
# tinytroupe/agent/tiny_person.py load_specification and environment/tiny_social_network.py).
OASIS_TWITTER_COLUMNS = {"user_id", "name", "username", "description", "user_char", "following_agentid_list",
                         "previous_tweets"}
OASIS_REDDIT_KEYS = {"realname", "username", "bio", "persona", "age", "gender", "mbti", "country"}


def talked_clusters(store: GraphStore, fake_llm: FakeLLM, tmp_path: Path) -> list[Cluster]:
    clusters = clusters_of(store, count=3, size=4)
    settings = Settings(llm={"base_url": fake_llm.base_url, "model": "fake-model", "timeout": 5.0},
                        store={"data_dir": tmp_path})
    with LLMClient.from_settings(settings) as client:
        asyncio.run(converse(client, clusters, rounds=1))
    return clusters


def test_oasis_files_carry_the_profile_columns_and_the_follow_graph(store: GraphStore, graph: nx.Graph,
                                                                    fake_llm: FakeLLM, tmp_path: Path) -> None:
    import ast
    import csv

    clusters = talked_clusters(store, fake_llm, tmp_path)
    paths = write_clusters(clusters, tmp_path / "oasis", format="oasis")
    assert len(paths) == 2 * len(clusters)
    for cluster in clusters:
        folder = tmp_path / "oasis" / cluster.cluster_id
        with (folder / "twitter_profiles.csv").open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert OASIS_TWITTER_COLUMNS <= set(rows[0])
        assert [r["user_char"] for r in rows] == [a.persona for a in cluster.agents]
        assert [int(r["user_id"]) for r in rows] == list(range(len(rows)))  # OASIS agent ids are row numbers
        follows = {(int(r["user_id"]), f) for r in rows for f in ast.literal_eval(r["following_agentid_list"])}
        row_of = {a.id: n for n, a in enumerate(cluster.agents)}
        ties = {(row_of[r.source], row_of[r.target]) for r in cluster.relationships}
        assert follows == ties | {(b, a) for a, b in ties}  # each relationship, followed both ways
        tweets = [t for r in rows for t in ast.literal_eval(r["previous_tweets"])]
        assert sorted(tweets) == sorted(m.text for m in cluster.transcript)
        reddit = json.loads((folder / "reddit_profiles.json").read_text(encoding="utf-8"))
        assert len(reddit) == len(cluster.agents) and all(OASIS_REDDIT_KEYS <= set(p) for p in reddit)
        assert [p["persona"] for p in reddit] == [a.persona for a in cluster.agents]


def test_tinytroupe_files_are_agent_specifications_and_the_networks_relations(store: GraphStore, graph: nx.Graph,
                                                                              tmp_path: Path) -> None:
    clusters = clusters_of(store, count=3, size=4)
    write_clusters(clusters, tmp_path / "tt", format="tinytroupe")
    for cluster in clusters:
        folder = tmp_path / "tt" / cluster.cluster_id
        specs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.agent.json"))}
        assert len(specs) == len(cluster.agents)
        names = set()
        for file, spec in specs.items():
            assert spec["type"] == "TinyPerson" and isinstance(spec["persona"], dict)
            assert file == f"{spec['persona']['name']}.agent.json"
            names.add(spec["persona"]["name"])
            assert all({"name", "description"} == set(r) for r in spec["persona"]["relationships"])
        assert {s["persona"]["description"] for s in specs.values()} == {a.persona for a in cluster.agents}
        network = json.loads((folder / "social_network.json").read_text(encoding="utf-8"))
        assert sorted(network["agents"]) == sorted(specs)
        pairs = [pair for pairs in network["relations"].values() for pair in pairs]
        assert len(pairs) == len([r for r in cluster.relationships if r.source != r.target])
        assert all(len(p) == 2 and set(p) <= names for p in pairs)
        g = nx.Graph(pairs)
        assert set(g) == names and nx.is_connected(g)


def test_cli_simulate_writes_the_format_asked(store: GraphStore, store_options: StoreConfig, graph: nx.Graph,
                                              tmp_path: Path) -> None:
    args = ["--data-dir", str(store_options.data_dir), "--graph", store_options.graph, "simulate",
            "-n", "2", "--size", "4", "--seed", "5", "--format", "tinytroupe", "-o", str(tmp_path / "sim")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "sim").glob("*/*.agent.json"))) == 8
    assert len(list((tmp_path / "sim").glob("*/social_network.json"))) == 2
