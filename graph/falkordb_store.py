"""The embedded default backend: FalkorDB over a unix socket in the data folder, server started on first use.

Parameters go out in FalkorDB's `CYPHER name=value` header (`graph.encoding`); write batches are
pipelined, the next one encoded while the server runs the previous one. The server's lifecycle and
durability checks are `graph.server`'s; this module only sends queries and converts results.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from personagraph.graph import server
from personagraph.graph.encoding import with_params
from personagraph.graph.model import check_label
from personagraph.graph.server import StoreUnavailable, StoreUnreachable
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

__all__ = ["FalkorStore"]


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

    def _element(self, value: Any) -> Any:
        """`_convert` for `query(..., elements=True)`: nodes, edges and paths keep their ids, labels and ends."""
        if isinstance(value, self._node_type):
            return GraphNode(str(value.id), tuple(value.labels or ()), self._element(dict(value.properties)))
        if isinstance(value, self._edge_type):
            ends = [str(end.id if isinstance(end, self._node_type) else end) for end in (value.src_node, value.dest_node)]
            return GraphEdge(str(value.id), value.relation, ends[0], ends[1], self._element(dict(value.properties)))
        if isinstance(value, self._path_type):
            return GraphPath(tuple(self._element(n) for n in value.nodes()), tuple(self._element(e) for e in value.edges()))
        if isinstance(value, list):
            return [self._element(v) for v in value]
        if isinstance(value, dict):
            return {k: self._element(v) for k, v in value.items()}
        return value

    def run(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True,
            timeout: float | None = None, elements: bool = False) -> QueryResult:
        send = self._graph.query if write else self._graph.ro_query
        text = with_params(query, params)
        # The client takes whole milliseconds; at least 1, since 0 would mean the server's default.
        limit = None if timeout is None else max(1, round(timeout * 1000))
        return self._execute(lambda: send(text, None, limit), elements)

    def _write_many(self, jobs: Iterable[tuple[str, Sequence[Any]]], key: str = "rows") -> WriteStats:
        """Batched writes with the next batch's parameters serialised while the server runs the
        previous one: client and server work overlap instead of taking turns (one query in flight).
        One pipeline for all jobs (e.g. every edge type of an `add_edges` call), so it does not
        drain and refill between them."""
        total = WriteStats()
        chunks = ((query, chunk) for query, rows in jobs for chunk in self._batched(rows))
        with ThreadPoolExecutor(max_workers=1) as sender:
            pending: Future[QueryResult] | None = None
            for query, chunk in chunks:
                text = with_params(query, {key: chunk})
                if pending is not None:
                    total.add_batch(pending.result())
                pending = sender.submit(self._execute, partial(self._graph.query, text))
            if pending is not None:
                total.add_batch(pending.result())
        return total

    def _execute(self, send: Callable[[], Any], elements: bool = False) -> QueryResult:
        """Call `send` (one FalkorDB query) and turn its result or error into ours."""
        with self._errors():
            res = send()
        return self._result(res, elements)

    async def arun(self, query: str, params: dict[str, Any] | None = None, *, write: bool = True) -> QueryResult:
        """`run` through FalkorDB's asyncio client: parameters encoded here, the server's answer awaited."""
        text = with_params(query, params)
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
            if msg.startswith("Query timed out"):
                raise QueryTimeout(msg) from None
            raise QueryError(msg) from None
        except self._redis_errors as exc:
            full = server.disk_full(self.options.data_dir)
            if full:
                raise StoreUnavailable(full) from None
            raise StoreUnreachable(f"cannot reach the embedded FalkorDB at {self.socket_path}: {str(exc).rstrip('.')}") from None

    def _result(self, res: Any, elements: bool = False) -> QueryResult:
        """A FalkorDB result set as ours."""
        columns = [h[1] if isinstance(h, (list, tuple)) else str(h) for h in (res.header or [])]
        convert = self._element if elements else self._convert
        rows = [[convert(v) for v in row] for row in (res.result_set or [])]
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
