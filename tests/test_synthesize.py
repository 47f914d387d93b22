"""Synthesis on the real embedded store through the real LLM layer against the project's fake endpoint."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import networkx as nx
import pytest
from datasets import load_dataset
from typer.testing import CliRunner

from personagraph.graph.store import GraphStore, StoreConfig
from personagraph.cli import app
from personagraph.api import Graph
from personagraph.config import SynthesisConfig
from personagraph.errors import NothingToDo
from personagraph.graph.model import Persona
from personagraph.relations import relation_words
from personagraph.synthesize import (Synthesize, SynthesisRow, Synthesizer, available_tasks, iter_units, load_task,
                                     pick_units, task_kind)
from tests.conftest import graph_on
from tests.fake_llm_server import FakeLLM, Faults
from tests.test_sample import build_graph

TASKS = ("math_problem", "logical_reasoning", "absurd_premise", "user_instruction", "knowledge_article",
         "game_npc", "tool_spec")
RELATION_TASKS = {"dialogue": "edge", "relation_problem": "edge", "npc_cast": "cluster"}
WORLD = "A drowned archipelago where lighthouse keepers trade in stored sunlight."


@pytest.fixture
def graph(store: GraphStore) -> nx.Graph:
    return build_graph(store)


def api(store: GraphStore, fake: FakeLLM, tmp_path: Path, **llm: object) -> Graph:
    """The Python API on the test's graph and the fake endpoint, with the response cache in tmp_path."""
    return graph_on(store, tmp_path / "data" / "llm_cache",
                    llm={"base_url": fake.base_url, "model": "fake-model", "timeout": 5.0, "concurrency": 8, **llm})


def run(store: GraphStore, fake: FakeLLM, tmp_path: Path, out: str, task: str, **settings: object) -> list[dict]:
    """Synthesize `task` (count, examples and `[synthesis]` settings) into tmp_path/out; the rows as dicts."""
    settings.setdefault("world", WORLD)
    summary = api(store, fake, tmp_path).synthesize(task, tmp_path / out, **settings)  # type: ignore[arg-type]
    assert summary.failed == 0, summary.failures
    return [json.loads(line) for line in (tmp_path / out).read_text(encoding="utf-8").splitlines()]


def spec(task: str, count: int = 1, world: str = "", examples: Path | None = None, **config: object) -> Synthesize:
    """The synthesize stage with `[synthesis]` settings `config`, to look at its prompts."""
    return Synthesize(config=SynthesisConfig(**config), task=task, count=count, output=Path("unused.jsonl"),  # type: ignore[arg-type]
                      world=world, examples=examples)


def write_examples(path: Path, n: int = 6) -> list[str]:
    """An examples file for math_problem in en (plus a zh row that must be skipped); returns the texts."""
    texts = [f"EXAMPLE{i}: a train leaves at {i} o'clock" for i in range(n)]
    rows = [{"task": "math_problem", "lang": "en", "text": t, "persona": f"a station master number {i}"}
            for i, t in enumerate(texts)]
    rows.append({"task": "math_problem", "lang": "zh", "text": "不该出现的例子", "persona": "某人"})
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return texts


def test_every_packaged_task_has_both_languages() -> None:
    tasks = available_tasks()
    assert {*TASKS, *RELATION_TASKS} <= set(tasks) and all(tasks[t] == ["en", "zh"] for t in [*TASKS, *RELATION_TASKS])


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("task", TASKS)
def test_each_task_gives_rows_with_provenance(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM, tmp_path: Path,
                                             task: str, lang: str) -> None:
    rows = run(store, fake_llm, tmp_path, "out.jsonl", task=task, lang=lang, count=3,
               strategy="cluster", size=3, seed=1)
    assert len(rows) == 3 and len({r["persona_id"] for r in rows}) == 3
    for r in rows:
        assert set(r) == set(SynthesisRow.model_fields)
        assert (r["task"], r["lang"], r["mode"], r["model"]) == (task, lang, "zero_shot", "fake-model")
        assert r["prompt_file"] == f"{task}.{lang}.md" and r["sampling_strategy"] == "cluster"
        assert r["persona"] and r["text"] and r["persona_id"] in graph


