"""The embedded FalkorDB server: one per data folder, reused, stopped cleanly, durable, self-healing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis

from personagraph.graph import server
from personagraph.graph.store import FalkorStore, StoreConfig
from tests.graphs import personas

REPO = Path(__file__).resolve().parents[1]


def count_personas(data_dir: Path) -> int:
    """Personas in the folder's default graph (starts the server if needed)."""
    st = FalkorStore(StoreConfig(data_dir=data_dir))
    try:
        return int(st.run("MATCH (p:Persona) RETURN count(p)").value())
    finally:
        st.close()


def servers_for(data_dir: Path) -> list[int]:
    """Pids of redis-server processes whose command line names this folder's socket."""
    sock = str((data_dir / server.SOCKET_NAME).resolve())
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "redis-server" in cmd and sock in cmd and server.pid_alive(int(proc.name)):
                pids.append(int(proc.name))
    return pids


def test_server_listens_on_a_private_unix_socket_only(data_dir: Path) -> None:
    sock = server.ensure_running(data_dir)
    assert sock == (data_dir / server.SOCKET_NAME).resolve()
    assert oct(sock.stat().st_mode & 0o777) == "0o700"
    client = redis.Redis(unix_socket_path=str(sock))
    assert client.config_get("port") == {"port": "0"}
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "always"}  # fsynced before it is acknowledged
    assert client.config_get("save") == {"save": ""}
    client.close()
    st = server.status(data_dir)
    assert st.running and st.pid == servers_for(data_dir)[0] and st.memory_bytes
    assert server.ensure_running(data_dir) == sock and servers_for(data_dir) == [st.pid]  # reused


def test_data_survives_stop_and_restart(data_dir: Path) -> None:
    st = FalkorStore(StoreConfig(data_dir=data_dir))
    st.ensure_schema()
    st.upsert_personas(personas(300, prefix="durable"))
    st.close()
    first_pid = server.status(data_dir).pid
    assert server.stop(data_dir) is True
    assert not server.status(data_dir).running and servers_for(data_dir) == []
    assert server.status(data_dir).disk_bytes > 0
    assert not (data_dir / server.SOCKET_NAME).exists() and not (data_dir / server.PID_NAME).exists()
    assert server.stop(data_dir) is False
    assert count_personas(data_dir) == 300  # restarted on first use, loaded from the snapshot
    assert server.status(data_dir).pid != first_pid


WRITER = """
import sys
from pathlib import Path
from personagraph.graph.model import Persona
from personagraph.graph.store import FalkorStore, StoreConfig
st = FalkorStore(StoreConfig(data_dir=Path(sys.argv[1]), batch_size=100))
st.upsert_personas([Persona(description=f"client-kill persona {i}, a ferry mechanic") for i in range(500)])
print("written", flush=True)
i = 0
while True:  # keep writing until killed
    st.upsert_personas([Persona(description=f"late persona {i}, a ferry mechanic")])
    i += 1
"""


def test_data_survives_kill_9_of_a_writing_client(data_dir: Path) -> None:
    server.ensure_running(data_dir)
    pid_before = server.status(data_dir).pid
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
    time.sleep(0.3)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert server.status(data_dir).pid == pid_before  # the server outlives its client
    n = count_personas(data_dir)
    assert n >= 500
    server.stop(data_dir)
    assert count_personas(data_dir) == n  # and what it had is on disk


def test_stale_pid_and_socket_of_a_killed_server_are_cleaned(data_dir: Path) -> None:
    server.ensure_running(data_dir)
    old = server.status(data_dir).pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.pid_alive(old) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (data_dir / server.SOCKET_NAME).exists() and (data_dir / server.PID_NAME).exists()  # left behind
    assert not server.status(data_dir).running
    started = time.monotonic()
    server.ensure_running(data_dir)
    assert time.monotonic() - started < 3  # a dead socket is noticed at once, not after retries
    new = server.status(data_dir)
    assert new.running and new.pid != old and servers_for(data_dir) == [new.pid]


def test_a_pid_file_naming_a_dead_process_is_replaced(data_dir: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (data_dir / server.PID_NAME).write_text(str(dead.pid))
    (data_dir / server.SOCKET_NAME).write_text("not a socket")
    server.ensure_running(data_dir)
    st = server.status(data_dir)
    assert st.running and st.pid != dead.pid


def test_a_data_folder_too_long_for_a_socket_is_a_clear_error() -> None:
    folder = Path(tempfile.mkdtemp(prefix="pgs-", dir="/tmp")) / ("x" * 120)
    try:
        with pytest.raises(server.StoreUnavailable, match="too long for a unix socket"):
            server.ensure_running(folder)
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


def test_two_concurrent_cli_imports_share_one_server(data_dir: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.jsonl"
    second = tmp_path / "second.jsonl"
    shared = [f"shared persona {i}, a volunteer firefighter" for i in range(200)]
    first.write_text("".join(json.dumps({"persona": t}) + "\n" for t in shared + [f"first-only persona {i}, a welder" for i in range(300)]))
    second.write_text("".join(json.dumps({"persona": t}) + "\n" for t in [f"second-only persona {i}, a poet" for i in range(300)] + shared))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONAGRAPH_", "NEO4J_"))}
    cli = [str(Path(sys.executable).with_name("personagraph")), "--data-dir", str(data_dir), "import"]
    procs = [subprocess.Popen(cli + [str(f)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in (first, second)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(servers_for(data_dir)) == 1
    st = FalkorStore(StoreConfig(data_dir=data_dir))
    try:
        assert st.run("MATCH (p:Persona) RETURN count(p), count(DISTINCT p.id)").rows == [[800, 800]]
        assert st.run("MATCH (r:Run) RETURN count(r)").value() == 2
    finally:
        st.close()


def test_a_database_that_went_away_is_a_clear_error_on_the_async_path_too(data_dir: Path) -> None:
    st = FalkorStore(StoreConfig(data_dir=data_dir))
    st.ensure_schema()

    async def write_then_lose_the_server() -> None:
        await st.awrite_together(personas(3, prefix="async-gone"), redirect_merged=False)
        assert (await st.arun("MATCH (p:Persona) RETURN count(p)", write=False)).value() == 3
        server.stop(data_dir)
        with pytest.raises(server.StoreUnavailable, match="cannot reach the embedded FalkorDB"):
            await st.arun("MATCH (p:Persona) RETURN count(p)", write=False)
        await st.aclose()

    asyncio.run(write_then_lose_the_server())
    assert count_personas(data_dir) == 3  # restarted on first use: the write was kept
