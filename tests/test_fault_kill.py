"""kill -9 of the server's whole process group at random moments while `import`, `extract`, `expand` and
`dedup` run: nothing acknowledged is lost, the killed command fails in one line, a rerun ends with the
graph of a clean run.

Each stage runs as the real CLI in a child process (the LLM stages against the project's fake endpoint,
slowed so a run lasts seconds), first once uninterrupted on a fresh folder, then on another folder
where, at seeded random moments after the command connected to the store, the embedded FalkorDB's
process group gets SIGKILL; after each kill the server is restarted and checked. "Acknowledged" means:

- every write a probe process made through the Python API while the command ran, once the store had
  answered it (`tests/store_probe.py` appends the id to a file, fsynced, only after that answer);
- what a reader was shown of the command's committed work just before the kill (the store answers no
  one about a write before that write is on disk): the personas of an import (its batches land in file
  order, so N personas are the first N records), each source an extract had marked done with its
  EXTRACTED_FROM edges, each seed expand had marked expanded with its edges, each merge of dedup (the
  tombstone, its pointer, the id on the survivor);
- for `import`, also the records its progress line reported (a batch is counted once it is written);
- all of it, when the command exited 0 before the kill reached it.

The killed command must exit 3 within seconds with one `error:` line naming the store's folder, no
traceback. After the kills the command is rerun against the killed server (it restarts it itself) and
the graph must equal that of the clean run: the same nodes with the same properties (run ids and
clocks aside), the same edges, nothing twice.

`FAULT_SEED=<n>` draws other moments, `FAULT_KILLS=<n>` kills each stage n times (2 by default); every
failure message names the seed and the moment. The last tests put a kill between two given steps,
deterministically.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from personagraph import cypher
from personagraph.graph import server
from personagraph.graph.model import Edge, Persona, persona_id
from personagraph.graph.store import (
    FalkorStore,
    GraphStore,
    QueryError,
    QueryResult,
    StoreConfig,
    StoreUnavailable,
)
from tests.expand_fake import ExpandFakeLLM, expand_fake_server
from tests.fake_llm_server import Faults
from tests.test_durability import kill_server_group, open_store

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("FAULT_SEED", "11"))
KILLS_PER_STAGE = int(os.environ.get("FAULT_KILLS", "2"))
PROBE_GRAPH = "fault_probe"
# Properties that name the run or the clock, not the graph's content.
RUN_PROPS = {"run_id", "created_at", "expanded_run"}
POLL_S = 0.02  # how often the watcher looks (the moment is that precise)
KILL_TO_EXIT_S = 30.0  # a killed command must have failed by then (it takes ~1 s; the rest is a slow machine)


# -- the command, the store and the kill ------------------------------------------------------------

@dataclass
class Folders:
    """The clean folder (never killed), the killed one, and an empty working directory for the CLI."""

    clean: Path
    killed: Path
    cwd: Path


@pytest.fixture(scope="module")
def folders() -> Iterator[Folders]:
    made = [Path(tempfile.mkdtemp(prefix=f"pgf{tag}-", dir="/tmp")) for tag in ("c", "k", "w")]
    yield Folders(*made)
    for folder in made[:2]:
        server.stop(folder)
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def llm() -> Iterator[ExpandFakeLLM]:
    """The expansion-aware fake endpoint (plain fake answers for extraction), 50 ms per answer."""
    with expand_fake_server(Faults(latency=0.05)) as fake:
        yield fake


def start_cli(folders: Folders, data_dir: Path, graph: str, args: list[str], llm: ExpandFakeLLM) -> subprocess.Popen[str]:
    """`personagraph --data-dir D --graph G ARGS` in a child process, configured by environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONAGRAPH_", "NEO4J_", "OPENAI_"))}
    env |= {"COLUMNS": "1000", "PYTHONPATH": str(ROOT), "OPENAI_BASE_URL": llm.base_url, "OPENAI_MODEL": "fake-model",
            "PERSONAGRAPH_STORE__BATCH_SIZE": "500", "PERSONAGRAPH_LLM__CONCURRENCY": "8",
            "PERSONAGRAPH_EXPAND__CHUNK_SEEDS": "2", "PERSONAGRAPH_EXPAND__DEDUP": "exact",
            "PERSONAGRAPH_EXPAND__RELEVANCE_CHECK": "false", "PERSONAGRAPH_DEDUP__METHOD": "minhash"}
    return subprocess.Popen([sys.executable, "-m", "personagraph.cli", "--data-dir", str(data_dir), "--graph", graph, *args],
                            cwd=folders.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Watch:
    """A reader beside the command: sees when the command connects, and polls the stage's progress."""

    def __init__(self, data_dir: Path, graph: str) -> None:
        self.store = open_store(data_dir, graph)
        self.store.run("RETURN 1", write=False)
        self.admin = redis.Redis(unix_socket_path=str(self.store.socket_path))
        self.known = {c["id"] for c in self.admin.client_list()}  # ours, and the probe's

    def command_connected(self) -> bool:
        """Whether a client other than ours has connected (only the command does)."""
        return any(c["id"] not in self.known for c in self.admin.client_list())

    def close(self) -> None:
        self.store.close()
        self.admin.close()


# -- what the graph holds ---------------------------------------------------------------------------

def _frozen(props: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in props.items() if k not in RUN_PROPS))


