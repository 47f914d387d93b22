"""Persona-to-Persona: grow the graph outwards from its personas, hop by hop, one typed edge per proposal.

Each round takes the frontier (accepted, unexpanded personas at hop h, one Cypher query), asks the
LLM for `fanout` people per seed and relation, and writes what comes back: new personas at hop h+1
(origin `expand`, status from the inline filter) and a typed edge per proposal. A proposal that
matches an existing persona becomes an edge to that persona (a cross-link), so expansion grows one
connected social graph rather than a forest of trees.

    >>> summary = personagraph.open(".personagraph").expand(hops=2, fanout=3)
    >>> summary.created, summary.linked, summary.rejected

Crash safety: the frontier is walked in a fixed order, in chunks of `chunk_seeds` seeds. Results
stream out of the LLM layer in completion order, but a chunk is written only when all its answers
are in and every earlier chunk is written, in seed order, and in one query that also marks its
seeds expanded (all of it lands or none of it). So whatever point a run is killed at, the expanded
seeds are a prefix of whole chunks, and a rerun (answered from the LLM cache without new calls)
writes the same chunks in the same order: the graph ends up the same as after an uninterrupted run.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field, ModelWrapValidatorHandler, PrivateAttr, model_validator

from personagraph import prompts
from personagraph.graph.model import REGION_ATTRIBUTES, Edge, Persona, PersonaStatus, canonical_attributes, persona_id
from personagraph.graph.store import GraphStore
from personagraph.config import ExpandConfig, FilterConfig
from personagraph.dedup.embedding import embed
from personagraph.dedup.index import DedupIndex, index_folder, open_index
from personagraph.filter import cheap_checks, tidy_description, verdict_reasons
from personagraph.llm import Estimate, LLMClient, LLMRequest, LLMResult
from personagraph.relations import Relation, RelationError, RelationVocabulary, normalise_relation, relation_key
from personagraph.executor import Shard
from personagraph.stage import Stage, StageContext, StageEstimate, StageSummary, merge_summaries
from personagraph.targets import TargetGap, focus_from_gaps, load_targets, target_gaps, targets_met

MAX_ERRORS_KEPT = 100


class ProposedPersona(BaseModel):
    """One related person the LLM proposes, with the attributes regions are counted by."""

    description: str = Field(description="One or two sentences describing one specific person")
    age_group: Literal["child", "teenager", "young_adult", "adult", "older_adult"] | None = None
    occupation: str | None = None
    domain: str | None = Field(default=None, description="Field of life or work")
    visibility: Literal["public-facing", "behind-the-scenes"] | None = None
    language: str | None = Field(default=None, description="ISO code of the language the person mainly speaks")
    relation: str | None = Field(default=None, description="A more specific relation name, if one fits better")
    _dropped: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _canonical(cls, data: Any, handler: ModelWrapValidatorHandler[ProposedPersona]) -> ProposedPersona:
        """Region attributes mapped onto the vocabulary before their types are checked; a value that fits
        none is dropped (an answer is not failed for it) and remembered in `dropped`, for the run's count."""
        dropped: dict[str, str] = {}
        if isinstance(data, dict):
            kept, dropped = canonical_attributes(data)
            data = {**data, **{key: kept.get(key) for key in REGION_ATTRIBUTES}}
        model = handler(data)
        model._dropped = dropped
        return model

    @property
    def dropped(self) -> dict[str, str]:
        """Attributes given with a value that fits none (name -> value given)."""
        return self._dropped

    def attributes(self) -> dict[str, str]:
        """The region attributes that were given, canonical."""
        return {key: value for key in REGION_ATTRIBUTES if (value := getattr(self, key))}


class Proposals(BaseModel):
    """The structured answer to one expansion request: the related people proposed."""

    personas: list[ProposedPersona] = Field(default_factory=list)


