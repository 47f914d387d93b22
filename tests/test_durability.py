"""The store can be trusted: right answers after a restart, no acknowledged write lost, a full disk
said as such, only our own server ever signalled, private files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from personagraph.graph import server
from personagraph.graph.indexes import guard_graph
from personagraph.graph.store import FalkorStore, StoreConfig
from tests.graphs import personas

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("personagraph"))


def cli(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONAGRAPH_", "NEO4J_", "OPENAI_"))}
    return subprocess.run([CLI, "--data-dir", str(data_dir), *args], cwd=data_dir.parent, env=env,
                          capture_output=True, text=True, timeout=timeout)


def kill_server_group(data_dir: Path) -> None:
    """kill -9 of the server's whole process group (the server and any child it forked)."""
    pid = server.status(data_dir).pid
    assert pid is not None
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.pid_alive(pid)


def open_store(data_dir: Path, graph: str = "personas") -> FalkorStore:
    return FalkorStore(StoreConfig(data_dir=data_dir, graph=graph))


def count(data_dir: Path, query: str) -> int:
    """One count query on the folder's graph (starting its server if needed)."""
    st = open_store(data_dir)
    try:
        return int(st.run(query).value())
    finally:
        st.close()


@contextlib.contextmanager
def raw_server(data_dir: Path, *args: str) -> Iterator[redis.Redis]:
    """The bundled redis-server + FalkorDB on the folder's socket, started by hand with `args` and none
    of personagraph's start-up (no conversion, no index guard), as a user's own server would run."""
    redis_server, module = server._binaries()
    sock = data_dir / server.SOCKET_NAME
    proc = subprocess.Popen([redis_server, "--port", "0", "--unixsocket", str(sock), "--dir", str(data_dir), *args,
                             "--loadmodule", module], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=60)
    try:
        deadline = time.monotonic() + 60  # a loaded machine takes its time to load the files
        while time.monotonic() < deadline:
            if server._ping(sock) and not client.info("persistence").get("loading"):
                break
            time.sleep(0.05)
        yield client
    finally:
        client.close()
        proc.kill()
        proc.wait()


def rewrite_aof(data_dir: Path) -> None:
    """Compact the AOF into its RDB base now, as the server does by itself as the file grows: a
    restart then loads the graph from RDB, where the engine drops index entries."""
    client = redis.Redis(unix_socket_path=str(data_dir / server.SOCKET_NAME))
    client.bgrewriteaof()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            break
        time.sleep(0.05)
    assert info["aof_last_bgrewrite_status"] == "ok"
    client.close()


# -- no acknowledged write lost ------------------------------------------------------------------

def test_a_write_the_cli_reported_survives_kill_9_of_the_server_group(data_dir: Path) -> None:
    done = cli(data_dir, "query", "--write", "CREATE (:Persona {id: 'p_kill9', description: 'a ferry mechanic'})")
    assert done.returncode == 0, done.stderr
    kill_server_group(data_dir)  # at once: no snapshot, no grace period
    assert count(data_dir, "MATCH (p:Persona {id: 'p_kill9'}) RETURN count(p)") == 1


def test_an_import_the_cli_reported_survives_kill_9_right_after(data_dir: Path) -> None:
    src = data_dir.parent / f"{data_dir.name}-in.jsonl"
    src.write_text("".join(json.dumps({"persona": f"persona {i}, a night-shift baker in Porto"}) + "\n" for i in range(20_000)))
    try:
        done = cli(data_dir, "import", str(src))
        assert done.returncode == 0, done.stderr
        kill_server_group(data_dir)
        assert count(data_dir, "MATCH (p:Persona) RETURN count(p)") == 20_000
    finally:
        src.unlink()


def test_api_writes_survive_kill_9_without_any_closing_step(data_dir: Path) -> None:
    st = open_store(data_dir)
    st.ensure_schema()
    st.upsert_personas(personas(500, prefix="api-durable"))
    kill_server_group(data_dir)  # the client never closed, persisted or stopped anything
    assert count(data_dir, "MATCH (p:Persona) RETURN count(p)") == 500


def test_a_folder_with_a_snapshot_from_before_the_aof_is_converted_and_kept(data_dir: Path) -> None:
    # A folder written by an earlier personagraph: RDB snapshots only.
    with raw_server(data_dir, "--dbfilename", server.LEGACY_RDB, "--appendonly", "no") as client:
        client.execute_command("GRAPH.QUERY", "personas", "UNWIND range(1, 300) AS i CREATE (:Persona {id: 'p_' + toString(i), hop: 0})")
        client.save()
    (data_dir / server.SOCKET_NAME).unlink(missing_ok=True)
    st = open_store(data_dir)
    try:
        assert st.run("MATCH (p:Persona) WHERE p.hop = 0 RETURN count(p)").value() == 300
        st.upsert_personas(personas(5, prefix="after-conversion"))
    finally:
        st.close()
    assert not (data_dir / server.LEGACY_RDB).exists() and (data_dir / server.AOF_DIR).is_dir()
    kill_server_group(data_dir)
    assert count(data_dir, "MATCH (p:Persona) RETURN count(p)") == 305