@dataclass
class GraphState:
    """Every node (but `Run`s) and edge, as read in one query each (a consistent view of each)."""

    nodes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    node_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    edges: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    edge_counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def comparable(self) -> tuple[Counter[Any], Counter[Any]]:
        """Nodes and edges as multisets of their content: a duplicate counts twice."""
        nodes = Counter({(key, _frozen(props)): self.node_counts[key] for key, props in self.nodes.items()})
        edges = Counter({(key, _frozen(props)): self.edge_counts[key] for key, props in self.edges.items()})
        return nodes, edges


def diff(got: Counter[Any], want: Counter[Any]) -> str:
    """The first few elements one multiset has and the other lacks."""
    return f"+{list((got - want).elements())[:3]} -{list((want - got).elements())[:3]}"


def assert_same_graph(got: GraphState, want: GraphState, context: str) -> None:
    """The same nodes with the same properties and the same edges (run ids and clocks aside), none twice."""
    twice = [key for key, n in (got.node_counts + got.edge_counts).items() if n > 1]
    assert not twice, f"{context} wrote {len(twice)} nodes or edges twice: {twice[:5]}"
    (got_nodes, got_edges), (want_nodes, want_edges) = got.comparable(), want.comparable()
    assert got_nodes == want_nodes, f"{context} differs from a clean run in its nodes: {diff(got_nodes, want_nodes)}"
    assert got_edges == want_edges, f"{context} differs from a clean run in its edges: {diff(got_edges, want_edges)}"


def read_rows(store: FalkorStore, query: str) -> list[tuple[Any, ...]]:
    """The rows of a read query; none when the graph does not exist (a server that kept nothing of it)."""
    try:
        return [tuple(row) for row in store.run(query, write=False).rows]
    except QueryError as exc:
        if "empty key" not in str(exc):
            raise
        return []


def read_state(store: FalkorStore) -> GraphState:
    state = GraphState()
    for label, props in read_rows(store, "MATCH (n) WHERE NOT n:Run RETURN labels(n)[0], properties(n)"):
        key = (label, props.get("id", ""))
        state.nodes[key] = props
        state.node_counts[key] += 1
    for source, rel, target, props in read_rows(store, "MATCH (a)-[e]->(b) RETURN a.id, type(e), b.id, properties(e)"):
        state.edges[(source, rel, target)] = props
        state.edge_counts[(source, rel, target)] += 1
    return state


# -- the probe: writes through the Python API, records what was acknowledged --------------------------

