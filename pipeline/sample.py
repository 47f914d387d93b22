"""Sampling personas by where they sit in the graph: the `sample` stage, also what `synthesize` draws from.

Strategies (`SampleConfig.strategy`, `personagraph.config.Strategy`):

- `uniform`: personas drawn uniformly without replacement, `size` per sample (`draw_personas`).
- `stratified`: equal shares per value of one attribute (`stratify_by`, e.g. age_group); members are
  dealt round-robin over the regions, so any sample, and the whole draw, is balanced within one row.
  With `weights` ({attribute: {value: share}}, a targets file's tables) the shares are those instead:
  each sample gets its seats by largest remainder (`weighted_regions`), within one of its share.
- `ego`: the `hops`-hop ego network of a seed, nearest first, at most `size` members.
- `walk`: the distinct personas a random walk of `size - 1` steps from a seed visits (at most `size`).
- `community`: the seed's Louvain community (networkx) within its `hops`-hop ego network, at most
  `size` members, nearest to the seed first. (FalkorDB's `algo.labelPropagation` splits even a
  3-node path into two "communities", so it is not used.)
- `cluster`: a connected set of `size` personas grown from a seed: every member reaches every other
  through relationship edges among the members. A seed whose component (through sampleable
  personas) is too small to supply `min_size` members (default: `size`) is skipped and another seed
  drawn, within `SEED_TRIES_PER_CLUSTER` seeds per cluster asked; the draw counts the seeds skipped
  and says when the graph cannot supply `count` such clusters (`SampleDraw.shortfall`).

Everything is seeded: the same `seed` on the same graph gives the same samples. One sample is
`{"sample_id", "strategy", "seed_persona", "members": [{"id", "description", attributes...}],
"edges": [{"source", "target", "type"}]}` (edge properties: `GraphStore.edges_among`); members are
fetched and edges found for many samples in one batched query each (`GraphStore.sample_members`,
`GraphStore.edges_among_groups`).

    >>> draw = draw_samples(store, SampleConfig(strategy="cluster", size=20, count=1000, seed=7))
    >>> draw.samples[0].member_ids()[:3], draw.seeds_skipped
    (['p_1f…', 'p_9a…', 'p_03…'], 12)
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from dataclasses import dataclass
from typing import Any, ClassVar

import networkx as nx
from pydantic import BaseModel, Field

from personagraph.graph.store import GraphStore
from personagraph.graph.traversal import connected_clusters, ego_networks, random_walks
from personagraph.config import SampleConfig
from personagraph.errors import NothingToDo
from personagraph.stage import Stage, StageContext, StageSummary

# A cluster draw tries at most this many seeds per cluster asked (and at least MIN_SEED_TRIES) before
# it gives up: a seed in a component too small costs one neighbour lookup, so the bound is generous,
# but a graph of isolated personas is told so instead of searched for ever.
SEED_TRIES_PER_CLUSTER = 20
MIN_SEED_TRIES = 1_000


class GraphSample(BaseModel):
    """One sample: its members (property maps without store bookkeeping) and the edges among them."""

    sample_id: str
    strategy: str
    seed_persona: str | None
    members: list[dict[str, Any]]
    edges: list[dict[str, Any]]

    def member_ids(self) -> list[str]:
        """Member ids in sample order (the seed first where there is one)."""
        return [m["id"] for m in self.members]


def _distinct_node_ids(rng: random.Random, population: int) -> Iterator[int]:
    """Distinct random ints below `population`: random picks while few are taken, then the shuffled rest."""
    taken: set[int] = set()
    while len(taken) < population // 2:
        n = rng.randrange(population)
        if n not in taken:
            taken.add(n)
            yield n
    rest = [n for n in range(population) if n not in taken]
    rng.shuffle(rest)
    yield from rest


class PersonaDraw:
    """Distinct persona ids drawn uniformly from those with one of `statuses`, as many at a time as
    asked: `take(k)` gives the next `k` (fewer once all are drawn), never one it gave before.

    Rejection sampling over internal node ids, answered by id seeks in batches: the cost grows with
    the number drawn, not with the graph (listing 1M ids takes the client tens of seconds). Same
    graph, same generator state: same draw, also after other commands have added Run or Sample nodes.
    """

    def __init__(self, store: GraphStore, statuses: Sequence[str], rng: random.Random) -> None:
        self.store = store
        self.statuses = list(statuses)
        max_id = store.max_persona_node_id()
        self._candidates = iter(()) if max_id is None else _distinct_node_ids(rng, max_id + 1)
        self._found: list[str] = []  # drawn by the last batch but not given yet
        self._empty = max_id is None

    @property
    def exhausted(self) -> bool:
        """Every persona with one of the statuses has been given."""
        return self._empty and not self._found

    def take(self, k: int) -> list[str]:
        """The next `k` ids of the draw (fewer if it runs out)."""
        while len(self._found) < k and not self._empty:
            size = min(self.store.options.batch_size, max(2 * (k - len(self._found)), 64))
            batch = list(itertools.islice(self._candidates, size))
            if not batch:
                self._empty = True
                break
            hits = self.store.persona_ids_at(batch, self.statuses)
            self._found.extend(hits[n] for n in batch if n in hits)
        given, self._found = self._found[:k], self._found[k:]
        return given


def draw_personas(store: GraphStore, statuses: Sequence[str], k: int, rng: random.Random) -> list[str]:
    """`k` distinct persona ids drawn uniformly from those with one of `statuses` (fewer if there are fewer)."""
    return PersonaDraw(store, statuses, rng).take(k) if k > 0 else []


def interleave_regions(regions: dict[str, list[str]], rng: random.Random, total: int) -> list[str]:
    """Up to `total` ids dealt round-robin over the regions, each region's ids shuffled.

    Any run of consecutive ids holds each region within one of the others, so chunks of the result
    are balanced too. A region that runs out drops out of the rotation (its share then falls short).
    """
    queues = [rng.sample(ids, len(ids)) for ids in regions.values()]
    out: list[str] = []
    depth = 0
    while len(out) < total and any(depth < len(q) for q in queues):
        out.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return out[:total]


def stratum_weights(regions: Mapping[str, Sequence[str]], shares: Mapping[str, float]) -> dict[str, float]:
    """The share each region present gets: the listed ones theirs, the spare share (1 - their sum) split
    equally over the unlisted ones, all scaled to sum to 1 (so a listed value missing from the graph
    passes its share on to the others in proportion)."""
    weights = {v: share for v, share in shares.items() if regions.get(v)}
    rest = [v for v in regions if v not in shares and regions[v]]
    spare = 1 - sum(shares.values())
    if rest and spare > 1e-9:
        weights.update({v: spare / len(rest) for v in rest})
    total = sum(weights.values())
    return {v: w / total for v, w in weights.items()} if total else {}


def weighted_regions(regions: Mapping[str, Sequence[str]], shares: Mapping[str, float], rng: random.Random,
                     size: int, count: int) -> list[list[str]]:
    """`count` samples of `size` ids with each region's share of seats (`stratum_weights`), drawn without replacement.

    Largest remainder within each sample: every region gets the whole seats of `size * share`, and the
    seats left go to the regions furthest behind their share of the whole draw so far, so a sample is
    within one of its shares and the draw as a whole stays on them too. A region that runs out gives
    its seats to the others.

        >>> weighted_regions({"a": list("abcdefgh"), "b": list("ABCDEFGH")}, {"a": 0.75}, random.Random(0), 4, 2)
        [['d', 'E', 'g', 'h'], ['f', 'a', 'D', 'c']]
    """
    weights = stratum_weights(regions, shares)
    queues = {v: rng.sample(list(regions[v]), len(regions[v])) for v in sorted(weights)}
    taken: Counter[str] = Counter()
    samples: list[list[str]] = []
    for n in range(count):
        left = {v: len(queues[v]) - taken[v] for v in queues if len(queues[v]) > taken[v]}
        if not left:
            break
        scale = sum(weights[v] for v in left)
        share = {v: weights[v] / scale for v in left}
        seats = {v: min(math.floor(size * share[v]), left[v]) for v in left}
        behind = sorted(left, key=lambda v: (taken[v] + seats[v] - (n + 1) * size * share[v], v))
        spare = min(size, sum(left.values())) - sum(seats.values())
        while spare > 0:
            for v in behind:
                if spare and seats[v] < left[v]:
                    seats[v] += 1
                    spare -= 1
        members = [i for v in queues if v in seats for i in queues[v][taken[v] : taken[v] + seats[v]]]
        taken.update(seats)
        rng.shuffle(members)
        samples.append(members)
    return samples


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _nearest_first(distances: dict[str, int], size: int, rng: random.Random) -> list[str]:
    """The `size` members closest to the seed; ties at the cut broken by a seeded shuffle."""
    ids = sorted(distances)
    rng.shuffle(ids)
    ids.sort(key=lambda i: distances[i])
    return ids[:size]


def _community_of_seed(
    seed: str, distances: dict[str, int], edges: list[tuple[str, str]], size: int, rng: random.Random
) -> list[str]:
    """The seed's Louvain community inside its ego network, nearest to the seed first, at most `size`."""
    g = nx.Graph()
    g.add_nodes_from(distances)
    g.add_edges_from(edges)
    communities = nx.community.louvain_communities(g, seed=rng.randrange(2**32))
    own = next(c for c in communities if seed in c)
    # Distances inside the community keep the trimmed sample connected around the seed.
    inner = nx.single_source_shortest_path_length(g.subgraph(own), seed)
    return _nearest_first(inner, size, rng)


