"""What the persona page and the neighbourhood view show, read from the store in a few batched queries.

Functions over a `GraphStore` that return the API's models, in the style of `graph.traversal`: the
neighbourhood grows hop by hop with one `neighbours` query per chunk of the frontier, then one query
for the personas and one for the edges among them, so 1,000 personas cost a handful of queries.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from personagraph import cypher
from personagraph.graph.model import RESERVED_PROPERTIES
from personagraph.graph.store import GraphStore
from personagraph.web.models import (
    HoodEdge,
    HoodNode,
    Neighbour,
    Neighbourhood,
    PathStep,
    PersonaHit,
    PersonaPage,
    Reason,
    SampleRef,
    SourceRef,
)

# Every persona that is not a merged tombstone: rejected ones keep their edges until purged, and
# the page marks them by status.
SHOWN_STATUSES: tuple[str, ...] = ("candidate", "accepted", "rejected")
# Properties the stages keep for themselves (besides RESERVED_PROPERTIES): not the persona's attributes.
BOOKKEEPING = frozenset({"expanded_from", "via_relation", "via_edge", "filter_failed", "filter_stage", "filtered_at",
                         "filter_reasons"})
EXCERPT_CHARS = 2000
EDGES_SHOWN = 500
SAMPLES_SHOWN = 50
# Frontier ids per `neighbours` query: small enough to stop soon after the limit is reached.
FRONTIER_CHUNK = 256


class UnknownPersona(LookupError):
    """No persona has that id (nor was one merged away under it)."""


def excerpt(text: Any, limit: int = EXCERPT_CHARS) -> str:
    """The first `limit` characters of a text, with an ellipsis when cut."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def attributes_of(node: dict[str, Any]) -> dict[str, Any]:
    """The persona's own properties (region attributes and the like), without the store's and the stages' bookkeeping."""
    return {k: v for k, v in sorted(node.items())
            if k not in RESERVED_PROPERTIES and k not in BOOKKEEPING and not k.startswith(("score_", "reason_"))}


def filter_verdict(node: dict[str, Any]) -> tuple[dict[str, float], list[Reason]]:
    """The filter's scores per criterion and its reasons: the judge's (`score_<c>`, `reason_<c>`) and the cheap checks' (`filter_reasons`)."""
    failed = set(node.get("filter_failed") or [])
    criteria = sorted({k.split("_", 1)[1] for k in node if k.startswith(("score_", "reason_"))})
    scores = {c: float(node[f"score_{c}"]) for c in criteria if isinstance(node.get(f"score_{c}"), (int, float))}
    reasons = [Reason(criterion=c, score=scores.get(c), reason=str(node.get(f"reason_{c}") or ""), failed=c in failed)
               for c in criteria]
    given = {(r.criterion, r.reason) for r in reasons}
    for line in node.get("filter_reasons") or []:
        criterion, _, reason = str(line).partition(": ")
        if (criterion, reason) not in given:
            reasons.append(Reason(criterion=criterion, reason=reason, failed=True))
    return scores, reasons


def resolve(store: GraphStore, persona_id: str) -> tuple[dict[str, Any], str | None]:
    """The persona `persona_id` names now and, when it was merged away, the id asked for.

    A merged duplicate stays as a tombstone pointing at its survivor (`merged_into`); a survivor
    merged later points on, so the chain is followed (a few steps at most)."""
    asked = persona_id
    for _ in range(8):
        node = store.get_personas([persona_id]).get(persona_id)
        if node is None:
            break
        if node.get("status") != "merged" or not node.get("merged_into"):
            return node, (asked if persona_id != asked else None)
        persona_id = str(node["merged_into"])
    raise UnknownPersona(f"no persona {asked!r}")


def _neighbours(store: GraphStore, name: str, persona_id: str) -> tuple[list[Neighbour], bool]:
    rows = store.run_named(name, {"id": persona_id, "limit": EDGES_SHOWN + 1}).records()
    return [Neighbour(**{**r, "description": r["description"] or ""}) for r in rows[:EDGES_SHOWN]], len(rows) > EDGES_SHOWN


def expansion_path(store: GraphStore, persona_id: str) -> list[PathStep]:
    """This persona, then each seed it was proposed from (`expanded_from`), back to the one extracted
    from text: the ready-made `expansion_path` query, read from the persona's end."""
    rows = store.run(cypher.load("queries/expansion_path", store.dialect), {"id": persona_id}, write=False).records()
    if not rows:
        return []
    chain = rows[0]["personas"] or []  # root first
    steps = [None, *(rows[0]["steps"] or [])]  # the step that reached chain[i]; none reached the root
    path = [PathStep(id=p["id"], description=p.get("description") or "", hop=p.get("hop"),
                     type=(s or {}).get("type"), relation=(s or {}).get("relation"))
            for p, s in zip(chain, steps)]
    return path[::-1]


