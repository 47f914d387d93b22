"""The batch dedup pass: find duplicate groups among live personas and merge each into a survivor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from graph.store import GraphStore, WriteStats
from pipeline.config import DedupConfig
from pipeline.dedup.groups import Candidate, DuplicateGroup, UnionFind, choose_survivor
from pipeline.dedup.index import DedupIndex, open_index
from pipeline.dedup.pairs import Method, Pair, pairs_from_arrays


class DedupReport(BaseModel):
    """What a dedup pass found and (unless a dry run) merged."""

    personas: int = Field(description="Live personas examined")
    pairs: dict[str, int] = Field(default_factory=dict, description="Verified pairs per method")
    groups: list[DuplicateGroup] = Field(default_factory=list)
    merged: int = Field(default=0, description="Personas merged into a survivor")
    dry_run: bool = False
    write: WriteStats = Field(default_factory=WriteStats)


def build_groups(ids: list[str], pairs: list[Pair], candidates: dict[str, Candidate]) -> list[DuplicateGroup]:
    """Union-find over `pairs` (positions into `ids`); each group gets its survivor by the survivor rule."""
    uf: UnionFind[int] = UnionFind()
    for p in pairs:
        uf.union(p.a, p.b)
    weakest: dict[int, float] = {}
    methods: dict[int, set[str]] = {}
    for p in pairs:
        root = uf.find(p.a)
        weakest[root] = min(weakest.get(root, 1.0), p.similarity)
        methods.setdefault(root, set()).add(p.method)
    groups = []
    for members in uf.groups():
        root = uf.find(members[0])
        survivor, dups = choose_survivor(candidates[ids[m]] for m in members)
        groups.append(
            DuplicateGroup(survivor=survivor, duplicates=dups, similarity=weakest[root], methods=sorted(methods[root]))
        )
    groups.sort(key=lambda g: (-len(g.duplicates), g.survivor))
    return groups


def merge_duplicates(
    store: GraphStore,
    config: DedupConfig,
    index_dir: Path,
    method: Method | None = None,
    dry_run: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> DedupReport:
    """Find near-duplicate live personas and merge each group into its survivor (or only list them).

    The survivor of a group is its most connected member, then the earliest created, then the
    smallest id. Signatures and vectors come from the dedup index beside the graph (synced first,
    so only personas new since the last run are hashed and embedded); after merging, the merged ids
    leave the index, which is saved with the graph's new fingerprint.
    """
    method = method or config.method
    note = on_progress or (lambda _msg: None)
    # The index keeps what config.method needs; a method it does not cover widens it to both.
    covered = config.method in ("both", method)
    index_config = config if covered else config.model_copy(update={"method": "both"})
    note("syncing the dedup index with the graph")
    index: DedupIndex = open_index(store, index_config, index_dir)
    rows = index.live_rows()
    ids = [index.ids[r] for r in rows]
    sigs = index.signatures[rows] if index.use_minhash else None
    vecs = index.vectors[rows] if index.use_embedding else None
    note(f"finding duplicate pairs among {len(ids)} personas ({method})")
    pairs = pairs_from_arrays(sigs, vecs, index_config, method)
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.method] = counts.get(p.method, 0) + 1
    involved = sorted({ids[i] for p in pairs for i in (p.a, p.b)})
    degrees = store.degrees(involved) if involved else {}
    candidates = {
        pid: Candidate(id=pid, degree=degrees.get(pid, 0), created_at=index.created_at(pid)) for pid in involved
    }
    groups = build_groups(ids, pairs, candidates)
    report = DedupReport(personas=len(ids), pairs=counts, groups=groups, dry_run=dry_run)
    if dry_run or not groups:
        return report
    note(f"merging {len(groups)} groups")
    report.write = store.merge_groups([(g.survivor, g.duplicates) for g in groups])
    report.merged = sum(len(g.duplicates) for g in groups)
    index.forget(store, [d for g in groups for d in g.duplicates])
    index.save()
    return report
