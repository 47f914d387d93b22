"""The JSON the web app's API speaks: one pydantic model per answer, so /openapi.json documents each.

Persona text is LLM output: every string here is data for the page to show as text, never markup.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from personagraph.graph.model import PROPERTY_RE


def jsonable(value: Any) -> Any:
    """A value JSON can carry: NaN and infinities become None, bytes and anything unknown (dates,
    points) their text; lists and maps element by element."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class Counts(BaseModel):
    """What the graph holds, for the page's header."""

    personas: int = Field(description="Live personas (candidate or accepted)")
    edges: int = Field(description="Relationship edges between personas")
    sources: int = Field(description="Source texts personas were extracted from")
    samples: int = Field(description="Synthesized samples written back to the graph (Sample nodes)")
    runs: int = Field(description="Recorded stage runs (Run nodes)")
    personas_by_status: dict[str, int] = Field(default_factory=dict, description="Persona nodes per status")
    edges_by_type: dict[str, int] = Field(default_factory=dict, description="Edges per type, all labels")


class Info(BaseModel):
    """The server's settings and the graph's size: what the page says about where it is and what it may do."""

    graph: str = Field(description="Graph name (FalkorDB) or database (Neo4j)")
    backend: Literal["falkordb", "neo4j"]
    where: str = Field(description="Where the store is, in words")
    data_dir: str = Field(description="The data folder: samples files are read from under it, and nowhere else")
    write: bool = Field(description="Whether the Cypher console may change the graph (`serve --write`)")
    row_cap: int = Field(description="Most rows a console query returns; the rest are cut off")
    timeout_s: float = Field(description="Seconds a console read query may run before the database stops it")
    version: str
    counts: Counts


class ReadyQuery(BaseModel):
    """A ready-made query (`personagraph query --list`), runnable by name."""

    name: str
    description: str = Field(description="The query file's first comment line")
    params: list[str] = Field(description="Parameters it takes ($name), in order of first use")
    cypher: str = Field(description="Its text, to show or edit in the console")


class QueryRequest(BaseModel):
    """A console query: Cypher text, or the name of a ready-made query; with its parameters."""

    cypher: str | None = Field(default=None, description="Cypher text (parameters as $name)")
    name: str | None = Field(default=None, description="A ready-made query's name instead of text")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameter values by name (letters, digits, underscores)")

    @field_validator("params")
    @classmethod
    def _names(cls, params: dict[str, Any]) -> dict[str, Any]:
        # Names go into FalkorDB's `CYPHER name=value` header as they are: only plain names may.
        for name in params:
            if not PROPERTY_RE.fullmatch(name):
                raise ValueError(f"parameter name {name!r}: use letters, digits and underscores, not starting with a digit")
        return params


class GNode(BaseModel):
    """A node for the graph view (`_kind` = "node" in a result cell)."""

    kind: Literal["node"] = Field(default="node", alias="_kind")
    id: str = Field(description="The node's `id` property (personas, sources, runs, samples), else the database's id")
    labels: list[str]
    properties: dict[str, Any]

    model_config = {"populate_by_name": True}


class GEdge(BaseModel):
    """A relationship for the graph view (`_kind` = "edge" in a result cell); ends by node `id`."""

    kind: Literal["edge"] = Field(default="edge", alias="_kind")
    type: str
    source: str
    target: str
    properties: dict[str, Any]

    model_config = {"populate_by_name": True}


class GraphView(BaseModel):
    """Every node and relationship found in a result's cells, once each."""

    nodes: list[GNode] = Field(default_factory=list)
    edges: list[GEdge] = Field(default_factory=list)


class QueryAnswer(BaseModel):
    """A console query's result: the table, the graph drawn from its cells, and whether rows were cut off."""

    columns: list[str]
    rows: list[list[Any]] = Field(description='Cells as JSON: scalars as they are; nodes {"_kind": "node", ...}, '
                                              'relationships {"_kind": "edge", ...}, paths {"_kind": "path", "nodes", "edges"}')
    graph: GraphView
    truncated: bool = Field(description="More rows than row_cap: only the first row_cap are here")
    row_cap: int
    elapsed_ms: float
    wrote: dict[str, int] = Field(default_factory=dict, description="What a write query changed (with --write)")


class Neighbour(BaseModel):
    """A persona at the other end of a relationship."""

    type: str = Field(description="The relationship type, e.g. PATIENT_OF")
    id: str
    description: str
    status: str | None = None


class PersonaHit(BaseModel):
    """A persona found by the search box."""

    id: str
    description: str
    status: str | None = None
    hop: int | None = None


