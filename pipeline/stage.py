"""The stage contract: what every step of the method is, so the API, the CLI and `run` compose them alike.

A stage is a small pydantic model built from its config section (plus the inputs of one call, such
as a file), with one async `run` that does the work and returns the stage's summary model, and an
`estimate` for `--dry-run`. Calling a stage (`await stage(ctx)`) runs it under a fresh run id and
records its `Run` node with the summary's numbers and the LLM tokens it spent: no stage writes its
own. The whole method is a list of stages (`personagraph.api.Graph.run`).

    >>> from personagraph.stage import StageSummary
    >>> StageSummary(run_id="r1", seconds=1.5).run_props()
    {'seconds': 1.5}
"""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from personagraph.config import Settings
from personagraph.executor import RayExecutor, Shard, executor_for
from personagraph.graph.store import GraphStore
from personagraph.llm.client import Estimate, Usage

if TYPE_CHECKING:
    from personagraph.llm import LLMClient

T = TypeVar("T")
S = TypeVar("S", bound="StageSummary")
M = TypeVar("M", bound=BaseModel)

# A progress report: (what is happening, how much is done, of how much; None = not known yet).
ProgressFn = Callable[[str, int, "int | None"], None]


def new_run_id(stage: str) -> str:
    """A run id that sorts by time: `<stage>-<yyyymmddHHMMSS>-<random>`."""
    return f"{stage}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, also when an event loop already runs here.

    In a notebook (Jupyter runs an event loop in the main thread) `asyncio.run` refuses; the
    coroutine then runs on a loop of its own in a worker thread while this thread waits.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="personagraph") as pool:
        return pool.submit(asyncio.run, coro).result()


def _flat(value: Any) -> Any:
    """A summary value as a Run-node property: numbers and text as they are, counters as `name: n` lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Counter):
        return [f"{k}: {v}" for k, v in value.most_common()]
    if isinstance(value, dict):
        return [f"{k}: {v}" for k, v in value.items() if isinstance(v, (int, float, str))]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if isinstance(v, (int, float, str, Path))]
    return value


class StageSummary(BaseModel):
    """What every stage returns: its run id and wall time, plus the stage's own numbers."""

    run_id: str = ""
    seconds: float = 0.0

    # Fields kept out of the Run node (long lists, or the same numbers in another shape).
    not_recorded: ClassVar[frozenset[str]] = frozenset()
    # The few numbers an end-of-run table shows (fields or properties; counters are summed).
    headline: ClassVar[tuple[str, ...]] = ()

    def headline_numbers(self) -> dict[str, Any]:
        """The `headline` numbers by name (all recorded ones when the summary names none)."""
        if not self.headline:
            return self.run_props()
        values = {name: getattr(self, name) for name in self.headline}
        return {k: sum(v.values()) if isinstance(v, dict) else v for k, v in values.items()}

    def run_props(self) -> dict[str, Any]:
        """Flat properties for the `Run` node: numbers, text and counts; nested models are left out."""
        props: dict[str, Any] = {}
        for name in type(self).model_fields:
            if name == "run_id" or name in self.not_recorded:
                continue
            value = _flat(getattr(self, name))
            if value is None or isinstance(value, BaseModel) or (isinstance(value, list) and not value):
                continue
            if isinstance(value, list) and not all(isinstance(v, str) for v in value):
                continue
            props[name] = value
        return props


def merge_summaries(summaries: list[M]) -> M:
    """One summary of a stage's shards: numbers and counters summed, lists joined, the first text kept.

        >>> a, b = StageSummary(run_id="r", seconds=1.0), StageSummary(run_id="r", seconds=2.0)
        >>> merge_summaries([a, b]).seconds  # wall time is the driver's, not a sum
        1.0
    """
    out = summaries[0].model_copy(deep=True)
    for other in summaries[1:]:
        for name in type(out).model_fields:
            if name in ("run_id", "seconds"):
                continue
            setattr(out, name, _merged(getattr(out, name), getattr(other, name)))
    return out


def _merged(a: Any, b: Any) -> Any:
    """Two shards' values of one summary field, as one."""
    if isinstance(a, bool):
        return a or b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        out = type(a)(a) if isinstance(a, Counter) else dict(a)
        for key, value in b.items():
            out[key] = _merged(out[key], value) if key in out else value
        return out
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    if isinstance(a, str):
        return a or b
    return a if a is not None else b


class StageEstimate(BaseModel):
    """What a stage would do (`--dry-run`): its own lines, and the LLM calls and rough tokens it would spend."""

    stage: str
    lines: list[tuple[str, str]] = Field(default_factory=list)
    llm: Estimate | None = None


