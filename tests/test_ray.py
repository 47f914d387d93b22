"""The LLM stages on Ray: the same graph and rows as one process, and a worker that dies is retried with nothing doubled.

A local Ray of 2 CPUs for the module; the workers reach the session's embedded FalkorDB over its
unix socket and the fake endpoint over loopback, as workers on one machine would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from personagraph.api import Graph
from personagraph.executor import RayExecutor, RayUnavailable, Shard
from personagraph.graph.store import GraphStore
from personagraph.graph.model import Persona
from tests.conftest import graph_on
from tests.expand_fake import default_proposals, expand_fake_server
from tests.fake_llm_server import FakeLLM
from tests.ray_faults import DieOnce



pytestmark = pytest.mark.usefixtures("local_ray")


def two_graphs(store: GraphStore, other: GraphStore, fake: FakeLLM, tmp_path: Path, **llm: Any) -> tuple[Graph, Graph]:
    """The same endpoint over two graphs, each with a response cache of its own (so both really call)."""
    settings = {"base_url": fake.base_url, "model": "fake-model", **llm}
    local = graph_on(store, tmp_path / "cache_local", llm=settings)
    on_ray = graph_on(other, tmp_path / "cache_ray", llm=settings)
    on_ray.executor = RayExecutor(workers=2)
    return local, on_ray


def personas_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "personas.jsonl"
    path.write_text("".join(json.dumps({"persona": f"A school nurse in district {i} who runs first-aid classes for parents"}) + "\n"
                            for i in range(n)))
    return path


def corpus_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": f"Notes number {i} on repairing village water pumps after the rainy season, "
                                                f"with a parts list and the cost per household ({i * 7} shillings)."}) + "\n"
                            for i in range(n)))
    return path


def rows(path: Path) -> set[str]:
    return {line for line in path.read_text().splitlines() if line}


def lasting(path: Path) -> set[str]:
    """A JSONL file's rows without what differs between two runs of the same work (run ids, times)."""
    return {json.dumps({k: v for k, v in json.loads(line).items() if not k.endswith(("run_id", "_at", "seconds"))},
                       sort_keys=True) for line in rows(path)}


def graph_content(g: Graph) -> dict[str, Any]:
    """Personas (id, description, status, hop), sources and every edge, as sets."""
    return {
        "personas": {(r["id"], r["d"], r["s"], r["h"]) for r in g.query(
            "MATCH (p:Persona) RETURN p.id AS id, p.description AS d, p.status AS s, p.hop AS h")},
        "sources": {r["id"] for r in g.query("MATCH (s:Source) RETURN s.id AS id")},
        "edges": {(r["a"], r["t"], r["b"]) for r in g.query("MATCH (a)-[e]->(b) RETURN a.id AS a, type(e) AS t, b.id AS b")},
    }


def test_synthesize_on_two_workers_writes_the_rows_of_one_process(store: GraphStore, other_store: GraphStore,
                                                                   fake_llm: FakeLLM, tmp_path: Path) -> None:
    local, on_ray = two_graphs(store, other_store, fake_llm, tmp_path)
    for g in (local, on_ray):
        g.import_personas(personas_file(tmp_path, 40))
    one = local.synthesize("math_problem", tmp_path / "local.jsonl", count=40, write_back=True)
    calls = fake_llm.stats.requests
    spread = on_ray.synthesize("math_problem", tmp_path / "ray.jsonl", count=40, write_back=True)
    assert fake_llm.stats.requests - calls == 40  # the workers called the endpoint, once per row
    assert rows(tmp_path / "ray.jsonl") == rows(tmp_path / "local.jsonl") and len(rows(tmp_path / "ray.jsonl")) == 40
    assert not list(tmp_path.glob("ray.shard-*"))  # the shards' parts are joined and gone
    assert (spread.written, spread.personas, spread.written_back) == (one.written, one.personas, one.written_back) == (40, 40, 40)
    assert graph_content(on_ray) == graph_content(local)
    (run,) = on_ray.query("MATCH (r:Run {stage: 'synthesize'}) RETURN r.written AS written, r.llm_requests AS requests, "
                          "r.llm_endpoint_calls AS calls")
    assert run == {"written": 40, "requests": 40, "calls": [f"{fake_llm.base_url}: 40"]}  # one Run node for both workers


def test_extract_and_the_judge_on_two_workers_build_the_graph_of_one_process(
        store: GraphStore, other_store: GraphStore, fake_llm: FakeLLM, tmp_path: Path) -> None:
    local, on_ray = two_graphs(store, other_store, fake_llm, tmp_path)
    corpus = corpus_file(tmp_path, 30)
    one, spread = local.extract(corpus), on_ray.extract(corpus)
    assert (spread.texts_read, spread.texts_extracted, spread.requests) == (one.texts_read, one.texts_extracted, one.requests) == (30, 30, 30)
    assert spread.personas_created + spread.personas_existing == one.personas_created + one.personas_existing
    judged_one, judged_spread = local.filter(judge=True), on_ray.filter(judge=True)
    assert (judged_spread.examined, judged_spread.accepted, judged_spread.rejected) == \
        (judged_one.examined, judged_one.accepted, judged_one.rejected)
    assert graph_content(on_ray) == graph_content(local)
    assert len(on_ray.query("MATCH (r:Run) WHERE r.stage IN ['extract', 'filter'] RETURN r.stage AS stage")) == 2