def start_probe(data_dir: Path, ack_file: Path, prefix: str) -> subprocess.Popen[bytes]:
    """`tests.store_probe` writing into the folder's probe graph; returns once its first write is acknowledged."""
    probe = subprocess.Popen([sys.executable, "-m", "tests.store_probe", str(data_dir), PROBE_GRAPH, str(ack_file), prefix],
                             cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (ack_file.exists() and ack_file.stat().st_size) and probe.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ack_file.exists() and ack_file.stat().st_size, f"the probe wrote nothing: {probe.communicate(timeout=10)}"
    return probe


# -- one stage: clean run, killed runs, rerun, comparison ---------------------------------------------

Shown = set[tuple[Any, ...]]


def rows(query: str) -> Callable[[FalkorStore], Shown]:
    """What `query` returns, as a set of row tuples."""
    return lambda store: set(read_rows(store, query))


@dataclass
class Stage:
    """A CLI command, its starting graph, and how its progress and its acknowledged work read in the graph."""

    name: str
    args: list[str]
    progress: str  # a Cypher count that grows as the command's work lands
    shown: Callable[[FalkorStore], Shown]  # what the command has acknowledged, read just before the kill (cheap)
    kept: Callable[[FalkorStore], Shown] | None = None  # the same, read after the restart (default: `shown`)
    prepare: Callable[[FalkorStore], None] = lambda store: None
    reported: Callable[[str], Shown] | None = None  # what its printed output says is done (read from stderr)


@dataclass
class Outcome:
    """One run of the command under watch."""

    returncode: int
    stdout: str
    stderr: str
    span: float  # seconds from its connection to the store until it exited (or the kill)
    shown: Shown | None = None  # read just before the kill; None if it was not killed while running


def run_until(folders: Folders, data_dir: Path, stage: Stage, graph: str, llm: ExpandFakeLLM,
              stop: Callable[[float, int], bool] | None = None, timeout: float = 120) -> Outcome:
    """Run the stage's command; once `stop(seconds since it connected, progress)` holds while it runs, read
    what it has acknowledged and kill the server's process group. Returns when the command has exited."""
    watch = Watch(data_dir, graph)
    started = time.monotonic()
    proc = start_cli(folders, data_dir, graph, stage.args, llm)
    try:
        connected = killed = None
        shown = None
        while proc.poll() is None and time.monotonic() - started < timeout:
            if connected is None:
                if watch.command_connected():
                    connected = time.monotonic()
            elif stop is not None:
                progress = int(watch.store.run(stage.progress, write=False).value() or 0)
                if stop(time.monotonic() - connected, progress):
                    observed = stage.shown(watch.store)
                    if proc.poll() is None:  # still running after the read: the kill lands inside the command
                        shown, killed = observed, time.monotonic()
                        kill_server_group(data_dir)
                    break
            time.sleep(POLL_S)
        try:
            out, err = proc.communicate(timeout=KILL_TO_EXIT_S if killed else max(1.0, timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            when = f"within {KILL_TO_EXIT_S:.0f}s of the kill" if killed else "in time"
            pytest.fail(f"{stage.name} did not exit {when}: {err[-2000:]}")
        ended = time.monotonic()
        return Outcome(proc.returncode, out, err, (killed or ended) - (connected or ended), shown)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watch.close()


def run_stage_under_kills(folders: Folders, llm: ExpandFakeLLM, stage: Stage) -> None:
    """The clean run, `KILLS_PER_STAGE` killed runs (each checked after a restart), the rerun, the comparison."""
    rng = random.Random(f"{SEED}/{stage.name}")
    graph = f"fault_{stage.name}"
    for data_dir in (folders.clean, folders.killed):
        with open_store(data_dir, graph) as store:
            store.ensure_schema()
            stage.prepare(store)

    clean = run_until(folders, folders.clean, stage, graph, llm)
    assert clean.returncode == 0, f"the clean {stage.name} failed: {clean.stderr[-2000:]}"
    with open_store(folders.clean, graph) as store:
        final_progress = int(store.run(stage.progress, write=False).value() or 0)
        expected = read_state(store)
    assert final_progress > 0, f"the clean {stage.name} did nothing: {clean.stdout}"

    landed = 0  # kills that failed the command (the others came after it had reported success)
    for k in range(KILLS_PER_STAGE):
        with open_store(folders.killed, graph) as store:
            start_progress = int(store.run(stage.progress, write=False).value() or 0)
        # The moment: a seeded delay after the command connected, within the clean run's span, or, on a
        # machine slower than during the clean run, once 90% of the work left has landed.
        fraction = rng.uniform(0.0, 0.8)
        delay = fraction * clean.span
        cap = start_progress + 0.9 * (final_progress - start_progress)
        moment = (f"FAULT_SEED={SEED}, {stage.name} kill {k + 1}: {delay:.2f}s after the command connected "
                  f"({fraction:.2f} of the clean run's {clean.span:.2f}s) or at progress {cap:.0f}")
        ack_file = folders.cwd / f"{stage.name}-{k}.acks"
        probe = start_probe(folders.killed, ack_file, f"{stage.name}-{k}")
        killed = run_until(folders, folders.killed, stage, graph, llm,
                           stop=lambda t, progress, delay=delay, cap=cap: t >= delay or progress >= cap)
        if killed.shown is None:
            # It ended before the moment (a machine much faster than during the clean run): kill it idle.
            assert killed.returncode == 0, f"{moment}: {killed.stderr[-2000:]}"
            with open_store(folders.killed, graph) as store:
                killed.shown = stage.shown(store)
            kill_server_group(folders.killed)
        where = f"{moment} (killed {killed.span:.2f}s after it connected)"
        if killed.returncode != 0:
            landed += 1
            assert killed.returncode == 3, f"{where}: exit {killed.returncode}, stderr: {killed.stderr[-3000:]}"
            errors = [line for line in killed.stderr.splitlines() if line.startswith("error:")]
            assert "Traceback" not in killed.stderr and len(errors) == 1, f"{where}: {killed.stderr[-3000:]}"
            assert str(folders.killed) in errors[0], f"{where}: the error names no store: {errors[0]}"
        probe_err = probe.communicate(timeout=KILL_TO_EXIT_S)[1].decode(errors="replace")
        assert probe.returncode == 0, f"{moment}: the probe failed: {probe_err[-2000:]}"

        # Restart (the Python API starts the server from what the kill left) and check what was acknowledged.
        with open_store(folders.killed, graph) as store:
            kept = (stage.kept or stage.shown)(store)
        lost = killed.shown - kept
        assert not lost, f"{moment}: {len(lost)} of {len(killed.shown)} rows shown before the kill are lost: {sorted(lost)[:5]}"
        if stage.reported is not None:
            lost = stage.reported(killed.stderr) - kept
            assert not lost, f"{moment}: {len(lost)} rows its progress reported are lost: {sorted(lost)[:5]}"
        if killed.returncode == 0:
            # It reported success (it was past its last store call when the kill came): all of its work was
            # acknowledged, so the restarted graph is already the clean run's.
            with open_store(folders.killed, graph) as store:
                assert_same_graph(read_state(store), expected, f"{where}: exit 0, yet")
        acked = ack_file.read_text().split()
        with open_store(folders.killed, PROBE_GRAPH) as store:
            present = {row[0] for row in read_rows(store, "MATCH (p:Probe) RETURN p.id")}
        missing = [i for i in acked if i not in present]
        assert acked and not missing, f"{moment}: {len(missing)} of {len(acked)} acknowledged probe writes lost: {missing[:5]}"
    assert landed, f"FAULT_SEED={SEED}: no kill of {stage.name} came before it reported success"

    # The rerun starts from a server killed while idle, with nothing else running: it restarts it itself.
    kill_server_group(folders.killed)
    rerun = start_cli(folders, folders.killed, graph, stage.args, llm)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, f"FAULT_SEED={SEED}: the {stage.name} rerun failed: {err[-3000:]}"
    with open_store(folders.killed, graph) as store:
        assert_same_graph(read_state(store), expected, f"FAULT_SEED={SEED}: after the kills, the {stage.name} rerun")


# -- the four stages -----------------------------------------------------------------------------------

IMPORT_RECORDS = 5_000


def persona_line(i: int) -> str:
    return f"persona {i}, a night-shift baker in Porto who keeps {i % 97} kinds of sourdough alive"


def first_records(n: int) -> Shown:
    return {(persona_id(persona_line(i)),) for i in range(n)}


def test_import_survives_kills_of_the_server(folders: Folders, llm: ExpandFakeLLM) -> None:
    source = folders.cwd / "personas.jsonl"
    source.write_text("".join(json.dumps({"persona": persona_line(i)}) + "\n" for i in range(IMPORT_RECORDS)))
    count = "MATCH (p:Persona) RETURN count(p)"

    def printed(stderr: str) -> Shown:
        """The records of the last `N/?` (or `N/M`) progress line: it counts a batch once it is written."""
        return first_records(max([int(n) for n in re.findall(r"\b(\d+)/(?:\?|\d+)", stderr)], default=0))

    # Batches land in file order, so N personas in the graph are the first N records.
    run_stage_under_kills(folders, llm, Stage(
        "import", ["import", str(source)], count, shown=lambda store: first_records(int(store.run(count, write=False).value())),
        kept=rows("MATCH (p:Persona) RETURN p.id"), reported=printed))


def test_extract_survives_kills_of_the_server(folders: Folders, llm: ExpandFakeLLM) -> None:
    source = folders.cwd / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": f"post {i}: a long enough note on keeping bees through a wet winter, "
                                                  f"number {i} of a series on hives in the hills."}) + "\n" for i in range(80)))
    # A source is marked extracted after its personas and edges are written.
    run_stage_under_kills(folders, llm, Stage(
        "extract", ["extract", str(source)], "MATCH (s:Source) WHERE s.extracted = true RETURN count(s)",
        shown=rows("MATCH (p:Persona)-[:EXTRACTED_FROM]->(s:Source) WHERE s.extracted = true RETURN s.id, p.id")))


