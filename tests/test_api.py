"""The Python API (`import personagraph as pg`): every stage from sync code, from async code and from inside a
running event loop (a notebook), the whole method through `g.run`, queries, networkx, and the Run nodes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import networkx as nx
import pytest
from pydantic import ValidationError

import personagraph as pg
from personagraph.graph.store import GraphStore, ReadOnlyViolation
from personagraph.stage import Stage, StageContext, StageSummary
from tests.conftest import graph_on
from tests.method_fake import MethodFake

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "docs" / "examples" / "texts.jsonl"  # the README's first command's corpus


@pytest.fixture(scope="module")
def method_fake() -> Iterator[MethodFake]:
    fake = MethodFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def g(store: GraphStore, method_fake: MethodFake, tmp_path: Path) -> Iterator[pg.Graph]:
    """The API over this test's graph and the whole-method endpoint; MinHash dedup (no embedding model needed)."""
    graph = graph_on(store, tmp_path / "cache", llm={"base_url": method_fake.base_url, "model": "fake-model"},
                     dedup={"method": "minhash"})
    yield graph
    graph.close()


def runs(store: GraphStore) -> list[dict[str, Any]]:
    """The Run nodes, oldest first."""
    return sorted((row[0] for row in store.run("MATCH (r:Run) RETURN r").rows), key=lambda r: r["id"])


DISTINCT = [
    "A ferry captain in Split who knows every island's tides by heart",
    "A school librarian in Tartu who runs a chess club on Friday afternoons",
    "A retired welder in Gdansk who restores old bicycles for his grandchildren",
    "A midwife in Accra who trains village birth attendants on weekends",
    "A night-shift baker in Porto who starts the ovens at three every morning",
    "A beekeeper in Ljubljana who sells honey at the Saturday market",
    "A court interpreter in Montreal who translates between French and Haitian Creole",
    "A teenage skateboarder in Melbourne who films tricks for a small online channel",
    "A hospital porter in Glasgow who knows every shortcut between the wards",
    "A rice farmer in Niigata who experiments with duck-based weed control",
    "A museum conservator in Florence who repairs water-damaged frescoes",
    "A bus mechanic in Nairobi who keeps decades-old engines running on spare parts",
]


def call_every_stage(g: pg.Graph, tmp_path: Path) -> dict[str, Any]:
    """Every sync stage method once, in the method's order, on a small graph; their summaries by name."""
    personas = tmp_path / "personas.jsonl"
    personas.write_text("".join(json.dumps({"persona": d}) + "\n" for d in DISTINCT), encoding="utf-8")
    out: dict[str, Any] = {}
    out["import"] = g.import_personas(personas)
    out["extract"] = g.extract(CORPUS, limit=3)
    out["filter"] = g.filter(judge=False)
    out["dedup"] = g.dedup()
    out["expand"] = g.expand(hops=1, fanout=1, relations_per_seed=1, max_new=6, dedup="exact", relevance_check=False)
    out["coverage"] = g.coverage(["age_group"])
    out["sample"] = g.sample(strategy="uniform", size=3, count=2, seed=1)
    out["synthesize"] = g.synthesize("math_problem", tmp_path / "math.jsonl", count=3)
    out["simulate"] = g.simulate(tmp_path / "clusters", count=1, size=2, min_size=1, rounds=1)
    out["export"] = g.export(tmp_path / "out.parquet")
    return out


def check_every_stage(summaries: dict[str, Any], store: GraphStore, tmp_path: Path) -> None:
    assert summaries["import"].imported == 12
    assert summaries["extract"].texts_read == 3 and summaries["extract"].personas_created == 3
    assert summaries["filter"].examined == 15
    assert summaries["dedup"].personas >= 12
    assert summaries["expand"].created > 0
    assert summaries["coverage"].total > 0 and summaries["coverage"].attributes["age_group"]
    assert len(summaries["sample"].samples) == 2
    assert summaries["synthesize"].written == 3 and (tmp_path / "math.jsonl").exists()
    assert summaries["simulate"].clusters == 1 and summaries["simulate"].conversation.rounds == 1
    assert summaries["export"].format == "parquet" and summaries["export"].nodes > 12
    # Every stage that changes the graph or writes data left its Run node with its own numbers.
    recorded = {r["stage"]: r for r in runs(store)}
    assert set(recorded) == {"import", "extract", "filter", "dedup", "expand", "synthesize", "simulate", "export"}
    assert recorded["filter"]["examined"] == 15 and recorded["import"]["imported"] == 12
    assert recorded["synthesize"]["task"] == "math_problem" and recorded["synthesize"]["llm_succeeded"] == 3
    assert all(r["seconds"] >= 0 and r["id"].startswith(r["stage"]) for r in recorded.values())


def test_every_sync_stage_method_works_from_plain_code(g: pg.Graph, store: GraphStore, tmp_path: Path) -> None:
    check_every_stage(call_every_stage(g, tmp_path), store, tmp_path)


