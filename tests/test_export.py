"""Exports load in the tools they are for: GraphML in networkx, JSONL/Parquet in `datasets`, CSVs in neo4j-admin's layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import networkx as nx
import pytest

from personagraph.graph.export import export_graph
from personagraph.graph.model import Edge, Persona, Source
from personagraph.graph.store import LIVE_STATUSES, GraphStore, StoreConfig
from tests.graphs import personas
from tests.test_cli import run_cli


@pytest.fixture
def graph(store: GraphStore) -> dict[str, str]:
    """Four personas (one merged into another, one with attributes), a source, three edges; returns ids by role."""
    nurse, dup, patient = personas(3, prefix="export")
    chef = Persona(description="a ramen chef in Osaka who grows his own herbs", attributes={"domain": "food", "age_group": "adult"})
    src = Source(text_hash="d" * 64, uri="https://example.org/ramen")
    store.upsert_personas([nurse, dup, patient, chef])
    store.upsert_sources([src])
    store.add_edges([Edge(source=patient.id, target=nurse.id, type="PATIENT_OF", props={"hop": 1}),
                     Edge(source=chef.id, target=dup.id, type="SUPPLIER_OF")])
    store.add_edges([Edge(source=chef.id, target=src.id, type="EXTRACTED_FROM", props={"stance": "writer"})], target_label="Source")
    store.merge_nodes(nurse.id, [dup.id])
    return {"nurse": nurse.id, "dup": dup.id, "patient": patient.id, "chef": chef.id, "source": src.id}


def test_graphml_loads_in_networkx(store: GraphStore, graph: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "g.graphml"
    assert export_graph(store, "graphml", path, LIVE_STATUSES) == 3
    g = nx.read_graphml(path)
    assert set(g.nodes) == {graph["nurse"], graph["patient"], graph["chef"]}
    assert {(u, v, d["type"]) for u, v, d in g.edges(data=True)} == {
        (graph["patient"], graph["nurse"], "PATIENT_OF"), (graph["chef"], graph["nurse"], "SUPPLIER_OF")}
    assert json.loads(g.nodes[graph["nurse"]]["merged_ids"]) == [graph["dup"]]
    assert g.nodes[graph["chef"]]["domain"] == "food"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_jsonl_and_parquet_load_with_datasets(store: GraphStore, graph: dict[str, str], tmp_path: Path, fmt: str) -> None:
    from datasets import load_dataset

    path = tmp_path / f"personas.{fmt}"
    assert export_graph(store, fmt, path, None) == 4  # every status, the merged tombstone too
    ds = load_dataset("json" if fmt == "jsonl" else "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 4
    rows = {r["id"]: r for r in ds}
    assert rows[graph["dup"]]["status"] == "merged" and rows[graph["dup"]]["merged_into"] == graph["nurse"]
    assert rows[graph["nurse"]]["aliases"] == [store.get_personas([graph["dup"]])[graph["dup"]]["description"]]
    assert rows[graph["chef"]]["domain"] == "food" and rows[graph["patient"]]["domain"] is None


def test_neo4j_csv_has_admin_import_headers_and_script(store: GraphStore, graph: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "neo4j"
    assert export_graph(store, "neo4j-csv", folder) == 5
    with open(folder / "Persona.csv", newline="") as fh:
        persona_rows = list(csv.reader(fh))
    assert persona_rows[0][0] == "id:ID(Persona)" and persona_rows[0][-1] == ":LABEL"
    assert "merged_ids:string[]" in persona_rows[0] and "hop:long" in persona_rows[0]
    assert sorted(r[0] for r in persona_rows[1:]) == sorted([graph["nurse"], graph["dup"], graph["patient"], graph["chef"]])
    with open(folder / "Source.csv", newline="") as fh:
        assert next(csv.reader(fh))[0] == "id:ID(Source)"
    with open(folder / "PATIENT_OF__Persona_Persona.csv", newline="") as fh:
        rel = list(csv.reader(fh))
    assert rel[0][:3] == [":START_ID(Persona)", ":END_ID(Persona)", ":TYPE"] and "hop:long" in rel[0]
    assert rel[1][:3] == [graph["patient"], graph["nurse"], "PATIENT_OF"]
    with open(folder / "EXTRACTED_FROM__Persona_Source.csv", newline="") as fh:
        assert next(csv.reader(fh))[:3] == [":START_ID(Persona)", ":END_ID(Source)", ":TYPE"]
    script = (folder / "import.sh").read_text()
    assert "neo4j-admin database import full" in script
    for name in ("Persona.csv", "Source.csv", "PATIENT_OF__Persona_Persona.csv", "SUPPLIER_OF__Persona_Persona.csv",
                 "EXTRACTED_FROM__Persona_Source.csv"):
        assert name in script
    assert not script.rstrip().endswith("\\")


def test_cli_export_writes_live_personas(store: GraphStore, store_options: StoreConfig, graph: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "live.jsonl"
    res = run_cli("export", "--format", "jsonl", "-o", str(out), cwd=tmp_path, options=store_options)
    assert res.returncode == 0, res.stderr
    assert "wrote 3 nodes" in res.stdout
    assert {json.loads(line)["id"] for line in out.read_text().splitlines()} == {graph["nurse"], graph["patient"], graph["chef"]}
    bad = run_cli("export", "--format", "xml", "-o", str(out), cwd=tmp_path, options=store_options)
    assert bad.returncode == 2 and "unknown format" in bad.stderr


def test_an_output_path_of_the_wrong_kind_is_one_line(store: GraphStore, store_options: StoreConfig, tmp_path: Path) -> None:
    store.upsert_personas(personas(2, prefix="export paths"))
    folder = tmp_path / "out"
    folder.mkdir()
    a_file = tmp_path / "neo4j"
    a_file.write_text("")
    cases = [
        (("--format", "jsonl", "-o", str(folder)), f"error: {folder} is a folder; jsonl writes one file"),
        (("--format", "parquet", "-o", str(folder)), f"error: {folder} is a folder; parquet writes one file"),
        (("--format", "neo4j-csv", "-o", str(a_file)), f"error: {a_file} is a file; neo4j-csv writes a folder"),
        (("--format", "jsonl", "-o", str(tmp_path / "missing" / "x.jsonl")), f"error: cannot write {tmp_path / 'missing' / 'x.jsonl'}"),
    ]
    for args, message in cases:
        res = run_cli("export", *args, cwd=tmp_path, options=store_options)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.count("\n") == 1 and " ".join(res.stderr.split()).startswith(message), res.stderr
    assert a_file.read_text() == "" and list(folder.iterdir()) == []