@dataclass
class _Seeds:
    """How the seeds of a draw went: tried, skipped for a component too small, and whether all were tried."""

    tried: int = 0
    skipped: int = 0
    exhausted: bool = False


def _cluster_groups(store: GraphStore, spec: SampleConfig, rng: random.Random, seeds: _Seeds) -> list[tuple[str | None, list[str]]]:
    """(seed, members) of `spec.count` connected clusters of at least `spec.smallest_cluster` members.

    Seeds are drawn in rounds, each grown in one batched traversal (graph.traversal.connected_clusters);
    a seed whose component runs out before `smallest_cluster` is skipped, and so is every later seed
    in a component already found too small (without traversal). The first round draws `count` seeds,
    as many as a graph without small components needs; later rounds draw enough for the clusters
    still missing at the success rate seen so far (at least as many again while it is near zero).
    """
    smallest, budget = spec.smallest_cluster, max(SEED_TRIES_PER_CLUSTER * spec.count, MIN_SEED_TRIES)
    draw = PersonaDraw(store, spec.statuses, rng)
    too_small: set[str] = set()  # members of components known to hold fewer than `smallest`
    groups: list[tuple[str | None, list[str]]] = []
    while len(groups) < spec.count and seeds.tried < budget:
        missing = want = spec.count - len(groups)
        if seeds.tried:
            rate = len(groups) / seeds.tried
            want = math.ceil(missing / max(rate, 1 / SEED_TRIES_PER_CLUSTER) * 1.2)
            if rate < 1 / SEED_TRIES_PER_CLUSTER:
                want = max(want, seeds.tried)  # hardly any found yet: try as many again, so rounds stay few
        batch = draw.take(min(budget - seeds.tried, want))
        if not batch:
            break
        seeds.tried += len(batch)
        clusters = connected_clusters(store, [s for s in batch if s not in too_small], spec.size, rng, spec.statuses)
        for seed in batch:
            members = clusters.get(seed, [])
            if len(members) < smallest:
                seeds.skipped += 1
                too_small.update(members)  # the cluster stopped short: it is the whole component
            elif len(groups) < spec.count:
                groups.append((seed, members))
    seeds.exhausted = len(groups) < spec.count and draw.exhausted
    return groups


