"""MinHash candidate pairs on Ray Data, for persona sets past one machine's memory or patience.

The same pairs as `pairs.minhash_pairs`, computed as NeMo Curator's fuzzy dedup does:

1. band keys in parallel (`map_batches` over blocks of rows, each reading its rows' signatures from
   the one copy in the object store), one row per LSH band: (position, band, band key);
2. the rows grouped by a hash of (band, key) into partitions: a shuffle, so each bucket lands whole
   on one worker, which pairs its members as the local pass pairs a sorted run
   (`pairs.bucket_candidates`);
3. the candidates collected and verified by estimated Jaccard against the signatures, made unique
   across bands and cut to each persona's nearest (`pairs.verified_pairs`, the local pass's own).

Only (position, band, key) travel through the shuffle: 24 bytes per band row, not the signature
(num_perm x 4 bytes), which is read where it is needed instead. The dedup stage uses this when
`[run] executor = "ray"` (`on_ray`); the grouping, the merge and the Run node stay the local pass's.

    >>> pairs = ray_minhash_pairs(signatures, settings.dedup)   # ray.init() first, or it starts a local Ray
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from personagraph.config import DedupConfig, DedupMethod
from personagraph.dedup.pairs import MinhashPairs, Pairs, band_keys, bucket_candidates, new_lsh, verified_pairs
from personagraph.executor import RayExecutor, ray_module

# Band rows per shuffle partition: a partition is one `map_groups` call, so buckets are paired in
# vectorised batches rather than one Python call per bucket (most buckets hold one persona).
ROWS_PER_PARTITION = 250_000


def ray_minhash_pairs(signatures: np.ndarray, config: DedupConfig, method: DedupMethod | None = None,
                      blocks: int = 8) -> Pairs:
    """Pairs (rows of `signatures`) that share an LSH band and reach the Jaccard floor, found on Ray Data."""
    ray = ray_module()
    n = len(signatures)
    if n < 2:
        return verified_pairs(np.empty(0, dtype=np.int64), signatures, config, method)
    lsh = new_lsh(config, method)
    bands, rows, neighbours = lsh.b, lsh.r, config.minhash_neighbours
    partitions = max(blocks, n * bands // ROWS_PER_PARTITION)
    shared = ray.put(signatures)

    def band_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        position = batch["id"].astype(np.int64)
        keys = band_keys(ray.get(shared)[position], bands, rows)
        band = np.tile(np.arange(bands, dtype=np.int64), len(position))
        key = keys.reshape(-1)
        # Partition by (band, key): every row of one bucket meets in one group.
        part = ((key ^ (band.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))) % np.uint64(partitions)).astype(np.int64)
        return {"i": np.repeat(position, bands), "band": band, "key": key, "part": part}

    def partition_candidates(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"code": bucket_candidates(group["band"], group["key"], group["i"], n, neighbours)}

    found = (ray.data.range(n, override_num_blocks=blocks)
             .map_batches(band_rows, batch_format="numpy")
             .groupby("part", num_partitions=blocks)
             .map_groups(partition_candidates, batch_format="numpy")
             .to_numpy_refs())
    parts: list[dict[str, Any]] = ray.get(found)
    codes = np.concatenate([np.empty(0, dtype=np.int64), *(p["code"].astype(np.int64) for p in parts)])
    return verified_pairs(codes, signatures, config, method)


def on_ray(executor: RayExecutor) -> MinhashPairs:
    """The MinHash pairs of the dedup pass on the executor's Ray (joined or started), in `workers` blocks."""
    executor.ensure_ray()
    return functools.partial(ray_minhash_pairs, blocks=max(executor.workers, 2))
