"""Item rate of the extract stage against a bare async loop of the openai client, same requests, same run.

    python -m bench.bench_extract --n 3000 --concurrency 64 --latency 0.2

The fake endpoint (a child process) answers every call after `latency` seconds. The bare loop sends
the very requests extract would send (rendered prompts, the ExtractedPersona tool) with
`openai.AsyncOpenAI` on its aiohttp transport and parses the answers; extract reads the corpus, calls
through `LLMClient` (response cache on, fresh each round), validates, and writes personas, sources
and edges to an embedded FalkorDB. Reported: items (texts) per second, the ratio extract / bare, and
CPU ms per item in this process; the difference is what extract costs beyond the HTTP client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.bench_llm import bare_loop
from personagraph.graph import server
from personagraph.graph.store import FalkorStore, StoreConfig
from personagraph.config import Settings
from personagraph.api import Graph
from personagraph.extract import ExtractedPersona, ExtractSummary, TextPlanner
from personagraph.readers import iter_records
from tests.fake_llm_server import Faults, fake_llm_subprocess


def write_corpus(path: Path, n: int) -> None:
    """`n` distinct web-text-like records of a few hundred characters."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            text = (f"Thread {i}: our night-shift team at the distribution centre switched to handheld scanners "
                    f"last month. Pick rates went up {i % 40}% but the battery swaps at 3am are a pain, and the "
                    "new hires keep mis-scanning pallet labels in the cold store. Any tips from other warehouses?")
            fh.write(json.dumps({"uri": f"forum/{i}", "text": text}) + "\n")


def main() -> None:
    """Run bare loop and extract alternately for `rounds` rounds; print the best round of each."""
    parser = argparse.ArgumentParser(description="extract stage vs bare openai loop")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pgb-", dir="/tmp"))  # short: unix socket path limit
    corpus = folder / "texts.jsonl"
    write_corpus(corpus, args.n)
    server.ensure_running(folder)
    bare: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    try:
        with fake_llm_subprocess(Faults(latency=args.latency)) as base_url:
            settings = Settings(llm={"base_url": base_url, "model": "fake-model", "concurrency": args.concurrency,
                                     "timeout": 60.0}, store={"data_dir": folder})
            summary = ExtractSummary(path=str(corpus), field="text", run_id="bench")
            planner = TextPlanner(settings.extract, summary, {}, track=False)
            prompts = [r.messages for r in planner.requests(iter_records(corpus), "text", "bench")]
            for round_no in range(args.rounds):
                cpu, wall = time.process_time(), time.perf_counter()
                ok = asyncio.run(bare_loop(base_url, prompts, ExtractedPersona, args.concurrency))
                bare.append((ok / (time.perf_counter() - wall), 1000 * (time.process_time() - cpu) / ok))

                store = FalkorStore(StoreConfig(data_dir=folder, graph=f"bench{round_no}"))
                store.ensure_schema()
                g = Graph(settings.model_copy(update={
                    "store": store.options, "llm": settings.llm.model_copy(update={"cache_dir": folder / f"cache{round_no}"})}),
                    store=store, progress=False)
                cpu, wall = time.process_time(), time.perf_counter()
                summary = g.extract(corpus, field="text")
                ours.append((summary.texts_extracted / (time.perf_counter() - wall),
                             1000 * (time.process_time() - cpu) / summary.texts_extracted))
                assert summary.texts_extracted == args.n, summary
                g.close()
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)
    (bare_rate, bare_cpu), (our_rate, our_cpu) = max(bare), max(ours)
    print(f"n={args.n} concurrency={args.concurrency} latency={args.latency}s rounds={args.rounds} (best round)")
    print("  rounds (items/s):", "; ".join(f"{b[0]:.0f} vs {o[0]:.0f}" for b, o in zip(bare, ours)))
    print(f"  bare openai+aiohttp loop  {bare_rate:8.1f} items/s  {bare_cpu:6.3f} CPU ms/item")
    print(f"  personagraph extract      {our_rate:8.1f} items/s  {our_cpu:6.3f} CPU ms/item")
    print(f"  ratio extract/bare        {our_rate / bare_rate:8.3f}")
    print(f"  CPU ms/item beyond the HTTP client {our_cpu - bare_cpu:6.3f}")


if __name__ == "__main__":
    main()