def stratum_shares(spec: SampleConfig) -> tuple[str, dict[str, float]]:
    """The attribute a stratified draw splits by, and its weights ({} = equal shares): the weights' table
    for `stratify_by`, or their only table (which then names the attribute)."""
    if not spec.weights:
        return spec.stratify_by, {}
    if spec.stratify_by in spec.weights:
        return spec.stratify_by, spec.weights[spec.stratify_by]
    if len(spec.weights) == 1:
        [(attribute, shares)] = spec.weights.items()
        return attribute, shares
    raise ValueError(f"the weights have tables for {', '.join(spec.weights)}, not for {spec.stratify_by!r}: "
                     "stratify by one of them (--by), or give weights for one attribute")


def _seeded_groups(store: GraphStore, spec: SampleConfig, rng: random.Random, seeds: _Seeds) -> list[tuple[str | None, list[str]]]:
    """(seed persona, member ids) for each sample, before members and edges are fetched; `seeds` counts the seeds."""
    if spec.strategy == "uniform":
        drawn = draw_personas(store, spec.statuses, spec.size * spec.count, rng)
        return [(None, chunk) for chunk in _chunks(drawn, spec.size)]
    if spec.strategy == "stratified":
        attribute, shares = stratum_shares(spec)
        regions = store.region_ids(attribute, spec.statuses)
        if not regions:
            raise ValueError(f"no persona with status {'/'.join(spec.statuses)} has the attribute {attribute!r} "
                             "to stratify by; `personagraph coverage` shows the attributes there are")
        if shares:
            return [(None, ids) for ids in weighted_regions(regions, shares, rng, spec.size, spec.count)]
        drawn = interleave_regions(regions, rng, spec.size * spec.count)
        return [(None, chunk) for chunk in _chunks(drawn, spec.size)]
    if spec.strategy == "cluster":
        return _cluster_groups(store, spec, rng, seeds)
    drawn = draw_personas(store, spec.statuses, spec.count, rng)
    seeds.tried = len(drawn)
    if spec.strategy == "walk":
        walks = random_walks(store, drawn, spec.size - 1, rng, spec.statuses)
        return [(s, list(dict.fromkeys(walks[s]))) for s in drawn]
    egos = ego_networks(store, drawn, spec.hops, spec.statuses)
    if spec.strategy == "ego":
        return [(s, _nearest_first(egos[s], spec.size, rng)) for s in drawn]
    edges = store.edges_among_groups([list(egos[s]) for s in drawn])
    return [
        (s, _community_of_seed(s, egos[s], [(e["source"], e["target"]) for e in edges[i]], spec.size, rng))
        for i, s in enumerate(drawn)
    ]