def test_prompts_carry_the_persona_and_the_game_world(store: GraphStore, graph: nx.Graph) -> None:
    synth = Synthesizer(store, spec(task="game_npc", count=1, lang="zh", world=WORLD))
    user = synth.messages("一位在灯塔工作了三十年的守塔人", [])[-1]["content"]
    assert "一位在灯塔工作了三十年的守塔人" in user and WORLD in user
    with pytest.raises(ValueError, match="--world"):
        Synthesizer(store, spec(task="game_npc", count=1))
    zh = Synthesizer(store, spec(task="absurd_premise", count=1, lang="zh")).messages("一名厨师", [])
    assert "弱智吧" in zh[0]["content"] and "一名厨师" in zh[-1]["content"]


@pytest.mark.parametrize("mode", ["few_shot", "persona_few_shot"])
def test_few_shot_modes_show_examples_from_the_file(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                    tmp_path: Path, mode: str) -> None:
    texts = write_examples(tmp_path / "examples.jsonl")
    settings: dict = dict(task="math_problem", mode=mode, count=5, shots=2, examples=tmp_path / "examples.jsonl",
                          strategy="uniform", size=5, seed=3)
    rows = run(store, fake_llm, tmp_path, "out.jsonl", **settings)
    synth = Synthesizer(store, spec(**settings))
    by_id = {d.id: d for d in synth.pool}
    assert len(by_id) == 6  # the zh example is not for this language
    for r in rows:
        assert r["mode"] == mode and len(r["demonstrations"]) == 2 and r["neighbourhood"] == []
        demos = synth.demonstrations(r["persona_id"])
        assert [d.id for d in demos] == r["demonstrations"]  # the choice is reproducible per persona
        prompt = synth.messages(r["persona"], demos)[-1]["content"]
        assert all(by_id[i].text in prompt for i in r["demonstrations"])
        assert sum(t in prompt for t in texts) == 2
        assert ("Persona: a station master" in prompt) == (mode == "persona_few_shot")


def test_neighbourhood_few_shot_uses_only_neighbours_samples(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                            tmp_path: Path) -> None:
    # First pass: zero-shot rows for 20 personas, written back as Sample nodes.
    first = run(store, fake_llm, tmp_path, "first.jsonl", task="math_problem", count=20, write_back=True,
                strategy="uniform", size=20, seed=5)
    author = {r["id"]: r["persona_id"] for r in first}
    linked = store.run("MATCH (s:Sample)-[:GENERATED_BY]->(p:Persona) RETURN count(s)").value()
    assert linked == 20  # "which personas produced this data" is one query
    # Second pass over every persona: demonstrations come from neighbours' samples only.
    for source in ("graph", "file"):
        rows = run(store, fake_llm, tmp_path, f"nbr-{source}.jsonl", task="math_problem", count=60,
                   mode="neighbourhood_few_shot", shots=2,
                   examples=tmp_path / "first.jsonl" if source == "file" else None,
                   strategy="uniform", size=60, seed=6)
        assert len(rows) == len(graph)
        with_demos = 0
        for r in rows:
            neighbours = set(graph.neighbors(r["persona_id"]))
            authors = [author[i] for i in r["demonstrations"]]
            assert set(authors) <= neighbours and r["persona_id"] not in authors
            assert r["neighbourhood"] == sorted(set(authors))
            available = [i for i, p in author.items() if p in neighbours]
            assert len(r["demonstrations"]) == min(2, len(available))
            with_demos += bool(r["demonstrations"])
        assert 0 < with_demos < len(rows)


def test_stratified_synthesis_gives_each_region_an_equal_share(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                              tmp_path: Path) -> None:
    rows = run(store, fake_llm, tmp_path, "strat.jsonl", task="user_instruction", count=17,
               strategy="stratified", size=5, stratify_by="age_group", seed=3)
    groups = Counter(graph.nodes[r["persona_id"]]["age_group"] for r in rows)
    assert sum(groups.values()) == 17 and max(groups.values()) - min(groups.values()) <= 1


def test_rerun_with_the_same_seed_reproduces_rows_from_the_cache(store: GraphStore, graph: nx.Graph,
                                                                 fake_llm: FakeLLM, tmp_path: Path) -> None:
    settings: dict = dict(task="logical_reasoning", lang="zh", count=12, strategy="walk", size=4, seed=8)
    first = run(store, fake_llm, tmp_path, "a.jsonl", **settings)
    calls = fake_llm.stats.requests
    assert run(store, fake_llm, tmp_path, "b.jsonl", **settings) == first
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert fake_llm.stats.requests == calls  # every answer came from the cache
    other = run(store, fake_llm, tmp_path, "c.jsonl", **{**settings, "seed": 9})
    assert [r["persona_id"] for r in other] != [r["persona_id"] for r in first]


