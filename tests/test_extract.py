"""Text-to-Persona end to end: real readers, real LLM client stack against the fake endpoint, real FalkorDB."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from personagraph.graph.store import FalkorStore, GraphStore, StoreConfig
from personagraph.api import Graph
from personagraph.extract import chunk_text, plain_description, text_language
from personagraph.readers import count_records
from tests.conftest import graph_on
from tests.fake_llm_server import FakeLLM, Faults

REPO = Path(__file__).resolve().parent.parent


def corpus(path: Path, n: int, extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    """A JSONL corpus of `n` distinct texts, then the raw `extra` lines."""
    lines = [json.dumps({"uri": f"doc/{i}", "text": f"Post {i}: notes on repairing vintage radio set number {i}, "
                         "with the valve list, the hum I chased for a week and the capacitor I finally replaced."})
             for i in range(n)]
    path.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return path


def graph_for(fake: FakeLLM, store: GraphStore, cache: Path, **extract: Any) -> Graph:
    """The API on the fake endpoint and the test's graph, with the LLM cache in `cache` (the session's folder is shared)."""
    llm = {"base_url": fake.base_url, "model": "fake-model", "timeout": 5.0, "max_retries": 4, "concurrency": 8}
    return graph_on(store, cache, llm=llm, extract=extract)


def graph_content(store: GraphStore) -> dict[str, Any]:
    """What a run leaves, without run ids and timestamps: personas, sources, edges."""
    personas = {p["id"]: {k: v for k, v in p.items() if k not in ("run_id", "created_at")}
                for p in store.iter_personas(statuses=None)}
    sources = {s["id"]: (s["text_hash"], s.get("extracted"), s.get("failed"))
               for page in store.iter_nodes("Source") for s in page}
    edges = sorted((e["source"], e["type"], e["target"], e["props"].get("stance"), e["props"].get("chunk"))
                   for e in store.iter_edges())
    return {"personas": personas, "sources": sources, "edges": edges}


def test_extract_writes_personas_sources_and_edges(fake_llm: FakeLLM, store: GraphStore, store_options: StoreConfig,
                                                   tmp_path: Path) -> None:
    path = corpus(tmp_path / "texts.jsonl", 5, [
        '{"text": "too short"}', "{not json", '{"text": 42}', '{"body": "no text field here at all, just a body"}',
        json.dumps({"text": "Post 0: notes on repairing vintage radio set number 0, with the valve list, the hum "
                            "I chased for a week and the capacitor I finally replaced."}),
    ])
    g = graph_for(fake_llm, store, tmp_path / "cache", stances=["read", "write"])
    summary = g.extract(path, field="text")
    assert summary.texts_read == 10 and summary.texts_extracted == 5 and summary.texts_failed == 0
    assert summary.skipped == {"too short": 1, "unreadable": 1, "not text": 1, "missing field": 1, "repeated text": 1}
    assert any(":7:" in p or "texts.jsonl:7" in p for p in summary.problems)  # file:line of the bad line
    assert summary.personas_created == 10 and summary.requests == 10
    graph = graph_content(store)
    assert len(graph["personas"]) == 10 and len(graph["sources"]) == 5
    assert all(p["origin"] == "text" and p["hop"] == 0 and p["status"] == "candidate" and p["occupation"]
               for p in graph["personas"].values())
    assert all(extracted is True and failed == 0 for _, extracted, failed in graph["sources"].values())
    assert sorted(stance for *_, stance, _ in graph["edges"]) == ["read"] * 5 + ["write"] * 5
    run = store.run("MATCH (r:Run {id: $id}) RETURN r", {"id": summary.run_id}, write=False).value()
    assert run["texts_extracted"] == 5 and run["llm_succeeded"] == 10 and run["llm_prompt_tokens"] > 0


def test_a_nul_or_a_lone_surrogate_in_a_text_or_uri_costs_nothing(fake_llm: FakeLLM, store: GraphStore,
                                                                   store_options: StoreConfig, tmp_path: Path) -> None:
    path = corpus(tmp_path / "texts.jsonl", 8)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[1]["text"] = lines[1]["text"].replace("valve", "val\x00ve")
    lines[2]["text"] += " \ud800"
    lines[3]["uri"] = "doc/\x00three"
    lines[4]["uri"] = "doc/\udfff"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")  # as JSON escapes
    g = graph_for(fake_llm, store, tmp_path / "cache")
    summary = g.extract(path)
    assert (summary.texts_read, summary.texts_extracted, summary.texts_failed, summary.cleaned) == (8, 8, 0, 2)
    assert summary.problems == [f"{path}:2: 'text': NUL characters removed",
                                f"{path}:3: 'text': unpaired surrogates replaced by U+FFFD",
                                f"{path}:4: uri: NUL characters removed",
                                f"{path}:5: uri: unpaired surrogates replaced by U+FFFD"]
    graph = graph_content(store)
    assert len(graph["personas"]) == 8 and len(graph["sources"]) == 8
    uris = {s["uri"] for page in store.iter_nodes("Source") for s in page}
    assert {"doc/three", "doc/\ufffd"} <= uris


def test_rerun_skips_extracted_texts_and_dry_run_counts_calls(fake_llm: FakeLLM, store: GraphStore,
                                                             store_options: StoreConfig, tmp_path: Path) -> None:
    path = corpus(tmp_path / "texts.jsonl", 6)
    g = graph_for(fake_llm, store, tmp_path / "cache", stances=["read", "like"])
    before = g.estimate(g.extract_stage(path))
    assert before.llm is not None and before.llm.calls == 12 and fake_llm.stats.requests == 0
    assert ("texts read (field 'text')", "6") in before.lines
    g.extract(path)
    calls = fake_llm.stats.requests
    again = g.extract(path)
    after = g.estimate(g.extract_stage(path))
    assert again.skipped == {"already extracted": 6} and again.requests == 0
    assert fake_llm.stats.requests == calls and after.llm is not None and after.llm.calls == 0


def test_faults_complete_and_every_text_is_accounted_for(fake_llm: FakeLLM, store: GraphStore,
                                                         store_options: StoreConfig, tmp_path: Path) -> None:
    fake_llm.faults = Faults(error_500=0.05, error_429=0.05, malformed=0.05, retry_after=0.01, seed=7)
    path = corpus(tmp_path / "texts.jsonl", 80)
    g = graph_for(fake_llm, store, tmp_path / "cache")
    g.settings.llm.validation_retries = 0  # so that malformed answers surface as failures
    summary = g.extract(path)
    assert fake_llm.stats.outcomes["500"] and fake_llm.stats.outcomes["429"] and fake_llm.stats.outcomes["malformed"]
    assert summary.texts_read == 80 == summary.texts_extracted + summary.texts_failed
    assert summary.texts_failed == summary.failed_requests > 0
    failures = [json.loads(line) for line in Path(summary.failures_file).read_text().splitlines()]
    assert len(failures) == summary.failed_requests
    assert all(f["error"] and f["raw_text"] and f["where"].startswith(str(path)) for f in failures)
    graph = graph_content(store)
    marked_failed = {sid for sid, (_, _, failed) in graph["sources"].items() if failed}
    assert marked_failed == {f["source"] for f in failures}
    assert len({target for _, _, target, _, _ in graph["edges"]}) == summary.texts_extracted
    # a rerun retries only the failed texts, answering the rest from nothing at all
    fake_llm.faults = Faults()
    rerun = g.extract(path)
    assert rerun.skipped["already extracted"] == summary.texts_extracted
    assert rerun.texts_extracted == summary.texts_failed and rerun.llm["llm_calls"] == summary.texts_failed
    assert all(not failed for _, _, failed in graph_content(store)["sources"].values())


def test_plain_format_and_chinese_prompts(fake_llm: FakeLLM, store: GraphStore, store_options: StoreConfig,
                                          tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text(json.dumps({"text": "今天我们在社区诊所给孩子们接种疫苗，护士们耐心地安慰每一位紧张的家长，还讲解了接种后的注意事项。"},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    g = graph_for(fake_llm, store, tmp_path / "cache", format="plain", stances=["read", "write", "like"], min_chars=10)
    summary = g.extract(path)
    assert summary.texts_extracted == 1 and summary.personas_created == 3
    personas = list(store.iter_personas(statuses=None))
    assert all("社区诊所" in p["description"] for p in personas)  # the fake echoes the user turn it was given
    assert all("occupation" not in p for p in personas)


class OnePersonaPerText(FakeLLM):
    """The fake endpoint answering every stance asked of a radio text with one and the same persona;
    answers to the `late` stance come 0.3 s after the others, so the order they arrive in is known."""

    QUESTION = {"read": "likely to read", "write": "likely to have written", "like": "likely to like"}

    def __init__(self, late: str) -> None:
        super().__init__()
        self.late = late

    async def _chat(self, request: web.Request) -> web.Response:
        user = str((await request.json())["messages"][-1]["content"])
        if self.QUESTION[self.late] in user:
            await asyncio.sleep(0.3)
        completion = json.loads((await super()._chat(request)).body)  # type: ignore[arg-type]
        number = re.search(r"radio set number (\d+)", user).group(1)  # type: ignore[union-attr]
        completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = json.dumps({
            "description": f"A retired engineer who restores vintage radio set number {number} in his shed",
            "age_group": "older_adult", "occupation": "retired engineer", "domain": "electronics",
            "visibility": "behind-the-scenes", "language": "en"})
        return web.json_response(completion)


@pytest.mark.parametrize("late", ["read", "write"])
def test_every_stance_that_gives_the_same_persona_is_recorded_whatever_the_order(
    store: GraphStore, store_options: StoreConfig, tmp_path: Path, late: str
) -> None:
    path = corpus(tmp_path / "texts.jsonl", 3)
    fake = OnePersonaPerText(late).start()
    try:
        g = graph_for(fake, store, tmp_path / "cache", stances=["read", "write"])
        summary = g.extract(path)
        assert summary.texts_extracted == 3 and summary.personas_created == 3 and fake.stats.requests == 6

        def stances() -> list[tuple[Any, Any, Any]]:
            return sorted((e["props"]["stances"], e["props"]["stance"], e["props"]["chunk"]) for e in store.iter_edges())

        assert stances() == [(["read", "write"], "read,write", 0)] * 3
        # A later run asking a new stance adds it to the same edges; asking again adds nothing twice.
        g = graph_for(fake, store, tmp_path / "cache", stances=["read", "write", "like"])
        for _ in range(2):
            g.extract(path)
            assert stances() == [(["like", "read", "write"], "like,read,write", 0)] * 3
    finally:
        fake.stop()


def test_folder_of_text_files_with_long_texts_chunked(fake_llm: FakeLLM, store: GraphStore,
                                                      store_options: StoreConfig, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    folder.mkdir()
    long_text = "\n\n".join(f"Section {i}: the ward's night routine, medication rounds and handover notes." * 4
                             for i in range(12))
    (folder / "long.md").write_text(long_text, encoding="utf-8")
    (folder / "short.txt").write_text("Our allotment society meets on Sundays to swap seeds and compost tips.",
                                      encoding="utf-8")
    (folder / "ignored.csv").write_text("not,a,text,file\n", encoding="utf-8")
    g = graph_for(fake_llm, store, tmp_path / "cache", chunk_chars=1000, max_chunks=3)
    assert count_records(folder) == 2
    summary = g.extract(folder)
    assert summary.field == "text" and summary.texts_extracted == 2
    assert summary.chunks == 4 and summary.requests == 4  # 3 of the long text's chunks, 1 for the short one
    sources = {s["uri"]: s for page in store.iter_nodes("Source") for s in page}
    assert sources[str(folder / "long.md")]["chunks"] == 3
    assert sorted(chunk for *_, chunk in graph_content(store)["edges"]) == [0, 0, 1, 2]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_csv_and_parquet_inputs_with_the_text_field_found(fake_llm: FakeLLM, store: GraphStore,
                                                          store_options: StoreConfig, tmp_path: Path, suffix: str) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows = {"id": [1, 2, 3], "article": [f"Article {i}: how our village bakery switched to a wood-fired oven." for i in range(3)]}
    path = tmp_path / f"texts.{suffix}"
    (pq.write_table if suffix == "parquet" else pacsv.write_csv)(pa.table(rows), path)
    g = graph_for(fake_llm, store, tmp_path / "cache")
    assert count_records(path) == 3
    summary = g.extract(path)
    assert summary.field == "article" and summary.texts_extracted == 3 and summary.personas_created == 3


def test_chunking_and_helpers() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(10))
    chunks = chunk_text(text, 700)
    assert all(len(c) <= 700 for c in chunks) and len(chunks) >= 5
    assert " ".join(" ".join(chunks).split()) == " ".join(text.split())
    assert chunk_text("x" * 1000, 400) == ["x" * 400, "x" * 400, "x" * 200]
    assert text_language("患者在夜班时需要护士的帮助") == "zh" and text_language("A nurse on night shift") == "en"
    assert plain_description('Persona: "A night-shift nurse in Lyon."\n\nMore text') == "A night-shift nurse in Lyon."


_RUNNER = """
import json, sys
import personagraph as pg
args = json.loads(sys.argv[1])
g = pg.open(args["data_dir"], graph=args["graph"], llm=args["llm"], progress=False)
g.extract(args["path"])
"""


@pytest.fixture
def second_store(store_options: StoreConfig) -> Iterator[GraphStore]:
    """Another fresh graph on the session's server, for comparing two runs."""
    other = FalkorStore(store_options.model_copy(update={"graph": store_options.graph + "_b"}))
    other.ensure_schema()
    yield other
    try:
        other._graph.delete()
    finally:
        other.close()