class SampleDraw(StageSummary):
    """What `draw_samples` gave for `spec`: the samples, and how the seeds of a seeded strategy went."""

    spec: SampleConfig
    samples: list[GraphSample]
    seeds_tried: int = Field(default=0, description="seed personas drawn (ego, walk, community, cluster)")
    seeds_skipped: int = Field(default=0, description="cluster seeds whose component held fewer than the smallest cluster")
    exhausted: bool = Field(default=False, description="every sampleable persona was tried as a seed, and clusters still fell short")

    not_recorded: ClassVar[frozenset[str]] = frozenset({"spec", "samples"})

    def write_jsonl(self, path: Path) -> Path:
        """One sample per line: members (property maps) and the edges among them."""
        with Path(path).open("w", encoding="utf-8") as fh:
            for sample in self.samples:
                fh.write(sample.model_dump_json() + "\n")
        return Path(path)

    def check_complete(self) -> None:
        """Raise NothingToDo, naming what to change, when a cluster draw holds fewer clusters than asked."""
        short = self.shortfall()
        if short:
            found, smallest = len(self.samples), self.spec.smallest_cluster
            options = ([f"ask for {found:,}"] if found else []) + (
                ["a smaller size", "min_size=1 (--allow-smaller) to accept smaller clusters"] if smallest > 1 else [])
            raise NothingToDo(f"{short}; nothing written" + (f" ({', or '.join(options)})" if options else ""))

    def shortfall(self) -> str | None:
        """Why a cluster draw holds fewer clusters than asked, in one sentence; None if it holds them all."""
        spec, found = self.spec, len(self.samples)
        if spec.strategy != "cluster" or found >= spec.count:
            return None
        smallest = spec.smallest_cluster
        what = f"connected clusters of {spec.size}" if smallest == spec.size else f"connected clusters of {smallest} to {spec.size}"
        statuses = "/".join(spec.statuses)
        if self.exhausted and not self.seeds_skipped:
            return f"the graph has only {found:,} {statuses} personas to grow clusters from, not {spec.count:,}"
        if self.exhausted:
            return (f"the graph can supply only {found:,} {what} {statuses} personas, not {spec.count:,}: "
                    f"the other {self.seeds_skipped:,} such personas sit in components of fewer than {smallest}")
        return (f"found only {found:,} {what} {statuses} personas in {self.seeds_tried:,} seeds tried, not {spec.count:,}: "
                f"{self.seeds_skipped:,} seeds sat in components of fewer than {smallest}")