def test_every_sync_stage_method_works_inside_a_running_event_loop(g: pg.Graph, store: GraphStore, tmp_path: Path) -> None:
    async def notebook_cell() -> dict[str, Any]:
        asyncio.get_running_loop()  # as in Jupyter: a loop runs, and `asyncio.run` would refuse
        return call_every_stage(g, tmp_path)

    check_every_stage(asyncio.run(notebook_cell()), store, tmp_path)


def test_the_async_twins_are_awaitable(g: pg.Graph, store: GraphStore, tmp_path: Path) -> None:
    async def main() -> tuple[Any, Any, Any]:
        extracted = await g.aextract(CORPUS, limit=2)
        await g.afilter(judge=False)
        expanded = await g.aexpand(hops=1, fanout=1, relations_per_seed=1, dedup="exact", relevance_check=False)
        rows = await g.asynthesize("logical_reasoning", tmp_path / "r.jsonl", count=2, lang="zh")
        return extracted, expanded, rows

    extracted, expanded, rows = asyncio.run(main())
    assert extracted.personas_created == 2 and expanded.seeds_expanded == 2 and rows.written == 2
    for name in ("import_personas", "extract", "filter", "dedup", "expand", "coverage", "sample", "synthesize",
                 "simulate", "export", "run"):
        sync, twin = getattr(pg.Graph, name), getattr(pg.Graph, "a" + name)
        assert asyncio.iscoroutinefunction(twin) and not asyncio.iscoroutinefunction(sync)
        assert sync.__doc__ == twin.__doc__ and sync.__wrapped__ is twin


