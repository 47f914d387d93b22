"""Shared fixtures: a real embedded FalkorDB for the whole session, a fresh graph per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from personagraph.api import Graph
from personagraph.config import Settings
from personagraph.graph import server
from personagraph.graph.store import FalkorStore, GraphStore, StoreConfig
from tests.fake_llm_server import FakeLLM, Faults, fake_llm_server

# CI replays the same examples every run (a red CI blocks everything); locally, hypothesis explores.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
# The test endpoints answer with placeholders ("description 3fa2...", "nurse 4cd59afb number 2, ...")
# that the filter's person probe may read as no person, by the luck of the hex: pipelines run through
# the settings leave it off, as they leave off the rest of the embedding model. Its own tests
# (tests/test_filter.py) build FilterConfig directly, where it is on.
os.environ.setdefault("PERSONAGRAPH_FILTER__PERSON_PROBE", "false")

if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

_counter = itertools.count()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def falkordb_dir() -> Iterator[Path]:
    """A data folder with a running embedded FalkorDB, stopped at the end of the session."""
    # Short path: unix socket paths are limited to ~100 characters.
    folder = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    server.ensure_running(folder)
    yield folder
    server.stop(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder of this test's own with its own server (short path under /tmp: unix socket
    paths are limited), the server stopped and the folder removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="pgs-", dir="/tmp"))
    yield folder
    server.stop(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def store_options(falkordb_dir: Path) -> StoreConfig:
    """Options naming a graph of its own for this test on the session's server."""
    return StoreConfig(data_dir=falkordb_dir, graph=f"t{os.getpid()}_{next(_counter)}", batch_size=500)


@pytest.fixture
def store(store_options: StoreConfig) -> Iterator[GraphStore]:
    """A fresh, schema-ready graph on the real embedded FalkorDB; deleted after the test."""
    yield from _fresh_graph(store_options)


@pytest.fixture
def other_store(store_options: StoreConfig) -> Iterator[GraphStore]:
    """A second graph on the same server: where a Ray run writes, beside the one-process run's."""
    yield from _fresh_graph(store_options.model_copy(update={"graph": store_options.graph + "_ray"}))


def _fresh_graph(options: StoreConfig) -> Iterator[GraphStore]:
    """A schema-ready graph, deleted when the fixture ends."""
    st = FalkorStore(options)
    st.ensure_schema()
    yield st
    try:
        st._graph.delete()
    finally:
        st.close()


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray of 2 CPUs for a module; workers import the project (and tests/) from this checkout."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def fake_llm_session() -> Iterator[FakeLLM]:
    """The project's OpenAI-compatible test endpoint on loopback, one per session."""
    with fake_llm_server() as fake:
        yield fake


@pytest.fixture
def fake_llm(fake_llm_session: FakeLLM) -> FakeLLM:
    """The test endpoint with no faults and fresh counts; set `fake_llm.faults` to inject some."""
    fake_llm_session.faults = Faults()
    fake_llm_session.reset()
    return fake_llm_session


def graph_on(store: GraphStore, cache_dir: Path, llm: dict[str, object] | None = None, **sections: object) -> Graph:
    """The Python API over a test's store and an endpoint (`llm` settings), with a response cache of its own
    and no progress bars: what `personagraph.open` gives a user, on the test's graph."""
    settings = Settings(store=store.options, llm={"cache_dir": cache_dir, **(llm or {})}, **sections)
    return Graph(settings, store=store, progress=False)


@pytest.fixture
def graph(store: GraphStore, fake_llm: FakeLLM, tmp_path: Path) -> Iterator[Graph]:
    """`personagraph.open` as a test needs it: this test's graph, the test endpoint, a fresh cache."""
    g = graph_on(store, tmp_path / "llm_cache", llm={"base_url": fake_llm.base_url})
    yield g
    if g.llm_started:
        g.llm.close()
