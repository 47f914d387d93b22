"""The Cypher this project runs, as `.cypher` files loaded by name.

`load(name, dialect)` returns `cypher/<dialect>/<name>.cypher` if that file exists (the small
per-dialect table: schema, vector index, algorithms) and otherwise the shared `cypher/<name>.cypher`,
written in the subset that FalkorDB and Neo4j 5 both accept.

A few queries carry placeholders that Cypher cannot take as parameters (a relationship type, a
label, a property key, a path length). `fill` replaces `<<NAME>>` markers with values that the caller
has validated (graph.model.check_rel_type / check_label / check_property, or an int).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

CYPHER_DIR = Path(__file__).resolve().parent
DIALECTS = ("falkordb", "neo4j")
_PLACEHOLDER = re.compile(r"<<([A-Z_]+)>>")


class QueryNotFound(LookupError):
    """No .cypher file of that name."""


@lru_cache(maxsize=None)
def load(name: str, dialect: str = "falkordb") -> str:
    """Text of query `name` for `dialect`, comments (`//` lines) stripped."""
    for path in (CYPHER_DIR / dialect / f"{name}.cypher", CYPHER_DIR / f"{name}.cypher"):
        if path.is_file():
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.lstrip().startswith("//")]
            return "\n".join(lines).strip()
    raise QueryNotFound(f"no Cypher query {name!r} in {CYPHER_DIR} (dialect {dialect})")


def fill(query: str, **values: str | int) -> str:
    """Replace `<<NAME>>` markers with already-validated values; a marker left unfilled is an error."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise KeyError(f"query placeholder <<{key}>> has no value")
        return str(values[key])

    return _PLACEHOLDER.sub(sub, query)


_ROWS_PARAM = re.compile(r"\$rows\b")
_TRAILING_RETURN = re.compile(r"\nRETURN [^\n]*$")


def chain(parts: list[tuple[str, str]]) -> str:
    """One query that runs several batched `UNWIND $rows ...` write queries in turn.

    Each part is (query text, parameter name): its `$rows` becomes `$<name>` and a final `RETURN`
    line is dropped; `WITH count(*)` between parts collapses each part's rows to one (an empty batch
    included), so the next part runs once. The database runs the whole as one query: one round trip,
    and all of it lands or none of it does.
    """
    for _, name in parts:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"invalid parameter name {name!r}")
    bodies = [_TRAILING_RETURN.sub("", _ROWS_PARAM.sub("$" + name, text)) for text, name in parts]
    return "".join(body + (f"\nWITH count(*) AS _{i}\n" if i < len(bodies) - 1 else "")
                   for i, body in enumerate(bodies))


def statements(text: str) -> list[str]:
    """Split a multi-statement file (e.g. schema) on `;` at line ends."""
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", text) if s.strip()]


def ready_made() -> list[str]:
    """Names of the user-facing queries in `cypher/queries/` (run with `personagraph query NAME`)."""
    return sorted(p.stem for p in (CYPHER_DIR / "queries").glob("*.cypher"))


def ready_made_description(name: str) -> str:
    """What a ready-made query does: the first line of its file, a `//` comment."""
    lines = (CYPHER_DIR / "queries" / f"{name}.cypher").read_text(encoding="utf-8").splitlines()
    return lines[0].lstrip("/ ").strip() if lines else ""


def resolve_query(text: str, dialect: str = "falkordb") -> str:
    """A user's query: a `.cypher` file path, the name of a ready-made query in cypher/queries/, or literal Cypher."""
    path = Path(text)
    if text.endswith(".cypher") and path.is_file():
        return path.read_text(encoding="utf-8")
    if text in ready_made():
        return load(f"queries/{text}", dialect)
    return text
