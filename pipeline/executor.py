"""Where a stage's work runs: in this process, or spread over Ray workers (one machine or a cluster).

A stage that can be split (`Stage.shardable`) restricts its own work to a `Shard`: the personas,
frontier seeds or units whose id hashes to it (`Shard.owns`), or the input records at its positions
(`Shard.owns_position`). The executor hands each shard to a worker, which runs the stage's own
`run` there with its own LLM client and store connection and writes its batches straight to the
store through the same idempotent writers one process uses; the driver merges the shards' summaries
and usage (`Stage.merge_shards`) into one summary and one `Run` node. No stage has Ray code of its
own, and nothing here schedules anything Ray does not: a shard is a Ray task, and a worker that dies
has its task run again (`max_retries`), which rewrites the same nodes and rows (MERGE by content
hash; the LLM cache answers what it already asked).

    [run]
    executor = "ray"          # or "local"
    workers = 4               # shards, and tasks in flight
    ray_address = "auto"      # join a running cluster; unset = a local Ray on this machine

The shared store must be reachable by every worker: the embedded FalkorDB over its unix socket on
one machine, Neo4j by URL on a cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from personagraph.config import Settings
from personagraph.errors import UserActionNeeded

if TYPE_CHECKING:
    from personagraph.llm import Usage
    from personagraph.stage import Stage, StageContext, StageSummary

# Called in the worker as its shard progresses: (shard, items done); the tests' way to kill a worker mid-run.
ShardHook = Callable[["Shard", int], None]


class Shard(BaseModel):
    """One of `count` parts of a stage's work; the default (0 of 1) is all of it."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(default=0, ge=0)
    count: int = Field(default=1, ge=1)

    @property
    def whole(self) -> bool:
        """Whether this shard is all the work (one process)."""
        return self.count == 1

    def owns(self, key: str) -> bool:
        """Whether the item with id `key` is this shard's: a stable hash, the same in every process and run."""
        if self.count == 1:
            return True
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    def owns_position(self, position: int) -> bool:
        """Whether the input record at `position` (0-based) is this shard's."""
        return position % self.count == self.index

    def suffix(self) -> str:
        """A file-name part naming the shard ('' for the whole)."""
        return "" if self.whole else f".shard-{self.index:04d}-of-{self.count:04d}"


class ShardOutcome(BaseModel):
    """What a worker hands back: its shard, the stage's summary of that shard, and the LLM usage it spent."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    shard: Shard
    summary: Any
    usage: Any = None


class RayUnavailable(UserActionNeeded):
    """The Ray executor was asked for and Ray is not installed."""


def ray_module() -> Any:
    """The `ray` package, or an error that says which extra installs it."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(
            "the Ray executor needs Ray: pip install 'personagraph[ray]' (or set [run] executor = \"local\")"
        ) from exc
    return ray


class RayExecutor:
    """Runs a shardable stage as `workers` Ray tasks, one shard each, and merges what they hand back."""

    def __init__(self, workers: int = 2, address: str | None = None, max_retries: int = 3,
                 on_shard_progress: ShardHook | None = None) -> None:
        self.ray = ray_module()
        self.workers, self.address, self.max_retries = workers, address, max_retries
        self.on_shard_progress = on_shard_progress

    def ensure_ray(self) -> None:
        """Join the cluster at `address`, or start a local Ray, unless this process is already connected."""
        if not self.ray.is_initialized():
            self.ray.init(address=self.address, include_dashboard=False, log_to_driver=False)

    async def run(self, stage: Stage[Any], ctx: StageContext, run_id: str) -> tuple[StageSummary, Usage]:
        """Run every shard of `stage` on a worker; returns the merged summary and the LLM usage of all workers."""
        from personagraph.llm import Usage

        self.ensure_ray()
        outcomes: list[ShardOutcome] = []
        # Most stages are one pass; expansion is one per hop, each over the graph the one before left.
        passes = 0
        while (part := stage.next_pass(passes, [o.summary for o in outcomes])) is not None:
            outcomes += await self._run_pass(part, ctx, run_id)
            passes += 1
        usage = Usage()
        for outcome in outcomes:
            if outcome.usage is not None:
                usage.merge(outcome.usage)
        summary = await stage.merge_shards(ctx, run_id, [o.summary for o in outcomes])
        return summary, usage

    async def _run_pass(self, stage: Stage[Any], ctx: StageContext, run_id: str) -> list[ShardOutcome]:
        """Every shard of one pass on a worker, progress shown as it goes; the outcomes in shard order."""
        remote = self.ray.remote(max_retries=self.max_retries, retry_exceptions=False)(run_shard)
        shards = [Shard(index=i, count=self.workers) for i in range(self.workers)]
        board = _ProgressBoard(self.ray, len(shards))
        refs = [remote.remote(stage.model_copy(update={"shard": shard}), ctx.settings, run_id, board.actor,
                              self.on_shard_progress) for shard in shards]
        try:
            waiting = asyncio.gather(*refs)
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=0.5)
                await board.report(ctx)
                if done:
                    break
            return sorted(waiting.result(), key=lambda o: o.shard.index)
        finally:
            board.close()