class PathStep(BaseModel):
    """One persona on the way back to the seed persona extracted from text."""

    id: str
    description: str
    hop: int | None = None
    type: str | None = Field(default=None, description="Edge type by which this persona was proposed from the next one (None at the seed)")
    relation: str | None = Field(default=None, description="The relation expansion asked about (None at the seed)")


class SourceRef(BaseModel):
    """The source text the seed persona was extracted from."""

    id: str
    uri: str | None = None
    text: str | None = Field(default=None, description="Excerpt (at most 2,000 characters) when the graph stores the text; "
                                                       "extraction keeps only uri and hash, so usually None")
    stance: str | None = Field(default=None, description="How the persona relates to the text: read, write, like (comma-joined)")
    chars: int | None = None


class SampleRef(BaseModel):
    """A synthesized sample the persona took part in (written back to the graph as a Sample node)."""

    id: str
    task: str | None = None
    text: str = Field(description="Excerpt, at most 2,000 characters")


class Reason(BaseModel):
    """A filter criterion's verdict on the persona."""

    criterion: str
    score: float | None = None
    reason: str
    failed: bool


class PersonaPage(BaseModel):
    """Everything the persona page shows."""

    id: str
    description: str
    status: str | None
    hop: int | None
    origin: str | None = Field(default=None, description="How it came in: text (extract), expand, import")
    run_id: str | None = Field(default=None, description="The run that created it (see /api/runs)")
    attributes: dict[str, Any] = Field(description="Region attributes and other properties of the persona's own (not store bookkeeping)")
    scores: dict[str, float] = Field(description="Filter score per criterion (1-5), when the LLM judge ran")
    reasons: list[Reason] = Field(description="Filter reasons per criterion, and the cheap checks' reasons")
    filter_failed: list[str] = Field(default_factory=list, description="Criteria the persona failed")
    aliases: list[str] = Field(description="Descriptions of the duplicates merged into this persona")
    merged_ids: list[str] = Field(description="Ids of the duplicates merged into this persona")
    resolved_from: str | None = Field(description="The id asked for, when it was merged into this persona")
    out: list[Neighbour] = Field(description="Relationships from this persona (this -[type]-> other)")
    in_: list[Neighbour] = Field(alias="in", description="Relationships to this persona (other -[type]-> this)")
    out_truncated: bool = False
    in_truncated: bool = False
    path: list[PathStep] = Field(description="This persona first, then each seed it was proposed from, back to the one extracted from text")
    source: SourceRef | None = Field(description="The text the path's last persona was extracted from (None for imported personas)")
    samples: list[SampleRef]

    model_config = {"populate_by_name": True}


class HoodNode(BaseModel):
    """A persona in a neighbourhood view."""

    id: str
    description: str
    hop: int = Field(description="Distance from the centre in relationship hops (edges either way)")
    status: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class HoodEdge(BaseModel):
    """A relationship among the personas of a neighbourhood, in its stored direction."""

    source: str
    target: str
    type: str


class Neighbourhood(BaseModel):
    """The personas within `hops` of the centre, nearest first, up to `limit`; the edges among them."""

    center: str
    nodes: list[HoodNode]
    edges: list[HoodEdge]
    truncated: bool = Field(description="More personas were within reach than `limit`")
    elapsed_ms: float = 0.0


class RunInfo(BaseModel):
    """A recorded stage run (a `Run` node)."""

    id: str
    stage: str | None
    started: str | None = Field(description="Start time (UTC-less local time from the run id, ISO 8601)")
    elapsed_s: float | None
    counts: dict[str, Any] = Field(description="The stage's summary numbers (and counters as 'name: n' lists)")
    tokens: dict[str, int] = Field(description="LLM requests and tokens the run spent (llm_* properties, prefix dropped)")
    inputs: dict[str, Any] = Field(description="Inputs recorded with the run (file, task, mode, ...)")


class SampleFile(BaseModel):
    """A JSONL or Parquet file under the data folder."""

    path: str = Field(description="Relative to the data folder")
    format: Literal["jsonl", "parquet"]
    rows: int | None = Field(description="Rows in it (None: too large to count quickly)")
    size_bytes: int


class SamplePage(BaseModel):
    """Rows `offset` .. `offset + limit` of a samples file, as written."""

    file: str
    format: Literal["jsonl", "parquet"]
    total: int | None
    offset: int
    rows: list[dict[str, Any]]
    errors: list[str] = Field(default_factory=list, description="Lines of the page that are not JSON objects")


class ErrorBody(BaseModel):
    """An error: what went wrong, in one line."""

    detail: str
