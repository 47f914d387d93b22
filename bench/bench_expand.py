"""Expansion throughput against the bare client loop, and its graph-side cost as the graph grows.

    python -m bench.bench_expand --seeds 1000 --relations 3 --hops 2 --latency 0.2 --concurrency 64 \\
        --scales 0 100000 1000000

One fake endpoint (expansion-aware, `tests.expand_fake`, in a child process) with `--latency` per answer.
In the same run:
- the bare loop of bench/bench_llm.py (`openai.AsyncOpenAI` on aiohttp, a plain worker pool) sends
  as many expansion prompts (same template, same `Proposals` tool) as the expansion will send
  (seeds x relations x hops): its calls/s is the reference;
- for each scale, a fresh graph on an embedded FalkorDB holds that many existing personas (hops 0-6,
  already expanded, so they are matched against but not expanded) plus `--seeds` unexpanded hop-0
  seeds, and the expand stage (`Graph.expand`) runs `--hops` rounds with `--relations` relations per seed, fanout 1,
  capped at seeds x relations requests per hop (so each hop asks about `--seeds` seeds).
Reported: expansion calls/s and its ratio to the bare loop (target >= 0.85), and per round the
graph-side seconds (frontier query, dedup lookup, turning answers into rows, the write of personas,
edges and seed marks; wall time as the writer sees it, so waiting for the database and for the busy
event loop to resume it counts) as a share of the round's wall time (target < 5%), and apart from it
the inline filter's cheap checks. The writer shares the event loop with the stream: its Python work
holds the loop, its database round trips overlap the calls in flight. Caching is off; dedup on insert is exact (content hash
against the graph); the dedup index's MinHash/embedding lookups are measured in bench/bench_dedup.py.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from personagraph import prompts
from bench.bench_llm import bare_loop
from personagraph.graph import server
from personagraph.graph.model import Persona
from personagraph.graph.store import FalkorStore, GraphStore, StoreConfig
from personagraph.api import Graph
from personagraph.config import Settings
from personagraph.expand import ExpandSummary, Proposals
from personagraph.relations import RelationVocabulary
from tests.expand_fake import AGES, JOBS, PLACES, TRAITS, expand_fake_subprocess, persona_for
from tests.fake_llm_server import Faults

LOAD_BATCH = 10_000


def existing_personas(start: int, count: int) -> list[Persona]:
    """Background personas `start` .. `start + count - 1`: distinct, hops 0-6 (expanded by `load`, never seeds)."""
    out = []
    for i in range(start, start + count):
        base = persona_for(AGES[i % 5], JOBS[(i // 5) % 12], PLACES[(i // 60) % 8], TRAITS[(i // 480) % 20])
        out.append(Persona(description=f"{base['description']} (background persona {i})", hop=i % 7,
                           attributes={k: v for k, v in base.items() if k != "description"}))
    return out


def seeds(n: int) -> list[Persona]:
    """`n` distinct seed personas at hop 0."""
    return [Persona(description=f"A shift supervisor number {i} at a regional parcel depot who trains new drivers")
            for i in range(n)]


def expansion_prompts(n: int) -> list[list[dict[str, str]]]:
    """`n` expansion prompts of the kind the stage sends (distinct seeds, the default relations)."""
    prompt = prompts.load("expand/propose", "en")
    relations = list(RelationVocabulary.default())
    return [prompt.render(seed=p.description, relation=rel.name, relation_description=rel.description, fanout=1,
                          region="any")
            for i, p in enumerate(seeds(n // 3 + 1)) for rel in relations[i % 6 : i % 6 + 3]][:n]


def load(store: GraphStore, scale: int, n_seeds: int) -> float:
    """Fill the graph: `scale` expanded background personas and `n_seeds` seeds; returns seconds."""
    started = time.perf_counter()
    for start in range(0, scale, LOAD_BATCH):
        batch = existing_personas(start, min(LOAD_BATCH, scale - start))
        store.upsert_personas(batch)
        store.set_properties([{"id": p.id, "props": {"expanded": True}} for p in batch])
    store.upsert_personas(seeds(n_seeds))
    return time.perf_counter() - started


def run_expansion(store: GraphStore, base_url: str, data_dir: Path, args: argparse.Namespace) -> tuple[ExpandSummary, float]:
    """One expansion over the graph's seeds; returns its summary and wall seconds."""
    settings = Settings(llm={"base_url": base_url, "model": "fake-model", "cache": False,
                             "concurrency": args.concurrency, "timeout": 60}, store=store.options)
    g = Graph(settings, store=store, progress=False)
    started = time.perf_counter()
    summary = g.expand(hops=args.hops, fanout=1, relations_per_seed=args.relations, dedup="exact", relevance_check=False,
                       max_calls=args.seeds * args.relations * args.hops, chunk_seeds=args.chunk_seeds)
    return summary, time.perf_counter() - started


def main() -> None:
    """Run the bare loop, then the expansion at each scale, and print the table."""
    parser = argparse.ArgumentParser(description="expansion vs bare client loop; graph-side cost by graph size")
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--relations", type=int, default=3)
    parser.add_argument("--hops", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--chunk-seeds", type=int, default=256)
    parser.add_argument("--scales", type=int, nargs="+", default=[0, 100_000, 1_000_000])
    args = parser.parse_args()
    calls = args.seeds * args.relations * args.hops
    folder = Path(tempfile.mkdtemp(prefix="pgbx-", dir="/tmp"))
    try:
        server.ensure_running(folder)
        with expand_fake_subprocess(Faults(latency=args.latency), traits=len(TRAITS)) as base_url:
            started = time.perf_counter()
            ok = asyncio.run(bare_loop(base_url, expansion_prompts(calls), Proposals, args.concurrency, 60.0))
            bare_rate = ok / (time.perf_counter() - started)
            print(f"{calls} calls, concurrency {args.concurrency}, latency {args.latency}s, "
                  f"chunk {args.chunk_seeds} seeds; bare openai loop {bare_rate:.1f} calls/s")
            for scale in args.scales:
                store = FalkorStore(StoreConfig(data_dir=folder, graph=f"bench{scale}", batch_size=LOAD_BATCH))
                store.ensure_schema()
                loaded = load(store, scale, args.seeds)
                summary, wall = run_expansion(store, base_url, folder, args)
                rate = summary.requests / wall
                print(f"existing {scale:>9,} (loaded in {loaded:5.1f}s): {summary.requests} calls in {wall:5.1f}s = "
                      f"{rate:6.1f} calls/s, ratio to bare {rate / bare_rate:.3f}; created {summary.created}, "
                      f"linked {summary.linked}, failed {summary.failed_requests}")
                for r in summary.rounds:
                    print(f"    hop {r.hop}->{r.hop + 1}: {r.seeds:>6,} frontier, {r.requests} calls, wall {r.wall_seconds:5.2f}s, "
                          f"graph {r.graph_seconds:5.3f}s = {100 * r.graph_seconds / r.wall_seconds:4.1f}% of the round "
                          f"(inline filter {r.filter_seconds:5.3f}s = {100 * r.filter_seconds / r.wall_seconds:4.1f}%)")
                store._graph.delete()
                store.close()
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
