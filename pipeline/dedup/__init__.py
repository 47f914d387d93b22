"""Dedup stage: near-duplicate personas found by MinHash and embeddings, merged as graph nodes.

- `minhash`: batch MinHash signatures (vectorised, datasketch-compatible).
- `embedding`: the offline all-MiniLM-L6-v2 encoder and faiss cosine search.
- `pairs`: candidate pairs from both detectors, verified against the thresholds.
- `groups`: union-find grouping with a complete-linkage guard, and the survivor rule.
- `index`: the persistent on-insert index beside the graph.
- `stage`: the batch pass (`merge_duplicates`) behind `personagraph dedup`.
"""

from personagraph.dedup.groups import (
    Candidate,
    DuplicateGroup,
    LinkedGroup,
    UnionFind,
    choose_survivor,
    duplicate_groups,
    find_duplicates,
    link_pairs,
)
from personagraph.dedup.pairs import Pairs

__all__ = [
    "Candidate", "DuplicateGroup", "LinkedGroup", "Pairs", "UnionFind", "choose_survivor", "duplicate_groups",
    "find_duplicates", "link_pairs",
]
