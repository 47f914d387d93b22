"""The persona graph store: one API over the embedded FalkorDB and a Neo4j 5 server.

Every operation is Cypher from `cypher/` run with parameters; the two backends differ only in how a
query is sent and how results come back (`FalkorStore`, `Neo4jStore`), and in the few files of the
per-dialect table (`cypher/falkordb/`, `cypher/neo4j/`). Nothing here knows about LLMs.

    >>> store = open_store(StoreConfig(data_dir=Path(".personagraph")))
    >>> store.upsert_personas([Persona(description="A pediatric nurse in Lyon")])
    WriteStats(nodes_created=1, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from personagraph import cypher
from personagraph.graph import server
from personagraph.graph.model import (
    PERSONA_ROW,
    Edge,
    Persona,
    PersonaStatus,
    Source,
    check_label,
    check_property,
    check_rel_type,
    gc_paused,
)
from personagraph.graph.server import StoreUnavailable

LIVE_STATUSES: tuple[str, ...] = (PersonaStatus.candidate.value, PersonaStatus.accepted.value)
UNIQUE_KEYS: tuple[tuple[str, str], ...] = (("Persona", "id"), ("Source", "id"), ("Run", "id"), ("Sample", "id"))
# An EXTRACTED_FROM edge pools the stances of every write instead of keeping the first write's
# (cypher/upsert_extracted_from.cypher); every other edge type is upserted by cypher/upsert_edges.cypher.
STANCE_EDGE = "EXTRACTED_FROM"

__all__ = [
    "GraphStore",
    "FalkorStore",
    "Neo4jStore",
    "QueryError",
    "ReadOnlyViolation",
    "StoreUnavailable",
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
    batch_size: int = Field(default=5000, ge=1, description="Rows per UNWIND write query")


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


def _batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _first_per_key(rows: Iterable[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """Rows with the first occurrence of each key kept. FalkorDB applies the ON CREATE SET of the
    *last* of several rows that MERGE one new node or edge in one batch, Neo4j that of the first; so
    duplicates are dropped before they reach the database, and the first one wins on both."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        out.setdefault(tuple(row[k] for k in keys), row)
    return list(out.values())


def _stances(props: dict[str, Any]) -> list[str]:
    """The stances an EXTRACTED_FROM edge's properties record (`stances`, or a lone `stance` written before it)."""
    return list(props.get("stances") or ([props["stance"]] if props.get("stance") else []))


def _add_edge_row(pairs: dict[tuple[str, str], list[Any]], src: str, dst: str, props: dict[str, Any], rel_type: str) -> None:
    """Add the row `[src, dst, props]` unless the pair has one already: the first row wins (see
    _first_per_key), except that the stances of two EXTRACTED_FROM rows are pooled, as the database does."""
    row = pairs.setdefault((src, dst), [src, dst, props])
    if row[2] is not props and rel_type == STANCE_EDGE:
        row[2] = {**row[2], "stances": sorted(set(_stances(row[2])) | set(_stances(props)))}


def _upsert_query(rel_type: str) -> str:
    """The name of the query that upserts edges of `rel_type`."""
    return "upsert_extracted_from" if rel_type == STANCE_EDGE else "upsert_edges"


def _account(total: WriteStats, res: QueryResult) -> None:
    """Add one batch's counters (and its `matched` column, if any) to `total`."""
    total += res.stats
    if "matched" in res.columns:
        total.matched += int(res.value(0) or 0)


def _quote(value: str) -> str:
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    return '"' + value + '"'


def _literal_map(value: dict[str, Any]) -> str:
    parts = []
    for key, item in value.items():
        if not key or "`" in key:
            raise ValueError(f"cannot send map key {key!r} to FalkorDB (empty or contains a backtick)")
        parts.append(f"`{key}`:{_cypher_literal(item)}")
    return "{" + ",".join(parts) + "}"


def _literal_list(value: Sequence[Any]) -> str:
    return "[" + ",".join(map(_cypher_literal, value)) + "]"


# Exact types first (one dict lookup per value instead of a chain of isinstance checks).
_LITERALS: dict[type, Callable[[Any], str]] = {
    str: _quote,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
    int: int.__repr__,
    float: float.__repr__,
    list: _literal_list,
    tuple: _literal_list,
    dict: _literal_map,
}