SEEDS = ["A pediatric nurse in a busy Lyon hospital who calms anxious parents during night shifts",
         "A retired fisherman in Izmir who mends nets for the harbour cooperative every morning",
         "A primary school teacher in Pune who runs a weekend chess club for her pupils",
         "A small bakery owner in Leeds who buys flour from a family mill and opens at five"]


def test_expand_survives_kills_of_the_server(folders: Folders, llm: ExpandFakeLLM) -> None:
    def seeds(store: FalkorStore) -> None:
        store.upsert_personas([Persona(description=d) for d in SEEDS])

    # A chunk's personas, edges and the mark on its seeds land in one query.
    run_stage_under_kills(folders, llm, Stage(
        "expand", ["expand", "--hops", "2", "--fanout", "2"], "MATCH (p:Persona) WHERE p.expanded = true RETURN count(p)",
        shown=rows("MATCH (s:Persona)-[e]-(p:Persona) WHERE s.expanded = true RETURN s.id, type(e), startNode(e) = s, p.id"),
        prepare=seeds))


DEDUP_FAMILIES = 800


def dedup_graph(store: GraphStore, families: int = DEDUP_FAMILIES) -> None:
    """Families of near-duplicates (a text and its punctuation variants) and random typed edges among all;
    the same graph, `created_at` included (the survivor rule's tie-break), whenever it is written."""
    rng = random.Random(7)
    words = [f"{a}{b}" for a in ("ka", "lo", "mi", "su", "te", "ra", "no", "vi") for b in ("b", "d", "g", "l", "m", "n", "r", "t", "z")]
    people = []
    for f in range(families):
        base = f"A person {f} who " + " ".join(rng.choice(words) for _ in range(12))
        people.append(base + ".")
        people += [base + v for v in rng.sample(["!", "", " ..", "?"], rng.randint(0, 3))]
    personas = [Persona(description=d) for d in people]
    store.upsert_personas(personas)
    store.set_properties([{"id": p.id, "props": {"created_at": float(i)}} for i, p in enumerate(personas)])
    ids = [p.id for p in personas]
    store.add_edges([Edge(source=rng.choice(ids), target=rng.choice(ids), type=rng.choice(["KNOWS", "PATIENT_OF"]))
                     for _ in range(3 * len(ids))])


