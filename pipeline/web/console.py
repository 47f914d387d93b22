"""The Cypher console behind `POST /api/query`: the ready-made queries, the row cap, the guards, and
result cells as JSON the page can show as a table and draw as a graph.

A user's query runs through `GraphStore.query` with `elements=True`, so nodes keep their labels and
relationships their ends. A cell is plain JSON: a node becomes `{"_kind": "node", "id", "labels",
"properties"}`, named by its `id` property (personas, sources, runs, samples have one) or else the
database's own id; a relationship `{"_kind": "edge", "type", "source", "target", "properties"}` with
its ends named the same way; a path `{"_kind": "path", "nodes", "edges"}`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from personagraph import cypher
from personagraph.graph.store import GraphEdge, GraphNode, GraphPath, GraphStore, QueryResult, ReadOnlyViolation
from personagraph.web.models import GEdge, GNode, GraphView, QueryAnswer, ReadyQuery, jsonable

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# String literals, quoted names and comments: blanked before the query's own words are looked at,
# so `RETURN 'LOAD CSV'` or a `// LIMIT` comment do not count as clauses.
_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.S)
_CLAUSE = re.compile(r"\b(RETURN|WITH|MATCH|OPTIONAL|UNWIND|CREATE|MERGE|SET|DELETE|DETACH|REMOVE|CALL|FOREACH|"
                     r"UNION|LIMIT|SKIP|ORDER|LOAD|USE|YIELD|WHERE)\b", re.I)
# What reads or writes files (or fetches URLs) on the database's machine: never from the web console,
# whose promise is that no endpoint touches a file outside the data folder.
_FILE_ACCESS = re.compile(r"\bLOAD\s+CSV\b|\bapoc\s*\.\s*(?:load|import|export|cypher|log|systemdb)\b|"
                          r"\bdbms\s*\.\s*(?:security|setConfigValue)\b", re.I)


class ConsoleRefusal(ValueError):
    """A console query the web app will not run (it would read files on the server)."""


def ready_queries(dialect: str) -> list[ReadyQuery]:
    """The ready-made queries (`personagraph query --list`) with their description, parameters and text."""
    out = []
    for name in cypher.ready_made():
        text = cypher.load(f"queries/{name}", dialect)
        out.append(ReadyQuery(name=name, description=cypher.ready_made_description(name),
                              params=list(dict.fromkeys(_PARAM.findall(text))), cypher=text))
    return out


def ready_query_text(name: str, dialect: str) -> str:
    """A ready-made query's text by name (only names `query --list` shows: never a path)."""
    if name not in cypher.ready_made():
        raise KeyError(f"no ready-made query {name!r}; GET /api/queries lists them")
    return cypher.load(f"queries/{name}", dialect)


def _words(query: str) -> str:
    """The query with literals and comments blanked (same length)."""
    return _LITERAL.sub(lambda m: " " * len(m.group(0)), query)


def check_console_query(query: str) -> None:
    """Refuse what would read files or URLs on the database's machine (LOAD CSV, APOC's loaders)."""
    if _FILE_ACCESS.search(_words(query)):
        raise ConsoleRefusal("LOAD CSV and file or URL procedures read from the server's machine; the web console "
                             "does not run them (use `personagraph query` on the command line)")


def capped(query: str, cap: int) -> str:
    """The query with `LIMIT cap + 1` appended when it ends in a RETURN without one, so the database
    stops at one row past the cap instead of building every row; otherwise the query as it is (rows
    past the cap are then cut off after it answers)."""
    words = _words(query).rstrip().rstrip(";").rstrip()
    clauses = [m.group(1).upper() for m in _CLAUSE.finditer(words)]
    last_return = max((i for i, c in enumerate(clauses) if c == "RETURN"), default=-1)
    if last_return < 0 or "UNION" in clauses:
        return query
    after = set(clauses[last_return + 1:])
    if after - {"ORDER", "SKIP"}:  # a LIMIT of its own, or a clause after the RETURN (a subquery's)
        return query
    body = query.rstrip().rstrip(";")
    return f"{body}\nLIMIT {cap + 1}"  # on a line of its own: the query may end in a // comment


