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
