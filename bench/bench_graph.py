"""Graph store benchmark: import 1M personas + 3M typed edges, then sample clusters and ego networks.

Generates personas from templates (age, occupation, place, activity, trait) with region attributes,
and typed edges whose endpoints are drawn with a power-law-ish skew (a few hubs, a long tail).
Imports them through the store's batched API (`upsert_personas`, `add_edges`) into a fresh data
folder with its own embedded FalkorDB, then samples 1,000 connected clusters (size 20) and 1,000
3-hop ego networks with `graph.traversal`, and does the same sampling with networkx on an
in-memory copy of the same graph in the same run. Reports rates and peak memory (the server's
peak RSS from /proc, the Python process's max RSS).

    python -m bench.bench_graph                 # the full run: 1M personas, 3M edges
    python -m bench.bench_graph --scale 0.01    # a quick run: 10k personas, 30k edges
    python -m bench.bench_graph --scale 0.1 --import-only   # the write path alone, 100k / 300k
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from bench.planted_duplicates import ACTIVITIES, AGES, OCCUPATIONS, PLACES, TRAITS
from personagraph.graph import server
from personagraph.graph.model import Edge, Persona, gc_paused
from personagraph.graph.store import GraphStore, StoreConfig, open_store
from personagraph.graph.traversal import connected_clusters, ego_networks

EDGE_TYPES = ("COLLEAGUE_OF", "NEIGHBOUR_OF", "FRIEND_OF", "PATIENT_OF", "SUPPLIER_OF", "PARENT_OF", "CUSTOMER_OF")
EDGE_TYPE_WEIGHTS = (0.3, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05)
DOMAINS = ("health", "education", "trade", "public service", "arts", "science", "transport", "home")
LANGUAGES = ("en", "en", "en", "zh", "es", "fr", "de", "hi")
CHUNK = 50_000  # personas / edges built in Python at a time, so the client never holds them all


def describe(i: int) -> tuple[str, dict[str, str]]:
    """The i-th template persona (distinct for every i below the product of the vocabularies) and its attributes."""
    i, age = divmod(i, len(AGES))
    i, occ = divmod(i, len(OCCUPATIONS))
    i, place = divmod(i, len(PLACES))
    i, act = divmod(i, len(ACTIVITIES))
    trait = i % len(TRAITS)
    text = f"A {AGES[age]} {OCCUPATIONS[occ]} from {PLACES[place]} who {ACTIVITIES[act]} and {TRAITS[trait]}."
    attrs = {
        "age_group": AGES[age],
        "occupation": OCCUPATIONS[occ],
        "domain": DOMAINS[occ % len(DOMAINS)],
        "language": LANGUAGES[(occ + place) % len(LANGUAGES)],
    }
    return text, attrs


def persona_chunks(n: int) -> Iterator[list[Persona]]:
    """`n` distinct personas, `CHUNK` at a time."""
    capacity = len(AGES) * len(OCCUPATIONS) * len(PLACES) * len(ACTIVITIES) * len(TRAITS)
    if n > capacity:
        raise ValueError(f"the templates give at most {capacity:,} distinct personas")
    for start in range(0, n, CHUNK):
        out = []
        for i in range(start, min(n, start + CHUNK)):
            text, attrs = describe(i)
            out.append(Persona(description=text, origin="bench", attributes=attrs))
        yield out


def power_law_edges(n_nodes: int, n_edges: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, type index) arrays: distinct typed pairs, no self-loops; endpoints skewed so that
    degrees follow a power-law-ish tail (node rank r is drawn with density ~ r^(-1/3))."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_nodes)  # hubs scattered over the id space, not the first rows imported
    picked = np.empty(0, dtype=np.int64)
    while picked.size < n_edges:
        m = int((n_edges - picked.size) * 1.1) + 16
        src = perm[(n_nodes * rng.random(m) ** 1.5).astype(np.int64)]
        dst = perm[(n_nodes * rng.random(m) ** 1.5).astype(np.int64)]
        typ = rng.choice(len(EDGE_TYPES), size=m, p=EDGE_TYPE_WEIGHTS)
        keys = (src * n_nodes + dst) * len(EDGE_TYPES) + typ
        keys = keys[src != dst]
        picked = np.unique(np.concatenate([picked, keys]))
    picked = rng.permutation(picked)[:n_edges]
    pair, typ = np.divmod(picked, len(EDGE_TYPES))
    src, dst = np.divmod(pair, n_nodes)
    return src, dst, typ


def rss_mib() -> float:
    """This process's resident memory now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def max_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def server_memory_mib(data_dir: Path) -> tuple[float, float]:
    """(current RSS, peak RSS) of the data folder's FalkorDB server, in MiB, from /proc."""
    st = server.status(data_dir)
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    if st.pid:
        for line in Path(f"/proc/{st.pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0] + ":"
            if key in values:
                values[key] = int(line.split()[1]) / 1024
    return values["VmRSS:"], values["VmHWM:"]


def cpu_seconds(data_dir: Path) -> tuple[float, float]:
    """(server, this process) CPU seconds used so far: wall time on a shared machine is noisy, CPU less so."""
    pid = server.status(data_dir).pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (int(fields[11]) + int(fields[12])) / tick, usage.ru_utime + usage.ru_stime


@dataclass
class Report:
    """Timings, rates and memory of one run, printed as a markdown table."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, what: str, value: str, note: str = "", **data: Any) -> None:
        self.rows.append((what, value, note))
        self.data.update(data)
        print(f"  {what}: {value}  {note}", flush=True)

    def markdown(self) -> str:
        lines = ["| measure | value | note |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.rows]
        return "\n".join(lines)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, seconds) of calling fn."""
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def nx_clusters(g: nx.Graph, seeds: list[int], size: int, rng: random.Random) -> dict[int, list[int]]:
    """The same random frontier expansion as `graph.traversal.connected_clusters`, on networkx in memory."""
    out: dict[int, list[int]] = {}
    for seed in seeds:
        members, frontier, on_frontier = [seed], [], set()
        in_cluster = {seed}
        newest = seed
        while len(members) < size:
            for nbr in g.adj[newest]:
                if nbr not in in_cluster and nbr not in on_frontier:
                    on_frontier.add(nbr)
                    frontier.append(nbr)
            if not frontier:
                break
            pick = rng.randrange(len(frontier))
            frontier[pick], frontier[-1] = frontier[-1], frontier[pick]
            newest = frontier.pop()
            on_frontier.discard(newest)
            in_cluster.add(newest)
            members.append(newest)
        out[seed] = members
    return out


def import_graph(store: GraphStore, n_nodes: int, edges: tuple[np.ndarray, np.ndarray, np.ndarray], report: Report,
                 cpu: Callable[[], tuple[float, float]] | None = None, gc_pause: bool = True,
                 overlap: bool = False) -> list[str]:
    """Write the personas, then the edges, through the batched store API; returns persona ids by index.

    Building the `Persona` / `Edge` objects (validation, content hashes) is timed apart from the writes;
    `cpu()`, if given, tells (server, client) CPU seconds so far, reported per phase. With `gc_pause` each chunk
    of objects is built inside `graph.model.gc_paused()`, as a bulk caller should (the store pauses
    the collector for its own part of every write). With `overlap` a second thread builds the next
    chunk of objects while the store writes this one (as a streaming importer would): the build
    times are then that thread's CPU seconds, and only the total wall time adds up.
    """
    pause = gc_paused if gc_pause else contextlib.nullcontext
    ids: list[str] = []
    src, dst, typ = edges

    def stages() -> Iterator[tuple[str, list[Any]]]:
        for chunk in persona_chunks(n_nodes):
            ids.extend(p.id for p in chunk)
            yield "personas", chunk
        for start in range(0, len(src), CHUNK):
            stop = start + CHUNK
            yield "edges", [Edge(source=ids[a], target=ids[b], type=EDGE_TYPES[t], props={"hop": 1})
                            for a, b, t in zip(src[start:stop].tolist(), dst[start:stop].tolist(), typ[start:stop].tolist())]

    build_s = {"personas": 0.0, "edges": 0.0}
    write_s = {"personas": 0.0, "edges": 0.0}
    gen = stages()

    def build_next() -> tuple[str, list[Any]] | None:
        clock = time.thread_time if overlap else time.perf_counter
        t0 = clock()
        with pause():
            item = next(gen, None)
        if item is not None:
            build_s[item[0]] += clock() - t0
        return item

    read_cpu = cpu or (lambda: (0.0, 0.0))
    cpu_at = {"start": read_cpu()}
    created = made = 0
    t_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as builder:
        ahead = builder.submit(build_next) if overlap else None
        while True:
            item = ahead.result() if ahead is not None else build_next()
            if item is None:
                break
            if overlap:
                ahead = builder.submit(build_next)
            kind, chunk = item
            if kind == "edges" and "personas" not in cpu_at:
                cpu_at["personas"] = read_cpu()
            t0 = time.perf_counter()
            if kind == "personas":
                created += store.upsert_personas(chunk).nodes_created
            else:
                made += store.add_edges(chunk).relationships_created
            write_s[kind] += time.perf_counter() - t0
    wall = time.perf_counter() - t_start
    cpu_at.setdefault("personas", read_cpu())
    cpu_at["edges"] = read_cpu()
    how = "CPU s of the building thread" if overlap else "wall"
    report.add("personas: build Persona objects", f"{build_s['personas']:.1f} s",
               f"{how}; {n_nodes / build_s['personas']:,.0f}/s (pydantic, content hashes)", persona_build_s=build_s["personas"])
    report.add("personas: upsert_personas", f"{created:,} in {write_s['personas']:.1f} s",
               f"{created / write_s['personas']:,.0f}/s", personas=created, persona_write_s=write_s["personas"])
    report.add("edges: build Edge objects", f"{build_s['edges']:.1f} s", f"{how}; {len(src) / build_s['edges']:,.0f}/s",
               edge_build_s=build_s["edges"])
    report.add("edges: add_edges", f"{made:,} in {write_s['edges']:.1f} s", f"{made / write_s['edges']:,.0f}/s",
               edges=made, edge_write_s=write_s["edges"])
    (s0, c0), (s1, c1), (s2, c2) = cpu_at["start"], cpu_at["personas"], cpu_at["edges"]
    if cpu is not None:
        report.add("CPU by phase", f"personas: server {s1 - s0:.1f} s, client {c1 - c0:.1f} s; edges: server {s2 - s1:.1f} s, client {c2 - c1:.1f} s",
                   "client includes building the objects",
                   persona_server_cpu_s=s1 - s0, persona_client_cpu_s=c1 - c0, edge_server_cpu_s=s2 - s1, edge_client_cpu_s=c2 - c1)
    writes = write_s["personas"] + write_s["edges"]
    if overlap:
        note = f"wall; objects built in a second thread while the store writes (writes alone {writes:.1f} s); target < 120 s"
    else:
        note = f"wall: building objects + writes, one after the other (writes alone {writes:.1f} s); target < 120 s"
    report.add("import total", f"{wall:.1f} s", note, import_s=wall)
    return ids


def run(scale: float, batch_size: int, seed: int, data_dir: Path, samples: int, cluster_size: int, hops: int,
        import_only: bool = False, gc_pause: bool = True, overlap: bool = False) -> Report:
    """The whole benchmark in one process; returns its report."""
    report = Report()
    n_nodes, n_edges = int(1_000_000 * scale), int(3_000_000 * scale)
    report.add("graph", f"{n_nodes:,} personas, {n_edges:,} edges",
               f"scale {scale}, batch {batch_size:,}, objects built with the collector {'paused' if gc_pause else 'running'}"
               + (", in a second thread" if overlap else ""))
    edges, gen_s = timed(lambda: power_law_edges(n_nodes, n_edges, seed))
    report.add("edge generation (numpy)", f"{gen_s:.1f} s")

    store = open_store(StoreConfig(data_dir=data_dir, graph="bench", batch_size=batch_size))
    cpu_before = cpu_seconds(data_dir)
    ids = import_graph(store, n_nodes, edges, report, lambda: cpu_seconds(data_dir), gc_pause, overlap)
    cpu_after = cpu_seconds(data_dir)
    report.add("CPU during import", f"server {cpu_after[0] - cpu_before[0]:.1f} s, client {cpu_after[1] - cpu_before[1]:.1f} s",
               "of the two cores; the rest of the wall time is waiting for a core",
               server_cpu_s=cpu_after[0] - cpu_before[0], client_cpu_s=cpu_after[1] - cpu_before[1])
    srv_now, srv_peak = server_memory_mib(data_dir)
    report.add("server RSS after import", f"{srv_now:,.0f} MiB", f"peak {srv_peak:,.0f} MiB, target < 3 GiB",
               server_rss_mib=srv_now, server_peak_mib=srv_peak)
    if import_only:
        store.close()
        restarts(data_dir, n_nodes, report)
        return report

    rand = random.Random(seed)
    seed_idx = rand.sample(range(n_nodes), samples)
    seed_ids = [ids[i] for i in seed_idx]

    clusters, cl_s = timed(lambda: connected_clusters(store, seed_ids, cluster_size, random.Random(seed)))
    sizes = [len(m) for m in clusters.values()]
    report.add(f"store: {samples:,} connected clusters (size {cluster_size})", f"{cl_s:.2f} s",
               f"{samples / cl_s:,.0f} clusters/s, mean size {np.mean(sizes):.1f}", store_cluster_s=cl_s)
    egos, ego_s = timed(lambda: ego_networks(store, seed_ids, hops))
    ego_sizes = [len(d) for d in egos.values()]
    report.add(f"store: {samples:,} {hops}-hop ego networks", f"{ego_s:.2f} s",
               f"{samples / ego_s:,.0f} egos/s, mean size {np.mean(ego_sizes):,.0f} personas", store_ego_s=ego_s)
    del egos
    srv_now, srv_peak = server_memory_mib(data_dir)
    report.add("server RSS after sampling", f"{srv_now:,.0f} MiB", f"peak {srv_peak:,.0f} MiB",
               server_rss_after_sampling_mib=srv_now, server_peak_mib=srv_peak)
    report.add("python max RSS before networkx", f"{max_rss_mib():,.0f} MiB", "client: generation, import, sampling",
               python_max_rss_before_nx_mib=max_rss_mib())
    store.close()

    before = rss_mib()
    src, dst, _ = edges

    def build() -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(range(n_nodes))
        g.add_edges_from(zip(src.tolist(), dst.tolist()))
        return g

    g, nx_build_s = timed(build)
    report.add("networkx: build undirected graph in memory", f"{nx_build_s:.1f} s",
               f"+{rss_mib() - before:,.0f} MiB RSS for the graph", nx_build_s=nx_build_s, nx_graph_mib=rss_mib() - before)
    nx_cl, nx_cl_s = timed(lambda: nx_clusters(g, seed_idx, cluster_size, random.Random(seed)))
    report.add(f"networkx: {samples:,} connected clusters (size {cluster_size})", f"{nx_cl_s:.2f} s",
               f"store/networkx time ratio {cl_s / nx_cl_s:.1f}", nx_cluster_s=nx_cl_s)
    nx_ego, nx_ego_s = timed(lambda: {s: nx.single_source_shortest_path_length(g, s, cutoff=hops) for s in seed_idx})
    same = all(len(nx_ego[i]) == n for i, n in zip(seed_idx, ego_sizes))
    report.add(f"networkx: {samples:,} {hops}-hop ego networks", f"{nx_ego_s:.2f} s",
               f"store/networkx time ratio {ego_s / nx_ego_s:.1f}; same sizes as the store: {same}", nx_ego_s=nx_ego_s)
    report.add("python max RSS at the end", f"{max_rss_mib():,.0f} MiB", "with the networkx graph",
               python_max_rss_mib=max_rss_mib())

    restarts(data_dir, n_nodes, report)
    return report


def restarts(data_dir: Path, n_nodes: int, report: Report) -> None:
    """Crash and restart the server: kill -9 of its process group right after the import, then a
    clean stop and start; each restart loads the AOF (RDB base + effects) and runs the index guard."""
    report.add("on disk after import", f"{server.status(data_dir).disk_bytes / 2**20:,.0f} MiB", "append-only files")
    pid = server.status(data_dir).pid
    assert pid is not None
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    while server.pid_alive(pid):
        time.sleep(0.01)
    (_, crash_s) = timed(lambda: server.ensure_running(data_dir))
    store = open_store(StoreConfig(data_dir=data_dir, graph="bench"), ensure_schema=False)
    kept = store.run("MATCH (p:Persona) RETURN count(p)").value()
    store.close()
    report.add("restart after kill -9 of the server group", f"{crash_s:.1f} s",
               f"{kept:,} of {n_nodes:,} personas there, target < 30 s", crash_restart_s=crash_s, kept=kept)
    (_, stop_s) = timed(lambda: server.stop(data_dir))
    report.add("db stop", f"{stop_s:.1f} s", "", stop_s=stop_s)
    (_, start_s) = timed(lambda: server.ensure_running(data_dir))
    report.add("db start", f"{start_s:.1f} s", "", start_s=start_s)
    server.stop(data_dir)


def main() -> None:
    """Parse options, run, print the report as markdown (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of 1M personas / 3M edges (0.01 = quick)")
    ap.add_argument("--batch-size", type=int, default=10_000, help="rows per UNWIND write query")
    ap.add_argument("--samples", type=int, default=1000, help="seeds for clusters and ego networks")
    ap.add_argument("--cluster-size", type=int, default=20)
    ap.add_argument("--hops", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--import-only", action="store_true", help="stop after the import (no sampling, no networkx)")
    ap.add_argument("--no-gc-pause", action="store_true", help="build the Persona / Edge objects with the garbage collector running")
    ap.add_argument("--overlap", action="store_true", help="build the next chunk of objects in a second thread while the store writes")
    ap.add_argument("--data-dir", type=Path, default=None, help="fresh data folder (default: a temporary one under /tmp, removed after)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON here")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="pgbench-", dir="/tmp"))
    try:
        report = run(args.scale, args.batch_size, args.seed, data_dir, args.samples, args.cluster_size, args.hops,
                     args.import_only, not args.no_gc_pause, args.overlap)
    finally:
        server.stop(data_dir)
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(report.markdown())
    if args.json:
        args.json.write_text(json.dumps(report.data, indent=2))


if __name__ == "__main__":
    main()