def test_an_interrupted_run_resumes_paying_only_for_what_failed(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                                tmp_path: Path) -> None:
    settings: dict = dict(count=30, strategy="uniform", size=30, seed=4)
    fake_llm.faults = Faults(error_500=0.4)
    first = api(store, fake_llm, tmp_path, max_retries=0).synthesize("knowledge_article", tmp_path / "a.jsonl", **settings)
    assert first.failed > 0 and first.written == 30 - first.failed
    fake_llm.faults = Faults()
    calls = fake_llm.stats.requests
    second = api(store, fake_llm, tmp_path, max_retries=0).synthesize("knowledge_article", tmp_path / "a.jsonl", **settings)
    assert second.written == 30 and second.cached == first.written
    assert fake_llm.stats.requests - calls == first.failed


def test_output_loads_with_datasets_as_jsonl_and_parquet(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                         tmp_path: Path) -> None:
    run(store, fake_llm, tmp_path, "seed.jsonl", task="tool_spec", count=15, write_back=True,
        strategy="uniform", size=15, seed=1)
    for name in ("rows.jsonl", "rows.parquet"):
        path = tmp_path / name
        summary = api(store, fake_llm, tmp_path).synthesize("tool_spec", path, count=30, mode="neighbourhood_few_shot",
                                                            strategy="cluster", size=10, seed=2)
        ds = load_dataset("parquet" if name.endswith("parquet") else "json", data_files=str(path), split="train",
                          cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == summary.written == 30
        assert set(ds.column_names) == set(SynthesisRow.model_fields)
        assert any(ds["neighbourhood"]) and not all(ds["neighbourhood"])  # some rows had neighbours' samples


def test_a_task_dropped_into_a_configured_folder_is_used(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    (folder / "haiku.en.md").write_text("<!-- user -->\n${demonstrations}Write a haiku as: ${persona}\n", encoding="utf-8")
    assert available_tasks([folder])["haiku"] == ["en"]
    rows = run(store, fake_llm, tmp_path, "haiku.jsonl", task="haiku", count=4, task_dirs=[folder])
    assert [r["prompt_file"] for r in rows] == ["haiku.en.md"] * 4
    with pytest.raises(ValueError, match="no synthesis task 'haiku' in language 'zh'"):
        Synthesizer(store, spec(task="haiku", lang="zh", count=1, task_dirs=[folder]))


def test_cli_synthesize(store: GraphStore, store_options: StoreConfig, graph: nx.Graph, fake_llm: FakeLLM,
                        tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    env = {"OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_MODEL": "fake-model"}
    args = ["--data-dir", str(store_options.data_dir), "--graph", store_options.graph, "synthesize",
            "--task", "user_instruction", "-n", "6", "--strategy", "ego", "--size", "3", "--seed", "4", "-o", str(out)]
    calls = fake_llm.stats.requests
    planned = CliRunner().invoke(app, [*args, "--dry-run"], env=env)
    assert planned.exit_code == 0, planned.output
    assert "LLM calls" in planned.output and not out.exists() and fake_llm.stats.requests == calls
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and {r["sampling_strategy"] for r in rows} == {"ego"}
    assert "rows written" in result.output
    dry = CliRunner().invoke(app, [*args, "--dry-run"], env=env).output
    assert "6 (6 answered by the cache)" in dry  # every request of the rerun is cached ...
    assert re.search(r"LLM calls\s*│\s*0\s", dry)  # ... so it would make no call


# -- relationship tasks: rows written about an edge or a connected cluster ---------------------------

def typed_edges(store: GraphStore) -> set[tuple[str, str, str]]:
    """Every relationship edge between personas as (source, TYPE, target), as stored."""
    return {tuple(row) for row in store.run("MATCH (a:Persona)-[e]->(b:Persona) RETURN a.id, type(e), b.id").rows}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("task", sorted(RELATION_TASKS))
def test_relationship_prompt_files_render_with_their_variables(task: str, lang: str) -> None:
    prompt = load_task(task, lang)
    assert task_kind(prompt) == RELATION_TASKS[task]
    values = {v: f"<{v.upper()}>" for v in prompt.variables()}
    text = "\n".join(m["content"] for m in prompt.render(**values))
    assert all(marker in text for marker in values.values())
    assert {"persona", "demonstrations"} <= set(values)
    assert {"other", "edge"} <= set(values) if RELATION_TASKS[task] == "edge" else {"neighbours", "world"} <= set(values)


def test_the_variables_a_prompt_uses_decide_what_a_row_is_written_about(tmp_path: Path) -> None:
    for name, body, kind in [("solo", "${persona}", "persona"), ("pair", "${persona} and ${other}", "edge"),
                             ("typed", "${persona} is ${edge} someone", "edge"), ("crowd", "${persona}\n${neighbours}", "cluster")]:
        (tmp_path / f"{name}.en.md").write_text(body, encoding="utf-8")
        assert task_kind(load_task(name, "en", [tmp_path])) == kind
    (tmp_path / "mixed.en.md").write_text("${persona} ${other} ${neighbours}", encoding="utf-8")
    with pytest.raises(ValueError, match="cluster"):
        load_task("mixed", "en", [tmp_path])


@pytest.mark.parametrize(("task", "lang", "strategy"), [("dialogue", "en", "uniform"), ("relation_problem", "zh", "cluster")])
def test_edge_tasks_pair_only_personas_joined_by_the_edge_they_name(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                                    tmp_path: Path, task: str, lang: str, strategy: str) -> None:
    rows = run(store, fake_llm, tmp_path, "pairs.jsonl", task=task, lang=lang, count=25, strategy=strategy, size=5, seed=2)
    edges = typed_edges(store)
    assert len(rows) == 25
    assert len({(r["persona_ids"][0], r["edge_types"][0], r["persona_ids"][1]) for r in rows}) == 25  # no edge twice
    for r in rows:
        source, target = r["persona_ids"]
        assert r["persona_id"] == source and source != target and source in graph and target in graph
        assert len(r["edge_types"]) == 1 and (source, r["edge_types"][0], target) in edges
    # The prompt names both people and the relationship, from the source to the target.
    synth = Synthesizer(store, spec(task=task, lang=lang, count=25, strategy=strategy, size=5, seed=2))
    for unit, r in zip(pick_units(store, synth.spec.config, 25, synth.kind), rows):
        assert unit.persona_ids == r["persona_ids"]
        user = synth.messages(demos=[], **unit.variables())[-1]["content"]
        other = unit.members[1]["description"]
        assert r["persona"] in user and other in user and f"-[{relation_words(r['edge_types'][0])}]->" in user


@pytest.mark.parametrize("task", ["dialogue", "npc_cast"])
def test_units_drawn_in_small_batches_are_the_units_drawn_at_once(store: GraphStore, graph: nx.Graph, task: str) -> None:
    """A run prompts each batch as soon as it is drawn: the batch size must not change what is drawn."""
    synth = Synthesizer(store, spec(task=task, world=WORLD, count=12, size=4, seed=5))
    whole = pick_units(store, synth.spec.config, 12, synth.kind)
    batches = list(iter_units(store, synth.spec.config, 12, synth.kind, batch=3))
    assert len(batches) > 1 and all(len(b) <= 3 for b in batches)
    assert [(u.key, u.sample.sample_id) for b in batches for u in b] == [(u.key, u.sample.sample_id) for u in whole]
    assert len(whole) == 12


def test_a_cluster_task_casts_connected_members_whose_prompt_relationships_follow_the_edges(
        store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM, tmp_path: Path) -> None:
    settings: dict = dict(task="npc_cast", world=WORLD, count=4, size=4, seed=3)
    rows = run(store, fake_llm, tmp_path, "cast.jsonl", **settings)
    edges = typed_edges(store)
    synth = Synthesizer(store, spec(**settings))
    units = pick_units(store, synth.spec.config, 4, synth.kind)
    assert len(rows) == len(units) == 4
    for unit, r in zip(units, rows):
        ids = r["persona_ids"]
        among = {e for e in edges if e[0] in ids and e[2] in ids and e[0] != e[2]}
        assert len(set(ids)) == 4 and r["persona_id"] == ids[0] and r["sampling_strategy"] == "cluster"
        assert nx.is_connected(graph.subgraph(ids))
        assert r["edge_types"] == sorted({t for _, t, _ in among})
        user = synth.messages(demos=[], **unit.variables())[-1]["content"]
        label = {f"P{n}": pid for n, pid in enumerate(ids, start=1)}
        shown = {(label[a], rel, label[b]) for a, rel, b in re.findall(r"^(P\d+) -\[(.+)\]-> (P\d+)$", user, re.MULTILINE)}
        assert shown == {(a, relation_words(t), b) for a, t, b in among}  # every relationship, and only those
        assert all(f"P{n}: {member['description']}" in user for n, member in enumerate(unit.members, start=1))
        assert WORLD in user


def test_write_back_links_every_persona_involved_and_the_ready_made_query_counts_relationships(
        store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM, tmp_path: Path) -> None:
    g = api(store, fake_llm, tmp_path)
    pairs = g.synthesize("dialogue", tmp_path / "pairs.parquet", count=12, write_back=True, seed=4)
    casts = g.synthesize("npc_cast", tmp_path / "casts.jsonl", count=3, size=3, world=WORLD, write_back=True, seed=4)
    assert pairs.written_back == 2 * 12 and casts.written_back == 3 * 3  # one GENERATED_BY per persona involved
    rows = load_dataset("parquet", data_files=str(tmp_path / "pairs.parquet"), split="train", cache_dir=str(tmp_path / "hf"))
    assert rows.features["persona_ids"].feature.dtype == "string" and rows.features["edge_types"].feature.dtype == "string"
    linked = {r["id"]: sorted(r["ids"]) for r in g.query(
        "MATCH (s:Sample)-[:GENERATED_BY]->(p:Persona) RETURN s.id AS id, collect(p.id) AS ids")}
    written = [*rows, *(json.loads(line) for line in (tmp_path / "casts.jsonl").read_text().splitlines())]
    assert linked == {r["id"]: sorted(r["persona_ids"]) for r in written}
    by_type = Counter((r["edge_types"][0], "dialogue") for r in rows)
    counted = {(r["relationship"], r["task"]): r["samples"] for r in g.query("samples_by_relationship")}
    assert {k: v for k, v in counted.items() if k[1] == "dialogue"} == dict(by_type)
    assert sum(v for k, v in counted.items() if k[1] == "npc_cast") >= 3  # each cast counts once per type it used
    # Neighbourhood few-shot shows a persona only samples its neighbours took part in without it.
    involved = {r["id"]: set(r["persona_ids"]) for r in rows}
    again = run(store, fake_llm, tmp_path, "again.jsonl", task="dialogue", count=40, mode="neighbourhood_few_shot", seed=5)
    assert any(r["demonstrations"] for r in again)
    for r in again:
        assert all(r["persona_id"] not in involved[d] for d in r["demonstrations"])


def test_relationship_task_reruns_with_the_same_seed_write_the_same_file(store: GraphStore, graph: nx.Graph,
                                                                        fake_llm: FakeLLM, tmp_path: Path) -> None:
    for task, settings in [("relation_problem", dict(count=10, seed=6)), ("npc_cast", dict(count=3, size=4, seed=6))]:
        first = run(store, fake_llm, tmp_path, f"{task}-a.jsonl", task=task, **settings)
        run(store, fake_llm, tmp_path, f"{task}-b.jsonl", task=task, **settings)
        assert (tmp_path / f"{task}-a.jsonl").read_bytes() == (tmp_path / f"{task}-b.jsonl").read_bytes()
        other = run(store, fake_llm, tmp_path, f"{task}-c.jsonl", task=task, **{**settings, "seed": 7})
        assert [r["persona_ids"] for r in other] != [r["persona_ids"] for r in first]


def test_an_edge_task_on_a_graph_without_edges_says_to_expand(store: GraphStore, fake_llm: FakeLLM, tmp_path: Path) -> None:
    store.upsert_personas([Persona(description=f"a lone lighthouse keeper number {i}") for i in range(3)])
    store.run("MATCH (p:Persona) SET p.status = 'accepted'")
    with pytest.raises(NothingToDo, match="personagraph expand"):
        api(store, fake_llm, tmp_path).synthesize("dialogue", tmp_path / "none.jsonl", count=2)


def test_cli_synthesize_a_relationship_task_counts_edges_in_the_dry_run(
        store: GraphStore, store_options: StoreConfig, graph: nx.Graph, fake_llm: FakeLLM, tmp_path: Path) -> None:
    out = tmp_path / "dialogue.jsonl"
    env = {"OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_MODEL": "fake-model"}
    args = ["--data-dir", str(store_options.data_dir), "--graph", store_options.graph, "synthesize",
            "--task", "dialogue", "-n", "7", "--seed", "5", "-o", str(out)]
    planned = CliRunner().invoke(app, [*args, "--dry-run"], env=env)
    assert planned.exit_code == 0, planned.output
    assert re.search(r"edges sampled\s*│\s*7 ", planned.output) and re.search(r"LLM calls\s*│\s*7\s", planned.output)
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and all(len(r["persona_ids"]) == 2 and len(r["edge_types"]) == 1 for r in rows)
    assert "edges sampled" in result.output