# -- right answers after a restart ---------------------------------------------------------------

# Values the engine is known to mishandle in a range index (0, 0.0, false lost on load; '' never
# found), and ordinary ones beside them.
PROBES: list[Any] = [0, 0.0, False, "", -1, -2.5, True, 1, "x"]


def by_index(st: FalkorStore, label: str, prop: str, value: Any) -> int:
    return int(st.run(f"MATCH (n:{label}) WHERE n.{prop} = $v RETURN count(n)", {"v": value}, write=False).value())


def cypher_equal(a: Any, b: Any) -> bool:
    """Cypher's `=` on scalars: 0 = 0.0, but false <> 0 and '' <> 0 (Python says False == 0)."""
    return isinstance(a, bool) == isinstance(b, bool) and isinstance(a, str) == isinstance(b, str) and a == b


def by_scan(st: FalkorStore, label: str, prop: str, value: Any) -> int:
    # Every node's properties read in Python: no index involved.
    rows = st.run(f"MATCH (n:{label}) RETURN properties(n)", write=False).rows
    return sum(1 for (props,) in rows if prop in props and cypher_equal(props[prop], value))


def indexed_properties(st: FalkorStore) -> list[tuple[str, str]]:
    rows = st.run("CALL db.indexes() YIELD label, properties, entitytype WHERE entitytype = 'NODE' "
                  "RETURN label, properties", write=False).rows
    return [(label, prop) for label, props in rows for prop in props]


@pytest.mark.parametrize("restart", ["db stop", "kill -9"])
def test_every_indexed_property_answers_right_after_a_restart(data_dir: Path, restart: str) -> None:
    st = open_store(data_dir)
    st.ensure_schema()
    st.upsert_personas(personas(50, prefix="hop0"))  # the store's own hop-0, unexpanded personas
    st.query("CREATE INDEX FOR (s:Score) ON (s.value)", write=True)  # a user's own index
    schema = indexed_properties(st)
    assert ("Persona", "status") in schema and ("Score", "value") in schema
    # Unique keys (ids) are written by the store as non-empty strings and stay indexed for MERGE.
    props = sorted({(label, prop) for label, prop in schema + [("Persona", "hop"), ("Persona", "expanded")] if prop != "id"})
    # Whatever a user writes: every probe value into every indexed (and formerly indexed) property.
    for i, value in enumerate(PROBES):
        for label, prop in props:
            st.query(f"CREATE (:{label} {{id: $id, {prop}: $v}})", {"id": f"probe_{label}_{prop}_{i}", "v": value}, write=True)
    st.close()
    rewrite_aof(data_dir)
    if restart == "db stop":
        assert server.stop(data_dir)
    else:
        kill_server_group(data_dir)
    st = open_store(data_dir)
    try:
        wrong = [(label, prop, value, by_index(st, label, prop, value), by_scan(st, label, prop, value))
                 for label, prop in props for value in PROBES
                 if by_index(st, label, prop, value) != by_scan(st, label, prop, value)]
        assert wrong == []
        assert st.run("MATCH (p:Persona) WHERE p.hop = 0 AND p.id STARTS WITH 'p_' RETURN count(p)", write=False).value() == 50
    finally:
        st.close()


def test_the_engine_still_drops_what_the_guard_guards_against(data_dir: Path) -> None:
    """The reason for graph/indexes.py, kept honest: if a new engine stops dropping these values,
    this fails and the guard can be relaxed."""
    sock = server.ensure_running(data_dir)
    client = redis.Redis(unix_socket_path=str(sock))
    client.execute_command("GRAPH.QUERY", "raw", "CREATE INDEX FOR (n:N) ON (n.v)")
    client.execute_command("GRAPH.QUERY", "raw", "UNWIND [0, 0, false, '', 1] AS v CREATE (:N {v: v})")
    count = "MATCH (n:N) WHERE n.v = {} RETURN count(n)"
    assert client.execute_command("GRAPH.QUERY", "raw", count.format("''"))[1] == [[0]]  # '' never found
    client.close()
    rewrite_aof(data_dir)
    # Restart without the guard: exactly what a user's own redis-server would do.
    pid = server.status(data_dir).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    with raw_server(data_dir, "--appendonly", "yes", "--appenddirname", server.AOF_DIR, "--save", "") as client:
        assert client.execute_command("GRAPH.QUERY", "raw", count.format("0"))[1] == [[0]]  # lost on load
        assert client.execute_command("GRAPH.QUERY", "raw", count.format("1"))[1] == [[1]]


def test_a_users_write_of_an_empty_string_into_an_indexed_property_drops_that_index(store: FalkorStore) -> None:
    store.upsert_personas(personas(5, prefix="empty-domain"))
    store.query("MATCH (p:Persona) WITH p LIMIT 2 SET p.domain = ''", write=True)
    assert ("Persona", "domain") not in indexed_properties(store)
    assert ("Persona", "status") in indexed_properties(store)
    assert store.query("MATCH (p:Persona) WHERE p.domain = '' RETURN count(p)").rows == [[2]]
    assert guard_graph(store._graph) == []  # nothing left to drop


