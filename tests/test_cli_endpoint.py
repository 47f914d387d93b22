"""LLM commands as a user runs them against an endpoint that is down, hangs, or fails every call.

A dead endpoint stops the command within seconds with one line naming the address (exit 3), what was
answered before stays written, and a command none of whose LLM calls succeeded exits 1 saying why.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from personagraph.graph.store import FalkorStore, GraphStore, StoreConfig
from personagraph.cli import app
from tests.fake_llm_server import FakeLLM, Faults, fake_llm_subprocess
from tests.graphs import personas
from tests.test_extract_cli import flat, run
from tests.test_llm import closed_port_url
from tests.test_sample import build_graph


def texts_file(folder: Path, n: int) -> Path:
    """`n` texts no other test asks about (the session's LLM cache is shared)."""
    tag = uuid.uuid4().hex
    path = folder / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": f"{tag} note {i}: how to keep bees alive through a cold winter."}) + "\n"
                            for i in range(n)), encoding="utf-8")
    return path


def invoke(*args: str, options: StoreConfig, base_url: str, **llm: object) -> Result:
    """`personagraph ARGS` in-process, with the endpoint and `[llm]` settings given as environment variables."""
    env = {"OPENAI_BASE_URL": base_url, "OPENAI_MODEL": "fake-model", "COLUMNS": "1000",
           **{f"PERSONAGRAPH_LLM__{k.upper()}": str(v) for k, v in llm.items()}}
    return CliRunner().invoke(app, ["--data-dir", str(options.data_dir), "--graph", options.graph, *args], env=env)


def test_extract_against_a_closed_port_exits_3_naming_it_and_keeps_what_was_answered(
        fake_llm: FakeLLM, store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    path = texts_file(tmp_path, 12)
    # The first 4 texts were answered once (on another graph of the same data folder): they are in the LLM cache.
    warm = StoreConfig(data_dir=store_options.data_dir, graph=f"{store_options.graph}_warm")
    try:
        assert run("extract", str(path), "--limit", "4", cwd=tmp_path, options=warm, base_url=fake_llm.base_url).returncode == 0
    finally:
        FalkorStore(warm)._graph.delete()
    url = closed_port_url()
    started = time.monotonic()
    down = run("extract", str(path), cwd=tmp_path, options=store_options, base_url=url)
    assert down.returncode == 3, down.stdout + down.stderr
    assert time.monotonic() - started < 20  # of which a few seconds start the interpreter
    error = flat(down.stderr).split("error: ", 1)[1]  # after the progress bar
    assert error.startswith(f"LLM endpoint unavailable: connection refused at {url} (5 attempts in a row")
    assert error.endswith("rerun to continue") and "timed out" not in error and "Traceback" not in down.stderr
    # the 4 answers from the cache were written before the command stopped
    assert len(list(store.iter_personas(statuses=None))) == 4


def test_extract_against_a_hung_endpoint_stops_after_one_round_of_timeouts(
        store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    path = texts_file(tmp_path, 40)
    with fake_llm_subprocess(Faults(timeout=1.0, hang=60)) as url:
        started = time.monotonic()
        res = invoke("extract", str(path), options=store_options, base_url=url, timeout=0.5)
        seconds = time.monotonic() - started
    assert res.exit_code == 3, res.output
    assert f"LLM endpoint unavailable: no answer within 0.5 s at {url}" in flat(res.stderr)
    assert "raise llm.timeout" in flat(res.stderr) and seconds < 5


def test_filter_keeps_the_verdicts_it_had_when_the_endpoint_went_down(
        fake_llm: FakeLLM, store: GraphStore, store_options: StoreConfig) -> None:
    people = personas(30, prefix=f"nurse {uuid.uuid4().hex[:8]}")
    # The judge answered about the first 10 once (on another graph of the same data folder): they are in the LLM cache.
    warm = FalkorStore(StoreConfig(data_dir=store_options.data_dir, graph=f"{store_options.graph}_warm"))
    try:
        warm.upsert_personas(people[:10])
        assert invoke("filter", options=warm.options, base_url=fake_llm.base_url).exit_code == 0
    finally:
        warm._graph.delete()
        warm.close()
    store.upsert_personas(people)
    url = closed_port_url()
    res = invoke("filter", options=store_options, base_url=url)
    assert res.exit_code == 3 and f"connection refused at {url}" in flat(res.stderr)
    judged = [p for p in store.iter_personas(statuses=None) if p.get("filter_stage") == "llm"]
    assert sorted(p["description"] for p in judged) == sorted(p.description for p in people[:10])


@pytest.mark.parametrize("command", ["extract", "filter", "expand", "synthesize", "simulate", "run"])
def test_a_command_whose_every_llm_call_failed_exits_1_saying_why(
        command: str, fake_llm: FakeLLM, store: GraphStore, store_options: StoreConfig, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    build_graph(store)  # accepted personas, unfiltered and unexpanded, with edges
    args = {
        "extract": ["extract", str(texts_file(tmp_path, 3))],
        "filter": ["filter"],
        "expand": ["expand", "--hops", "1", "--max-calls", "4"],
        "synthesize": ["synthesize", "--task", "math_problem", "-n", "3", "-o", str(tmp_path / "rows.jsonl")],
        "simulate": ["simulate", "-n", "1", "--size", "3", "--rounds", "1", "-o", str(tmp_path / "sim")],
        "run": ["run", str(texts_file(tmp_path, 3)), "--hops", "1", "-n", "2", "-o", str(tmp_path / "out")],
    }[command]
    for name, value in {"EXPAND__DEDUP": "exact", "EXPAND__RELEVANCE_CHECK": "false", "DEDUP__METHOD": "minhash",
                        "FILTER__PERSON_PROBE": "false"}.items():  # the fake's "description 3fa2..." is no person
        monkeypatch.setenv(f"PERSONAGRAPH_{name}", value)  # no embedding model to load
    fake_llm.faults = Faults(error_500=1.0)
    res = invoke(*args, options=store_options, base_url=fake_llm.base_url, max_retries=0, cache="false")
    assert res.exit_code == 1, res.output
    calls = fake_llm.stats.requests
    assert calls > 0
    error = flat(res.stderr)
    assert f"error: no LLM call succeeded: all {calls} requests to {fake_llm.base_url} failed (last error: " in error
    assert "Error code: 500 - injected server error); nothing came from the model" in error
    assert error.endswith("rerun to retry") and "Traceback" not in res.output


def test_a_command_with_some_llm_calls_answered_exits_0(fake_llm: FakeLLM, store: GraphStore,
                                                       store_options: StoreConfig, tmp_path: Path) -> None:
    fake_llm.faults = Faults(error_500=0.5)
    res = invoke("extract", str(texts_file(tmp_path, 20)), options=store_options, base_url=fake_llm.base_url,
                 max_retries=0, cache="false")
    assert res.exit_code == 0, res.output
    assert 0 < len(list(store.iter_personas(statuses=None))) < 20 and "no LLM call succeeded" not in res.output
