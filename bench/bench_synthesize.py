"""Synthesis throughput (rows/s) against the LLM bench's bare client loop, same endpoint, same run.

    python -m bench.bench_synthesize --n 2000 --concurrency 64 --latency 0.2
    python -m bench.bench_synthesize --task dialogue          # a relationship task: one row per edge

A fresh embedded store gets `--personas` template personas and 3x as many power-law edges (the
generator of bench/bench_graph.py). The project's fake endpoint runs in a child process with
`--latency` seconds per answer. Each round runs the bare openai+aiohttp worker pool of
bench/bench_llm.py on the `--n` prompts synthesis sends (text answers, as synthesis asks), then `personagraph synthesize`'s whole path on `--n` personas
(or edges, or clusters, for `--task dialogue|relation_problem|npc_cast`: sampling them from the graph, rendering the task prompt, the LLM layer with the cache off, rows
re-ordered and written to JSONL), and between them the LLM layer alone on the same prompts.
Reported: rows/s per side (best round), the ratios synthesis/bare (target >= 0.9) and
synthesis/LLM layer, and CPU ms per row in this process (when the CPU is the bottleneck, the ratio
of rates follows the ratio of CPU per row).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.bench_graph import EDGE_TYPES, persona_chunks, power_law_edges
from bench.bench_llm import bare_loop, measure
from personagraph.graph import server
from personagraph.graph.model import Edge
from personagraph.graph.store import GraphStore, StoreConfig, open_store
from personagraph.api import Graph
from personagraph.config import Settings
from personagraph.llm import LLMClient, LLMRequest
from personagraph.synthesize import plan_synthesis
from tests.fake_llm_server import Faults, fake_llm_subprocess


def build_graph(store: GraphStore, personas: int, seed: int) -> None:
    """`personas` template personas and 3x as many typed power-law edges."""
    ids: list[str] = []
    for chunk in persona_chunks(personas):
        store.upsert_personas(chunk)
        ids.extend(p.id for p in chunk)
    src, dst, typ = power_law_edges(personas, 3 * personas, seed)
    store.add_edges([Edge(source=ids[a], target=ids[b], type=EDGE_TYPES[t])
                     for a, b, t in zip(src.tolist(), dst.tolist(), typ.tolist())])


def main() -> None:
    """Build the graph, run both sides `--rounds` times, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="rows (and bare requests) per side and round")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--personas", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--task", default="math_problem", help="any packaged task; relationship tasks pick edges or clusters")
    ap.add_argument("--size", type=int, default=5, help="cluster size for cluster tasks (npc_cast)")
    args = ap.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="pgsyn-", dir="/tmp"))
    try:
        store = open_store(StoreConfig(data_dir=data_dir, graph="bench"))
        build_graph(store, args.personas, args.seed)
        settings = Settings(llm={"model": "fake-model", "cache": False, "concurrency": args.concurrency, "timeout": 60.0},
                            store=store.options)
        cluster_task = args.task == "npc_cast"
        sampling = {"strategy": "uniform", "size": args.size if cluster_task else args.n, "seed": args.seed}
        extra = {"world": "A river-port town in a low-fantasy world."} if cluster_task else {}
        with fake_llm_subprocess(Faults(latency=args.latency)) as base_url:
            llm_settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"base_url": base_url})})

            async def ours() -> int:
                with Graph(llm_settings, store=store, progress=False) as g:  # the Python API, as a user calls it
                    summary = await g.asynthesize(args.task, data_dir / "rows.jsonl", count=args.n, **sampling, **extra)
                return summary.written

            # The bare loop sends the very prompts synthesis renders (prepared outside its timing).
            stage = Graph(llm_settings, store=store).synthesize_stage(args.task, data_dir / "rows.jsonl", count=args.n,
                                                                     **sampling, **extra)
            synth, units = plan_synthesis(store, stage)
            prompts = [request.messages for request in synth.requests(units, "fake-model")]
            async def layer() -> int:
                with LLMClient.from_settings(llm_settings) as client:
                    requests = (LLMRequest(key=str(i), messages=m) for i, m in enumerate(prompts))
                    return sum([r.ok async for r in client.stream(requests)])

            sides = {"bare openai+aiohttp": lambda: bare_loop(base_url, prompts, None, args.concurrency),
                     "LLMClient.stream alone": layer, "personagraph synthesize": ours}
            rows: dict[str, list[tuple[float, float, int]]] = {label: [] for label in sides}
            for _ in range(args.rounds):
                for label, side in sides.items():
                    rows[label].append(measure(side))
        store.close()
    finally:
        server.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"task={args.task} n={len(prompts)} concurrency={args.concurrency} latency={args.latency}s rounds={args.rounds} "
          f"graph={args.personas:,} personas (best round) at {time.strftime('%Y-%m-%d %H:%M')}")
    best = {label: max(runs) for label, runs in rows.items()}
    for label, (rate, cpu_ms, ok) in best.items():
        print(f"  {label:26s} {rate:8.1f} rows/s  {cpu_ms:6.3f} CPU ms/row  ok={ok}")
    (bare_rate, bare_cpu, _), (layer_rate, layer_cpu, _), (our_rate, our_cpu, _) = best.values()
    print(f"  ratio synthesize/bare      {our_rate / bare_rate:8.3f}  (target >= 0.9)")
    print(f"  ratio synthesize/LLMClient {our_rate / layer_rate:8.3f}  (what the stage adds to the LLM layer)")
    print(f"  CPU ms/row beyond the bare loop {our_cpu - bare_cpu:6.3f} (LLM layer {layer_cpu - bare_cpu:.3f}, stage {our_cpu - layer_cpu:.3f})")


if __name__ == "__main__":
    main()