def draw_samples(store: GraphStore, spec: SampleConfig, with_edges: bool = True) -> SampleDraw:
    """Draw `spec.count` samples by `spec.strategy`, reproducibly from `spec.seed`, and say how the seeds went.

    Traversal is batched over all seeds (graph.traversal); members and edges of all samples are
    fetched in a few batched queries. `with_edges=False` skips the edges among members, for callers
    that use only the members (synthesis): the same members, one query less. A draw holds fewer
    samples than asked when the graph runs out; for clusters, `shortfall()` then says why.
    """
    seeds = _Seeds()
    samples = [sample for part in _draw(store, spec, seeds, with_edges, None) for sample in part]
    return SampleDraw(spec=spec, samples=samples, seeds_tried=seeds.tried, seeds_skipped=seeds.skipped,
                      exhausted=seeds.exhausted)


def draw_in_batches(store: GraphStore, spec: SampleConfig, batch: int, with_edges: bool = True) -> Iterator[SampleDraw]:
    """The samples `draw_samples` draws, `batch` at a time: members and edges are fetched per batch, so
    a consumer (synthesis) starts on the first batch while the rest load. Each batch is a SampleDraw
    whose seed tally is the draw's so far; a draw that finds nothing yields one empty batch."""
    seeds = _Seeds()
    found = False
    for part in _draw(store, spec, seeds, with_edges, batch):
        found = True
        yield SampleDraw(spec=spec, samples=part, seeds_tried=seeds.tried, seeds_skipped=seeds.skipped, exhausted=seeds.exhausted)
    if not found:
        yield SampleDraw(spec=spec, samples=[], seeds_tried=seeds.tried, seeds_skipped=seeds.skipped, exhausted=seeds.exhausted)


def _draw(store: GraphStore, spec: SampleConfig, seeds: _Seeds, with_edges: bool, batch: int | None) -> Iterator[list[GraphSample]]:
    """The draw's samples in batches of `batch` (None: one batch), numbered across batches."""
    rng = random.Random(f"{spec.strategy}:{spec.seed}")
    groups = [(seed, ids) for seed, ids in _seeded_groups(store, spec, rng, seeds) if ids]
    step = batch or max(len(groups), 1)
    for start in range(0, len(groups), step):
        part = groups[start : start + step]
        personas = store.sample_members(list(dict.fromkeys(i for _, ids in part for i in ids)))
        edges = store.edges_among_groups([ids for _, ids in part]) if with_edges else [[] for _ in part]
        yield [
            GraphSample(
                sample_id=f"{spec.strategy}-{spec.seed}-{start + n:06d}",
                strategy=spec.strategy,
                seed_persona=seed,
                members=[personas[i] for i in ids if i in personas],
                edges=edges[n],
            )
            for n, (seed, ids) in enumerate(part)
        ]


def sample_personas(store: GraphStore, spec: SampleConfig, with_edges: bool = True) -> list[GraphSample]:
    """The samples of `draw_samples` (fewer than `spec.count` if the graph runs out), for callers that need only them."""
    return draw_samples(store, spec, with_edges).samples


class Sample(Stage[SampleDraw]):
    """Draw samples of personas from the graph (a query: no Run node); see `draw_samples`."""

    name: ClassVar[str] = "sample"
    records_run: ClassVar[bool] = False
    config: SampleConfig = Field(default_factory=SampleConfig)
    with_edges: bool = Field(default=True, description="Also fetch the edges among each sample's members")

    async def run(self, ctx: StageContext, run_id: str) -> SampleDraw:
        return await asyncio.to_thread(draw_samples, ctx.store, self.config, self.with_edges)
