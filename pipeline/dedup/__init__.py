"""Dedup stage: near-duplicate personas found by MinHash and embeddings, merged as graph nodes.

- `minhash`: batch MinHash signatures (vectorised, datasketch-compatible).
- `embedding`: the offline all-MiniLM-L6-v2 encoder and faiss cosine search.
- `pairs`: candidate pairs from both detectors, verified against the thresholds.
- `groups`: union-find grouping and the survivor rule.
"""

from pipeline.dedup.groups import Candidate, DuplicateGroup, UnionFind, choose_survivor, group_pairs
from pipeline.dedup.pairs import Pair, find_duplicate_pairs

__all__ = [
    "Candidate", "DuplicateGroup", "Pair", "UnionFind", "choose_survivor", "find_duplicate_pairs", "group_pairs",
]
