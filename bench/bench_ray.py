"""LLM calls/s of `synthesize` on the Ray executor with 1 and 2 workers, as a ratio measured in one run.

    python -m bench.bench_ray --n 4000 --concurrency 64 --latency 0.2

A fresh embedded store gets `--n` template personas (the generator of bench/bench_graph.py); the
project's fake endpoint runs in a child process with `--latency` seconds per answer. Each side runs
`personagraph synthesize` on all of them through the `RayExecutor` (a local Ray, `num_cpus` = the
workers asked for), every worker with an LLM client of its own at `--concurrency` calls in flight
and its own connection to the store, the response cache off so that every row is a call. A small
run first starts the workers and imports the project in them, so neither side pays for that.
Reported: calls/s per side (best of `--rounds`), the 2-worker/1-worker ratio (target >= 1.6 on two
cores), the load average before and after, and the CPU time per call of each kind of process (the
workers, the fake endpoint, FalkorDB, Ray's own, this driver, anything else on the machine): on two
cores they all share what the second worker needs.

With one event loop per worker, one worker is bounded by latency x concurrency (64 / 0.2 s = 320
calls/s here) and by its CPU per call; a second worker doubles the first bound.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import ray

from bench.bench_graph import persona_chunks
from personagraph.api import Graph
from personagraph.config import Settings
from personagraph.executor import RayExecutor
from personagraph.graph import server
from personagraph.graph.store import StoreConfig, open_store
from tests.fake_llm_server import Faults, fake_llm_subprocess

ROOT = Path(__file__).resolve().parent.parent


def calls_per_second(g: Graph, workers: int, n: int, output: Path, cpu: Counter[str] | None = None) -> float:
    """Synthesize `n` rows on `workers` Ray workers; LLM calls answered per second of the stage's wall time.
    `cpu` adds up the CPU seconds each kind of process spent meanwhile (`cpu_by_role`)."""
    g.executor = RayExecutor(workers=workers)
    before = cpu_by_pid()
    started = time.perf_counter()
    summary = g.synthesize("math_problem", output, count=n)
    seconds = time.perf_counter() - started
    if cpu is not None:
        cpu.update(cpu_by_role(before, cpu_by_pid()))
    if summary.written != n:
        raise RuntimeError(f"{workers} workers wrote {summary.written} of {n} rows ({summary.failures[:2]})")
    return n / seconds


_TICK = os.sysconf("SC_CLK_TCK")
# What each process is, by its command line: the first match names it.
_ROLES = (("fake_llm_server", "fake endpoint"), ("redis-server", "FalkorDB"), ("ray::", "Ray workers"),
          ("raylet", "Ray system"), ("gcs_server", "Ray system"), ("ray/", "Ray system"))


def cpu_by_pid() -> dict[int, tuple[str, float]]:
    """Every process's role (`_ROLES`, "this driver", "other") and CPU seconds so far, from /proc."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(entry.name)
        role = "this driver" if pid == os.getpid() else next((r for k, r in _ROLES if k in cmdline), "other")
        out[pid] = (role, (int(fields[11]) + int(fields[12])) / _TICK)  # utime + stime
    return out


def cpu_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> Counter[str]:
    """CPU seconds spent between two `cpu_by_pid` snapshots, by role (a process started meanwhile counts from 0)."""
    spent: Counter[str] = Counter()
    for pid, (role, seconds) in after.items():
        spent[role] += seconds - before.get(pid, (role, 0.0))[1]
    return spent


def main() -> None:
    """Build the graph, warm the workers, run both sides `--rounds` times, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="rows (calls) per side and round")
    ap.add_argument("--concurrency", type=int, default=64, help="calls in flight per worker")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    load_before = os.getloadavg()
    data_dir = Path(tempfile.mkdtemp(prefix="pgray-", dir="/tmp"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        store = open_store(StoreConfig(data_dir=data_dir, graph="bench"))
        for chunk in persona_chunks(args.n):
            store.upsert_personas(chunk)
        with fake_llm_subprocess(Faults(latency=args.latency)) as base_url:
            settings = Settings(store=store.options, llm={
                "base_url": base_url, "model": "fake-model", "cache": False, "concurrency": args.concurrency,
                "timeout": 30.0})
            g = Graph(settings, store=store, progress=False)
            calls_per_second(g, 2, 200, data_dir / "warm.jsonl")  # start both workers and import the project in them
            best = {1: 0.0, 2: 0.0}
            cpu: dict[int, Counter[str]] = {1: Counter(), 2: Counter()}
            for _ in range(args.rounds):
                for workers in (1, 2):
                    best[workers] = max(best[workers], calls_per_second(
                        g, workers, args.n, data_dir / f"w{workers}.jsonl", cpu[workers]))
        load_after = os.getloadavg()
        print(f"synthesize on Ray, {args.n:,} calls per side, latency {args.latency:g} s, "
              f"concurrency {args.concurrency} per worker, best of {args.rounds}")
        print(f"{'workers':>8} {'calls/s':>9}")
        for workers, rate in best.items():
            print(f"{workers:>8} {rate:>9.0f}")
        print(f"ratio 2 workers / 1 worker: {best[2] / best[1]:.2f}x (target >= 1.6)")
        calls = args.n * args.rounds
        print("CPU ms per call, by process (all rounds):")
        for role in sorted(set(cpu[1]) | set(cpu[2]), key=lambda r: -cpu[1][r]):
            print(f"  {role:>14}: {1000 * cpu[1][role] / calls:6.2f} (1 worker) {1000 * cpu[2][role] / calls:6.2f} (2 workers)")
        print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); {os.cpu_count()} CPUs")
        store.close()
    finally:
        ray.shutdown()
        server.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
