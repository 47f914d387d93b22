"""The scale-out backend: a Neo4j 5 server (or cluster, or Aura) over Bolt through the official driver.

Kept thin, transport and result conversion only: every query is the shared Cypher of `cypher/`,
plus the few files of `cypher/neo4j/`. Tested by tests/test_neo4j.py when NEO4J_URI is set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from personagraph.graph.model import check_label
from personagraph.graph.server import StoreUnavailable
from personagraph.graph.store import (
    GraphEdge,
    GraphNode,
    GraphPath,
    GraphStore,
    QueryError,
    QueryResult,
    QueryTimeout,
    ReadOnlyViolation,
    StoreConfig,
    WriteStats,
)

__all__ = ["Neo4jStore"]


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

    def _element(self, value: Any) -> Any:
        """`_convert` for `query(..., elements=True)`: nodes, relationships and paths keep their ids, labels and ends."""
        graph = self._neo4j.graph
        if isinstance(value, graph.Node):
            return GraphNode(value.element_id, tuple(sorted(value.labels)), self._element(dict(value)))
        if isinstance(value, graph.Relationship):
            return GraphEdge(value.element_id, value.type, value.start_node.element_id, value.end_node.element_id,
                             self._element(dict(value)))
        if isinstance(value, graph.Path):
            return GraphPath(tuple(self._element(n) for n in value.nodes), tuple(self._element(r) for r in value.relationships))
        if isinstance(value, list):
            return [self._element(v) for v in value]
        if isinstance(value, dict):
            return {k: self._element(v) for k, v in value.items()}
        return value

    def run(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True,
            timeout: float | None = None, elements: bool = False) -> QueryResult:
        from neo4j.exceptions import ClientError, ServiceUnavailable, SessionExpired

        mode = self._neo4j.WRITE_ACCESS if write else self._neo4j.READ_ACCESS
        convert = self._element if elements else self._convert
        text = query if timeout is None else self._neo4j.Query(query, timeout=timeout)
        try:
            with self._driver.session(database=self._database, default_access_mode=mode) as session:
                result = session.run(text, params or {})
                columns = list(result.keys())
                records = list(result)
                summary = result.consume()
        except ClientError as exc:
            if "TransactionTimedOut" in (exc.code or ""):
                raise QueryTimeout(exc.message or str(exc)) from None
            if not write and "write" in (exc.message or "").lower():
                raise ReadOnlyViolation(f"this query writes to the graph; it was sent read-only ({exc.message})") from None
            raise QueryError(exc.message or str(exc)) from None
        except (ServiceUnavailable, SessionExpired, OSError) as exc:
            raise StoreUnavailable(f"cannot reach Neo4j at {self.options.uri}: {' '.join(str(exc).split())}") from None
        return QueryResult(columns=columns, rows=[[convert(v) for v in r.values()] for r in records],
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