def test_the_whole_method_runs_through_g_run_and_a_rerun_changes_nothing(g: pg.Graph, store: GraphStore,
                                                                       tmp_path: Path, method_fake: MethodFake) -> None:
    out = tmp_path / "out"
    g.settings.dedup.method = "both"  # the defaults: MinHash and embeddings
    summary = g.run(CORPUS, output_dir=out, count=4, judge=True)
    assert [s.stage for s in summary.stages] == ["extract", "filter", "dedup", "expand", "filter", "dedup", "export",
                                                 "synthesize"]
    extract = summary.stages[0].numbers
    assert extract["texts_read"] == 8 and extract["personas_created"] == 8
    assert summary.stages[3].numbers["created"] > 0  # expansion reached new people
    assert summary.live_personas > 8 and summary.edges > 8
    rows = [json.loads(line) for line in (out / "math_problem.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["persona_id"] and r["text"] for r in rows)
    exported = [json.loads(line) for line in (out / "personas.jsonl").read_text().splitlines()]
    assert len(exported) == summary.live_personas
    recorded = [r["stage"] for r in runs(store)]
    assert recorded.count("filter") == 2 and recorded.count("run") == 1
    run_node = next(r for r in runs(store) if r["stage"] == "run")
    assert run_node["id"] == summary.run_id and run_node["live_personas"] == summary.live_personas
    # A rerun resumes: nothing left to extract, expand or judge; the same graph, no new calls but synthesis's cached ones.
    calls = method_fake.stats.requests
    again = g.run(CORPUS, output_dir=out, count=4, judge=True)
    assert (again.live_personas, again.edges) == (summary.live_personas, summary.edges)
    assert again.stages[0].numbers["texts_skipped"] == 8 and method_fake.stats.requests == calls


def test_query_is_read_only_unless_asked_and_takes_ready_made_names(g: pg.Graph) -> None:
    g.import_personas(write_personas(g, ["A ferry captain in Split who knows every island's tides",
                                          "A school librarian in Tartu who runs a chess club on Fridays"]))
    rows = g.query("MATCH (p:Persona) WHERE p.description CONTAINS $word RETURN p.description AS d", word="chess")
    assert rows == [{"d": "A school librarian in Tartu who runs a chess club on Fridays"}]
    with pytest.raises(ReadOnlyViolation):
        g.query("MATCH (p:Persona) SET p.flag = 1")
    assert g.query("MATCH (p:Persona) SET p.flag = 1 RETURN count(p) AS n", write=True) == [{"n": 2}]
    assert g.query("regions") == [{"age_group": "unknown", "domain": "unknown", "personas": 2}]


def write_personas(g: pg.Graph, descriptions: list[str]) -> Path:
    path = Path(g.settings.llm.cache_dir or ".") / "personas.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"persona": d}) + "\n" for d in descriptions), encoding="utf-8")
    return path


def test_to_networkx_gives_the_graph_and_induced_subgraphs(g: pg.Graph) -> None:
    g.extract(CORPUS, limit=2)
    g.filter(judge=False)
    g.expand(hops=1, fanout=2, relations_per_seed=1, dedup="exact", relevance_check=False)
    whole = g.to_networkx()
    assert isinstance(whole, nx.MultiDiGraph) and whole.number_of_nodes() == 6 and whole.number_of_edges() == 4
    seed = next(n for n, d in whole.nodes(data=True) if d["hop"] == 0)
    part = g.to_networkx(ids=[seed, *whole.successors(seed), *whole.predecessors(seed)])
    assert part.number_of_nodes() == 3 and nx.is_weakly_connected(part)


def test_settings_are_validated_with_their_names(g: pg.Graph) -> None:
    with pytest.raises(ValidationError, match="hops"):
        g.expand(hops=9)
    with pytest.raises(TypeError, match="unknown ExpandConfig settings: hopz"):
        g.expand(hopz=2)
    with pytest.raises(ValidationError, match="strategy"):
        g.sample(strategy="sideways")


def test_an_estimate_calls_no_model_and_writes_nothing(g: pg.Graph, store: GraphStore, method_fake: MethodFake,
                                                       tmp_path: Path) -> None:
    calls = method_fake.stats.requests
    estimate = g.estimate(g.extract_stage(CORPUS, stances=["read", "like"]))
    assert estimate.llm is not None and estimate.llm.requests == 16 and method_fake.stats.requests == calls
    assert runs(store) == [] and store.stats()["nodes"] == []


class CountStage(Stage["CountSummary"]):
    """A stage of a user's own: counts the live personas (an example of composing with the contract)."""

    name: ClassVar[str] = "count_personas"

    async def run(self, ctx: StageContext, run_id: str) -> CountSummary:
        ctx.progress("counting", 0, 1)
        total = sum(r["nodes"] for r in ctx.store.stats()["nodes"] if r["label"] == "Persona")
        ctx.progress("counting", 1, 1)
        return CountSummary(personas=total)


class CountSummary(StageSummary):
    personas: int


def test_a_stage_of_your_own_runs_with_progress_and_its_run_node(g: pg.Graph, store: GraphStore) -> None:
    seen: list[tuple[str, int, int | None]] = []
    g.progress = lambda description, done, total: seen.append((description, done, total))
    g.import_personas(write_personas(g, ["A night-shift baker in Porto who starts the ovens at three"]))
    summary = g.run_stage(CountStage())
    assert summary.personas == 1 and ("counting", 1, 1) in seen
    assert any(description.startswith("importing") for description, _, _ in seen)
    node = next(r for r in runs(store) if r["stage"] == "count_personas")
    assert node["personas"] == 1 and node["id"] == summary.run_id


def test_open_takes_a_folder_a_graph_name_and_an_endpoint(tmp_path: Path, method_fake: MethodFake) -> None:
    code = f"""
import personagraph as pg
with pg.open({str(tmp_path / 'data')!r}, graph="mine", llm={method_fake.base_url!r}, progress=False) as g:
    print(repr(g), g.settings.llm.base_url, g.import_personas({str(write_personas_file(tmp_path))!r}).imported)
    print(g.stats()["nodes"])
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PERSONAGRAPH_CONFIG": str(tmp_path / "none.toml")})
    try:
        assert done.returncode == 0, done.stderr
        first, second = done.stdout.splitlines()
        assert first == f"<personagraph.Graph 'mine' at {tmp_path / 'data'}> {method_fake.base_url} 1"
        assert "'Persona'" in second
    finally:
        from personagraph.graph import server

        server.stop(tmp_path / "data")


def write_personas_file(folder: Path) -> Path:
    path = folder / "one.jsonl"
    path.write_text(json.dumps({"persona": "A tram driver in Kraków who knows every regular by their stop"}) + "\n",
                    encoding="utf-8")
    return path


def test_the_package_claims_only_the_personagraph_import_name() -> None:
    probe = ("import importlib.util as u; print([n for n in ('graph', 'pipeline', 'cypher', 'prompts', 'personagraph') "
             "if u.find_spec(n)])")
    done = subprocess.run([sys.executable, "-c", probe], cwd="/", capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['personagraph']", done.stderr
    assert sorted(pg.__all__) == sorted(pg._EXPORTS) and all(getattr(pg, name) for name in pg.__all__)


def test_load_settings_leaves_the_environment_alone(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text('[expand]\nhops = 3\n[synthesis]\nsample_size = 7\n', encoding="utf-8")
    before = dict(os.environ)
    settings = pg.load_settings(config)
    assert settings.expand.hops == 3 and settings.synthesis.size == 7  # the old key still reads
    assert dict(os.environ) == before
    assert pg.load_settings().expand.hops == 6


def test_what_the_cli_lists_and_reports_the_api_gives_too(g: pg.Graph, tmp_path: Path) -> None:
    assert {"patient", "colleague", "child"} <= {r.name for r in g.relations()}
    assert g.tasks()["math_problem"] == ["en", "zh"]
    g.import_personas(write_personas(g, ["A person", *DISTINCT[:3]]))
    decided = g.filter(judge=False)
    report = g.filter_report()
    assert decided.rejected == 1 and report.status == {"accepted": 3, "rejected": 1}
    assert g.purge_rejected() == 1 and g.filter_report().status == {"accepted": 3}
    chart = g.coverage(["age_group"]).plot(tmp_path / "coverage.png")
    assert chart.read_bytes()[:4] == b"\x89PNG"
