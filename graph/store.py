"""The persona graph store: one API over the embedded FalkorDB and a Neo4j 5 server.

Every operation is Cypher from `cypher/` run with parameters. `GraphStore` is the domain API the
stages use (writes, reads, and one named function per query a stage needs, batched here by
`batch_size`); the backends differ only in how a query is sent and how results come back, and in
the few files of the per-dialect table (`cypher/falkordb/`, `cypher/neo4j/`). Nothing here knows
about LLMs. The package, by job:

- `store` (this module): `GraphStore`, `StoreConfig`, results, errors, `open_store`.
- `falkordb_store`, `neo4j_store`: the backends `FalkorStore` and `Neo4jStore` (importable from here too).
- `merge`: the rows that merge duplicate personas (survivors, tombstones, moved edges).
- `encoding`: parameter values as FalkorDB's `CYPHER name=value` header spells them.
- `model`, `server`, `indexes`, `traversal`, `analysis`, `export`: data model, embedded server, and
  functions over a store.

    >>> store = open_store(StoreConfig(data_dir=Path(".personagraph")))
    >>> store.upsert_personas([Persona(description="A pediatric nurse in Lyon")])
    WriteStats(nodes_created=1, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from personagraph import cypher
from personagraph.graph import merge
from personagraph.graph.merge import STANCE_EDGE, add_edge_row
from personagraph.graph.model import (
    PERSONA_ROW,
    PROPERTY_RE,
    RESERVED_PROPERTIES,
    Edge,
    Persona,
    PersonaStatus,
    Source,
    check_label,
    check_property,
    check_rel_type,
    gc_paused,
    pending_key,
)
from personagraph.graph.server import StoreUnavailable, StoreUnreachable

if TYPE_CHECKING:
    from personagraph.graph.falkordb_store import FalkorStore
    from personagraph.graph.neo4j_store import Neo4jStore

LIVE_STATUSES: tuple[str, ...] = (PersonaStatus.candidate.value, PersonaStatus.accepted.value)
UNIQUE_KEYS: tuple[tuple[str, str], ...] = (("Persona", "id"), ("Source", "id"), ("Run", "id"), ("Sample", "id"))
# The frontier query's LIMIT: a bound no real run reaches; the frontier is one ordered query.
FRONTIER_LIMIT = 10_000_000

__all__ = [
    "GraphStore",
    "FalkorStore",
    "Neo4jStore",
    "QueryError",
    "QueryTimeout",
    "ReadOnlyViolation",
    "GraphNode",
    "GraphEdge",
    "GraphPath",
    "StoreUnavailable",
    "StoreUnreachable",
    "StoreConfig",
    "QueryResult",
    "WriteStats",
    "LIVE_STATUSES",
    "open_store",
]


class QueryError(RuntimeError):
    """The database rejected a query; the message is the database's own."""


class ReadOnlyViolation(QueryError):
    """A query that writes was sent as read-only."""


class QueryTimeout(QueryError):
    """The query ran past the time it was given; the database stopped it."""


@dataclass(frozen=True, slots=True)
class GraphNode:
    """A node as a user's query returned it (`GraphStore.query(..., elements=True)`): what a property
    map loses, its labels and the database's own id (`key`: FalkorDB's integer id, Neo4j's element id, as text)."""

    key: str
    labels: tuple[str, ...]
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """A relationship as a user's query returned it: its type and its two ends, by their node `key`s."""

    key: str
    type: str
    source: str
    target: str
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GraphPath:
    """A path as a user's query returned it: its nodes in order, and the relationships between them."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


class StoreConfig(BaseModel):
    """Where the graph lives (the `[store]` config section): the embedded FalkorDB folder, or a Neo4j URI."""

    uri: str = Field(
        default="embedded",
        description="'embedded' (FalkorDB child process in `data_dir`), or neo4j://host:7687 / bolt://...",
    )
    data_dir: Path = Field(default=Path(".personagraph"), description="Folder of the embedded store, caches and indexes")
    graph: str = Field(default="personas", description="Graph name (FalkorDB key) or Neo4j database name ('' = default)")
    user: str = "neo4j"
    password: SecretStr = SecretStr("")
    batch_size: int = Field(default=5000, ge=1, description="Rows (or ids) per batched query")


class WriteStats(BaseModel):
    """What a write changed, summed over its batches."""

    nodes_created: int = 0
    nodes_deleted: int = 0
    relationships_created: int = 0
    relationships_deleted: int = 0
    properties_set: int = 0
    indices_created: int = 0
    matched: int = 0

    @classmethod
    def from_counters(cls, counters: Any) -> WriteStats:
        """From a driver's counters: FalkorDB's QueryResult and Neo4j's SummaryCounters use the same names."""
        names = {"indices_created": "indexes_added"} if hasattr(counters, "indexes_added") else {}  # Neo4j's spelling
        return cls(**{name: getattr(counters, names.get(name, name), 0) for name in cls.model_fields if name != "matched"})

    def __iadd__(self, other: WriteStats) -> WriteStats:
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def add_batch(self, res: QueryResult) -> None:
        """Add one batch's counters, and its `matched` column if it has one."""
        self.__iadd__(res.stats)
        if "matched" in res.columns:
            self.matched += int(res.value(0) or 0)