def persona_page(store: GraphStore, persona_id: str) -> PersonaPage:
    """Everything the persona page shows, in a handful of queries (raises UnknownPersona)."""
    node, resolved_from = resolve(store, persona_id)
    pid = node["id"]
    scores, reasons = filter_verdict(node)
    out, out_cut = _neighbours(store, "web/persona_out", pid)
    into, in_cut = _neighbours(store, "web/persona_in", pid)
    path = expansion_path(store, pid) or [PathStep(id=pid, description=node.get("description") or "", hop=node.get("hop"))]
    found = store.run_named("web/persona_sources", {"id": path[-1].id, "limit": 1}).records()
    source = None
    if found:
        s = found[0]
        source = SourceRef(id=s["id"], uri=s.get("uri"), text=excerpt(s["text"]) if s.get("text") else None,
                           stance=s.get("stance"), chars=s.get("chars"))
    samples = [SampleRef(id=r["id"], task=r.get("task"), text=excerpt(r.get("text")))
               for r in store.run_named("web/persona_samples", {"id": pid, "limit": SAMPLES_SHOWN}).records()]
    return PersonaPage(
        id=pid, description=node.get("description") or "", status=node.get("status"), hop=node.get("hop"),
        origin=node.get("origin"), run_id=node.get("run_id") or None, attributes=attributes_of(node), scores=scores, reasons=reasons,
        filter_failed=list(node.get("filter_failed") or []), aliases=list(node.get("aliases") or []),
        merged_ids=list(node.get("merged_ids") or []), resolved_from=resolved_from, out=out, in_=into,
        out_truncated=out_cut, in_truncated=in_cut, path=path, source=source, samples=samples,
    )


def search_personas(store: GraphStore, text: str, limit: int = 20, timeout_s: float | None = None,
                    statuses: Sequence[str] = SHOWN_STATUSES) -> list[PersonaHit]:
    """Personas whose id is `text` or whose description contains it (any case), at most `limit`;
    a scan, so it runs read-only under `timeout_s` (QueryTimeout past it)."""
    res = store.query(cypher.load("web/persona_search", store.dialect),
                      {"q": text, "limit": limit, "statuses": list(statuses)}, timeout=timeout_s)
    return [PersonaHit(**{**r, "description": r["description"] or ""}) for r in res.records()]


def neighbourhood(store: GraphStore, center: str, hops: int = 2, limit: int = 1000,
                  statuses: Sequence[str] = SHOWN_STATUSES) -> Neighbourhood:
    """The personas within `hops` of `center` (edges either way), nearest first, at most `limit`,
    and the relationship edges among them (raises UnknownPersona).

    Breadth-first: every persona at distance d comes before any at d + 1, and within a distance
    in the order they were reached (neighbour lists sorted), so the same graph gives the same view.
    """
    started = time.perf_counter()
    node, _ = resolve(store, center)
    root = node["id"]
    dist: dict[str, int] = {root: 0}
    frontier = [root]
    truncated = False
    for hop in range(1, hops + 1):
        reached: list[str] = []
        for start in range(0, len(frontier), FRONTIER_CHUNK):
            chunk = frontier[start:start + FRONTIER_CHUNK]
            found = store.neighbours(chunk, statuses)
            for node_id in chunk:
                for nbr in found.get(node_id, []):
                    if nbr in dist:
                        continue
                    if len(dist) >= limit:
                        truncated = True
                        break
                    dist[nbr] = hop
                    reached.append(nbr)
                if truncated:
                    break
            if truncated:
                break
        frontier = reached
        if truncated or not frontier:
            break
    ids = list(dist)
    props = store.get_personas(ids)
    nodes = [HoodNode(id=i, description=props.get(i, {}).get("description") or "", hop=dist[i],
                      status=props.get(i, {}).get("status"), attributes=attributes_of(props.get(i, {})))
             for i in ids]
    edges = [HoodEdge(source=e["source"], target=e["target"], type=e["type"]) for e in store.edges_among(ids)]
    return Neighbourhood(center=root, nodes=nodes, edges=edges, truncated=truncated,
                         elapsed_ms=round((time.perf_counter() - started) * 1000, 2))