def test_sigkill_halfway_then_rerun_gives_the_same_graph_without_repeated_calls(
    fake_llm: FakeLLM, store: GraphStore, second_store: GraphStore, store_options: StoreConfig, tmp_path: Path
) -> None:
    n = 60
    path = corpus(tmp_path / "texts.jsonl", n)
    fake_llm.faults = Faults(latency=0.05)
    g = graph_for(fake_llm, store, tmp_path / "cache")
    g.settings.llm.concurrency = 4
    args = {"data_dir": str(store_options.data_dir), "graph": store_options.graph, "path": str(path),
            "llm": g.settings.llm.model_dump(mode="json", exclude={"api_key"})}
    child = subprocess.Popen([sys.executable, "-c", _RUNNER, json.dumps(args)], cwd=REPO)
    deadline = time.monotonic() + 60
    while fake_llm.stats.requests < n // 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(tmp_path / "cache" / "responses.sqlite") as db:
        cached = db.execute("SELECT count(*) FROM responses").fetchone()[0]
    assert 0 < cached < n
    calls_before = fake_llm.stats.requests
    fake_llm.faults = Faults()
    rerun = g.extract(path)
    assert fake_llm.stats.requests - calls_before == n - cached  # nothing the cache answered is asked again
    assert rerun.texts_read == n and rerun.texts_extracted + rerun.skipped["already extracted"] == n
    graph_for(fake_llm, second_store, tmp_path / "fresh-cache").extract(path)
    assert graph_content(store) == graph_content(second_store)
    assert len(graph_content(store)["personas"]) == n