def test_dedup_survives_kills_of_the_server(folders: Folders, llm: ExpandFakeLLM) -> None:
    # Merges never undo: a tombstone keeps its survivor, a survivor the ids merged into it.
    run_stage_under_kills(folders, llm, Stage(
        "dedup", ["dedup"], "MATCH (p:Persona) WHERE p.status = 'merged' RETURN count(p)",
        shown=rows("MATCH (d:Persona) WHERE d.status = 'merged' RETURN 'tombstone' AS kind, d.id AS a, d.merged_into AS b UNION MATCH (s:Persona) "
                   "WHERE s.merged_ids IS NOT NULL UNWIND s.merged_ids AS m RETURN 'survivor' AS kind, s.id AS a, m AS b"),
        prepare=dedup_graph))


# -- a kill between two steps, deterministically --------------------------------------------------------

@pytest.fixture
def own_folder() -> Iterator[Path]:
    """A data folder of this test's own: its server may be killed."""
    folder = Path(tempfile.mkdtemp(prefix="pgf-", dir="/tmp"))
    yield folder
    server.stop(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_a_server_gone_before_the_client_first_asks_is_a_clear_error(own_folder: Path) -> None:
    # What a kill right after the start check (the ping) leaves: a socket nobody answers on.
    with pytest.raises(StoreUnavailable, match="cannot reach the embedded FalkorDB"):
        FalkorStore(StoreConfig(data_dir=own_folder), socket_path=own_folder / server.SOCKET_NAME)


def test_a_server_gone_before_the_first_async_query_is_a_clear_error(own_folder: Path) -> None:
    # expand's first query on the asyncio client comes after the sync ones: the server can die in between.
    store = open_store(own_folder)
    store.ensure_schema()
    kill_server_group(own_folder)
    with pytest.raises(StoreUnavailable, match="cannot reach the embedded FalkorDB"):
        asyncio.run(store.arun("MATCH (p:Persona) RETURN count(p)", write=False))


def test_a_kill_between_the_indexes_and_the_constraints_is_a_clear_error(own_folder: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Every command starts with ensure_schema: the indexes (through `run`), then the unique constraints.
    store = open_store(own_folder)
    statements, run, sent = len(cypher.statements(store.q("schema"))), store.run, []

    def run_then_kill(*args: Any, **kwargs: Any) -> QueryResult:
        result = run(*args, **kwargs)
        sent.append(args[0])
        if len(sent) == statements:
            kill_server_group(own_folder)
        return result

    monkeypatch.setattr(store, "run", run_then_kill)
    with pytest.raises(StoreUnavailable, match="cannot reach the embedded FalkorDB"):
        store.ensure_schema()
    assert len(sent) == statements


# -- a dedup pass stopped at each one of its writes ------------------------------------------------------

def two_families(store: GraphStore) -> None:
    """Two families of near-duplicates, a1-a3 and b1-b2, and three loners: a1 is A's survivor (most edges),
    b1 is B's (a tie with b2, broken by age). Merging A moves a2's edge to b2 onto a1; a pass stopped
    between that and a2's tombstone leaves b2 with one edge more than b1."""
    family_a = "A ferry mechanic in Bergen who restores old diesel engines and keeps bees on the roof"
    family_b = "A night-shift pharmacist in Lyon who plays the cello and collects tram tickets"
    people = [family_a + ".", family_a + "!", family_a, family_b + ".", family_b + "!",
              "A sheep farmer on Islay who breeds border collies", "A court interpreter in Quito who writes poems",
              "A bus driver in Accra who coaches a girls' football team"]
    personas = [Persona(description=d) for d in people]
    store.upsert_personas(personas)
    store.set_properties([{"id": p.id, "props": {"created_at": float(i)}} for i, p in enumerate(personas)])
    a1, a2, _, b1, b2, x, y, z = (p.id for p in personas)
    store.add_edges([Edge(source=a1, target=x, type="KNOWS"), Edge(source=a1, target=y, type="KNOWS"),
                     Edge(source=a2, target=b2, type="KNOWS"), Edge(source=b1, target=z, type="KNOWS")])


def test_a_dedup_pass_stopped_at_any_write_then_rerun_ends_as_one_uninterrupted_pass(
    store_options: StoreConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministically, every point a kill can leave a dedup pass at (between two of its writes): the
    rerun must end with the graph of one uninterrupted pass (the same survivors, aliases and edges)."""
    from personagraph.config import DedupConfig
    from personagraph.dedup import stage as dedup_stage

    monkeypatch.setattr(dedup_stage, "MERGE_CHUNK", 1)  # one group per merge call: A's, then B's
    config = DedupConfig(method="minhash")
    stores = {name: FalkorStore(store_options.model_copy(update={"graph": f"{store_options.graph}_{name}"}))
              for name in ("clean", "stopped")}
    writes: dict[str, int | None] = {"done": 0, "stop_at": None}

    def counted(store: FalkorStore) -> None:
        """Count the store's writes; fail the `stop_at`-th as a killed server does (the ones before it landed)."""
        send = store._graph.query

        def query(*args: Any, **kwargs: Any) -> Any:
            writes["done"] = int(writes["done"] or 0) + 1
            if writes["done"] == writes["stop_at"]:
                raise redis.ConnectionError("Connection refused (the server was killed)")
            return send(*args, **kwargs)

        monkeypatch.setattr(store._graph, "query", query)

    try:
        for store in stores.values():
            store.ensure_schema()
            counted(store)
        two_families(stores["clean"])
        writes["done"] = 0
        report = dedup_stage.merge_duplicates(stores["clean"], config, tmp_path / "clean")
        total, expected = int(writes["done"] or 0), read_state(stores["clean"]).comparable()
        assert [len(g.duplicates) for g in report.groups] == [2, 1] and total > 5
        for stop_at in range(1, total + 1):
            stopped = stores["stopped"]
            stopped.reset()
            two_families(stopped)
            writes.update(done=0, stop_at=stop_at)
            with pytest.raises(StoreUnavailable):
                dedup_stage.merge_duplicates(stopped, config, tmp_path / f"stopped-{stop_at}")
            writes["stop_at"] = None
            dedup_stage.merge_duplicates(stopped, config, tmp_path / f"stopped-{stop_at}")
            got = read_state(stopped).comparable()
            assert got == expected, (f"stopped at write {stop_at} of {total}, rerun: nodes {diff(got[0], expected[0])}, "
                                     f"edges {diff(got[1], expected[1])}")
    finally:
        for store in stores.values():
            store._graph.delete()
            store.close()