class QueryResult(BaseModel):
    """Columns and rows of a query; nodes come back as property maps, edges as maps with `_type`."""

    columns: list[str]
    rows: list[list[Any]]
    stats: WriteStats = Field(default_factory=WriteStats)

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row)) for row in self.rows]

    def value(self, default: Any = None) -> Any:
        """The first column of the first row (for single-value queries)."""
        return self.rows[0][0] if self.rows and self.rows[0] else default




def _first_per_key(rows: Iterable[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """Rows with the first occurrence of each key kept. FalkorDB applies the ON CREATE SET of the
    *last* of several rows that MERGE one new node or edge in one batch, Neo4j that of the first; so
    duplicates are dropped before they reach the database, and the first one wins on both."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        out.setdefault(tuple(row[k] for k in keys), row)
    return list(out.values())


def _upsert_query(rel_type: str) -> str:
    """The name of the query that upserts edges of `rel_type`."""
    return "upsert_extracted_from" if rel_type == STANCE_EDGE else "upsert_edges"


def _persona_rows(personas: Sequence[Persona]) -> dict[tuple[str, ...], list[list[Any]]]:
    """Rows for `cypher/upsert_personas.cypher`, grouped by their attribute keys (sorted); the first
    of several personas with one id wins."""
    seen: set[str] = set()
    groups: dict[tuple[str, ...], list[list[Any]]] = defaultdict(list)
    for p in personas:
        if p.id not in seen:
            seen.add(p.id)
            keys = tuple(sorted(p.attributes))
            groups[keys].append(p.row_values(keys))
    for keys in groups:
        for key in keys:  # validated by Persona, unless it was built with model_construct
            check_property(key)
    return groups


def _attribute_fill(keys: Sequence[str]) -> str:
    """`<<ATTRS>>` of cypher/upsert_personas.cypher: the attribute properties after the fixed ones."""
    return "".join(f", `{key}`: r[{len(PERSONA_ROW) + i}]" for i, key in enumerate(keys))


def _check_property_rows(rows: Sequence[dict[str, Any]]) -> None:
    """Validate the property names of `set_properties` rows before any query is sent."""
    for row in rows:
        for key in row["props"]:
            check_property(key)




class GraphStore(ABC):
    """The operations every stage uses; subclasses only send queries and convert results."""

    dialect: str = ""

    def __init__(self, options: StoreConfig) -> None:
        self.options = options

    # -- transport (backend-specific) -----------------------------------------------------------
    @abstractmethod
    def run(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True,
            timeout: float | None = None, elements: bool = False) -> QueryResult:
        """Run one Cypher query with parameters. `write=False` makes the database refuse writes;
        `timeout` and `elements` are `query`'s."""

    @abstractmethod
    def _create_unique(self, label: str, prop: str) -> None:
        """Create a uniqueness constraint (dialect-specific command)."""

    @abstractmethod
    def iter_nodes(self, label: str = "Persona", page: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """All nodes of a label as property maps, one page (list) at a time."""

    @abstractmethod
    def describe(self) -> str:
        """Where this store is, for messages."""

    def close(self) -> None:
        """Release the connection (the embedded server keeps running)."""

    def persist(self) -> None:
        """Check that every write acknowledged so far is on disk; raise `StoreUnavailable` if not.

        A command calls this before it reports success, so "done" means durable.
        """

    def query(self, query: str, params: dict[str, Any] | None = None, *, write: bool = False,
              timeout: float | None = None, elements: bool = False) -> QueryResult:
        """Run a user's own Cypher: read-only unless `write=True` (the database refuses writes then).

        `timeout` (seconds) has the database stop the query past it (`QueryTimeout`; FalkorDB
        applies it to reads only). `elements=True` returns nodes, relationships and paths as
        `GraphNode` / `GraphEdge` / `GraphPath` (labels, ids and ends kept) instead of property maps.
        """
        res = self.run(query, params or {}, write=write, timeout=timeout, elements=elements)
        if write:
            self._after_user_write()
        return res

    def _after_user_write(self) -> None:
        """Keep what the store derives in step with a write it did not make (a user's query, or old data)."""
        self.run_named("frontier_backfill", write=True)  # personas marked unexpanded get their frontier key

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------------
    def q(self, name: str, **fills: str | int) -> str:
        """Load query `name` for this dialect and fill validated placeholders."""
        text = cypher.load(name, self.dialect)
        return cypher.fill(text, **fills) if fills else text

    def run_named(self, name: str, params: dict[str, Any] | None = None, *, write: bool = False, **fills: str | int) -> QueryResult:
        """Run a query from `cypher/` by name."""
        return self.run(self.q(name, **fills), params or {}, write=write)

    def _batched(self, rows: Sequence[Any]) -> Iterator[list[Any]]:
        """`rows` in lists of at most `batch_size`, in order."""
        size = self.options.batch_size
        for start in range(0, len(rows), size):
            yield list(rows[start : start + size])

    def _write_batches(self, query: str, rows: Sequence[Any], key: str = "rows") -> WriteStats:
        return self._write_many([(query, rows)], key)

    def _write_many(self, jobs: Iterable[tuple[str, Sequence[Any]]], key: str = "rows") -> WriteStats:
        """Run each (query, rows) job in batches of `batch_size` rows, in order; counters summed."""
        total = WriteStats()
        for query, rows in jobs:
            for chunk in self._batched(rows):
                total.add_batch(self.run(query, {key: chunk}, write=True))
        return total

    # -- schema -----------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the uniqueness constraints and property indexes (idempotent)."""
        created = 0
        for stmt in cypher.statements(self.q("schema")):
            with contextlib.suppress(QueryError):  # already exists (FalkorDB has no IF NOT EXISTS)
                created += self.run(stmt, write=True).stats.indices_created
        for label, prop in UNIQUE_KEYS:
            self._create_unique(label, prop)
        if created:
            self._after_user_write()  # a new index over old data: check what it holds

    # -- writes -----------------------------------------------------------------------------------
    def upsert_personas(self, personas: Sequence[Persona]) -> WriteStats:
        """MERGE personas by id in UNWIND batches; existing ids are left untouched."""
        with gc_paused():  # tens of thousands of rows: no full-heap collections while they are built
            return self._write_many(self._persona_jobs(personas))

    def upsert_sources(self, sources: Sequence[Source]) -> WriteStats:
        """MERGE source nodes by id in batches."""
        return self._write_batches(self.q("upsert_sources"), _first_per_key((s.row() for s in sources), "id"))

    def add_edges(self, edges: Sequence[Edge], source_label: str = "Persona", target_label: str = "Persona") -> WriteStats:
        """MERGE typed edges in batches (one per type); endpoints merged away are redirected to survivors.

        `matched` in the result counts rows whose two endpoints existed.
        """
        with gc_paused():  # tens of thousands of rows: no full-heap collections while they are built
            return self._write_many(self._edge_jobs(edges, source_label, target_label, redirect=True))

    def set_properties(self, rows: Sequence[dict[str, Any]], label: str = "Persona") -> WriteStats:
        """`SET n += props` for rows `{"id": ..., "props": {...}}`; property names are validated."""
        _check_property_rows(rows)
        return self._write_batches(self.q("set_properties", LABEL=check_label(label)), list(rows))

    def write_together(
        self,
        personas: Sequence[Persona] = (),
        edges: Sequence[Edge] = (),
        properties: Sequence[dict[str, Any]] = (),
        *,
        redirect_merged: bool = True,
    ) -> WriteStats:
        """Upsert personas, merge persona-to-persona edges, then set persona properties, in one query.

        What `upsert_personas`, `add_edges` and `set_properties` do, as one round trip instead of one
        per batch and edge type, and atomic: a crash or a lost connection leaves all of it or none of
        it. Meant for chunk-sized writes (nothing is split into batches). `redirect_merged=False`
        skips the lookup of merged endpoints, for callers whose ids are known to be live.
        """
        query, params = self._together(personas, edges, properties, redirect_merged)
        return self.run(query, params, write=True).stats

    def _together(self, personas: Sequence[Persona], edges: Sequence[Edge], properties: Sequence[dict[str, Any]],
                  redirect_merged: bool) -> tuple[str, dict[str, Any]]:
        """The chained query and parameters of `write_together`."""
        _check_property_rows(properties)
        with gc_paused():
            jobs = [*self._persona_jobs(personas),
                    *self._edge_jobs(edges, "Persona", "Persona", redirect=redirect_merged),
                    (self.q("set_properties", LABEL="Persona"), list(properties))]
            names = [f"rows{i}" for i in range(len(jobs))]
            query = cypher.chain([(q, name) for (q, _), name in zip(jobs, names)])
            return query, {name: rows for (_, rows), name in zip(jobs, names)}

    def _persona_jobs(self, personas: Sequence[Persona]) -> list[tuple[str, list[Any]]]:
        """(query, rows) per attribute-key group of `cypher/upsert_personas.cypher`."""
        return [(self.q("upsert_personas", ATTRS=_attribute_fill(keys)), rows)
                for keys, rows in _persona_rows(personas).items()]

    def _edge_jobs(self, edges: Sequence[Edge], source_label: str, target_label: str, *,
                   redirect: bool) -> list[tuple[str, list[Any]]]:
        """(query, rows) per edge type of `cypher/upsert_edges.cypher` (see `_edge_rows`, `_upsert_query`)."""
        return [(self.q(_upsert_query(rel_type), TYPE=rel_type, SRC=source_label, DST=target_label), rows)
                for rel_type, rows in self._edge_rows(edges, source_label, target_label, redirect=redirect).items()]

    # -- for callers on an event loop -------------------------------------------------------------
    async def arun(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True) -> QueryResult:
        """`run` for a caller on an event loop, which keeps going while the database works.

        This default sends from a worker thread; a backend with an asyncio client awaits it instead.
        """
        return await asyncio.to_thread(self.run, query, params, write=write)

    async def arun_named(self, name: str, params: dict[str, Any] | None = None, *, write: bool = False,
                         **fills: str | int) -> QueryResult:
        """`run_named` for a caller on an event loop."""
        return await self.arun(self.q(name, **fills), params or {}, write=write)

    async def awrite_together(
        self,
        personas: Sequence[Persona] = (),
        edges: Sequence[Edge] = (),
        properties: Sequence[dict[str, Any]] = (),
        *,
        redirect_merged: bool = True,
    ) -> WriteStats:
        """`write_together` for a caller on an event loop: rows are built on the loop, the write awaited."""
        if redirect_merged:  # the redirect lookup is a blocking query of its own
            return await asyncio.to_thread(self.write_together, personas, edges, properties)
        query, params = self._together(personas, edges, properties, False)
        return (await self.arun(query, params, write=True)).stats

    async def aclose(self) -> None:
        """Release what `arun` opened on the current event loop (before the loop ends)."""

    def _edge_rows(self, edges: Sequence[Edge], source_label: str, target_label: str, *,
                   redirect: bool) -> dict[str, list[list[Any]]]:
        """Edge rows `[src, dst, props]` by type, types and labels validated first; the first row of
        a (src, dst) pair wins (see merge.add_edge_row). With `redirect`, persona endpoints merged away
        are replaced by their survivors."""
        check_label(source_label)
        check_label(target_label)
        for rel_type in {e.type for e in edges}:  # every type checked before any query is sent
            check_rel_type(rel_type)
        redirect_src: dict[str, str] = {}
        redirect_dst: dict[str, str] = {}
        # The per-id lookup costs a query per batch of ids; a graph without merges skips it.
        if redirect and edges and "Persona" in (source_label, target_label) and self.run_named("any_merged").rows:
            persona_ids = [e.source for e in edges if source_label == "Persona"] + [
                e.target for e in edges if target_label == "Persona"
            ]
            found = self.resolve_merged(persona_ids)
            redirect_src = found if source_label == "Persona" else {}
            redirect_dst = found if target_label == "Persona" else {}
        by_type: dict[str, dict[tuple[str, str], list[Any]]] = defaultdict(dict)
        for e in edges:
            src, dst = e.source, e.target
            if redirect_src or redirect_dst:
                src, dst = redirect_src.get(src, src), redirect_dst.get(dst, dst)
            add_edge_row(by_type[e.type], src, dst, e.props, e.type)
        return {rel_type: list(pairs.values()) for rel_type, pairs in by_type.items()}

    def record_run(self, run_id: str, props: dict[str, Any]) -> None:
        """Create or update the `Run` node of a pipeline run with its accounting."""
        for key in props:
            check_property(key)
        self.run_named("upsert_run", {"id": run_id, "props": props}, write=True)

    def reset(self) -> None:
        """Delete every node and edge of this graph."""
        self.run_named("drop_all", write=True)

    # -- reads ------------------------------------------------------------------------------------
    def get_personas(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Property maps of the personas with these ids (missing ids are absent)."""
        out: dict[str, dict[str, Any]] = {}
        for chunk in self._batched(list(ids)):
            for (node,) in self.run_named("get_personas", {"ids": chunk}).rows:
                out[node["id"]] = node
        return out

    def iter_personas(self, statuses: Sequence[str] | None = LIVE_STATUSES, page: int = 10_000) -> Iterator[dict[str, Any]]:
        """Stream persona property maps, optionally only those with the given statuses."""
        wanted = set(statuses) if statuses is not None else None
        for chunk in self.iter_nodes("Persona", page):
            for node in chunk:
                if wanted is None or node.get("status") in wanted:
                    yield node

    def iter_edges(self, page: int = 10_000) -> Iterator[dict[str, Any]]:
        """Stream every edge as {source, source_label, type, target, target_label, props}."""
        labels = [row[0] for row in self.run_named("labels").rows if row[0]]
        for label in labels:
            query = self.q("edges_from", LABEL=check_label(label))
            for chunk in self.iter_nodes(label, page):
                ids = [n["id"] for n in chunk if "id" in n]
                for rec in self.run(query, {"ids": ids}, write=False).records():
                    yield rec

    def resolve_merged(self, ids: Sequence[str]) -> dict[str, str]:
        """Map each merged (tombstoned) id among `ids` to the live survivor it was merged into."""
        out: dict[str, str] = {}
        unique = list(dict.fromkeys(ids))
        for chunk in self._batched(unique):
            for rec in self.run_named("resolve_merged", {"ids": chunk}).records():
                out[rec["id"]] = rec["survivor"]
        return out

    def neighbours(self, ids: Sequence[str], statuses: Sequence[str] = LIVE_STATUSES) -> dict[str, list[str]]:
        """Persona neighbours (any type, either direction) of each id, in one query per batch."""
        out: dict[str, list[str]] = {}
        for chunk in self._batched(list(dict.fromkeys(ids))):
            res = self.run_named("neighbours", {"ids": chunk, "statuses": list(statuses)})
            for node, nbrs in res.rows:
                out[node] = sorted(nbrs)
        return out

    def edges_among(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Relationship edges with both ends in `ids`: {source, target, type, props}."""
        return self.run_named("edges_among", {"ids": list(dict.fromkeys(ids))}).records()

    def degrees(self, ids: Sequence[str]) -> dict[str, int]:
        """Relationship degree (persona-persona edges) of each id."""
        out: dict[str, int] = {}
        for chunk in self._batched(list(ids)):
            for node, degree in self.run_named("degrees", {"ids": chunk}).rows:
                out[node] = int(degree)
        return out

    def region_counts(self, attribute: str, statuses: Sequence[str] = LIVE_STATUSES) -> dict[Any, int]:
        """Live personas per value of `attribute` (None = attribute not set)."""
        res = self.run_named("region_counts", {"statuses": list(statuses)}, PROP=check_property(attribute))
        return {value: int(n) for value, n in res.rows}

    def degree_distribution(self, statuses: Sequence[str] = LIVE_STATUSES) -> dict[int, int]:
        """Number of live personas per relationship degree."""
        res = self.run_named("degree_distribution", {"statuses": list(statuses)})
        return {int(d): int(n) for d, n in res.rows}

    def stats(self) -> dict[str, Any]:
        """Counts of nodes by label and status, of edges by type, and of live personas by hop."""
        nodes = self.run_named("stats_nodes").records()
        edges = self.run_named("stats_edges").records()
        hops = self.run_named("stats_hops", {"statuses": list(LIVE_STATUSES)}).records()
        return {"nodes": nodes, "edges": edges, "hops": hops}


    # -- for the expansion ------------------------------------------------------------------------
    def frontier(self, hop: int, focus: Mapping[str, Sequence[Any]] | None = None,
                 limit: int = FRONTIER_LIMIT) -> list[dict[str, Any]]:
        """The personas to expand from at `hop`: accepted and not expanded yet, as rows {id, description, focus_score}.

        Those in the most `focus` regions ({attribute: values}) come first, then by id, so every run
        walks them in the same order. One query, not batched: the order is over the whole frontier.

            >>> store.frontier(0, {"age_group": ["child"]})
            [{'id': 'p_3c…', 'description': 'A school nurse in Oslo …', 'focus_score': 1}, ...]
        """
        return self.run_named("expand_frontier", _frontier_params(hop, focus, limit)).records()

    async def afrontier(self, hop: int, focus: Mapping[str, Sequence[Any]] | None = None,
                        limit: int = FRONTIER_LIMIT) -> list[dict[str, Any]]:
        """`frontier` for a caller on an event loop."""
        return (await self.arun_named("expand_frontier", _frontier_params(hop, focus, limit))).records()

    def match_ids(self, ids: Sequence[str]) -> dict[str, str]:
        """The persona ids among `ids` that exist, each mapped to the persona that stands for it now:
        itself, or the survivor a merged persona was merged into. Missing ids are absent.

        Ids are content hashes, so this is exact dedup on insert: a proposal whose id is here exists.
        """
        found: dict[str, str] = {}
        for chunk in self._batched(list(dict.fromkeys(ids))):
            found.update(self.run_named("expand_match", {"ids": chunk}).rows)
        return found

    async def amatch_ids(self, ids: Sequence[str]) -> dict[str, str]:
        """`match_ids` for a caller on an event loop."""
        found: dict[str, str] = {}
        for chunk in self._batched(list(dict.fromkeys(ids))):
            found.update((await self.arun_named("expand_match", {"ids": chunk})).rows)
        return found

    # -- for the filter ---------------------------------------------------------------------------
    def seeds_of(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """For each persona id, the neighbour it was most likely proposed from (the one of lowest hop
        below its own) as {"seed": its description, "relation": the relation on their edge}: what
        the filter judges relevance against. Both are None for a persona without such a neighbour;
        ids not in the graph are absent.
        """
        found: dict[str, dict[str, Any]] = {}
        for chunk in self._batched(list(ids)):
            for rec in self.run_named("filter_seeds", {"ids": chunk}).records():
                found[rec["id"]] = {"seed": rec["seed"], "relation": rec["relation"]}
        return found

    def purge_rejected(self) -> int:
        """Delete rejected personas with their edges, `batch_size` per query; return how many were deleted."""
        deleted = 0
        while True:
            n = int(self.run_named("filter_purge_rejected", {"limit": self.options.batch_size}, write=True).value(0) or 0)
            deleted += n
            if n == 0:
                return deleted

    # -- for dedup --------------------------------------------------------------------------------
    def persona_fingerprint(self) -> dict[str, Any]:
        """What changes whenever the live personas do, in one aggregate query: `total` personas (a
        purge lowers it), `live` ones (a merge or a rejection lowers it) and the `newest` creation
        time (an insert raises it). A dedup index built from the graph is stale once this differs.

            >>> store.persona_fingerprint()
            {'total': 1200, 'live': 1180, 'newest': 1718000000.5}
        """
        rec = self.run_named("dedup_fingerprint", {"statuses": list(LIVE_STATUSES)}).records()[0]
        return {"total": int(rec["total"] or 0), "live": int(rec["live"] or 0), "newest": float(rec["newest"] or 0.0)}

    # -- for sampling -----------------------------------------------------------------------------
    def max_persona_node_id(self) -> int | None:
        """The highest internal node id of a persona (None without personas). Uniform draws pick
        internal ids up to it, so nodes of other labels written later (Run, Sample) do not change a seeded draw."""
        max_id = self.run_named("max_persona_node_id").value()
        return None if max_id is None else int(max_id)

    def persona_ids_at(self, node_ids: Sequence[int], statuses: Sequence[str] = LIVE_STATUSES) -> dict[int, str]:
        """The persona id behind each internal node id that is a persona with one of `statuses`; other node ids are absent."""
        found: dict[int, str] = {}
        for chunk in self._batched(list(node_ids)):
            found.update(self.run_named("sample_by_node_id", {"node_ids": chunk, "statuses": list(statuses)}).rows)
        return found

    def region_ids(self, attribute: str, statuses: Sequence[str] = LIVE_STATUSES) -> dict[str, list[str]]:
        """Persona ids per value of `attribute` (values as text; values and ids sorted): the members of
        each region `region_counts` counts. Personas without the attribute are left out.

            >>> store.region_ids("age_group")
            {'adult': ['p_0a…', 'p_7f…'], 'child': ['p_3c…']}
        """
        res = self.run_named("sample_region_ids", {"statuses": list(statuses)}, PROP=check_property(attribute))
        regions: dict[str, list[str]] = {}
        for value, node_id in res.rows:
            regions.setdefault(str(value), []).append(node_id)
        return {value: sorted(ids) for value, ids in sorted(regions.items())}

    def edges_among_groups(self, groups: Sequence[Sequence[str]]) -> list[list[dict[str, str]]]:
        """For each group of persona ids, the relationship edges with both ends in it, as {source, target, type}, sorted.

        Many groups go in one query, about `batch_size` ids per query; a group is never split. Like
        `edges_among` for many groups at once, without edge properties.
        """
        out: list[list[dict[str, str]]] = [[] for _ in groups]
        start = 0
        while start < len(groups):
            end, ids = start, 0
            while end < len(groups) and (end == start or ids + len(groups[end]) <= self.options.batch_size):
                ids += len(groups[end])
                end += 1
            for index, packed in self.run_named("sample_edges_among", {"groups": list(groups[start:end])}).rows:
                for edge in sorted(packed):
                    source, target, rel_type = edge.split(" ")
                    out[start + index].append({"source": source, "target": target, "type": rel_type})
            start = end
        return out

    def sample_members(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Personas as samples show them, by id: id, description and the attributes they have (no
        store bookkeeping: status, run_id, created_at, ...).

        Per batch, one query finds the property keys present and one fetches those as a list per persona.
        """
        out: dict[str, dict[str, Any]] = {}
        for chunk in self._batched(list(ids)):
            present = {row[0] for row in self.run_named("sample_member_keys", {"ids": chunk}).rows}
            # Keys Cypher could only name quoted (e.g. with a dash) are left out rather than interpolated.
            keys = sorted(k for k in present if k not in RESERVED_PROPERTIES and PROPERTY_RE.match(k) and len(k) <= 64)
            res = self.run_named("sample_members", {"ids": chunk}, ATTRS="".join(f", p.{k}" for k in keys))
            for (row,) in res.rows:
                member = {"id": row[0], "description": row[1] or ""}
                member.update((k, v) for k, v in zip(keys, row[2:]) if v is not None)
                out[row[0]] = member
        return out

    # -- for synthesis ----------------------------------------------------------------------------
    def neighbour_samples(self, ids: Sequence[str], task: str, lang: str,
                          statuses: Sequence[str] = LIVE_STATUSES) -> list[dict[str, Any]]:
        """`Sample` nodes of `task` in `lang` generated by each persona's neighbours (an edge either
        way; neighbours with one of `statuses`), not by the persona itself, as rows
        {persona, neighbour, neighbour_description, id, text}."""
        rows: list[dict[str, Any]] = []
        for chunk in self._batched(list(ids)):
            params = {"ids": chunk, "task": task, "lang": lang, "statuses": list(statuses)}
            rows += self.run_named("synth_neighbour_samples", params).records()
        return rows

    def incident_edges(self, ids: Sequence[str], statuses: Sequence[str] = LIVE_STATUSES) -> dict[str, list[dict[str, str]]]:
        """Relationship edges of each persona (either direction) to another persona with one of `statuses`,
        as {source, target, type} in their stored direction, sorted; personas without such an edge are absent.

            >>> store.incident_edges(["p_nurse"])
            {'p_nurse': [{'source': 'p_patient', 'target': 'p_nurse', 'type': 'PATIENT_OF'}]}
        """
        out: dict[str, list[dict[str, str]]] = {}
        for chunk in self._batched(list(dict.fromkeys(ids))):
            for anchor, packed in self.run_named("synth_incident_edges", {"ids": chunk, "statuses": list(statuses)}).rows:
                edges = [dict(zip(("source", "target", "type"), edge.split(" "))) for edge in packed]
                out[anchor] = sorted(edges, key=lambda e: (e["source"], e["type"], e["target"]))
        return out

    def upsert_samples(self, samples: Sequence[dict[str, Any]]) -> WriteStats:
        """MERGE `Sample` nodes `{"id", "persona_ids", "props"}` by id, each with a `GENERATED_BY` edge to
        every persona involved (one for a persona task, both ends of an edge, every member of a cluster).

        Batch by batch, the nodes then their edges; a sample already there keeps its properties.
        `matched` in the result counts the GENERATED_BY edges to a persona that exists.
        """
        total = WriteStats()
        query = self.q("synth_upsert_samples")
        for chunk in self._batched(samples):
            total.add_batch(self.run(query, {"rows": [{"id": s["id"], "props": s["props"]} for s in chunk]}, write=True))
            total += self.add_edges([Edge(source=s["id"], target=pid, type="GENERATED_BY")
                                     for s in chunk for pid in s["persona_ids"]], source_label="Sample")
        return total

    # -- merge ------------------------------------------------------------------------------------
    def merge_nodes(self, survivor: str, duplicates: Sequence[str]) -> WriteStats:
        """Merge duplicate personas into `survivor`; see `merge_groups`."""
        return self.merge_groups([(survivor, list(duplicates))])

    def merge_groups(self, groups: Sequence[tuple[str, Sequence[str]]]) -> WriteStats:
        """Merge each group of duplicate personas into its survivor, moving every edge.

        Every edge of a duplicate is recreated on the survivor with its type, direction and
        properties; an edge the survivor already has (same type, same other end, same direction)
        is not duplicated; an edge between two members of one group is dropped unless it was a
        self-loop already. The survivor records the duplicates' descriptions (`aliases`) and ids
        (`merged_ids`); the duplicates stay as edgeless tombstones with status `merged` and
        `merged_into`, so later writes that name them are redirected (a survivor that is such a
        tombstone is redirected too). Idempotent: rerunning after a crash part-way gives the same graph.
        The rows come from `graph.merge`; this reads what they are built from and writes them.
        """
        # A survivor that was itself merged away earlier stands for the persona it was merged into,
        # so no edge lands on a tombstone.
        live = self.resolve_merged([survivor for survivor, _ in groups])
        owner = merge.owners([(live.get(survivor, survivor), dups) for survivor, dups in groups])
        if not owner:
            return WriteStats()
        survivors = list(dict.fromkeys(owner.values()))
        nodes = self.get_personas(list(owner) + survivors)
        missing = [i for i in survivors if i not in nodes]
        if missing:
            raise KeyError(f"survivor persona(s) not found: {missing[:5]}")
        incident = ((direction, rec) for direction in ("out", "in") for chunk in self._batched(list(owner))
                    for rec in self.run_named(f"incident_{direction}", {"ids": chunk}).records())
        total = WriteStats()
        for (rel_type, src_label, dst_label), rows in merge.moved_edge_rows(incident, owner).items():
            total += self._write_batches(self.q(_upsert_query(rel_type), TYPE=rel_type, SRC=src_label, DST=dst_label), rows)
        total += self._write_batches(self.q("merge_survivors"), merge.survivor_rows(owner, nodes))
        tombstones = merge.tombstone_rows(owner)
        total += self._write_batches(self.q("merge_tombstones"), tombstones)
        total += self._write_batches(self.q("merge_repoint"), tombstones)
        return total


def _frontier_params(hop: int, focus: Mapping[str, Sequence[Any]] | None, limit: int) -> dict[str, Any]:
    """Parameters of `cypher/expand_frontier.cypher`."""
    return {"pending": pending_key(hop),
            "focus": [{"key": key, "values": list(values)} for key, values in (focus or {}).items()],
            "limit": limit}


def open_store(options: StoreConfig, *, ensure_schema: bool = True) -> GraphStore:
    """Open the store the options name: the embedded FalkorDB, or Neo4j for neo4j:// / bolt:// URIs."""
    # Imported here, not at the top: the backends' modules import this one.
    from personagraph.graph.falkordb_store import FalkorStore
    from personagraph.graph.neo4j_store import Neo4jStore

    uri = options.uri.strip()
    if uri in ("", "embedded", "falkordb"):
        store: GraphStore = FalkorStore(options)
    elif uri.split("://", 1)[0] in ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"):
        store = Neo4jStore(options)
    else:
        raise StoreUnavailable(f"unknown store URI {uri!r}: use 'embedded', neo4j://host:7687 or bolt://host:7687")
    if ensure_schema:
        store.ensure_schema()
    return store


def __getattr__(name: str) -> Any:
    """`FalkorStore` and `Neo4jStore`, importable from here as before they had modules of their own
    (imported on first use: their modules import this one)."""
    if name == "FalkorStore":
        from personagraph.graph.falkordb_store import FalkorStore

        return FalkorStore
    if name == "Neo4jStore":
        from personagraph.graph.neo4j_store import Neo4jStore

        return Neo4jStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
