"""Query parameters as FalkorDB's `CYPHER name=value ...` header spells them.

The falkordb client builds the same header; this does it with less overhead per value, which counts
for write batches of tens of thousands of rows. Values still reach the database as parameters, never
spliced into the query's own text.

    >>> with_params("MATCH (p:Persona {id: $id}) RETURN p", {"id": 'a "quoted" id'})
    'CYPHER id="a \\\\"quoted\\\\" id" MATCH (p:Persona {id: $id}) RETURN p'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["cypher_literal", "with_params"]


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
        parts.append(f"`{key}`:{cypher_literal(item)}")
    return "{" + ",".join(parts) + "}"


def _literal_list(value: Sequence[Any]) -> str:
    return "[" + ",".join(map(cypher_literal, value)) + "]"


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


def cypher_literal(value: Any) -> str:
    """A parameter value as the `CYPHER name=value` header spells it.

    >>> cypher_literal({"tags": ["a", 'b"c'], "score": 0.5, "flag": True, "gone": None})
    '{`tags`:["a","b\\\\"c"],`score`:0.5,`flag`:true,`gone`:null}'
    """
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


def with_params(query: str, params: dict[str, Any] | None) -> str:
    """`query` with its parameters in the `CYPHER name=value ...` header (unchanged without parameters)."""
    if not params:
        return query
    header = " ".join(f"{name}={cypher_literal(value)}" for name, value in params.items())
    return f"CYPHER {header} {query}"