class RoundStats(BaseModel):
    """One round (hop) of expansion: its size and where its time went."""

    hop: int
    focus: dict[str, list[str]] = Field(default_factory=dict, description="The regions the round aimed at")
    seeds: int = 0
    requests: int = 0
    wall_seconds: float = 0.0
    graph_seconds: float = Field(default=0.0, description="Frontier query, dedup lookup, writes, marking seeds")
    filter_seconds: float = Field(default=0.0, description="Inline filter checks of the proposals")


class ExpandSummary(StageSummary):
    """What a run did: the report `personagraph expand` prints and the Run node stores."""

    headline: ClassVar[tuple[str, ...]] = ("seeds_expanded", "created", "linked", "edges_created", "rejected", "attributes_dropped", "stopped_by")

    seeds_expanded: int = 0
    requests: int = 0
    failed_requests: int = 0
    proposals: int = 0
    created: int = 0
    linked: int = 0
    rejected: Counter[str] = Field(default_factory=Counter)
    relation_rejected: Counter[str] = Field(default_factory=Counter)
    attributes_dropped: Counter[str] = Field(default_factory=Counter, description="Attribute values that fit no value, per attribute")
    edges_created: int = 0
    edge_types: Counter[str] = Field(default_factory=Counter)
    stopped_by: str = "frontier empty"
    rounds: list[RoundStats] = Field(default_factory=list)
    usage: dict[str, int | list[str]] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list, description=f"The first {MAX_ERRORS_KEPT} failed requests")
    target_gaps: list[TargetGap] = Field(default_factory=list, description="With targets: each targeted value's share at the end")

    def run_props(self) -> dict[str, Any]:
        """Flat numbers for the Run node."""
        return {
            "seeds_expanded": self.seeds_expanded, "requests": self.requests, "failed_requests": self.failed_requests,
            "proposals": self.proposals, "created": self.created, "linked": self.linked,
            "rejected": sum(self.rejected.values()), "rejected_reasons": [f"{k}: {v}" for k, v in self.rejected.most_common()],
            "relations_rejected": sum(self.relation_rejected.values()), "edges_created": self.edges_created,
            "attributes_dropped": sum(self.attributes_dropped.values()),
            "attributes_dropped_by": [f"{k}: {v}" for k, v in self.attributes_dropped.most_common()],
            "stopped_by": self.stopped_by, "rounds": len(self.rounds),
            "graph_seconds": round(sum(r.graph_seconds for r in self.rounds), 3),
            "filter_seconds": round(sum(r.filter_seconds for r in self.rounds), 3),
            "wall_seconds": round(sum(r.wall_seconds for r in self.rounds), 3),
            **({"target_gaps": [f"{g.attribute}={g.value}: {g.actual:.3f} of {g.target:.3f}" for g in self.target_gaps]}
               if self.target_gaps else {}),
        }


class PersonaMatcher(Protocol):
    """Answers "does this persona exist already?" for proposals, and learns the personas written.

    Async, as the expansion's writer calls it on the event loop that streams the LLM's answers.
    """

    async def match(self, descriptions: Sequence[str]) -> list[str | None]:
        """For each description, the id of the existing persona it duplicates, or None."""

    async def add(self, ids: Sequence[str], descriptions: Sequence[str]) -> None:
        """Record personas just written."""


