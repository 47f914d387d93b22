"""Importing ready-made personas (pipeline/importer.py) into the real store: bad lines cost only themselves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graph.model import persona_id
from graph.store import GraphStore
from pipeline.importer import MAX_REPORTED, import_personas
from pipeline.readers import InputError

GOOD = [f"a retired lighthouse keeper number {i} who writes letters" for i in range(6)]


def write_bad_jsonl(path: Path) -> None:
    """Good lines with one of each kind of bad line between them (lines 2-6 bad)."""
    lines = [
        json.dumps({"persona": GOOD[0], "age_group": "elderly"}).encode(),
        b'{"persona": "a truncated line',
        json.dumps({"name": "no persona field here"}).encode(),
        json.dumps({"persona": ""}).encode(),
        json.dumps({"persona": "x" * 100_000}).encode(),
        b'{"persona": "caf\xe9 owner who bakes bread at dawn"}',
        *[json.dumps({"persona": t}).encode() for t in GOOD[1:]],
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_bad_lines_are_skipped_with_file_line_and_reason(store: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "personas.jsonl"
    write_bad_jsonl(path)
    summary = import_personas(store, path)
    assert summary.field == "persona"
    assert (summary.read, summary.imported, summary.already_present) == (11, 6, 0)
    assert dict(summary.skipped) == {"unreadable": 2, "missing field": 1, "too short": 1, "too long": 1}
    where = [p.split(": ", 1)[0] for p in summary.problems]
    assert where == [f"{path}:{n}" for n in (2, 3, 4, 5, 6)]
    assert "malformed JSON" in summary.problems[0]
    assert "not valid UTF-8" in summary.problems[4]
    assert "100,000 characters" in summary.problems[3]
    stored = store.get_personas([persona_id(t) for t in GOOD])
    assert len(stored) == 6
    assert stored[persona_id(GOOD[0])]["age_group"] == "older_adult"  # mapped onto the region vocabulary


def test_reimport_changes_nothing(store: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "personas.jsonl"
    path.write_text("".join(json.dumps({"persona": t}) + "\n" for t in GOOD + GOOD[:2]))  # in-file duplicates too
    first = import_personas(store, path, run_id="run-1")
    before = store.get_personas([persona_id(t) for t in GOOD])
    again = import_personas(store, path, run_id="run-2")
    assert (first.imported, first.already_present) == (6, 2)
    assert (again.imported, again.already_present) == (0, 8)
    assert store.get_personas([persona_id(t) for t in GOOD]) == before  # run_id, created_at untouched
    assert store.run("MATCH (n) RETURN count(n)").value() == 6


def test_parquet_and_csv_with_a_detected_field(store: GraphStore, tmp_path: Path) -> None:
    pq.write_table(pa.table({"input persona": GOOD[:3], "n": [1, 2, 3]}), tmp_path / "a.parquet")
    with open(tmp_path / "b.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["description", "domain"])
        for t in GOOD[3:]:
            w.writerow([t, "maritime"])
    a = import_personas(store, tmp_path / "a.parquet")
    b = import_personas(store, tmp_path / "b.csv")
    assert (a.field, a.imported) == ("input persona", 3)
    assert (b.field, b.imported) == ("description", 3)
    assert store.region_counts("domain") == {"maritime": 3, None: 3}


def test_an_ambiguous_or_missing_file_is_an_input_error(store: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text(json.dumps({"title": "a", "body_text": "b"}) + "\n")
    with pytest.raises(InputError, match="--field"):
        import_personas(store, path)
    with pytest.raises(InputError, match="no such file"):
        import_personas(store, tmp_path / "missing.jsonl")


def test_only_the_first_problems_are_kept_but_all_are_counted(store: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text(json.dumps({"persona": GOOD[0]}) + "\n" + "not json\n" * (MAX_REPORTED + 15))
    summary = import_personas(store, path)
    assert summary.skipped == {"unreadable": MAX_REPORTED + 15}
    assert len(summary.problems) == MAX_REPORTED and summary.imported == 1
