"""Dedup benchmarks: batch MinHash vs datasketch's per-document loop, embedding throughput, a full pass.

    python -m bench.bench_dedup hashing --n 20000          # signatures/s, ours vs MinHash.update / bulk
    python -m bench.bench_dedup embedding --n 2000         # texts/s of all-MiniLM-L6-v2 on this CPU
    python -m bench.bench_dedup ann --n 100000             # IVF vs exact neighbours: time and recall of the pairs
    python -m bench.bench_dedup codes                      # the IVF's codes: 8-bit scalar vs 4-bit PQ fast scan
    python -m bench.bench_dedup full --n 1000000 --method both   # a real graph
    python -m bench.bench_dedup full --n 1000000 --method both --corpus real --precision int8
    python -m bench.bench_dedup full --n 1000000 --ray-workers 1 2   # MinHash pairs on a local Ray of 1, then 2 CPUs

Ratios are measured in one run on the same texts. `full` builds a planted corpus of about `n`
personas, imports it into a fresh embedded FalkorDB in a temporary folder, runs the dedup stage and
reports time per phase, peak memory of the pass (run in a child process, as `personagraph dedup`
would be) and of the FalkorDB server, and P/R.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from collections.abc import Callable
from typing import Any

from datasketch import MinHash

from bench.planted_duplicates import make_corpus, pair_scores
from personagraph.config import DedupConfig
from personagraph.dedup.minhash import MinHasher, words


def _shingles(text: str, k: int) -> list[bytes]:
    toks = words(text) or [""]
    return [" ".join(toks[i : i + k]).encode() for i in range(max(len(toks) - k + 1, 1))]


def bench_hashing(n: int, num_perm: int, k: int) -> None:
    """Signatures per second: vectorised batch vs datasketch update loop vs datasketch bulk."""
    texts = make_corpus(n, seed=1).texts[:n]
    t0 = time.perf_counter()
    for text in texts:
        m = MinHash(num_perm=num_perm)
        for sh in _shingles(text, k):
            m.update(sh)
    loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    MinHash.bulk((_shingles(t, k) for t in texts), num_perm=num_perm)
    bulk = time.perf_counter() - t0
    t0 = time.perf_counter()
    MinHasher(num_perm=num_perm, shingle_size=k).signatures(texts)
    ours = time.perf_counter() - t0
    print(f"{n} texts, num_perm={num_perm}, shingle={k} (tokenising included in all three)")
    print(f"  datasketch MinHash.update loop : {n / loop:10.0f} signatures/s")
    print(f"  datasketch MinHash.bulk        : {n / bulk:10.0f} signatures/s ({loop / bulk:.1f}x the loop)")
    print(f"  personagraph MinHasher (numpy) : {n / ours:10.0f} signatures/s ({loop / ours:.1f}x the loop)")


def bench_embedding(n: int, batch_size: int) -> None:
    """Texts per second of the packaged all-MiniLM-L6-v2 on this CPU."""
    import torch

    from personagraph.dedup.embedding import embed, load_encoder

    texts = make_corpus(n, seed=2).texts[:n]
    load_encoder()
    embed(texts[:64])
    t0 = time.perf_counter()
    embed(texts, batch_size)
    took = time.perf_counter() - t0
    print(f"{n} texts, batch {batch_size}, torch threads {torch.get_num_threads()}: {n / took:.0f} texts/s")


def bench_ann(n: int, sizes: list[int], nprobes: list[int], threshold: float, k: int) -> None:
    """Exact vs IVF neighbour pairs on embeddings of a planted templated corpus: seconds and recall
    of the exact pairs at each size (nested prefixes of one corpus), for each nprobe."""
    import numpy as np

    from personagraph.dedup.embedding import embed, similar_pairs

    cache = Path(tempfile.gettempdir()) / f"personagraph-bench-ann-{n}.npy"
    if cache.is_file():
        vectors = np.load(cache)
    else:
        t0 = time.perf_counter()
        vectors = embed(make_corpus(int(n / 1.6), seed=4, activities=2, min_differing=1).texts[:n])
        print(f"embedded {len(vectors)} planted personas in {time.perf_counter() - t0:.0f}s (cached in {cache})")
        np.save(cache, vectors)
    for size in sizes:
        sub = vectors[:size]
        t0 = time.perf_counter()
        exact = similar_pairs(sub, threshold, k)
        flat = time.perf_counter() - t0
        truth = set(zip(exact[0].tolist(), exact[1].tolist()))
        print(f"{size:>8} vectors: exact {flat:7.1f}s, {len(truth)} pairs at cosine >= {threshold}", flush=True)
        for nprobe in nprobes:
            t0 = time.perf_counter()
            a, b, _ = similar_pairs(sub, threshold, k, ann_min_size=2, nprobe=nprobe)
            took = time.perf_counter() - t0
            recall = len(truth & set(zip(a.tolist(), b.tolist()))) / max(len(truth), 1)
            print(f"          IVF nprobe {nprobe:3d}: {took:7.1f}s ({flat / took:5.1f}x faster), recall {recall:.4f}",
                  flush=True)


def _printer(t0: float) -> Callable[[str, int, int | None], None]:
    """A progress callback that prints each phase once and counted work every tenth of the way."""
    last: dict[str, int] = {}

    def show(msg: str, done: int, total: int | None) -> None:
        step = max(1, (total or 1) // 10)
        if total and last.get(msg, -step) + step > done and done < total:
            return
        last[msg] = done
        counted = f" {done:,}/{total:,}" if total else ""
        print(f"  {time.perf_counter() - t0:7.1f}s  {msg}{counted}  (RSS {_rss_mb(os.getpid()) :.0f} MB peak)", flush=True)

    return show


def bench_codes(n: int, queries: int, list_size: int, nprobe: int, threshold: float, k: int) -> None:
    """IVF with 8-bit scalar codes (the index before) vs 4-bit PQ fast-scan codes (`ann_index` now): build
    and search time and recall of the exact pairs, for `queries` rows of `n` vectors.

    The vectors are the `ann` cache (100k planted personas) plus randomly rotated copies of it: rotated
    copies keep the neighbourhood structure and add no duplicates. Lists hold `list_size` vectors, as
    ~4 sqrt(n) lists do at a million (250), so the per-query scan costs what it would at 1M."""
    import faiss
    import numpy as np

    from personagraph.dedup.embedding import ann_index, rerank

    cache = Path(tempfile.gettempdir()) / "personagraph-bench-ann-100000.npy"
    if not cache.is_file():
        bench_ann(100_000, [], [], threshold, k)  # embeds and caches the vectors
    base = np.load(cache)
    rng = np.random.default_rng(0)
    parts = [base]
    while sum(len(p) for p in parts) < n:
        rotation, _ = np.linalg.qr(rng.standard_normal((base.shape[1], base.shape[1])).astype(np.float32))
        parts.append((base @ rotation).astype(np.float32))
    x = np.ascontiguousarray(np.concatenate(parts)[:n])
    q = x[:queries]
    nlist = max(1, n // list_size)
    t0 = time.perf_counter()
    sims, ids = faiss.knn(q, x, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    print(f"{n} vectors, {nlist} lists, {queries} queries; exact search {time.perf_counter() - t0:.1f}s", flush=True)
    truth = {(i, j) for i, (s, row) in enumerate(zip(sims, ids)) for v, j in zip(s, row) if v >= threshold and j != i}

    def scalar8() -> Any:
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(x.shape[1]), x.shape[1], nlist,
                                              faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        index.train(x[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))])
        index.add(x)
        index.nprobe = nprobe
        return index

    def pq4() -> Any:
        return ann_index(x, nprobe, nlist=nlist)

    for name, build, ask in (("IVF, 8-bit scalar codes, k+1", scalar8, k + 1), ("IVF, 4-bit PQ fast scan, 2(k+1) re-ranked", pq4, 2 * (k + 1))):
        t0 = time.perf_counter()
        index = build()
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        s, found_ids = rerank(q, x, index.search(q, ask)[1], k + 1)
        took = time.perf_counter() - t0
        found = {(i, j) for i, (row_s, row) in enumerate(zip(s, found_ids)) for v, j in zip(row_s, row) if v >= threshold and j != i}
        print(f"  {name}: build {built:.1f}s, search {took:.2f}s ({queries / took:,.0f} rows/s), "
              f"recall {len(truth & found) / max(len(truth), 1):.4f} of {len(truth)} pairs", flush=True)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_full(n: int, method: str, minhash_threshold: float | None, ray_workers: list[int] | None = None,
               corpus_kind: str = "templated", precision: str | None = None) -> None:
    """Import a planted corpus into a fresh embedded graph and run the dedup stage over it; with
    `ray_workers`, once per count, each on a fresh import, the MinHash pairs on a local Ray of that many CPUs.

    `corpus_kind` "templated": `planted_duplicates.make_corpus` (34.6 tokens a persona); "real": real
    personas' openings and endings recombined, with planted edits (`planted_edits.recombined`, 20
    tokens, as long as real personas: the encoder's cost is per token)."""
    t0 = time.perf_counter()
    if corpus_kind == "real":
        from bench.planted_edits import recombined

        corpus: Any = recombined(n, seed=4)
        n_base = len(set(corpus.cluster))
    else:
        n_base = int(n / 1.6)  # make_corpus adds ~0.6 copies per base at the default share
        # Two activities per persona: enough distinct combinations for a million personas.
        corpus = make_corpus(n_base, seed=4, activities=2, min_differing=1)
    print(f"corpus ({corpus_kind}): {len(corpus.texts)} personas ({n_base} distinct) built in {time.perf_counter() - t0:.0f}s")
    for workers in ray_workers or [0]:
        _full_pass(corpus, method, minhash_threshold, workers, precision)


