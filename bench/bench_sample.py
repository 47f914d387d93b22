"""Sampling benchmark: whole `pipeline.sample` batches (seeds, traversal, members and edges) on a 1M-persona graph.

    python -m bench.bench_sample                 # 1M personas, 3M edges (the graph of bench/bench_graph.py)
    python -m bench.bench_sample --scale 0.01    # a quick run: 10k personas, 30k edges

Builds the graph with bench/bench_graph.py's generator and importer in a fresh data folder, then
times `sample_personas` for 1,000 connected clusters of 20 and 1,000 2-hop ego networks (nearest
20 and nearest 100 members), each a full batch as `personagraph sample` runs it: uniform seed draw, batched
traversal, members fetched, edges among members found. Target: under 10 s per batch. Checks that
every cluster is connected through its own edge list and that a rerun with the same seed is identical.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np

from bench.bench_graph import Report, import_graph, power_law_edges, timed
from personagraph.graph import server
from personagraph.graph.store import StoreConfig, open_store
from personagraph.sample import GraphSample, SampleConfig, sample_personas


def connected(sample: GraphSample) -> bool:
    """Whether the sample's members form one component through the sample's own edges."""
    g = nx.Graph()
    g.add_nodes_from(sample.member_ids())
    g.add_edges_from((e["source"], e["target"]) for e in sample.edges)
    return nx.is_connected(g)


def run(scale: float, count: int, seed: int, data_dir: Path) -> Report:
    """Build the graph, time the sampling batches; returns the report."""
    report = Report()
    n_nodes, n_edges = int(1_000_000 * scale), int(3_000_000 * scale)
    report.add("graph", f"{n_nodes:,} personas, {n_edges:,} edges", f"scale {scale}")
    store = open_store(StoreConfig(data_dir=data_dir, graph="bench", batch_size=10_000))
    import_graph(store, n_nodes, power_law_edges(n_nodes, n_edges, seed), report)
    batches = [
        ("connected clusters (size 20)", SampleConfig(strategy="cluster", size=20, count=count, seed=seed)),
        ("2-hop ego networks (nearest 20)", SampleConfig(strategy="ego", size=20, hops=2, count=count, seed=seed)),
        ("2-hop ego networks (nearest 100)", SampleConfig(strategy="ego", size=100, hops=2, count=count, seed=seed)),
        ("uniform samples of 20", SampleConfig(strategy="uniform", size=20, count=count, seed=seed)),
    ]
    for label, spec in batches:
        samples, secs = timed(lambda: sample_personas(store, spec))
        members = [len(s.members) for s in samples]
        edges = sum(len(s.edges) for s in samples)
        note = (f"{len(samples) / secs:,.0f} samples/s; mean {np.mean(members):,.1f} members, {edges:,} edges"
                + ("; target < 10 s" if spec.strategy in ("cluster", "ego") else ""))
        if spec.strategy == "cluster":
            note += f"; all connected: {all(connected(s) for s in samples)}"
        report.add(f"{len(samples):,} {label}", f"{secs:.2f} s", note, **{f"{spec.strategy}_{spec.size}_s": secs})
        if spec.strategy == "cluster":
            again, again_s = timed(lambda: sample_personas(store, spec))
            report.add("same batch again, same seed", f"{again_s:.2f} s", f"identical: {again == samples}")
    store.close()
    return report


def main() -> None:
    """Parse options, run, print the report as markdown."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of 1M personas / 3M edges (0.01 = quick)")
    ap.add_argument("--count", type=int, default=1000, help="samples per batch")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="pgsample-", dir="/tmp"))
    try:
        report = run(args.scale, args.count, args.seed, data_dir)
    finally:
        server.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"python -m bench.bench_sample --scale {args.scale} --count {args.count} --seed {args.seed} "
          f"({time.strftime('%Y-%m-%d %H:%M')})")
    print(report.markdown())


if __name__ == "__main__":
    main()