class CellEncoder:
    """Turns result cells into JSON and gathers the nodes and edges they hold, once each.

    Relationship ends come from the store as the database's ids; they are named by the nodes'
    `id` property, read from the nodes in the result, or looked up in one query for the rest.
    """

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self.nodes: dict[str, GNode] = {}
        self.edges: dict[str, GEdge] = {}
        self.names: dict[str, str] = {}  # database id -> the id the page uses

    def _walk(self, value: Any) -> Iterator[GraphNode | GraphEdge]:
        if isinstance(value, (GraphNode, GraphEdge)):
            yield value
        elif isinstance(value, GraphPath):
            yield from value.nodes
            yield from value.edges
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from self._walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                yield from self._walk(v)

    def _name_nodes(self, rows: list[list[Any]]) -> None:
        """Fill `names` for every node in the rows and every relationship end."""
        ends: set[str] = set()
        for row in rows:
            for element in self._walk(row):
                if isinstance(element, GraphNode):
                    node_id = element.properties.get("id")
                    self.names[element.key] = str(node_id) if node_id is not None else element.key
                else:
                    ends.update((element.source, element.target))
        missing = sorted(ends - self.names.keys())
        if missing:
            keys = [int(k) for k in missing] if self.store.dialect == "falkordb" else missing
            for key, node_id in self.store.run_named("web/node_ids", {"keys": keys}).rows:
                self.names[str(key)] = str(node_id) if node_id is not None else str(key)
        for key in missing:
            self.names.setdefault(key, key)

    def encode(self, value: Any) -> Any:
        """One cell as JSON; nodes and edges are also gathered for the graph view."""
        if isinstance(value, GraphNode):
            node = GNode(id=self.names[value.key], labels=list(value.labels), properties=jsonable(value.properties))
            self.nodes.setdefault(node.id, node)
            return node.model_dump(by_alias=True)
        if isinstance(value, GraphEdge):
            edge = GEdge(type=value.type, source=self.names[value.source], target=self.names[value.target],
                         properties=jsonable(value.properties))
            self.edges.setdefault(value.key, edge)
            return edge.model_dump(by_alias=True)
        if isinstance(value, GraphPath):
            return {"_kind": "path", "nodes": [self.encode(n) for n in value.nodes], "edges": [self.encode(e) for e in value.edges]}
        if isinstance(value, (list, tuple)):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            return {str(k): self.encode(v) for k, v in value.items()}
        return jsonable(value)

    def answer(self, res: QueryResult, row_cap: int, elapsed_ms: float) -> QueryAnswer:
        """The console's answer: at most `row_cap` rows as JSON, and the graph they hold."""
        rows = res.rows[:row_cap]
        self._name_nodes(rows)
        encoded = [[self.encode(cell) for cell in row] for row in rows]
        wrote = {k: v for k, v in res.stats.model_dump().items() if v and k != "matched"}
        return QueryAnswer(columns=res.columns, rows=encoded, graph=GraphView(nodes=list(self.nodes.values()), edges=list(self.edges.values())),
                           truncated=len(res.rows) > row_cap, row_cap=row_cap, elapsed_ms=round(elapsed_ms, 2), wrote=wrote)


def run_console_query(store: GraphStore, query: str, params: dict[str, Any], *, write: bool, row_cap: int,
                      timeout_s: float) -> QueryAnswer:
    """Run a console query under the row cap and the timeout; read-only unless `write`.

    With `write`, the query is sent read-only first and only resent as a write when the database
    says it writes: reads keep their timeout (FalkorDB applies none to writes) and skip the
    bookkeeping a write is followed by. Raises ReadOnlyViolation (without `write`), QueryTimeout,
    QueryError, ConsoleRefusal.
    """
    check_console_query(query)
    text = capped(query, row_cap)
    started = time.perf_counter()
    try:
        res = store.query(text, params, write=False, timeout=timeout_s, elements=True)
    except ReadOnlyViolation:
        if not write:
            raise
        started = time.perf_counter()
        res = store.query(text, params, write=True, timeout=timeout_s, elements=True)
    elapsed = (time.perf_counter() - started) * 1000
    return CellEncoder(store).answer(res, row_cap, elapsed)