def _full_pass(corpus: Any, method: str, minhash_threshold: float | None, workers: int, precision: str | None) -> None:
    """One import and dedup pass over `corpus` (`workers` > 0: MinHash pairs on a local Ray of that many CPUs).

    The pass runs in a fresh child process, as `personagraph dedup` would: its peak memory is the pass's
    own, not the corpus this process keeps for scoring (1.2 GB at a million personas).
    """
    from personagraph.graph import server
    from personagraph.graph.model import Persona
    from personagraph.graph.store import FalkorStore, StoreConfig

    folder = Path(tempfile.mkdtemp(prefix="pgb-", dir="/tmp"))
    try:
        server.ensure_running(folder)
        store = FalkorStore(StoreConfig(data_dir=folder, graph="bench", batch_size=10_000))
        store.ensure_schema()
        t0 = time.perf_counter()
        store.upsert_personas([Persona(description=t) for t in corpus.texts])
        store.close()
        print(f"import: {time.perf_counter() - t0:.0f}s", flush=True)
        pos = {Persona(description=t).id: i for i, t in enumerate(corpus.texts)}
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as child:
            done = child.submit(_dedup_child, folder, method, minhash_threshold, precision, workers).result()
        p, r = pair_scores([[pos[i] for i in g] for g in done["groups"]], corpus.cluster)
        server_pid = server.status(folder).pid or 0
        print(f"dedup pass ({method}{f', Ray {workers} CPU(s)' if workers else ''}): {done['seconds']:.0f}s for "
              f"{done['personas']} personas, {len(done['groups'])} groups, {done['merged']} merged; P={p:.3f} R={r:.3f}")
        print(f"peak RSS: the pass's process {done['peak_mb']:.0f} MB"
              + (f", FalkorDB {_rss_mb(server_pid):.0f} MB" if server_pid else ""))
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _dedup_child(folder: Path, method: str, minhash_threshold: float | None, precision: str | None,
                 workers: int) -> dict[str, Any]:
    """The dedup pass over the store in `folder`, in this (child) process: groups as persona ids
    (survivor first), seconds, personas, merged, and this process's peak RSS in MB."""
    from personagraph.dedup.pairs import minhash_pairs
    from personagraph.dedup.stage import merge_duplicates
    from personagraph.graph.store import FalkorStore, StoreConfig

    minhash = minhash_pairs
    if workers:
        import ray

        from personagraph.dedup.ray_minhash import on_ray
        from personagraph.executor import RayExecutor

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        minhash = on_ray(RayExecutor(workers=workers))
        print(f"-- MinHash pairs on a local Ray of {workers} CPU(s)", flush=True)
    store = FalkorStore(StoreConfig(data_dir=folder, graph="bench", batch_size=10_000))
    config = DedupConfig(method=method)  # type: ignore[arg-type]
    if minhash_threshold is not None:
        config = config.model_copy(update={"minhash_threshold": minhash_threshold})
    if precision is not None:
        config = config.model_copy(update={"embedding_precision": precision})
    t0 = time.perf_counter()
    report = merge_duplicates(store, config, folder / "dedup", method=method,  # type: ignore[arg-type]
                              on_progress=_printer(t0), minhash=minhash)
    seconds = time.perf_counter() - t0
    store.close()
    if workers:
        ray.shutdown()
    return {"groups": [[g.survivor, *g.duplicates] for g in report.groups], "seconds": seconds,
            "personas": report.personas, "merged": report.merged,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    """Command line of the dedup benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    h = sub.add_parser("hashing")
    h.add_argument("--n", type=int, default=20_000)
    h.add_argument("--num-perm", type=int, default=128)
    h.add_argument("--shingle", type=int, default=DedupConfig().shingle_size)
    e = sub.add_parser("embedding")
    e.add_argument("--n", type=int, default=2000)
    e.add_argument("--batch-size", type=int, default=64)
    a = sub.add_parser("ann")
    a.add_argument("--n", type=int, default=100_000, help="planted personas to embed (cached in the temp folder)")
    a.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    a.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32])
    a.add_argument("--threshold", type=float, default=DedupConfig().embedding_threshold)
    a.add_argument("--k", type=int, default=DedupConfig().embedding_neighbours)
    c = sub.add_parser("codes", help="IVF index codes: 8-bit scalar vs 4-bit PQ fast scan, at 1M's list size")
    c.add_argument("--n", type=int, default=200_000)
    c.add_argument("--queries", type=int, default=20_000)
    c.add_argument("--list-size", type=int, default=250)
    c.add_argument("--nprobe", type=int, default=DedupConfig().ann_nprobe)
    c.add_argument("--threshold", type=float, default=DedupConfig().embedding_threshold)
    c.add_argument("--k", type=int, default=DedupConfig().embedding_neighbours)
    f = sub.add_parser("full")
    f.add_argument("--n", type=int, default=1_000_000)
    f.add_argument("--method", default="minhash", choices=["minhash", "embedding", "both"])
    f.add_argument("--minhash-threshold", type=float, default=None, help="override the default J (0.7+ for MinHash alone)")
    f.add_argument("--corpus", default="templated", choices=["templated", "real"],
                   help="templated personas, or real personas' parts recombined (as long as real personas)")
    f.add_argument("--precision", default=None, choices=["fp32", "int8"], help="the encoder's (default: the config's)")
    f.add_argument("--ray-workers", type=int, nargs="+", default=None, help="run once per count with the MinHash pairs on a local Ray of that many CPUs")
    args = parser.parse_args()
    if args.what == "hashing":
        bench_hashing(args.n, args.num_perm, args.shingle)
    elif args.what == "ann":
        bench_ann(args.n, args.sizes, args.nprobe, args.threshold, args.k)
    elif args.what == "codes":
        bench_codes(args.n, args.queries, args.list_size, args.nprobe, args.threshold, args.k)
    elif args.what == "embedding":
        bench_embedding(args.n, args.batch_size)
    else:
        bench_full(args.n, args.method, args.minhash_threshold, args.ray_workers, args.corpus, args.precision)


if __name__ == "__main__":
    main()