def _cypher_literal(value: Any) -> str:
    """A parameter value as FalkorDB's `CYPHER name=value` header spells it (what the falkordb client
    sends, produced with less per-value overhead for large batches)."""
    encode = _LITERALS.get(type(value))
    if encode is not None:
        return encode(value)
    if isinstance(value, str):  # subclasses: str enums, ...
        return _quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return _literal_map(value)
    if isinstance(value, (list, tuple)):
        return _literal_list(value)
    return str(value)


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


def _with_params(query: str, params: dict[str, Any] | None) -> str:
    """`query` with its parameters in FalkorDB's `CYPHER name=value ...` header (what the falkordb
    client builds, with less per-value overhead for large batches)."""
    if not params:
        return query
    header = " ".join(f"{name}={_cypher_literal(value)}" for name, value in params.items())
    return f"CYPHER {header} {query}"


def _union(*lists: Iterable[Any]) -> list[Any]:
    """Order-preserving union of lists (aliases, merged ids)."""
    seen: dict[Any, None] = {}
    for items in lists:
        for item in items or ():
            seen.setdefault(item, None)
    return list(seen)


class GraphStore(ABC):
    """The operations every stage uses; subclasses only send queries and convert results."""

    dialect: str = ""

    def __init__(self, options: StoreConfig) -> None:
        self.options = options

    # -- transport (backend-specific) -----------------------------------------------------------
    @abstractmethod
    def run(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True) -> QueryResult:
        """Run one Cypher query with parameters. `write=False` makes the database refuse writes."""

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

    def query(self, query: str, params: dict[str, Any] | None = None, *, write: bool = False) -> QueryResult:
        """Run a user's own Cypher: read-only unless `write=True` (the database refuses writes then)."""
        res = self.run(query, params or {}, write=write)
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

    def _write_batches(self, query: str, rows: Sequence[Any], key: str = "rows") -> WriteStats:
        return self._write_many([(query, rows)], key)

    def _write_many(self, jobs: Iterable[tuple[str, Sequence[Any]]], key: str = "rows") -> WriteStats:
        """Run each (query, rows) job in batches of `batch_size` rows, in order; counters summed."""
        total = WriteStats()
        for query, rows in jobs:
            for chunk in _batches(rows, self.options.batch_size):
                _account(total, self.run(query, {key: list(chunk)}, write=True))
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
        a (src, dst) pair wins (see _add_edge_row). With `redirect`, persona endpoints merged away
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
            _add_edge_row(by_type[e.type], src, dst, e.props, e.type)
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
        for chunk in _batches(list(ids), self.options.batch_size):
            for (node,) in self.run_named("get_personas", {"ids": list(chunk)}).rows:
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
        for chunk in _batches(unique, self.options.batch_size):
            for rec in self.run_named("resolve_merged", {"ids": list(chunk)}).records():
                out[rec["id"]] = rec["survivor"]
        return out

    def neighbours(self, ids: Sequence[str], statuses: Sequence[str] = LIVE_STATUSES) -> dict[str, list[str]]:
        """Persona neighbours (any type, either direction) of each id, in one query per batch."""
        out: dict[str, list[str]] = {}
        for chunk in _batches(list(dict.fromkeys(ids)), self.options.batch_size):
            res = self.run_named("neighbours", {"ids": list(chunk), "statuses": list(statuses)})
            for node, nbrs in res.rows:
                out[node] = sorted(nbrs)
        return out

    def edges_among(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Relationship edges with both ends in `ids`: {source, target, type, props}."""
        return self.run_named("edges_among", {"ids": list(dict.fromkeys(ids))}).records()

    def degrees(self, ids: Sequence[str]) -> dict[str, int]:
        """Relationship degree (persona-persona edges) of each id."""
        out: dict[str, int] = {}
        for chunk in _batches(list(ids), self.options.batch_size):
            for node, degree in self.run_named("degrees", {"ids": list(chunk)}).rows:
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
        """Counts by label/status, by edge type and by hop: what `personagraph stats` shows."""
        nodes = self.run_named("stats_nodes").records()
        edges = self.run_named("stats_edges").records()
        hops = self.run_named("stats_hops", {"statuses": list(LIVE_STATUSES)}).records()
        return {"nodes": nodes, "edges": edges, "hops": hops}

    # -- merge primitive --------------------------------------------------------------------------
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
        """
        # A survivor that was itself merged away earlier stands for the persona it was merged into,
        # so no edge lands on a tombstone.
        live = self.resolve_merged([survivor for survivor, _ in groups])
        groups = [(live.get(survivor, survivor), dups) for survivor, dups in groups]
        owner: dict[str, str] = {}
        for survivor, dups in groups:
            for d in dups:
                if d != survivor:
                    owner[d] = survivor
        if not owner:
            return WriteStats()
        for survivor, dups in groups:
            # A group with nothing to merge keeps no one, so it cannot conflict with another group.
            if survivor in owner and any(d != survivor for d in dups):
                raise ValueError(f"{survivor} is both a survivor and a duplicate in one merge call")
        dup_ids = list(owner)
        survivors = list(dict.fromkeys(owner.values()))
        nodes = self.get_personas(dup_ids + survivors)
        missing = [i for i in survivors if i not in nodes]
        if missing:
            raise KeyError(f"survivor persona(s) not found: {missing[:5]}")

        def target(node_id: str, label: str) -> str:
            return owner.get(node_id, node_id) if label == "Persona" else node_id

        # (type, src_label, dst_label) -> rows; built from both directions, deduplicated.
        moved: dict[tuple[str, str, str], dict[tuple[str, str], list[Any]]] = defaultdict(dict)
        for direction in ("out", "in"):
            for chunk in _batches(dup_ids, self.options.batch_size):
                res = self.run_named(f"incident_{direction}", {"ids": list(chunk)})
                for rec in res.records():
                    node, other, label = rec["node"], rec["other"], rec["other_label"] or "Persona"
                    new_node = owner.get(node, node)
                    new_other = target(other, label)
                    was_loop = node == other and label == "Persona"
                    if label == "Persona" and new_node == new_other and not was_loop:
                        continue  # an edge inside the group would become a new self-loop
                    if direction == "out":
                        key, src, dst, sl, dl = rec["type"], new_node, new_other, "Persona", label
                    else:
                        key, src, dst, sl, dl = rec["type"], new_other, new_node, label, "Persona"
                    _add_edge_row(moved[(check_rel_type(key), check_label(sl), check_label(dl))],
                                  src, dst, rec["props"] or {}, key)
        total = WriteStats()
        for (rel_type, sl, dl), rows in moved.items():
            query = self.q(_upsert_query(rel_type), TYPE=rel_type, SRC=sl, DST=dl)
            total += self._write_batches(query, list(rows.values()))

        members_of: dict[str, list[str]] = defaultdict(list)
        for d in dup_ids:
            if d in nodes:
                members_of[owner[d]].append(d)
        survivor_rows = []
        for survivor in survivors:
            s = nodes[survivor]
            members = members_of[survivor]
            aliases = _union(s.get("aliases"), *[[nodes[d]["description"]] + list(nodes[d].get("aliases") or []) for d in members])
            aliases = [a for a in aliases if a != s.get("description")]
            merged = _union(s.get("merged_ids"), *[[d] + list(nodes[d].get("merged_ids") or []) for d in members])
            survivor_rows.append({"id": survivor, "aliases": aliases, "merged_ids": merged})
        total += self._write_batches(self.q("merge_survivors"), survivor_rows)
        tomb_rows = [{"id": d, "survivor": owner[d]} for d in dup_ids]
        total += self._write_batches(self.q("merge_tombstones"), tomb_rows)
        total += self._write_batches(self.q("merge_repoint"), tomb_rows)
        return total


class FalkorStore(GraphStore):
    """The embedded default: FalkorDB over a unix socket, server started on first use."""

    dialect = "falkordb"

    def __init__(self, options: StoreConfig, socket_path: Path | None = None) -> None:
        super().__init__(options)
        import redis
        from falkordb import FalkorDB
        from falkordb.edge import Edge as FEdge
        from falkordb.node import Node as FNode
        from falkordb.path import Path as FPath

        self._node_type, self._edge_type, self._path_type = FNode, FEdge, FPath

        self._redis_errors = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)
        self._response_error = redis.ResponseError
        self.socket_path = socket_path or server.ensure_running(options.data_dir)
        with self._errors():  # the client asks the server what it is at once: it may have died since the start check
            self._db = FalkorDB(unix_socket_path=str(self.socket_path))
        self._graph = self._db.select_graph(options.graph)
        self._async: tuple[asyncio.AbstractEventLoop, Any, Any] | None = None

    def describe(self) -> str:
        return f"embedded FalkorDB at {self.socket_path} (graph {self.options.graph!r})"

    def _convert(self, value: Any) -> Any:
        # Called for every value of every row: scalars (most values) return first, and lists of
        # scalars (neighbour id lists) are copied without a call per element.
        if value is None or isinstance(value, (str, int, float)):
            return value
        if isinstance(value, list):
            if all(v is None or isinstance(v, (str, int, float)) for v in value):
                return list(value)
            return [self._convert(v) for v in value]
        if isinstance(value, self._node_type):
            return dict(value.properties)
        if isinstance(value, self._edge_type):
            return {"_type": value.relation, **dict(value.properties)}
        if isinstance(value, self._path_type):
            return [self._convert(n) for n in value.nodes()]
        if isinstance(value, dict):
            return {k: self._convert(v) for k, v in value.items()}
        return value

    def run(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True) -> QueryResult:
        send = self._graph.query if write else self._graph.ro_query
        text = _with_params(query, params)
        return self._execute(lambda: send(text))

    def _write_many(self, jobs: Iterable[tuple[str, Sequence[Any]]], key: str = "rows") -> WriteStats:
        """Batched writes with the next batch's parameters serialised while the server runs the
        previous one: client and server work overlap instead of taking turns (one query in flight).
        One pipeline for all jobs (e.g. every edge type of an `add_edges` call), so it does not
        drain and refill between them."""
        total = WriteStats()
        chunks = ((query, chunk) for query, rows in jobs for chunk in _batches(rows, self.options.batch_size))
        with ThreadPoolExecutor(max_workers=1) as sender:
            pending: Future[QueryResult] | None = None
            for query, chunk in chunks:
                text = _with_params(query, {key: list(chunk)})
                if pending is not None:
                    _account(total, pending.result())
                pending = sender.submit(self._execute, partial(self._graph.query, text))
            if pending is not None:
                _account(total, pending.result())
        return total

    def _execute(self, send: Callable[[], Any]) -> QueryResult:
        """Call `send` (one FalkorDB query) and turn its result or error into ours."""
        with self._errors():
            res = send()
        return self._result(res)

    async def arun(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True) -> QueryResult:
        """`run` through FalkorDB's asyncio client: parameters encoded here, the server's answer awaited."""
        text = _with_params(query, params)
        with self._errors():  # the asyncio client, made on first use, asks the server what it is at once
            graph = self._async_graph()
            res = await (graph.query(text) if write else graph.ro_query(text))
        return self._result(res)

    def _async_graph(self) -> Any:
        """The asyncio client's graph for the running loop (one connection pool per loop)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            from falkordb.asyncio import FalkorDB as AsyncFalkorDB

            db = AsyncFalkorDB(unix_socket_path=str(self.socket_path))
            self._async = (loop, db, db.select_graph(self.options.graph))
        return self._async[2]

    async def aclose(self) -> None:
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await self._async[1].connection.aclose()
        self._async = None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """FalkorDB's and the connection's errors as ours, naming what failed and what to do."""
        try:
            yield
        except self._response_error as exc:
            msg = str(exc)
            if "read-only" in msg or "RO_QUERY" in msg:
                raise ReadOnlyViolation(f"this query writes to the graph; it was sent read-only ({msg})") from None
            raise QueryError(msg) from None
        except self._redis_errors as exc:
            raise StoreUnavailable(
                server.disk_full(self.options.data_dir)
                or f"cannot reach the embedded FalkorDB at {self.socket_path}: {str(exc).rstrip('.')}. "
                "Run `personagraph db status`, then `personagraph db start`."
            ) from None

    def _result(self, res: Any) -> QueryResult:
        """A FalkorDB result set as ours."""
        columns = [h[1] if isinstance(h, (list, tuple)) else str(h) for h in (res.header or [])]
        rows = [[self._convert(v) for v in row] for row in (res.result_set or [])]
        return QueryResult(columns=columns, rows=rows, stats=WriteStats.from_counters(res))

    def _create_unique(self, label: str, prop: str) -> None:
        with self._errors(), contextlib.suppress(self._response_error):  # exists already
            self._graph.create_node_unique_constraint(label, prop)

    def iter_nodes(self, label: str = "Persona", page: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        max_id = self.run_named("max_node_id").value()
        if max_id is None:
            return
        query = self.q("node_page", LABEL=check_label(label))
        after = 0
        while after <= int(max_id):
            rows = self.run(query, {"after": after, "limit": page}, write=False).rows
            if rows:
                yield [node for _, node in rows]
            after += page

    def persist(self) -> None:
        # Every acknowledged write was fsynced to the append-only file; check it still is written.
        server.check_durable(self.socket_path, self.options.data_dir)

    def _after_user_write(self) -> None:
        super()._after_user_write()
        from personagraph.graph.indexes import guard_graph

        with self._errors():
            guard_graph(self._graph, self.options.graph)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._db.connection.close()


class Neo4jStore(GraphStore):
    """A Neo4j 5 server over Bolt through the official driver (thin: transport and conversion only)."""

    dialect = "neo4j"

    def __init__(self, options: StoreConfig) -> None:
        super().__init__(options)
        import neo4j
        from neo4j.exceptions import AuthError, ServiceUnavailable

        self._neo4j = neo4j
        driver_log = logging.getLogger("neo4j")
        if not driver_log.handlers:  # the driver's own warnings would print beside our one-line error
            driver_log.addHandler(logging.NullHandler())
        try:
            self._driver = neo4j.GraphDatabase.driver(options.uri, auth=(options.user, options.password.get_secret_value()))
            self._driver.verify_connectivity()
        except (ServiceUnavailable, AuthError, ValueError, OSError) as exc:
            reason = " ".join(str(exc).split())  # the driver's message spans lines
            raise StoreUnavailable(
                f"cannot reach Neo4j at {options.uri}: {reason}. Check that the server runs and that "
                "NEO4J_USER / NEO4J_PASSWORD (or [store] user/password) are right."
            ) from None
        self._database = options.graph if options.graph and options.graph != "personas" else None

    def describe(self) -> str:
        return f"Neo4j at {self.options.uri}" + (f" (database {self._database})" if self._database else "")

    def _convert(self, value: Any) -> Any:
        graph = self._neo4j.graph
        if isinstance(value, graph.Node):
            return dict(value)
        if isinstance(value, graph.Relationship):
            return {"_type": value.type, **dict(value)}
        if isinstance(value, graph.Path):
            return [dict(n) for n in value.nodes]
        if isinstance(value, list):
            return [self._convert(v) for v in value]
        if isinstance(value, dict):
            return {k: self._convert(v) for k, v in value.items()}
        return value

    def run(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True) -> QueryResult:
        from neo4j.exceptions import ClientError, ServiceUnavailable, SessionExpired

        mode = self._neo4j.WRITE_ACCESS if write else self._neo4j.READ_ACCESS
        try:
            with self._driver.session(database=self._database, default_access_mode=mode) as session:
                result = session.run(query, params or {})
                columns = list(result.keys())
                records = list(result)
                summary = result.consume()
        except ClientError as exc:
            if not write and "write" in (exc.message or "").lower():
                raise ReadOnlyViolation(f"this query writes to the graph; it was sent read-only ({exc.message})") from None
            raise QueryError(exc.message or str(exc)) from None
        except (ServiceUnavailable, SessionExpired, OSError) as exc:
            raise StoreUnavailable(f"cannot reach Neo4j at {self.options.uri}: {' '.join(str(exc).split())}") from None
        return QueryResult(columns=columns, rows=[[self._convert(v) for v in r.values()] for r in records],
                           stats=WriteStats.from_counters(summary.counters))

    def _create_unique(self, label: str, prop: str) -> None:
        """Constraints come with schema.cypher in Neo4j's dialect."""

    def iter_nodes(self, label: str = "Persona", page: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        query = self.q("node_page", LABEL=check_label(label))
        after = ""
        while True:
            rows = self.run(query, {"after": after, "limit": page}, write=False).rows
            if not rows:
                return
            yield [node for _, node in rows]
            after = rows[-1][0]
            if len(rows) < page:
                return

    def close(self) -> None:
        self._driver.close()


def open_store(options: StoreConfig, *, ensure_schema: bool = True) -> GraphStore:
    """Open the store the options name: the embedded FalkorDB, or Neo4j for neo4j:// / bolt:// URIs."""
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
