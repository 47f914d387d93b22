"""MinHash candidate pairs on Ray Data, for persona sets past one machine's memory or patience.

The same pairs as `pairs.minhash_pairs`, computed as NeMo Curator's fuzzy dedup does, and verified
where the buckets are rather than in the driver:

1. band keys in parallel (`map_batches` over `partitions` blocks of rows, each reading its rows'
   signatures from the one copy in the object store), one row per LSH band: (position, band, band
   key, group), the group a hash of (band, key);
2. the rows shuffled by group into `partitions` reducers (a range-partitioning sort), so each bucket
   lands whole on one reducer; each group there (`map_groups`) pairs its buckets' members as the
   local pass pairs a sorted run (`pairs.bucket_candidates`), keeps the distinct pairs whose
   estimated Jaccard, read from the shared signatures, reaches the floor (`pairs.jaccard_verified`)
   and cuts them to each persona's `minhash_neighbours` nearest among them (`pairs.nearest`);
3. the driver makes the groups' pairs unique (a pair sharing two bands can come from two groups)
   and cuts them to each persona's nearest over all of them (`pairs.nearest` again).

The groups' cut changes nothing: a pair among the `k` nearest of one of its ends over all pairs is
among them in any group that holds it (fewer pairs, ranked alike: by similarity, ties by code), so
every persona's `k` nearest reach the driver, whose cut then keeps exactly them. The result is
`minhash_pairs`'s, array for array, while only verified, trimmed pairs (12 bytes each) reach the
driver, not every candidate with its repeats across bands.

Only (position, band, key, group) travel through the shuffle: 22 bytes per band row, not the
signature (num_perm x 4 bytes), which is read where it is needed instead.

The dedup stage uses this when `[run] executor = "ray"` (`on_ray`); the grouping, the merge and the
Run node stay the local pass's.

    >>> pairs = ray_minhash_pairs(signatures, settings.dedup)   # ray.init() first, or it starts a local Ray
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from personagraph.config import DedupConfig, DedupMethod
from personagraph.dedup.pairs import (
    MinhashPairs,
    Pairs,
    band_keys,
    bucket_candidates,
    coded_pairs,
    jaccard_floor,
    jaccard_verified,
    nearest,
    new_lsh,
    verified_pairs,
)
from personagraph.executor import RayExecutor, ray_module

# Reducers per CPU: buckets are uneven (templated text makes a few large ones), and with one reducer
# per CPU the CPU that drew the heavy one works alone at the end. Each is a task of ~0.1 s overhead.
PARTITIONS_PER_CPU = 4
# Groups per reducer at least: the sort cuts its range between sampled group values, so a reducer
# holds a whole number of groups, and many small groups spread the rows evenly.
GROUPS_PER_PARTITION = 16
# Band rows per group at most on average: a group is one `map_groups` call, so buckets are paired
# and verified in vectorised batches, not one Python call per bucket (most hold one persona).
ROWS_PER_GROUP = 250_000


def ray_minhash_pairs(signatures: np.ndarray, config: DedupConfig, method: DedupMethod | None = None,
                      partitions: int = 8) -> Pairs:
    """Pairs (rows of `signatures`) that share an LSH band and reach the Jaccard floor, found and
    verified on Ray Data in `partitions` map tasks and reducers: `pairs.minhash_pairs`'s pairs."""
    ray = ray_module()
    n = len(signatures)
    if n < 2:
        return verified_pairs(np.empty(0, dtype=np.int64), signatures, config, method)
    lsh = new_lsh(config, method)
    bands, rows, k, floor = lsh.b, lsh.r, config.minhash_neighbours, jaccard_floor(config, method)
    groups = max(partitions * GROUPS_PER_PARTITION, n * bands // ROWS_PER_GROUP)
    shared = ray.put(signatures)

    def band_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        position = batch["id"].astype(np.int64)
        keys = band_keys(ray.get(shared)[position], bands, rows)
        band = np.tile(np.arange(bands, dtype=np.int16), len(position))
        key = keys.reshape(-1)
        # Group by (band, key): every row of one bucket meets in one group.
        group = ((key ^ (band.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))) % np.uint64(groups)).astype(np.int32)
        return {"i": np.repeat(position, bands), "band": band, "key": key, "group": group}

    def verified_in_group(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        candidates = bucket_candidates(group["band"], group["key"], group["i"], n, k)
        kept = nearest(coded_pairs(*jaccard_verified(candidates, ray.get(shared), floor), n), k)
        return {"code": kept.a * n + kept.b, "similarity": kept.similarity}

    positions = ray.data.range(n, override_num_blocks=partitions)
    _shuffle_in_tasks(positions.context)
    found = (positions
             .map_batches(band_rows, batch_format="numpy")
             .groupby("group")
             .map_groups(verified_in_group, batch_format="numpy")
             .to_numpy_refs())
    parts: list[dict[str, Any]] = ray.get(found)
    codes = np.concatenate([np.empty(0, dtype=np.int64), *(p["code"] for p in parts)])
    sims = np.concatenate([np.empty(0, dtype=np.float32), *(p["similarity"] for p in parts)])
    codes, first = np.unique(codes, return_index=True)
    return nearest(coded_pairs(codes, sims[first], n), k)


def _shuffle_in_tasks(context: Any) -> None:
    """Set this dataset's (not the process's) Ray Data context for a shuffle of plain tasks on all CPUs.

    The default hash shuffle starts aggregator actors on every run: 15-60 s here before any row
    moves (4-16 partitions, 2 CPUs), against under 1 s for the pull-based sort, which reuses the
    workers. Per-operator reservations would hold half the CPUs for the reducers, which wait for the
    sort anyway, and leave the band-key tasks one CPU of two.
    """
    from ray.data.context import ShuffleStrategy

    context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    context.op_resource_reservation_enabled = False


def on_ray(executor: RayExecutor) -> MinhashPairs:
    """The MinHash pairs of the dedup pass on the executor's Ray (joined or started): `PARTITIONS_PER_CPU`
    reducers for each of its `workers`."""
    executor.ensure_ray()
    return functools.partial(ray_minhash_pairs, partitions=PARTITIONS_PER_CPU * max(executor.workers, 1))
