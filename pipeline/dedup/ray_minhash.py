"""MinHash candidate pairs on Ray Data, for persona sets past one machine's memory or patience.

The same pairs as `pairs.minhash_pairs`, computed as NeMo Curator's fuzzy dedup does:

1. signatures in parallel (`map_batches`, the vectorised `MinHasher` of one process), each text
   emitting one row per LSH band: (position, band, band key, signature);
2. the rows grouped by (band, key): a shuffle, so each bucket lands whole on one worker;
3. candidate pairs inside each bucket (each member with its `minhash_neighbours` next members in
   position order, as the local pass pairs a sorted run) verified by estimated Jaccard there;
4. the pairs collected, made unique across bands and cut to each persona's nearest
   (`pairs.nearest`), ready for the union-find and merge of the batch pass (`groups.link_pairs`,
   `GraphStore.merge_groups`).

Rows carry their signature into the shuffle (num_perm x 4 bytes per band row): simple, and the
price of verifying inside the bucket; docs/scale.md puts numbers on it.

    >>> pairs = ray_minhash_pairs(texts, settings.dedup)       # ray.init() first, or it starts a local Ray
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from personagraph.config import DedupConfig, DedupMethod
from personagraph.dedup.minhash import estimated_jaccard
from personagraph.dedup.pairs import Pairs, band_keys, jaccard_floor, minhasher, nearest, new_lsh
from personagraph.executor import ray_module


def ray_minhash_pairs(texts: Sequence[str], config: DedupConfig, method: DedupMethod | None = None,
                      blocks: int = 8) -> Pairs:
    """Pairs (positions in `texts`) that share an LSH band and reach the Jaccard floor, found on Ray Data."""
    ray = ray_module()
    lsh = new_lsh(config, method)
    bands, rows = lsh.b, lsh.r
    floor, neighbours = jaccard_floor(config, method), config.minhash_neighbours

    def band_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        signatures = minhasher(config).signatures([str(t) for t in batch["text"]])
        keys = band_keys(signatures, bands, rows)
        n = len(signatures)
        return {"i": np.repeat(batch["i"], bands), "band": np.tile(np.arange(bands, dtype=np.int64), n),
                "key": keys.reshape(-1), "sig": np.repeat(signatures, bands, axis=0)}

    def bucket_pairs(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        order = np.argsort(group["i"], kind="stable")
        positions, signatures = group["i"][order], np.asarray(group["sig"])[order]
        found_a: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
        found_b: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
        found_sim: list[np.ndarray] = [np.empty(0, dtype=np.float32)]
        for d in range(1, min(neighbours, len(positions) - 1) + 1):
            sims = estimated_jaccard(signatures[:-d], signatures[d:])
            keep = sims >= floor
            found_a.append(positions[:-d][keep])
            found_b.append(positions[d:][keep])
            found_sim.append(sims[keep])
        return {"a": np.concatenate(found_a).astype(np.int64), "b": np.concatenate(found_b).astype(np.int64),
                "sim": np.concatenate(found_sim).astype(np.float32)}

    items = [{"i": i, "text": t} for i, t in enumerate(texts)]
    found = (ray.data.from_items(items, override_num_blocks=blocks)
             .map_batches(band_rows, batch_format="numpy")
             .groupby(["band", "key"], num_partitions=blocks)
             .map_groups(bucket_pairs, batch_format="numpy")
             .to_numpy_refs())
    parts: list[dict[str, Any]] = ray.get(found)
    a, b, sims = (np.concatenate([np.empty(0), *(p[k] for p in parts)]) for k in ("a", "b", "sim"))
    n = max(len(texts), 1)
    # A pair found in several bands counts once (its estimate is the same in each).
    codes, first = np.unique(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b).astype(np.int64), return_index=True)
    return nearest(Pairs.of(codes // n, codes % n, sims[first], "minhash"), neighbours)