POST_EVERY = 0.2  # seconds between a worker's progress posts to the board


class _ProgressBoard:
    """A small Ray actor the workers post their progress to, polled by the driver into one progress bar."""

    def __init__(self, ray: Any, shards: int) -> None:
        self.ray = ray
        self.actor = ray.remote(num_cpus=0)(_Board).remote(shards)

    async def report(self, ctx: StageContext) -> None:
        """Show the workers' progress, summed, in the driver's progress bar."""
        label, done, total = await self.actor.read.remote()
        if label:
            ctx.progress(label, done, total)

    def close(self) -> None:
        self.ray.kill(self.actor)


class _Board:
    """The actor's state: each shard's latest (label, done, total)."""

    def __init__(self, shards: int) -> None:
        self.latest: dict[int, tuple[str, int, int | None]] = {}

    def post(self, shard: int, label: str, done: int, total: int | None) -> None:
        self.latest[shard] = (label, done, total)

    def read(self) -> tuple[str, int, int | None]:
        if not self.latest:
            return "", 0, None
        totals = [t for _, _, t in self.latest.values()]
        total = None if any(t is None for t in totals) else sum(t for t in totals if t is not None)
        return next(iter(self.latest.values()))[0], sum(d for _, d, _ in self.latest.values()), total


def run_shard(stage: Stage[Any], settings: Settings, run_id: str, board: Any = None,
              hook: ShardHook | None = None) -> ShardOutcome:
    """In a worker: run one shard of `stage` with a store connection and an LLM client of this process's own."""
    from personagraph.graph.store import open_store
    from personagraph.llm import LLMClient
    from personagraph.stage import LazyLLM, StageContext, run_sync

    shard: Shard = stage.shard
    unposted: list[tuple[str, int, int | None]] = []  # the latest count not yet on the board
    posted_at = [0.0, ""]  # when, and the label

    def post(label: str, done: int, total: int | None) -> None:
        board.post.remote(shard.index, label, done, total)
        posted_at[:] = [time.monotonic(), label]
        unposted.clear()

    def progress(label: str, done: int, total: int | None) -> None:
        if hook is not None:
            hook(shard, done)
        if board is None:
            return
        # An actor call per item cost ~0.5 ms of the worker's CPU, a sixth of a synthesis call's
        # (bench/bench_ray.py): counts go to the board at most every POST_EVERY seconds, and at the end.
        if label == posted_at[1] and time.monotonic() - posted_at[0] < POST_EVERY and (total is None or done < total):
            unposted[:] = [(label, done, total)]
            return
        post(label, done, total)

    store = open_store(settings.store)
    lazy = LazyLLM(lambda: LLMClient.from_settings(settings))
    ctx = StageContext(settings=settings, store=store, lazy_llm=lazy, on_progress=progress)

    async def go() -> Any:
        try:
            return await stage.run(ctx, run_id)
        finally:
            await store.aclose()

    try:
        summary = run_sync(go())
        if unposted:
            post(*unposted[0])
        return ShardOutcome(shard=shard, summary=summary, usage=lazy.client.usage if lazy.started else None)
    finally:
        lazy.close()
        store.close()


def executor_for(settings: Settings, on_shard_progress: ShardHook | None = None) -> RayExecutor | None:
    """The executor `[run] executor` names: a `RayExecutor`, or None for this process."""
    run = settings.run
    if run.executor != "ray":
        return None
    return RayExecutor(workers=run.workers, address=run.ray_address, on_shard_progress=on_shard_progress)
