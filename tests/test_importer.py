"""Importing ready-made personas (pipeline/importer.py) into the real store: bad lines cost only themselves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from personagraph.graph.model import InvalidName, Persona, PersonaStatus, check_label, check_property, check_rel_type, persona_id
from personagraph.graph.store import GraphStore
from personagraph.importer import MAX_REPORTED, import_personas
from personagraph.readers import InputError

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


def test_a_nul_or_a_lone_surrogate_is_cleaned_and_reported_and_nothing_else_is_lost(store: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    rows = [{"persona": f"a canal lock keeper number {i} who logs every boat", "attributes": {"hobby": "chess"}}
            for i in range(10_000)]
    rows[1]["attributes"]["hobby"] = "chess\x00 by post"  # line 2: a NUL in one attribute
    rows[2]["persona"] += " \ud800"  # line 3: a lone surrogate in the description
    rows[3]["attributes"] = {"hobby\n": "knots", "tags": ["a\x00b", "c"]}  # line 4: a name with a newline
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")  # JSON escapes \u0000, \ud800
    summary = import_personas(store, path)
    assert (summary.read, summary.imported, summary.skipped_total) == (10_000, 10_000, 0)
    assert summary.cleaned == {"NUL characters removed": 2, "unpaired surrogates replaced by U+FFFD": 1,
                               "attribute names dropped": 1}
    assert summary.problems == [] and summary.changes == [
        f"{path}:2: 'hobby': NUL characters removed",
        f"{path}:3: 'persona': unpaired surrogates replaced by U+FFFD",
        f"{path}:4: attribute 'hobby\\n' dropped: a property name is letters, digits and underscores",
        f"{path}:4: 'tags': NUL characters removed",
    ]
    assert store.run("MATCH (p:Persona) RETURN count(p)").value() == 10_000
    assert store.run("MATCH (p:Persona) WHERE p.hobby = 'chess by post' RETURN count(p)").value() == 1
    cleaned = store.get_personas([persona_id(rows[2]["persona"].replace("\ud800", "\ufffd"))])
    assert list(cleaned.values())[0]["description"].endswith("\ufffd")
    keys = {k for (k,) in store.run("MATCH (p:Persona) UNWIND keys(p) AS k RETURN DISTINCT k").rows}
    assert not any(k.endswith("\n") for k in keys) and "tags" in keys


def test_names_with_a_trailing_newline_are_not_valid_names() -> None:
    for check, good in ((check_property, "hobby"), (check_label, "Persona"), (check_rel_type, "PATIENT_OF")):
        assert check(good) == good
        with pytest.raises(InvalidName):
            check(good + "\n")
    with pytest.raises(ValidationError):
        Persona(description="a night nurse in Lyon", attributes={"hobby\n": "chess"})


def test_reimporting_an_export_keeps_status_hop_and_every_property(store: GraphStore, tmp_path: Path) -> None:
    from personagraph.graph.export import export_graph

    kept, dup, rejected, far = (Persona(description=f"an exported persona, the {w} one, who keeps bees") for w in
                                ("first", "second", "third", "fourth"))
    rejected = rejected.model_copy(update={"status": PersonaStatus.rejected})
    far = Persona(description=far.description, hop=3, origin="expand", attributes={"age_group": "child", "n": 2})
    store.upsert_personas([kept, dup, rejected, far])
    store.set_properties([{"id": rejected.id, "props": {"score_specificity": 1, "reason_specificity": "too vague"}}])
    store.merge_nodes(kept.id, [dup.id])
    before = {p["id"]: p for p in store.iter_personas(statuses=None)}
    for fmt in ("jsonl", "parquet"):
        out = tmp_path / f"all.{fmt}"
        export_graph(store, fmt, out, None)
        other = store.__class__(store.options.model_copy(update={"graph": store.options.graph + f"_{fmt}"}))
        other.ensure_schema()
        try:
            summary = import_personas(other, out, run_id="reimport")
            after = {p["id"]: p for p in other.iter_personas(statuses=None)}
            assert after == before
            assert (summary.imported, summary.restored, summary.skipped_total) == (4, 4, 0)
            again = import_personas(other, out, run_id="again")
            assert (again.imported, again.already_present) == (0, 4)
            assert {p["id"]: p for p in other.iter_personas(statuses=None)} == after
        finally:
            other._graph.delete()
            other.close()


def test_a_status_that_is_not_a_persona_status_is_reported(store: GraphStore, tmp_path: Path) -> None:
    text = "a ferry pilot who reads tide tables"
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"id": persona_id(text), "description": text, "status": "married"}) + "\n")
    summary = import_personas(store, path)
    assert summary.imported == 1 and summary.cleaned == {"invalid status": 1}
    assert store.get_personas([persona_id(text)])[persona_id(text)]["status"] == "accepted"
