"""Export the persona graph: JSONL / Parquet (personas, loadable by `datasets`), GraphML (networkx,
Gephi), and the CSV layout that `neo4j-admin database import full` takes for bulk loading."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from personagraph.graph.analysis import flatten_for_graphml
from personagraph.graph.store import GraphStore

ExportFormat = Literal["jsonl", "parquet", "graphml", "neo4j-csv"]
FORMATS: tuple[str, ...] = ("jsonl", "parquet", "graphml", "neo4j-csv")


def _persona_rows(store: GraphStore, statuses: tuple[str, ...] | None) -> Any:
    for props in store.iter_personas(statuses):
        yield props


def export_jsonl(store: GraphStore, path: Path, statuses: tuple[str, ...] | None = None) -> int:
    """One JSON object per persona (all its properties); returns the number written."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for props in _persona_rows(store, statuses):
            fh.write(json.dumps(props, ensure_ascii=False) + "\n")
            n += 1
    return n


def export_parquet(store: GraphStore, path: Path, statuses: tuple[str, ...] | None = None, chunk: int = 50_000) -> int:
    """Personas as a Parquet table; columns are the union of all properties (lists kept as lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(_persona_rows(store, statuses))
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k != "id", k != "description", k))
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]) if rows else pa.table({"id": pa.array([], pa.string())})
    pq.write_table(table, path)
    return len(rows)


def export_graphml(store: GraphStore, path: Path, statuses: tuple[str, ...] | None = None) -> int:
    """Personas and relationship edges as GraphML (lists stored as JSON strings)."""
    import networkx as nx

    from personagraph.graph.analysis import to_networkx

    g = to_networkx(store, statuses=statuses)
    flat = nx.MultiDiGraph()
    for node, props in g.nodes(data=True):
        flat.add_node(node, **flatten_for_graphml(props))
    for u, v, k, props in g.edges(keys=True, data=True):
        flat.add_edge(u, v, key=k, **flatten_for_graphml(props))
    nx.write_graphml(flat, path)
    return flat.number_of_nodes()


def _neo4j_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool}:
        return "boolean"
    if kinds <= {int}:
        return "long"
    if kinds <= {int, float}:
        return "double"
    if kinds and all(k is list for k in kinds):
        return "string[]"
    return "string"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v).replace(";", ",") for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def export_neo4j_csv(store: GraphStore, folder: Path) -> int:
    """Header-typed node and relationship CSVs plus `import.sh` for `neo4j-admin database import full`.

    Node files `<Label>.csv` carry `id:ID(<Label>)` columns; relationship files `<TYPE>.csv` carry
    `:START_ID(<Label>)`, `:END_ID(<Label>)` and `:TYPE`. Lists use `;` (neo4j-admin's array delimiter).
    """
    folder.mkdir(parents=True, exist_ok=True)
    labels = [row[0] for row in store.run_named("labels").rows if row[0]]
    commands = ["neo4j-admin database import full neo4j --overwrite-destination --array-delimiter=';' \\"]
    total = 0
    for label in labels:
        nodes = [n for page in store.iter_nodes(label) for n in page]
        keys = sorted({k for n in nodes for k in n if k != "id"})
        header = [f"id:ID({label})"] + [f"{k}:{_neo4j_type([n.get(k) for n in nodes])}" for k in keys] + [":LABEL"]
        with open(folder / f"{label}.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for n in nodes:
                w.writerow([n.get("id")] + [_cell(n.get(k)) for k in keys] + [label])
        commands.append(f"  --nodes={label}={label}.csv \\")
        total += len(nodes)
    by_file: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in store.iter_edges():
        by_file[(e["type"], e["source_label"], e["target_label"])].append(e)
    for (rel_type, sl, tl), edges in sorted(by_file.items()):
        keys = sorted({k for e in edges for k in (e["props"] or {})})
        name = f"{rel_type}__{sl}_{tl}.csv"
        with open(folder / name, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([f":START_ID({sl})", f":END_ID({tl})", ":TYPE"] + [f"{k}:{_neo4j_type([(e['props'] or {}).get(k) for e in edges])}" for k in keys])
            for e in edges:
                props = e["props"] or {}
                w.writerow([e["source"], e["target"], rel_type] + [_cell(props.get(k)) for k in keys])
        commands.append(f"  --relationships={rel_type}={name} \\")
    commands[-1] = commands[-1].rstrip(" \\")
    (folder / "import.sh").write_text("#!/bin/sh\n# Run from this folder, with the Neo4j server stopped.\n" + "\n".join(commands) + "\n")
    return total


class ExportError(ValueError):
    """The output path cannot take the export (a folder where a file goes, or the other way round)."""


def check_output(fmt: str, path: Path) -> None:
    """Refuse, before anything is read or written, an output path that `fmt` cannot write to."""
    path = Path(path)
    if fmt == "neo4j-csv":
        if path.exists() and not path.is_dir():
            raise ExportError(f"{path} is a file; neo4j-csv writes a folder of CSV files and import.sh: give a folder path")
        return
    if path.is_dir():
        raise ExportError(f"{path} is a folder; {fmt} writes one file: give a file path, e.g. {path / ('personas.' + fmt)}")
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: the folder {path.parent} does not exist")


def export_graph(store: GraphStore, fmt: str, path: Path, statuses: tuple[str, ...] | None = None) -> int:
    """Dispatch on format; returns the number of nodes written. ExportError for an output path the
    format cannot write to."""
    check_output(fmt, path)
    if fmt == "jsonl":
        return export_jsonl(store, path, statuses)
    if fmt == "parquet":
        return export_parquet(store, path, statuses)
    if fmt == "graphml":
        return export_graphml(store, path, statuses)
    if fmt == "neo4j-csv":
        return export_neo4j_csv(store, path)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
