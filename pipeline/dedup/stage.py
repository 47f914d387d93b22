"""The batch dedup pass: find duplicate groups among live personas and merge each into a survivor."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from personagraph.graph.store import GraphStore, WriteStats
from personagraph.config import DedupConfig, DedupMethod
from personagraph.dedup.groups import DuplicateGroup, LinkedGroup, duplicate_groups, survivor_key
from personagraph.dedup.index import DedupIndex, index_folder, open_index
from personagraph.dedup.pairs import MinhashPairs, minhash_pairs
from personagraph.executor import executor_for
from personagraph.stage import ProgressFn, Stage, StageContext, StageSummary

MERGE_CHUNK = 1000
MERGE_PERSONAS = 10_000
# The groups a pass is merging, written before its first merge and removed when it is done: a pass
# stopped part-way (a crash, a killed server) leaves it, and the next one finishes those merges first.
PLAN_FILE = "merge_plan.json"


class DedupReport(StageSummary):
    """What a dedup pass found and (unless a dry run) merged."""

    headline: ClassVar[tuple[str, ...]] = ("personas", "group_count", "merged")

    personas: int = Field(default=0, description="Live personas examined")
    pairs: dict[str, int] = Field(default_factory=dict, description="Verified pairs per method")
    groups: list[DuplicateGroup] = Field(default_factory=list)
    merged: int = Field(default=0, description="Personas merged into a survivor")
    dry_run: bool = False
    write: WriteStats = Field(default_factory=WriteStats)

    @property
    def group_count(self) -> int:
        """Duplicate groups found."""
        return len(self.groups)


def survivor_groups(ids: list[str], groups: list[LinkedGroup], keys: dict[str, tuple[int, float, str]]) -> list[DuplicateGroup]:
    """Each linked group (positions into `ids`) with its representative as survivor, the rest ordered
    by their `keys` (`groups.survivor_key`)."""
    out = []
    for g in groups:
        rest = sorted((ids[m] for m in g.members if m != g.representative), key=keys.__getitem__)
        out.append(DuplicateGroup(survivor=ids[g.representative], duplicates=rest,
                                  similarity=g.similarity, methods=g.methods))
    out.sort(key=lambda g: (-len(g.duplicates), g.survivor))
    return out


def _save_plan(index_dir: Path, groups: list[DuplicateGroup]) -> Path:
    """Write the groups about to be merged beside the index (fsynced, replaced atomically); return the file."""
    index_dir.mkdir(parents=True, exist_ok=True)
    plan, tmp = index_dir / PLAN_FILE, index_dir / f"{PLAN_FILE}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump([g.model_dump() for g in groups], f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, plan)
    return plan


def _merge(store: GraphStore, groups: list[DuplicateGroup], report: DedupReport, progress: ProgressFn) -> None:
    """Merge `groups` into their survivors, adding to `report`."""
    # Merged in chunks: progress to show, and each chunk is a unit a crashed run does not redo. A
    # chunk is at most MERGE_CHUNK groups and, past its first group, MERGE_PERSONAS duplicates: the
    # groups come largest first, and at a million personas the first thousand took 40 s (every
    # member read with its properties) while the pass's memory reached its peak.
    start = 0
    while start < len(groups):
        end, size = start + 1, len(groups[start].duplicates)
        while end < len(groups) and end - start < MERGE_CHUNK and size + len(groups[end].duplicates) <= MERGE_PERSONAS:
            size += len(groups[end].duplicates)
            end += 1
        chunk = groups[start:end]
        report.write += store.merge_groups([(g.survivor, g.duplicates) for g in chunk])
        report.merged += size
        progress("merging duplicate groups", end, len(groups))
        start = end


def _finish_stopped_pass(store: GraphStore, index_dir: Path, progress: ProgressFn) -> DedupReport:
    """Merge the groups a stopped pass left in its plan, as that pass chose them, then drop the plan.

    Choosing again on the half-merged graph could pick other survivors (moved edges change degrees)
    and so end with another graph than an uninterrupted pass.
    """
    plan = index_dir / PLAN_FILE
    finished = DedupReport(personas=0)
    if not plan.exists():
        return finished
    groups = [DuplicateGroup.model_validate(g) for g in json.loads(plan.read_text(encoding="utf-8"))]
    present = store.get_personas([g.survivor for g in groups])  # a survivor deleted since (a purge) is skipped
    finished.groups = [g for g in groups if g.survivor in present]
    progress(f"finishing the merges of {len(finished.groups)} groups a stopped dedup pass left", 0, None)
    _merge(store, finished.groups, finished, progress)
    plan.unlink()
    return finished


def merge_duplicates(
    store: GraphStore,
    config: DedupConfig,
    index_dir: Path,
    method: DedupMethod | None = None,
    dry_run: bool = False,
    on_progress: ProgressFn | None = None,
    minhash: MinhashPairs = minhash_pairs,
) -> DedupReport:
    """Find near-duplicate live personas and merge each group into its survivor (or only list them).

    The survivor of a group is its most connected member, then the earliest created, then the
    smallest id. Signatures and vectors come from the dedup index beside the graph (synced first,
    so only personas new since the last run are hashed and embedded); after merging, the merged ids
    leave the index, which is saved with the graph's new fingerprint. The groups are saved before
    the first merge, so a pass stopped part-way is finished as it was chosen by the next one.
    `minhash` proposes the MinHash pairs (`ray_minhash.on_ray` for Ray Data); nothing else differs.
    """
    method = method or config.method
    step: ProgressFn = on_progress or (lambda _msg, _done, _total: None)

    def note(msg: str) -> None:
        step(msg, 0, None)

    finished = DedupReport(personas=0) if dry_run else _finish_stopped_pass(store, index_dir, step)
    note("syncing the dedup index with the graph")
    if method == config.method:
        index: DedupIndex = open_index(store, config, index_dir, step)
    else:
        # Another method than the persisted index serves: compute its arrays in memory only (the
        # persisted index resyncs from the changed fingerprint when it is next opened).
        index_config = config.model_copy(update={"method": method})
        index = DedupIndex(index_config)
        index.sync(store, step)
    rows = index.live_rows()
    ids = [index.ids[r] for r in rows]
    sigs, vecs = index.live_arrays()  # views, not copies, unless rows were removed since the last save
    note(f"finding duplicate pairs among {len(ids)} personas ({method})")
    # The survivor rule picks each group's representative, so the closure check (groups.duplicate_groups)
    # runs on the personas that will be left, and a rerun finds nothing more to merge.
    keys: dict[str, tuple[int, float, str]] = {}  # the survivor rule's sort key of each member met

    def survivors(groups: list[list[int]]) -> list[int]:
        fresh = sorted({ids[m] for g in groups for m in g} - keys.keys())
        degrees = store.degrees(fresh) if fresh else {}
        keys.update({pid: survivor_key(pid, degrees.get(pid, 0), index.created_at(pid)) for pid in fresh})
        return [min(g, key=lambda m: keys[ids[m]]) for g in groups]

    texts = [index.texts[r] for r in rows]
    pairs, linked = duplicate_groups(sigs, vecs, index.config, method, representatives=survivors, texts=texts,
                                     minhash=minhash, note=note)
    counts = pairs.counts()
    note(f"choosing survivors of {len(linked)} groups ({len(pairs)} verified pairs)")
    groups = survivor_groups(ids, linked, keys)
    report = DedupReport(personas=len(ids), pairs=counts, groups=finished.groups + groups, dry_run=dry_run,
                         merged=finished.merged, write=finished.write)
    if dry_run or not groups:
        return report
    plan = _save_plan(index_dir, groups)
    _merge(store, groups, report, step)
    index.forget(store, [d for g in groups for d in g.duplicates])
    if index.folder is not None:
        index.save()
    plan.unlink()
    return report


class Dedup(Stage[DedupReport]):
    """Merge near-duplicate live personas (MinHash and embeddings) into one survivor each, moving their edges."""

    name: ClassVar[str] = "dedup"
    config: DedupConfig = Field(default_factory=DedupConfig)
    method: DedupMethod | None = Field(default=None, description="Detectors for this pass (default: the config's)")
    dry_run: bool = Field(default=False, description="Only list the groups that would merge")

    def recorded(self) -> bool:
        return not self.dry_run

    async def run(self, ctx: StageContext, run_id: str) -> DedupReport:
        folder = index_folder(ctx.settings.store.data_dir, ctx.settings.store.graph)
        # Not a shardable stage (one grouping and merge over all personas): only its MinHash pairs go to Ray.
        executor = ctx.executor or executor_for(ctx.settings)
        if executor is not None:
            from personagraph.dedup.ray_minhash import on_ray

            minhash = on_ray(executor)
        else:
            minhash = minhash_pairs
        report = await asyncio.to_thread(merge_duplicates, ctx.store, self.config, folder, method=self.method,
                                         dry_run=self.dry_run, on_progress=ctx.progress,
                                         minhash=minhash)
        ctx.progress(f"dedup: {len(report.groups):,} groups, {report.merged:,} merged", 1, 1)
        return report
