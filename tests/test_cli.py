"""The `personagraph` command as a user runs it (a subprocess), against the real embedded FalkorDB."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from personagraph.graph import server
from personagraph.graph.model import Edge, Persona, PersonaStatus, persona_id
from personagraph.graph.store import GraphStore, StoreConfig
from tests.graphs import personas
from tests.test_importer import GOOD, write_bad_jsonl

PERSONAGRAPH = str(Path(sys.executable).with_name("personagraph"))


def run_cli(*args: str, cwd: Path, options: StoreConfig | None = None) -> subprocess.CompletedProcess[str]:
    """Run `personagraph [--data-dir D --graph G] ARGS` with a clean environment; wide lines, no wrapping."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONAGRAPH_", "NEO4J_", "OPENAI_"))}
    env["COLUMNS"] = "1000"
    prefix = ["--data-dir", str(options.data_dir), "--graph", options.graph] if options else []
    return subprocess.run([PERSONAGRAPH, *prefix, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def one_line(text: str) -> str:
    """Output without rich's table borders and with runs of whitespace collapsed."""
    return " ".join("".join(" " if "\u2500" <= ch <= "\u257f" else ch for ch in text).split())


def test_import_reports_each_bad_line_and_imports_the_rest(store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    path = tmp_path / "personas.jsonl"
    write_bad_jsonl(path)
    res = run_cli("import", str(path), cwd=tmp_path, options=store_options)
    assert res.returncode == 0, res.stderr
    err = res.stderr
    assert f"{path}:2: malformed JSON" in err
    assert f"{path}:3: no 'persona' field" in err
    assert f"{path}:4: description has 0 characters" in err
    assert f"{path}:5: description has 100,000 characters" in err
    assert f"{path}:6: not valid UTF-8" in err
    out = one_line(res.stdout)
    assert "personas created 6" in out
    assert "skipped 5 (unreadable: 2, missing field: 1, too short: 1, too long: 1)" in out
    assert len(store.get_personas([persona_id(t) for t in GOOD])) == 6
    again = run_cli("import", str(path), cwd=tmp_path, options=store_options)
    assert "personas created 0" in one_line(again.stdout) and "already in the graph 6" in one_line(again.stdout)


def test_a_syntax_error_shows_the_databases_message_and_exits_2(store_options: StoreConfig, tmp_path: Path) -> None:
    res = run_cli("query", "MATCH (p:Persona RETURN p", cwd=tmp_path, options=store_options)
    assert res.returncode == 2
    assert "the database rejected the query:" in res.stderr and "Invalid input" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_a_write_without_write_is_refused_and_changes_nothing(store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    store.upsert_personas(personas(3, prefix="cli ro"))
    res = run_cli("query", "MATCH (p:Persona) DETACH DELETE p", cwd=tmp_path, options=store_options)
    assert res.returncode == 2 and "rerun with --write" in res.stderr
    assert store.run("MATCH (p:Persona) RETURN count(p)").value() == 3
    ok = run_cli("query", "--write", "CREATE (:Persona {id: 'p_cli', status: 'accepted'})", cwd=tmp_path, options=store_options)
    assert ok.returncode == 0 and "nodes +1 -0" in ok.stdout
    assert store.run("MATCH (p:Persona) RETURN count(p)").value() == 4


def test_an_unreachable_store_is_one_line_naming_the_address(tmp_path: Path) -> None:
    res = run_cli("--store", "bolt://127.0.0.1:9", "stats", cwd=tmp_path)
    assert res.returncode == 3
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: cannot reach Neo4j at bolt://127.0.0.1:9")
    assert "Traceback" not in res.stderr


def test_query_json_params_csv_and_ready_made(store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    a, b = personas(2, prefix="cli query")
    store.upsert_personas([a, b])
    store.add_edges([Edge(source=a.id, target=b.id, type="COLLEAGUE_OF")])
    res = run_cli("query", "--format", "json", "--param", f"id={a.id}", "--param", "n=5",
                  "MATCH (p:Persona {id: $id}) RETURN p, p.hop AS hop LIMIT $n", cwd=tmp_path, options=store_options)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows == [{"p": store.get_personas([a.id])[a.id], "hop": 0}]
    csv_out = run_cli("query", "-f", "csv", "MATCH (p:Persona) RETURN p.id AS id ORDER BY id", cwd=tmp_path, options=store_options)
    assert csv_out.stdout.splitlines() == ["id", *sorted([a.id, b.id])]
    made = run_cli("query", "-f", "json", "most_connected", cwd=tmp_path, options=store_options)
    assert {r["id"]: r["degree"] for r in json.loads(made.stdout)} == {a.id: 1, b.id: 1}
    bad = run_cli("query", "--param", "novalue", "RETURN 1", cwd=tmp_path, options=store_options)
    assert bad.returncode == 2 and "expected NAME=VALUE" in bad.stderr


def test_stats_json_counts_what_was_imported(store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    store.upsert_personas(personas(4, prefix="cli stats"))
    res = run_cli("stats", "--json", cwd=tmp_path, options=store_options)
    data = json.loads(res.stdout)
    assert data["nodes"] == [{"label": "Persona", "status": "accepted", "nodes": 4}]
    assert data["hops"] == [{"hop": 0, "personas": 4}]


def test_db_start_status_stop(tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pgc-", dir="/tmp"))
    options = StoreConfig(data_dir=folder, graph="personas")
    try:
        assert run_cli("db", "status", cwd=tmp_path, options=options).returncode == 1
        started = run_cli("db", "start", cwd=tmp_path, options=options)
        assert started.returncode == 0 and "running: pid" in started.stdout
        status = run_cli("db", "status", cwd=tmp_path, options=options)
        assert status.returncode == 0 and f"pid {server.status(folder).pid}" in status.stdout and "MiB resident" in status.stdout
        stopped = run_cli("db", "stop", cwd=tmp_path, options=options)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert not server.status(folder).running
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_missing_input_file_is_a_clear_error(store_options: StoreConfig, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    res = run_cli("import", str(missing), cwd=tmp_path, options=store_options)
    assert res.returncode == 2 and f"{missing}: no such file" in res.stderr and "Traceback" not in res.stderr


def test_expand_dry_run_says_why_there_is_nothing_to_expand(store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    store.upsert_personas([Persona(description="An extracted ferry mechanic not yet filtered", status=PersonaStatus.candidate)])
    res = run_cli("expand", "--dry-run", "--hops", "3", cwd=tmp_path, options=store_options)
    assert res.returncode == 0, res.stderr
    out = one_line(res.stdout)
    assert "no accepted, unexpanded persona below hop 3" in out and "hop 3 -> 4" not in out


def test_import_exits_non_zero_with_one_line_when_nothing_usable_is_read(store_options: StoreConfig, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"persona": GOOD[0]}) + "\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"persona": w}) + "\n" for w in ("hi", "no", "ok")))
    binary = tmp_path / "personas.csv"
    binary.write_bytes(bytes(range(256)) * 20)
    cases = [
        (("import", str(good), "--field", "nope"), 2, f"error: {good}: no field 'nope' in its first 1 records; fields found: 'persona'"),
        (("import", str(empty)), 2, f"error: {empty}: the file is empty"),
        (("import", str(short)), 1, f"error: nothing imported from {short}: none of its 3 records has a usable 'persona' field"),
        (("import", str(binary)), 2, f"error: {binary}: not a text file: binary data"),
    ]
    for args, code, message in cases:
        res = run_cli(*args, cwd=tmp_path, options=store_options)
        assert res.returncode == code, (args, res.stdout, res.stderr)
        error_lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and one_line(error_lines[0]).startswith(message), res.stderr
        assert "Traceback" not in res.stderr


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("I am a file")
    res = run_cli("--data-dir", str(not_a_folder), "stats", cwd=tmp_path)
    assert res.returncode == 3 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"error: the data folder {not_a_folder} is a file")