class LazyLLM:
    """An LLM client made on first use: building one may start the embedded model, so only a stage that calls it pays."""

    def __init__(self, make: Callable[[], LLMClient]) -> None:
        self._make = make
        self._client: LLMClient | None = None

    @property
    def client(self) -> LLMClient:
        if self._client is None:
            self._client = self._make()
        return self._client

    @property
    def started(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class StageContext:
    """What a running stage may use: the settings, the store, the LLM client (made on first use), progress."""

    settings: Settings
    store: GraphStore
    lazy_llm: LazyLLM | None = None
    on_progress: ProgressFn | None = None
    executor: RayExecutor | None = None  # None: `[run] executor` decides (a shardable stage may go to Ray)

    @property
    def llm(self) -> LLMClient:
        """The LLM client, started (and, with no endpoint configured, the embedded model) on first use."""
        if self.lazy_llm is None:
            raise RuntimeError("this context has no LLM client")
        return self.lazy_llm.client

    @property
    def llm_started(self) -> bool:
        return self.lazy_llm is not None and self.lazy_llm.started

    def progress(self, description: str, done: int, total: int | None = None) -> None:
        """Report progress (a rich bar in the CLI and in notebooks; nothing when no one listens)."""
        if self.on_progress is not None:
            self.on_progress(description, done, total)


class Stage(BaseModel, ABC, Generic[S]):
    """One step of the method: built from its config section, run by `await stage(ctx)`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: ClassVar[str]
    # Whether a run leaves a `Run` node: stages that change the graph or write data do; queries do not.
    records_run: ClassVar[bool] = True
    # Whether the stage restricts its work to `shard`, so the Ray executor can spread it over workers.
    shardable: ClassVar[bool] = False

    shard: Shard = Field(default_factory=Shard, description="The part of the work this run does (all of it by default)")

    @abstractmethod
    async def run(self, ctx: StageContext, run_id: str) -> S:
        """Do the stage's work and return its summary (the Run node is the caller's, `__call__`)."""

    async def estimate(self, ctx: StageContext) -> StageEstimate:
        """What a run would do, calling and writing nothing; stages without LLM calls have nothing to count."""
        return StageEstimate(stage=self.name, lines=[("LLM calls", "none: this stage calls no model")])

    def recorded(self) -> bool:
        """Whether this run leaves a `Run` node (a dry run does not)."""
        return self.records_run

    def run_facts(self) -> dict[str, Any]:
        """The inputs worth keeping on the Run node beside the summary (a file, a task)."""
        return {}

    def next_pass(self, passes: int, done: list[S]) -> Stage[S] | None:
        """The stage to run as the executor's next pass over all shards, after `passes` passes that gave the
        shard summaries `done` (None: finished). One pass by default; expansion makes one per hop."""
        return None if passes else self

    async def merge_shards(self, ctx: StageContext, run_id: str, summaries: list[S]) -> S:
        """One summary from the shards' (in shard order), after every worker is done; a stage with
        per-shard files joins them here."""
        return merge_summaries(summaries)

    async def __call__(self, ctx: StageContext) -> S:
        """Run under a new run id, then record the `Run` node: the inputs, the summary and the LLM usage."""
        run_id = new_run_id(self.name)
        started = time.monotonic()
        usage_before = ctx.llm.usage.model_copy() if ctx.llm_started else None
        executor = (ctx.executor or executor_for(ctx.settings)) if self.shardable and self.shard.whole else None
        workers_usage: Usage | None = None
        try:
            if executor is not None:
                summary, workers_usage = await executor.run(self, ctx, run_id)
            else:
                summary = await self.run(ctx, run_id)
        finally:
            await ctx.store.aclose()  # the asyncio connection belongs to this loop, which ends with the call
        summary.run_id = summary.run_id or run_id
        summary.seconds = round(time.monotonic() - started, 3)
        if self.recorded():
            props: dict[str, Any] = {"stage": self.name, **{k: _flat(v) for k, v in self.run_facts().items()},
                                     **summary.run_props(), "seconds": summary.seconds}
            spent = Usage()
            if ctx.llm_started:
                usage = ctx.llm.usage
                spent.merge(usage.since(usage_before) if usage_before is not None else usage)
            if workers_usage is not None:
                spent.merge(workers_usage)
            if ctx.llm_started or workers_usage is not None:
                props |= spent.as_dict()
            await asyncio.to_thread(ctx.store.record_run, summary.run_id, props)
        return summary