def test_the_store_never_writes_an_empty_attribute(store: FalkorStore) -> None:
    from personagraph.graph.model import Persona

    store.upsert_personas([Persona(description="a ferry mechanic in Bergen", attributes={"domain": "", "occupation": "  ", "language": "no"})])
    props = store.query("MATCH (p:Persona) RETURN properties(p)").rows[0][0]
    assert "domain" not in props and "occupation" not in props and props["language"] == "no"


# -- only our own server is signalled; status tells the truth --------------------------------------

def test_stop_never_signals_a_process_named_by_a_stale_pid_file(data_dir: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (data_dir / server.PID_NAME).write_text(str(bystander.pid))
        assert server.stop(data_dir) is False
        done = cli(data_dir, "db", "stop")
        assert done.returncode == 0 and "no server was running" in done.stdout
        assert not server.status(data_dir).running
        server.ensure_running(data_dir)  # and a start replaces the stale file
        assert server.status(data_dir).pid not in (None, bystander.pid)
        assert bystander.poll() is None  # never signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_status_says_running_but_not_answering_and_stop_still_stops_it(data_dir: Path) -> None:
    server.ensure_running(data_dir)
    pid = server.status(data_dir).pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing (and cannot act on SIGTERM)
    try:
        st = server.status(data_dir)
        assert st.running and not st.answering and st.pid == pid
        shown = cli(data_dir, "db", "status")
        assert shown.returncode == 1 and "running but not answering" in shown.stdout
        started = time.monotonic()
        assert server.stop(data_dir, timeout=1.0) is True  # SIGTERM unanswered, then SIGKILL
        assert time.monotonic() - started < 10 and not server.pid_alive(pid)
    finally:
        if server.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_server_whose_folder_was_deleted_stops_on_sigterm(data_dir: Path) -> None:
    sock = server.ensure_running(data_dir)
    pid = server.status(data_dir).pid
    assert pid is not None
    FalkorStore(StoreConfig(data_dir=data_dir), socket_path=sock).upsert_personas(personas(3, prefix="gone"))
    shutil.rmtree(data_dir)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while server.pid_alive(pid) and time.monotonic() < deadline:
        with __import__("contextlib").suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    assert not server.pid_alive(pid)


# -- private files ---------------------------------------------------------------------------------

def test_the_data_folder_and_its_files_are_private(data_dir: Path) -> None:
    data_dir.chmod(0o755)
    st = open_store(data_dir)
    st.ensure_schema()
    st.upsert_personas(personas(10, prefix="private"))
    st.close()
    assert data_dir.stat().st_mode & 0o777 == 0o700
    files = [f for f in data_dir.rglob("*") if f.is_file()]
    assert any(f.parent.name == server.AOF_DIR for f in files)
    assert {str(f.relative_to(data_dir)): oct(f.stat().st_mode & 0o777) for f in files if f.stat().st_mode & 0o077} == {}


# -- a full disk -------------------------------------------------------------------------------------

@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 20 MB tmpfs; skipped (never passed) where this machine cannot mount one."""
    mount = Path(tempfile.mkdtemp(prefix="pgfull-", dir="/tmp"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): disk-full test not run")
    try:
        yield mount
    finally:
        server.stop(mount / "store")
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        mount.rmdir()


def test_a_full_disk_fails_the_write_keeps_what_was_there_and_leaves_the_server_manageable(small_disk: Path) -> None:
    data_dir = small_disk / "store"
    data_dir.mkdir()
    before = small_disk / "before.jsonl"
    before.write_text("".join(json.dumps({"persona": f"early persona {i}, a harbour pilot"}) + "\n" for i in range(2_000)))
    assert cli(data_dir, "import", str(before)).returncode == 0
    big = Path(tempfile.mkdtemp(prefix="pgbig-", dir="/tmp")) / "big.jsonl"
    try:
        big.write_text("".join(json.dumps({"persona": f"late persona {i}, a lighthouse keeper who " + "writes long logs " * 20})
                               + "\n" for i in range(60_000)))
        started = time.monotonic()
        done = cli(data_dir, "import", str(big))
        assert done.returncode != 0
        assert f"disk full at {data_dir.resolve()}" in done.stderr and "Traceback" not in done.stderr
        assert time.monotonic() - started < 60
        status = cli(data_dir, "db", "status", timeout=20)  # the truth, at once
        assert status.returncode == 1 and "not running" in status.stdout
        stop = cli(data_dir, "db", "stop", timeout=20)
        assert stop.returncode == 0
        for f in small_disk.glob("*.jsonl"):
            f.unlink()  # free some space: what was there before is all there
        assert count(data_dir, "MATCH (p:Persona) WHERE p.description STARTS WITH 'early' RETURN count(p)") == 2_000
    finally:
        shutil.rmtree(big.parent, ignore_errors=True)
