"""Commands that read the graph: query, stats, coverage, sample, export (thin layers over the API)."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from personagraph import cypher
from personagraph.cli.common import console, fail, state, user_errors
from personagraph.config import Strategy

if TYPE_CHECKING:
    from personagraph.graph.analysis import GraphMetrics

app = typer.Typer()


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs; values are JSON when they parse as JSON (numbers, lists, true), text otherwise."""
    params: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--param {pair!r}: expected NAME=VALUE")
        key, raw = pair.split("=", 1)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


@app.command()
def query(
    ctx: typer.Context,
    cypher_or_file: Annotated[str, typer.Argument(help="Cypher text, a .cypher file, or a ready-made query name (see --list)")] = "",
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Query parameter NAME=VALUE (VALUE parsed as JSON when it can be)")] = None,
    write: Annotated[bool, typer.Option("--write", help="Allow the query to change the graph (read-only otherwise)")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, json (a list of row objects; nodes as property maps) or csv")] = OutputFormat.table,
    list_queries: Annotated[bool, typer.Option("--list", help="List the ready-made queries and exit")] = False,
) -> None:
    """Run Cypher over the persona graph. Read-only unless --write."""
    if list_queries:
        for name in cypher.ready_made():
            console.print(f"[bold]{name}[/]  {cypher.ready_made_description(name)}")
        return
    if not cypher_or_file:
        fail("give a Cypher query, a .cypher file or a ready-made query name (personagraph query --list)", 2)
    st = state(ctx)
    with user_errors(st):
        store = st.graph.store
        res = store.query(cypher.resolve_query(cypher_or_file, store.dialect), parse_params(param or []), write=write)
        if fmt is OutputFormat.json:
            sys.stdout.write(json.dumps(res.records(), ensure_ascii=False, indent=2, default=str) + "\n")
        elif fmt is OutputFormat.csv:
            w = csv.writer(sys.stdout)
            w.writerow(res.columns)
            for row in res.rows:
                w.writerow([_cell(v) for v in row])
        else:
            table = Table(*res.columns) if res.columns else Table("result")
            for row in res.rows:
                table.add_row(*[_cell(v) for v in row])
            console.print(table)
            if write:
                s = res.stats
                console.print(f"nodes +{s.nodes_created} -{s.nodes_deleted}, edges +{s.relationships_created} -{s.relationships_deleted}, properties set {s.properties_set}")


@app.command()
def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON")] = False,
) -> None:
    """Counts of personas by status and hop, of sources, runs and edges by type."""
    st = state(ctx)
    with user_errors(st):
        data = st.graph.stats()
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        nodes = Table("label", "status", "nodes", title="nodes")
        for r in data["nodes"]:
            nodes.add_row(str(r["label"]), str(r["status"] or ""), f"{r['nodes']:,}")
        edges = Table("type", "edges", title="edges")
        for r in data["edges"]:
            edges.add_row(r["type"], f"{r['edges']:,}")
        hops = Table("hop", "live personas", title="hops")
        for r in data["hops"]:
            hops.add_row(str(r["hop"]), f"{r['personas']:,}")
        console.print(nodes, edges, hops)


@app.command()
def coverage(
    ctx: typer.Context,
    attribute: Annotated[Optional[list[str]], typer.Option("--attribute", "-a", help="Region attribute (repeatable; default: age_group, occupation, domain, visibility, language)")] = None,
    top: Annotated[int, typer.Option("--top", help="Values shown per attribute; the rest are summed as 'other'", min=1)] = 12,
    chart: Annotated[Optional[Path], typer.Option("--chart", help="Also draw the shares as a PNG chart")] = None,
    save: Annotated[Optional[Path], typer.Option("--save", help="Save the report as JSON (to --compare against later)")] = None,
    compare: Annotated[Optional[Path], typer.Option("--compare", help="An earlier --save report: show the change in share")] = None,
    target: Annotated[Optional[Path], typer.Option("--target", help="Targets TOML (share per region value): show target and gap")] = None,
    graph: Annotated[bool, typer.Option("--graph", help="Also measure the graph: hops, components, degrees, relation types, frontier")] = False,
) -> None:
    """How live personas spread over the regions (age group, domain, visibility, ...): counts and shares."""
    from personagraph.coverage import CoverageReport, RegionCount

    st = state(ctx)
    with user_errors(st):
        before = CoverageReport.model_validate_json(compare.read_text(encoding="utf-8")) if compare else None
        report = st.graph.coverage(attribute or None, top=top, target=target, graph=graph)
        for name, rows in report.attributes.items():
            targeted = [t for t in report.targets if t.attribute == name]
            table = Table("value", "personas", "share", *(["change"] if before else []), *(["target", "gap"] if targeted else []),
                          title=f"{name} ({report.total:,} live personas)")
            listed = {r.value for r in rows}
            for r in [*rows, *(RegionCount(value=t.value, personas=0, share=0.0) for t in targeted if t.value not in listed)]:
                change = [f"{100 * (r.share - before.share(name, r.value)):+.1f} pts"] if before else []
                wanted = report.target(name, r.value)
                aim = ([f"{wanted.target:.1%}", f"{100 * wanted.gap:+.1f} pts short" if wanted.gap > 0 else "met"] if wanted
                       else ["", ""]) if targeted else []
                share = wanted.actual if wanted else r.share
                table.add_row(r.value, f"{wanted.personas if wanted else r.personas:,}", f"{share:.1%}", *change, *aim)
            console.print(table)
        if report.graph is not None:
            print_graph_metrics(report.graph)
        if save:
            save.write_text(report.model_dump_json(indent=2), encoding="utf-8")
            console.print(f"saved the report to {save}")
        if chart:
            console.print(f"wrote the chart to {report.plot(chart, before)}")


