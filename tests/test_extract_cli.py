"""`personagraph extract` and `personagraph doctor` as a user runs them, against the fake LLM endpoint."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from personagraph.graph import server
from personagraph.graph.store import GraphStore, StoreConfig
from tests.fake_llm_server import FakeLLM

PERSONAGRAPH = str(Path(sys.executable).with_name("personagraph"))


def run(*args: str, cwd: Path, options: StoreConfig, base_url: str) -> subprocess.CompletedProcess[str]:
    """`personagraph --data-dir D --graph G ARGS` with the endpoint in OPENAI_BASE_URL; wide, unwrapped output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONAGRAPH_", "NEO4J_", "OPENAI_"))}
    env |= {"COLUMNS": "1000", "OPENAI_BASE_URL": base_url, "OPENAI_MODEL": "fake-model"}
    return subprocess.run([PERSONAGRAPH, "--data-dir", str(options.data_dir), "--graph", options.graph, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def flat(text: str) -> str:
    """Output without table borders, whitespace collapsed."""
    return " ".join("".join(" " if "\u2500" <= ch <= "\u257f" else ch for ch in text).split())


def test_extract_command_dry_run_then_run_then_rerun(fake_llm: FakeLLM, store: GraphStore, store_options: StoreConfig,
                                                     tmp_path: Path) -> None:
    tag = uuid.uuid4().hex  # the session's data folder (and so its LLM cache) is shared: keep prompts unique
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": f"{tag} post {i}: a long enough note about beekeeping in winter."}) + "\n"
                            for i in range(3)) + "{broken\n", encoding="utf-8")
    dry = run("extract", str(path), "--stance", "read", "--stance", "like", "--dry-run",
              cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    assert dry.returncode == 0, dry.stderr
    assert "LLM calls 6" in flat(dry.stdout) and fake_llm.stats.requests == 0
    first = run("extract", str(path), "--limit", "1", cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    assert "texts read 1" in flat(first.stdout) and fake_llm.stats.requests == 1
    done = run("extract", str(path), "--stance", "read", "--stance", "like",
               cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    assert done.returncode == 0, done.stderr
    out = flat(done.stdout)
    # the first text was asked `read` by the --limit run: now it is asked `like` only
    assert "texts read 4" in out and "texts extracted 3" in out and "personas created 5" in out
    assert "unreadable: 1" in out and f"{path}:4" in flat(done.stderr)
    assert len(list(store.iter_personas(statuses=None))) == 6 and fake_llm.stats.requests == 6
    again = run("extract", str(path), "--stance", "read", "--stance", "like",
                cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    assert "already extracted: 3" in flat(again.stdout) and fake_llm.stats.requests == 6


def test_doctor_command(fake_llm: FakeLLM, store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    ok = run("doctor", cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    assert ok.returncode == 0, ok.stderr
    assert "ok store" in flat(ok.stdout) and "ok LLM" in flat(ok.stdout)
    bad = run("doctor", cwd=tmp_path, options=store_options, base_url="http://127.0.0.1:9/v1")
    assert bad.returncode == 1 and "cannot list models" in flat(bad.stderr)


def test_extract_command_names_a_bad_option(fake_llm: FakeLLM, store_options: StoreConfig, tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "anything at all, long enough to be read as a text"}\n', encoding="utf-8")
    res = run("extract", str(path), "--stance", "reed", cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    said = flat(res.stderr)
    assert res.returncode == 2 and "Invalid value for '--stance'" in said and "'reed' is not one of 'read', 'write', 'like'" in said
    assert fake_llm.stats.requests == 0


def test_extract_that_cannot_write_its_cache_stops_with_one_line_naming_the_file(fake_llm: FakeLLM, tmp_path: Path) -> None:
    # The command's own file writes are capped (RLIMIT_FSIZE, with SIGXFSZ ignored a write past the cap
    # fails; SQLite calls that an I/O error, a full disk "database or disk is full": see
    # tests/test_llm.py for that one); its FalkorDB server, started here, is not.
    folder = Path(tempfile.mkdtemp(prefix="pgf-", dir="/tmp"))
    options = StoreConfig(data_dir=folder, graph="full")
    server.ensure_running(folder)
    cap = 50_000

    def capped() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))

    try:
        path = tmp_path / "texts.jsonl"
        path.write_text("".join(json.dumps({"text": f"Note {i}: the allotment's compost heap, week by week, in detail."}) + "\n"
                                for i in range(200)), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONAGRAPH_", "NEO4J_", "OPENAI_"))}
        env |= {"COLUMNS": "1000", "OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_MODEL": "fake-model",
                "PYTHONDONTWRITEBYTECODE": "1", "PERSONAGRAPH_LLM__CONCURRENCY": "2"}
        res = subprocess.run([PERSONAGRAPH, "--data-dir", str(folder), "--graph", options.graph, "extract", str(path)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, preexec_fn=capped)
        cache = folder / "llm_cache" / "responses.sqlite"
        assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: cannot write the LLM response cache {cache}: disk I/O error"), res.stderr
        assert fake_llm.stats.requests < 100  # it stopped instead of paying for answers it cannot keep
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_extract_reads_compressed_texts_and_exits_non_zero_when_nothing_is_usable(
    fake_llm: FakeLLM, store: GraphStore, store_options: StoreConfig, tmp_path: Path
) -> None:
    import zstandard

    tag = uuid.uuid4().hex  # the session's LLM cache is shared: keep prompts unique
    packed = tmp_path / "texts.jsonl.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress("".join(
        json.dumps({"text": f"{tag} entry {i}: the village choir rehearses a new madrigal every Thursday."}) + "\n"
        for i in range(3)).encode()))
    ok = run("extract", str(packed), cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    assert ok.returncode == 0, ok.stderr
    assert "texts read 3" in flat(ok.stdout) and "texts extracted 3" in flat(ok.stdout)
    nope = run("extract", str(packed), "--field", "nope", cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    assert nope.returncode == 2 and f"error: {packed}: no field 'nope' in its first 3 records; fields found: 'text'" in flat(nope.stderr)
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"text": w}) + "\n" for w in ("hi", "ok")), encoding="utf-8")
    empty = run("extract", str(short), cwd=tmp_path, options=store_options, base_url=fake_llm.base_url)
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    assert f"error: nothing to extract from {short}: none of its 2 records has usable text in 'text'" in flat(empty.stderr)
    assert fake_llm.stats.requests == 3