def test_expand_on_two_workers_grows_the_graph_of_one_process(store: GraphStore, other_store: GraphStore,
                                                               tmp_path: Path) -> None:
    seeds = [Persona(description=d) for d in (
        "A pediatric nurse in a busy Lyon hospital who calms anxious parents during night shifts",
        "A retired fisherman in Izmir who mends nets for the harbour cooperative every morning",
        "A primary school teacher in Pune who runs a weekend chess club for her pupils",
        "A small bakery owner in Leeds who buys flour from a family mill and opens at five",
        "A night-shift crane operator at the Rotterdam port who coaches a youth football team",
        "A village midwife in the Atlas mountains who keeps a notebook of every birth since 1998",
    )]
    options = {"hops": 2, "fanout": 2, "relations_per_seed": 2, "chunk_seeds": 3, "dedup": "exact", "relevance_check": False}
    with expand_fake_server() as fake:
        fake.propose = default_proposals
        local, on_ray = two_graphs(store, other_store, fake, tmp_path, concurrency=8)
        for g in (local, on_ray):
            g.store.upsert_personas(seeds)
        one = local.expand(**options)
        spread = on_ray.expand(**options)
    assert graph_content(on_ray) == graph_content(local)
    assert {h for _, _, _, h in graph_content(on_ray)["personas"]} == {0, 1, 2}
    assert [r.hop for r in spread.rounds] == [r.hop for r in one.rounds] == [0, 1]
    assert [r.seeds for r in spread.rounds] == [r.seeds for r in one.rounds]  # each hop's frontier split, not repeated
    assert (spread.requests, spread.seeds_expanded) == (one.requests, one.seeds_expanded)
    assert spread.created + spread.linked == one.created + one.linked


def test_a_worker_that_dies_mid_run_is_retried_with_nothing_duplicated(store: GraphStore, other_store: GraphStore,
                                                                       fake_llm: FakeLLM, tmp_path: Path) -> None:
    local, on_ray = two_graphs(store, other_store, fake_llm, tmp_path)
    marker = tmp_path / "died"
    on_ray.executor = RayExecutor(workers=2, on_shard_progress=DieOnce(marker, index=1, after=5))
    for g in (local, on_ray):
        g.import_personas(personas_file(tmp_path, 40))
    local.synthesize("math_problem", tmp_path / "local.jsonl", count=40, write_back=True)
    summary = on_ray.synthesize("math_problem", tmp_path / "ray.jsonl", count=40, write_back=True)
    assert marker.exists()  # shard 1's worker did die mid-run
    assert summary.written == 40 and rows(tmp_path / "ray.jsonl") == rows(tmp_path / "local.jsonl")
    assert graph_content(on_ray) == graph_content(local)  # the rerun's Sample nodes and links MERGEd, not doubled
    assert on_ray.query("MATCH (s:Sample) RETURN count(s) AS n") == [{"n": 40}]


def test_shards_split_the_work_by_a_stable_hash() -> None:
    shards = [Shard(index=i, count=3) for i in range(3)]
    keys = [f"persona-{i}" for i in range(300)]
    owners = [[s.index for s in shards if s.owns(k)] for k in keys]
    assert all(len(o) == 1 for o in owners)  # each item has exactly one shard
    assert min(sum(o == [i] for o in owners) for i in range(3)) > 70  # and the shards are near even
    assert Shard().owns("anything") and Shard().suffix() == ""


def test_without_ray_the_executor_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(RayUnavailable, match=r"pip install 'personagraph\[ray\]'"):
        RayExecutor(workers=2)


def test_personagraph_run_on_two_ray_workers_ends_with_the_graph_and_rows_of_one_process(
        store: GraphStore, other_store: GraphStore, fake_llm: FakeLLM, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_cli_endpoint import invoke

    for name, value in {"EXPAND__DEDUP": "exact", "EXPAND__RELEVANCE_CHECK": "false", "DEDUP__METHOD": "minhash",
                        "FILTER__PERSON_PROBE": "false"}.items():
        monkeypatch.setenv(f"PERSONAGRAPH_{name}", value)  # no embedding model to load (the fake's "description 3fa2..." is no person either)
    corpus = corpus_file(tmp_path, 12)
    # No expansion: its budgets are split over the shards (test_expand_... compares a budget-free expansion).
    common = ["run", str(corpus), "--hops", "0", "-n", "6"]
    one = invoke(*common, "-o", str(tmp_path / "local"), options=store.options, base_url=fake_llm.base_url, cache="false")
    assert one.exit_code == 0, one.output
    spread = invoke(*common, "-o", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2",
                    options=other_store.options, base_url=fake_llm.base_url, cache="false")
    assert spread.exit_code == 0, spread.output
    local, on_ray = (graph_on(s, tmp_path / "unused_cache") for s in (store, other_store))
    assert graph_content(on_ray) == graph_content(local)
    files = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*.jsonl"))
    assert len(files) == 2  # personas.jsonl and the synthesized rows
    for name in files:
        assert lasting(tmp_path / "ray" / name) == lasting(tmp_path / "local" / name) != set()
    assert len(on_ray.query("MATCH (r:Run) WHERE r.stage = 'synthesize' RETURN r.written AS n")) == 1