def print_graph_metrics(m: GraphMetrics) -> None:
    """The graph's shape as one table: depth, connectedness, degrees, relation types, what is left to expand."""
    def spread(counts: dict[Any, int], limit: int = 10) -> str:
        shown = ", ".join(f"{k}: {v:,}" for k, v in list(counts.items())[:limit])
        return shown + (f", ... ({len(counts) - limit} more)" if len(counts) > limit else "")

    table = Table(title=f"graph ({m.personas:,} live personas, {m.edges:,} relationships)", show_header=False)
    table.add_row("personas per hop", spread(m.hops))
    table.add_row("connected components", f"{m.components:,} (largest {m.largest_component:,}; per size: {spread(m.component_sizes)})")
    table.add_row("personas per degree", spread(m.degrees))
    table.add_row("relationship types", spread(m.relation_types))
    table.add_row("unexpanded frontier", f"{m.frontier:,} accepted personas not expanded yet")
    table.add_row("isolated personas", f"{m.isolated:,}")
    console.print(table)


@app.command()
def export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (a folder for neo4j-csv)")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl | parquet | graphml | neo4j-csv")] = "jsonl",
    all_statuses: Annotated[bool, typer.Option("--all", help="Include rejected and merged personas")] = False,
) -> None:
    """Export personas (JSONL/Parquet, loadable by `datasets`), the graph (GraphML), or neo4j-admin CSVs."""
    from personagraph.graph.export import FORMATS

    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", 2)
    st = state(ctx)
    with user_errors(st):
        from personagraph.export import Export

        Export(output=output, format=fmt).check()  # before the store is opened
        summary = st.graph.export(output, format=fmt, all_statuses=all_statuses)
        console.print(f"wrote {summary.nodes:,} nodes to {output} ({fmt}) in {summary.seconds:.1f}s")


def smaller_clusters(min_size: Optional[int], allow_smaller: bool) -> Optional[int]:
    """The smallest cluster `--min-size` / `--allow-smaller` accept (None: the config's, by default `--size`)."""
    if allow_smaller and min_size is not None:
        fail("give --min-size N or --allow-smaller (the same as --min-size 1), not both", 2)
    return 1 if allow_smaller else min_size


@app.command()
def sample(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file: one sample per line")],
    strategy: Annotated[Optional[Strategy], typer.Option("--strategy", "-s", help="How personas are picked")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Members per sample")] = None,
    count: Annotated[int, typer.Option("-n", "--count", help="Number of samples")] = 10,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (same seed, same graph: same samples)")] = None,
    hops: Annotated[Optional[int], typer.Option("--hops", help="Ego-network radius")] = None,
    stratify_by: Annotated[Optional[str], typer.Option("--by", help="Attribute whose values get equal shares (stratified)")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="stratified: a targets TOML giving each value's share instead of equal ones")] = None,
    min_size: Annotated[Optional[int], typer.Option("--min-size", min=1, help="cluster: smallest cluster accepted (default: --size)")] = None,
    allow_smaller: Annotated[bool, typer.Option("--allow-smaller", help="cluster: accept clusters smaller than --size (= --min-size 1)")] = False,
) -> None:
    """Sample personas by where they sit in the graph; each line has the members and the edges among them.

    Clusters have exactly --size connected members: seeds whose component is smaller are skipped (and
    counted), and a graph that cannot supply -n of them is an error, unless --min-size / --allow-smaller.
    """
    st = state(ctx)
    with user_errors(st):
        smallest = smaller_clusters(min_size, allow_smaller)
        chosen = strategy or st.settings.synthesis.strategy
        if chosen != Strategy.cluster and (min_size is not None or allow_smaller):
            fail(f"--min-size and --allow-smaller apply to --strategy cluster, not {chosen}", 2)
        if weights is not None and chosen != Strategy.stratified:
            fail(f"--weights applies to --strategy stratified, not {chosen}", 2)
        draw = st.graph.sample(strategy=strategy, size=size, count=count, seed=seed, hops=hops, stratify_by=stratify_by,
                               min_size=smallest, weights=weights)
        draw.check_complete()
        draw.write_jsonl(output)
        spec = draw.spec
        members = sum(len(s.members) for s in draw.samples)
        edges = sum(len(s.edges) for s in draw.samples)
        skipped = (f"; {draw.seeds_skipped:,} seeds skipped, their component holding fewer than {spec.smallest_cluster} "
                   f"{'/'.join(spec.statuses)} personas") if draw.seeds_skipped else ""
        console.print(f"wrote {len(draw.samples):,} {spec.strategy} samples ({members:,} members, {edges:,} edges, "
                      f"seed {spec.seed}{skipped}) to {output} in {draw.seconds:.1f}s")