class ExactMatcher:
    """Exact matching by content hash against the graph itself (a merged id resolves to its survivor)."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    async def match(self, descriptions: Sequence[str]) -> list[str | None]:
        ids = [persona_id(d) for d in descriptions]
        found = await self.store.amatch_ids(ids)
        return [found.get(pid) for pid in ids]

    async def add(self, ids: Sequence[str], descriptions: Sequence[str]) -> None:
        """Nothing to record: the graph is the index."""


class IndexMatcher:
    """Near-duplicate matching through the dedup index (exact id, MinHash, embeddings; see pipeline.dedup.index).

    Its lookups and additions are CPU work (hashing, embedding), done in a worker thread.
    """

    def __init__(self, index: DedupIndex) -> None:
        self.index = index

    async def match(self, descriptions: Sequence[str]) -> list[str | None]:
        found = await asyncio.to_thread(self.index.lookup_many, descriptions)
        return [m.id if m is not None else None for m in found]

    async def add(self, ids: Sequence[str], descriptions: Sequence[str]) -> None:
        await asyncio.to_thread(self.index.add, ids, descriptions, [time.time()] * len(ids))


def _embed_once(texts: Sequence[str]) -> np.ndarray:
    """Embeddings of `texts`, encoding each distinct text once (a seed recurs in every one of its proposals)."""
    unique = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(unique)}
    return embed(unique)[[position[t] for t in texts]]


ProposalCheck = Callable[[Sequence[str], Sequence[str]], list[list[str]]]


def inline_check(config: FilterConfig, relevance: bool = True) -> ProposalCheck:
    """The filter's cheap checks as reasons per proposal (relevance to the seed only if `relevance`); the
    seed is the text a proposal was made from, so the seed restated is rejected too (`max_seed_overlap`,
    `restates_seed`)."""
    against_seed = config.model_copy(update={"max_source_overlap": config.max_seed_overlap})

    def check(descriptions: Sequence[str], seeds: Sequence[str]) -> list[list[str]]:
        verdicts = cheap_checks(descriptions, seeds, against_seed, embed_fn=_embed_once, sources=seeds,
                                relevance=relevance)
        return [verdict_reasons(v) for v in verdicts]

    return check


def choose_relations(seed_id: str, candidates: Sequence[Relation], k: int) -> list[Relation]:
    """The `k` relations asked about for a seed: a stable pseudo-random pick, so every run picks alike."""
    ranked = sorted(candidates, key=lambda r: hashlib.blake2b(f"{seed_id}/{r.name}".encode(), digest_size=8).digest())
    return ranked[:k]


def describe_region(focus: Mapping[str, Sequence[str]]) -> str:
    """The region line of the prompt: 'age_group = child; visibility = behind-the-scenes', or 'any'."""
    if not focus:
        return "any"
    return "; ".join(f"{key} = {' or '.join(values)}" for key, values in focus.items())


@dataclass
class _Chunk:
    """Answers for one chunk of seeds, collected until all of them are in."""

    index: int
    seeds: list[dict[str, Any]]
    requested: dict[str, int] = field(default_factory=Counter)
    results: list[LLMResult] = field(default_factory=list)
    closed: bool = False
    cut_short: str = ""  # a seed whose relations a budget stopped part-way

    def complete(self) -> bool:
        return self.closed and len(self.results) == sum(self.requested.values())


@dataclass
class _Meta:
    """What an expansion request is about; rides on the LLM request."""

    chunk: int
    seed_pos: int
    rel_pos: int
    seed: dict[str, Any]
    relation: Relation


class Expander:
    """Runs expansion rounds on a store with an LLM client; see `expand_frontier`."""

    def __init__(
        self,
        store: GraphStore,
        client: LLMClient,
        options: ExpandConfig,
        *,
        run_id: str,
        vocabulary: RelationVocabulary | None = None,
        matcher: PersonaMatcher | None = None,
        check: ProposalCheck | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
        shard: Shard | None = None,
        only_hop: int | None = None,
    ) -> None:
        self.shard = shard or Shard()
        self.only_hop = only_hop
        self.store = store
        self.client = client
        self.options = options
        self.run_id = run_id
        self.vocabulary = vocabulary or RelationVocabulary.default()
        self.matcher = matcher or ExactMatcher(store)
        self.check = check or inline_check(FilterConfig(), relevance=False)
        self.on_progress = on_progress
        self.prompt = prompts.load("expand/propose", options.lang)
        self.summary = ExpandSummary(run_id=run_id)
        self.targets = load_targets(options.target) if options.target else None
        self.focus: dict[str, list[str]] = dict(options.focus)
        self.candidates = self._candidate_relations()
        self._stop = ""

    def _candidate_relations(self) -> list[Relation]:
        """Relations seeds are asked about: the chosen ones, narrowed to those leading to the focus."""
        pool = [self.vocabulary[name] for name in self.options.relations] if self.options.relations else list(self.vocabulary)
        if self.focus:
            pool = RelationVocabulary(pool).leading_to(self.focus)
        return pool

    def _aim(self, gaps: list[TargetGap]) -> None:
        """Point the next round at the targeted values furthest below their share (or stop: all are met)."""
        if targets_met(gaps, self.options.tolerance):
            self._stop = "targets met"
            return
        self.focus = focus_from_gaps(gaps, self.options.tolerance, self.options.target_values)
        self.candidates = self._candidate_relations()

    # -- the loop -----------------------------------------------------------------------------------
    async def run(self) -> ExpandSummary:
        """Expand round by round until the hop limit, an empty frontier or a budget stops it."""
        usage_before = self.client.usage.model_copy()
        try:
            for hop in [self.only_hop] if self.only_hop is not None else range(self.options.hops):
                if self.targets is not None and not self._stop:
                    # Coverage is recomputed between rounds, so each aims at what is still short.
                    self._aim(await asyncio.to_thread(target_gaps, self.store, self.targets))
                if self._stop:
                    break
                await self._round(hop)
            if self.targets is not None:
                self.summary.target_gaps = await asyncio.to_thread(target_gaps, self.store, self.targets)
                if not self._stop and targets_met(self.summary.target_gaps, self.options.tolerance):
                    self._stop = "targets met"
                elif not self._stop and any(r.hop == self.options.hops - 1 and r.seeds for r in self.summary.rounds):
                    self._stop = "hops"
        finally:
            await self.store.aclose()
        if self._stop:
            self.summary.stopped_by = self._stop
        self.summary.usage = self.client.usage.since(usage_before).as_dict()
        return self.summary

    def estimate(self) -> tuple[RoundStats, Estimate]:
        """What the first pending round would send (`--dry-run`): its requests counted against the cache.

        Later rounds depend on this one's answers, so they cannot be counted before it runs.
        """
        if self.targets is not None:
            self._aim(target_gaps(self.store, self.targets))
        for hop in range(self.options.hops):
            seeds = self.store.frontier(hop, self.focus)
            if seeds:
                stats = RoundStats(hop=hop, seeds=len(seeds))
                size = self.options.chunk_seeds
                chunks = [_Chunk(i, seeds[s : s + size]) for i, s in enumerate(range(0, len(seeds), size))]
                return stats, self.client.estimate(self._requests(chunks, stats))
        return RoundStats(hop=self.options.hops), Estimate()

    async def _round(self, hop: int) -> None:
        started = time.perf_counter()
        stats = RoundStats(hop=hop, focus=self.focus)
        seeds = [seed for seed in await self.store.afrontier(hop, self.focus) if self.shard.owns(seed["id"])]
        stats.graph_seconds += time.perf_counter() - started
        stats.seeds = len(seeds)
        if not seeds:
            return
        size = self.options.chunk_seeds
        chunks = [_Chunk(i, seeds[start : start + size]) for i, start in enumerate(range(0, len(seeds), size))]
        per_seed = min(self.options.relations_per_seed, len(self.candidates))
        self._progress(f"hop {hop} -> {hop + 1}", 0, len(seeds) * per_seed)
        ready: asyncio.Queue[_Chunk | None] = asyncio.Queue()
        writer = asyncio.create_task(self._writer(hop, ready, stats))
        next_ready = 0
        done = 0

        def release() -> None:
            nonlocal next_ready
            while next_ready < len(chunks) and chunks[next_ready].complete():
                ready.put_nowait(chunks[next_ready])
                next_ready += 1

        # Once a budget is spent the request generator stops; the stream is drained rather than left early
        # (the few answers in flight are cached for the next run, and the pool shuts down cleanly).
        try:
            async for result in self.client.stream(self._requests(chunks, stats)):
                meta: _Meta = result.request.meta
                chunks[meta.chunk].results.append(result)
                done += 1
                self._progress(f"hop {hop} -> {hop + 1}", done, len(seeds) * per_seed)
                release()
                if writer.done() and not self._stop:
                    self._stop = "error"
            release()
        finally:
            ready.put_nowait(None)
            await writer
        stats.wall_seconds = time.perf_counter() - started
        self.summary.rounds.append(stats)

    def _requests(self, chunks: list[_Chunk], stats: RoundStats) -> Iterator[LLMRequest]:
        """The round's requests, seed by seed, until a budget stops them (pulled lazily by the LLM pool)."""
        opts = self.options
        region = describe_region(self.focus)
        for chunk in chunks:
            for seed_pos, seed in enumerate(chunk.seeds):
                for rel_pos, relation in enumerate(choose_relations(seed["id"], self.candidates, opts.relations_per_seed)):
                    if not self._stop and opts.max_calls is not None and self.summary.requests >= opts.max_calls:
                        self._stop = "max_calls"
                    if self._stop:
                        chunk.cut_short = seed["id"] if rel_pos else ""
                        chunk.closed = True
                        return
                    messages = self.prompt.render(
                        seed=seed["description"], relation=relation.name.replace("_", " "),
                        relation_description=relation.description or relation.name.replace("_", " "),
                        fanout=opts.fanout, region=region,
                    )
                    chunk.requested[seed["id"]] += 1
                    self.summary.requests += 1
                    stats.requests += 1
                    yield LLMRequest(key=f"{seed['id']}/{relation.name}", messages=messages, schema=Proposals,
                                     meta=_Meta(chunk.index, seed_pos, rel_pos, seed, relation))
            chunk.closed = True

    async def _writer(self, hop: int, ready: asyncio.Queue[_Chunk | None], stats: RoundStats) -> None:
        """Write complete chunks in order, beside the stream of answers.

        Everything runs on the event loop: the chunk's Python work (answers to rows, the inline
        filter) costs what it costs, and the database round trips (the dedup lookup, the write) are
        awaited, so answers keep streaming while the database works. (A writer thread made its Python
        work take turns with the event loop for the GIL, which doubled it.)
        """
        while (chunk := await ready.get()) is not None:
            if self._stop in ("max_new", "error"):
                continue
            started = time.perf_counter()
            proposals, unfinished = self._proposals(chunk)
            descriptions = [p.description for _, p, _ in proposals]
            existing = await self.matcher.match(descriptions) if proposals else []
            filter_started = time.perf_counter()
            checked = self.check(descriptions, [m.seed["description"] for m, _, _ in proposals]) if proposals else []
            filtering = time.perf_counter() - filter_started
            new, edges = self._plan(hop, proposals, existing, checked, unfinished)
            finished = [s["id"] for s in chunk.seeds if s["id"] not in unfinished]
            # One query, so a chunk lands whole or not at all. Ids are live: seeds come from the frontier
            # (accepted personas) and matches are resolved to merge survivors, so no redirect lookup.
            written = await self.store.awrite_together(
                list(new.values()), edges,
                [{"id": i, "props": {"expanded": True, "expanded_run": self.run_id, "pending": None}} for i in finished],
                redirect_merged=False)
            self.summary.edges_created += written.relationships_created
            self.summary.edge_types.update(e.type for e in edges)
            self.summary.seeds_expanded += len(finished)
            if self.options.max_new is not None and self.summary.created >= self.options.max_new:
                self._stop = "max_new"
            accepted = [p for p in new.values() if p.status is PersonaStatus.accepted]
            if accepted:
                await self.matcher.add([p.id for p in accepted], [p.description for p in accepted])
            stats.graph_seconds += time.perf_counter() - started - filtering
            stats.filter_seconds += filtering

    # -- writing one chunk --------------------------------------------------------------------------
    def _relation_for(self, asked: Relation, named: str | None) -> Relation:
        """The relation a proposal's edge gets: the one asked for, or a valid more specific one it named."""
        if not named or not self.options.free_relations or relation_key(named) == asked.name:
            return asked
        try:
            return normalise_relation(named, self.vocabulary)
        except RelationError as exc:
            self.summary.relation_rejected[str(exc)] += 1
            return asked

    def _proposals(self, chunk: _Chunk) -> tuple[list[tuple[_Meta, ProposedPersona, Relation]], set[str]]:
        """A chunk's proposals in seed order (failed answers counted), and the seeds not fully answered."""
        opts, summary = self.options, self.summary
        results = sorted(chunk.results, key=lambda r: (r.request.meta.seed_pos, r.request.meta.rel_pos))
        unfinished: set[str] = {s["id"] for s in chunk.seeds if s["id"] not in chunk.requested} | {chunk.cut_short}
        proposals: list[tuple[_Meta, ProposedPersona, Relation]] = []
        for result in results:
            meta: _Meta = result.request.meta
            if not result.ok:
                summary.failed_requests += 1
                if len(summary.errors) < MAX_ERRORS_KEPT:
                    summary.errors.append(f"{result.key}: {result.error}"[:300])
                unfinished.add(meta.seed["id"])
                continue
            for proposed in result.value.personas[: opts.fanout]:  # type: ignore[union-attr]
                proposed.description = tidy_description(proposed.description)
                summary.proposals += 1
                summary.attributes_dropped.update(proposed.dropped.keys())
                if not proposed.description:
                    summary.rejected["empty"] += 1
                    continue
                proposals.append((meta, proposed, self._relation_for(meta.relation, proposed.relation)))
        return proposals, unfinished

    def _plan(
        self,
        hop: int,
        proposals: list[tuple[_Meta, ProposedPersona, Relation]],
        existing: Sequence[str | None],
        checked: Sequence[list[str]],
        unfinished: set[str],
    ) -> tuple[dict[str, Persona], list[Edge]]:
        """The new personas (rejected ones kept with their reasons) and the edges a chunk writes, counted
        into the summary; a seed cut short by `max_new` is added to `unfinished`."""
        opts, summary = self.options, self.summary
        new: dict[str, Persona] = {}
        edges: list[Edge] = []
        model = self.client.config.model
        for (meta, proposed, relation), match, reasons in zip(proposals, existing, checked):
            seed_id = meta.seed["id"]
            target = match or persona_id(proposed.description)
            if target == seed_id:
                reasons.append("same as the seed")
            if match is None and target not in new:
                if opts.max_new is not None and summary.created >= opts.max_new:
                    self._stop = "max_new"
                    unfinished.add(seed_id)
                    continue
                status = PersonaStatus.rejected if reasons else PersonaStatus.accepted
                attributes: dict[str, Any] = {**proposed.attributes(), "expanded_from": seed_id,
                                              "via_relation": relation.name, "via_edge": relation.edge_type}
                if reasons:
                    attributes["filter_reasons"] = reasons
                # Built without validation (hot path): the id is the description's, the description is
                # whitespace-normalised, attribute names are fixed here, and values are non-empty.
                new[target] = Persona.model_construct(id=target, description=proposed.description, status=status,
                                                      hop=hop + 1, origin="expand", run_id=self.run_id,
                                                      attributes=attributes)
                summary.created += not reasons
            elif not reasons:
                summary.linked += 1
            if reasons:
                summary.rejected.update(reason.split(":", 1)[0] for reason in reasons)
                continue
            source, dest = relation.endpoints(seed_id, target)
            # Unvalidated too: the store checks every edge type before it writes (GraphStore._edge_rows).
            edges.append(Edge.model_construct(source=source, target=dest, type=relation.edge_type, props={
                "relation": relation.name, "hop": hop + 1, "run_id": self.run_id, "model": model}))
        return new, edges

    def _progress(self, label: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(label, done, total)


def no_frontier(hops: int) -> str:
    """What expansion says when no persona is left to expand (a run and its estimate alike)."""
    return (f"none: no accepted, unexpanded persona below hop {hops} (extracted personas become seeds once "
            "`personagraph filter` accepts them)")


class Expand(Stage[ExpandSummary]):
    """Persona-to-Persona from the frontier, hop by hop, as typed edges (see the module docstring; rerun to resume).

    With `[expand] dedup = "index"` proposals are matched against the dedup index beside the graph
    (opened before and saved after), so a near-duplicate becomes an edge to the persona that exists.
    """

    name: ClassVar[str] = "expand"
    shardable: ClassVar[bool] = True
    config: ExpandConfig = Field(default_factory=ExpandConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig, description="The inline filter's cheap checks")
    only_hop: int | None = Field(default=None, description="Run the round from this hop alone (a pass of the Ray executor)")

    def run_facts(self) -> dict[str, Any]:
        return {"hops": self.config.hops, "fanout": self.config.fanout,
                "focus": [f"{k}={v}" for k, vs in self.config.focus.items() for v in vs],
                "target": [f"{k}={v}:{s}" for k, shares in self.config.target.items() for v, s in shares.items()]}

    def expander(self, ctx: StageContext, run_id: str, index: DedupIndex | None = None) -> Expander:
        """The engine with the vocabulary, inline filter and (given an index) dedup-on-insert this stage's config chooses."""
        vocabulary = RelationVocabulary.default(spec.to_relation() for spec in self.config.extra_relations)
        config = self.config
        if not self.shard.whole:  # a shard spends its share of the run's budgets
            share = {k: -(-v // self.shard.count) for k in ("max_new", "max_calls") if (v := getattr(config, k)) is not None}
            config = config.model_copy(update=share)
        return Expander(ctx.store, ctx.llm, config, run_id=run_id, vocabulary=vocabulary,
                        matcher=IndexMatcher(index) if index is not None else ExactMatcher(ctx.store),
                        check=inline_check(self.filter, relevance=self.config.relevance_check),
                        on_progress=ctx.progress, shard=self.shard, only_hop=self.only_hop)

    def next_pass(self, passes: int, done: list[ExpandSummary]) -> Expand | None:
        """On Ray, one pass per hop (every shard's writes of a hop land before the next hop's frontier is read),
        until the hop limit, or a shard's budget or the targets stop it."""
        if passes >= self.config.hops or any(s.stopped_by in ("max_new", "max_calls", "targets met", "error") for s in done):
            return None
        return self.model_copy(update={"only_hop": passes})

    async def merge_shards(self, ctx: StageContext, run_id: str, summaries: list[ExpandSummary]) -> ExpandSummary:
        """The shards' summaries as one, a round per hop (its numbers summed over the shards)."""
        summary = merge_summaries(summaries)
        rounds: dict[int, RoundStats] = {}
        for stats in summary.rounds:
            if stats.hop in rounds:
                first = rounds[stats.hop]
                stats = merge_summaries([first, stats]).model_copy(update={"hop": first.hop, "focus": first.focus})
            rounds[stats.hop] = stats
        stopped = [s.stopped_by for s in summaries if s.stopped_by and s.stopped_by != "hops"]
        return summary.model_copy(update={"rounds": [rounds[h] for h in sorted(rounds)],
                                          "stopped_by": stopped[-1] if stopped else summaries[-1].stopped_by})

    async def run(self, ctx: StageContext, run_id: str) -> ExpandSummary:
        index = None
        if self.config.dedup == "index" and self.shard.whole:  # workers match exact text: the index is one process's
            folder = index_folder(ctx.settings.store.data_dir, ctx.settings.store.graph)
            index = await asyncio.to_thread(open_index, ctx.store, ctx.settings.dedup, folder)
        try:
            return await self.expander(ctx, run_id, index).run()
        finally:
            if index is not None:
                index.confirm(ctx.store)  # take the graph's new fingerprint, so the next open need not reread it
                index.save()

    async def estimate(self, ctx: StageContext) -> StageEstimate:
        """The next round's calls (later rounds depend on its answers, so they cannot be counted before it runs)."""
        stats, llm = self.expander(ctx, "dry-run").estimate()
        next_round = (f"hop {stats.hop} -> {stats.hop + 1}, {stats.seeds:,} seeds (later rounds depend on its answers)"
                      if stats.seeds else no_frontier(self.config.hops))
        return StageEstimate(stage=self.name, lines=[("next round", next_round)], llm=llm)
