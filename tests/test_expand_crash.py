"""`personagraph expand` killed with SIGKILL mid-round and rerun ends with the graph of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personagraph.graph.model import Persona
from personagraph.graph.store import FalkorStore, StoreConfig
from tests.expand_fake import ExpandFakeLLM, expand_fake_server
from tests.fake_llm_server import Faults
from tests.test_expand import SEEDS

ROOT = Path(__file__).resolve().parent.parent
# Properties that name the run or the clock, not the graph's content.
RUN_PROPS = {"run_id", "created_at", "expanded_run"}
EXTRA_SEEDS = [f"A market stall holder in {city} who sells {goods} and knows every regular by name"
               for city, goods in (("Lima", "potatoes"), ("Osaka", "pickles"), ("Nairobi", "mangoes"),
                                   ("Quebec", "maple syrup"), ("Izmir", "figs"), ("Pune", "spices"))]


@pytest.fixture(scope="module")
def slow_fake() -> Iterator[ExpandFakeLLM]:
    """The expansion-aware endpoint with 100 ms per answer, so a run lasts long enough to be killed."""
    with expand_fake_server(Faults(latency=0.1)) as server:
        yield server


def expand_cli(data_dir: Path, graph: str, base_url: str, cache: bool) -> subprocess.Popen[str]:
    """`personagraph expand` in a child process, against the fake endpoint."""
    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_MODEL": "fake-model",
           "PERSONAGRAPH_LLM__CONCURRENCY": "8", "PERSONAGRAPH_LLM__CACHE": str(cache).lower(),
           "PERSONAGRAPH_EXPAND__CHUNK_SEEDS": "4", "PERSONAGRAPH_EXPAND__DEDUP": "exact",
           "PERSONAGRAPH_EXPAND__RELEVANCE_CHECK": "false", "PERSONAGRAPH_CONFIG": str(data_dir / "none.toml")}
    return subprocess.Popen(
        [sys.executable, "-m", "personagraph.cli", "--data-dir", str(data_dir), "--graph", graph,
         "expand", "--hops", "2", "--fanout", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def snapshot(store: FalkorStore) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Nodes and edges as comparable sets, without run ids and timestamps."""
    nodes = {tuple(sorted((k, str(v)) for k, v in n.items() if k not in RUN_PROPS))
             for n in store.iter_personas(statuses=None)}
    edges = {(e["source"], e["type"], e["target"],
              tuple(sorted((k, str(v)) for k, v in e["props"].items() if k not in RUN_PROPS)))
             for e in store.iter_edges()}
    return nodes, edges


def test_kill_minus_nine_mid_round_then_rerun_equals_an_uninterrupted_run(
    slow_fake: ExpandFakeLLM, falkordb_dir: Path, store_options: StoreConfig
) -> None:
    stores = {}
    for name in ("killed", "clean"):
        stores[name] = FalkorStore(store_options.model_copy(update={"graph": f"{store_options.graph}_{name}"}))
        stores[name].ensure_schema()
        stores[name].upsert_personas([Persona(description=d) for d in SEEDS + EXTRA_SEEDS])
    try:
        killed = stores["killed"]
        started_calls = slow_fake.stats.requests
        process = expand_cli(falkordb_dir, killed.options.graph, slow_fake.base_url, cache=True)
        deadline = time.monotonic() + 90
        # Kill inside the second round: some hop-1 seeds written and marked, others not yet.
        while time.monotonic() < deadline and process.poll() is None:
            marked = killed.run("MATCH (p:Persona {hop: 1, expanded: true}) RETURN count(p)", write=False).value()
            if marked >= 4:
                break
            time.sleep(0.02)
        assert process.poll() is None, f"the run ended before it could be killed: {process.communicate()}"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        hop1 = killed.run("MATCH (p:Persona {hop: 1}) RETURN count(p), sum(CASE WHEN p.expanded THEN 1 ELSE 0 END)",
                          write=False).rows[0]
        assert 0 < hop1[1] < hop1[0], f"not killed mid-round: {hop1}"
        calls_before_rerun = slow_fake.stats.requests

        rerun = expand_cli(falkordb_dir, killed.options.graph, slow_fake.base_url, cache=True)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        killed_calls = slow_fake.stats.requests

        clean = expand_cli(falkordb_dir, stores["clean"].options.graph, slow_fake.base_url, cache=False)
        out, err = clean.communicate(timeout=120)
        assert clean.returncode == 0, err
        clean_calls = slow_fake.stats.requests - killed_calls

        assert snapshot(killed) == snapshot(stores["clean"])
        nodes, edges = snapshot(killed)
        assert len(nodes) > len(SEEDS + EXTRA_SEEDS) and edges
        # killed run + rerun paid for each answer once, plus at most the calls in flight at the kill
        # (8 workers, 8 queued); the rerun repeated none of the answers the killed run had stored
        assert clean_calls <= killed_calls - started_calls <= clean_calls + 16
        assert killed_calls - calls_before_rerun < clean_calls
    finally:
        for store in stores.values():
            store._graph.delete()
            store.close()
