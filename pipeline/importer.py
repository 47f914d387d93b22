"""Import ready-made personas (e.g. Persona Hub's `{"persona": ...}` lines) into the graph.

Streams the file, validates each record, writes in batches, and accounts for every line: imported,
already present, or skipped with a reason that names the file and line. A value the database cannot
store (a NUL character, an unpaired surrogate) is cleaned and reported, never the cause of a lost batch.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from personagraph.graph.model import (
    PROPERTY_RE, REGION_ATTRIBUTES, RESERVED_PROPERTIES, Persona, PersonaStatus, canonical_attributes, clean_props,
    clean_value, persona_id, text_problems,
)
from personagraph.graph.store import GraphStore
from personagraph.config import ImportConfig
from personagraph.readers import PERSONA_FIELDS, Record, choose_field, iter_records
from personagraph.stage import Stage, StageContext, StageSummary

MAX_REPORTED = 20


class ImportSummary(StageSummary):
    """What an import did: counts, and the first problems with their file:line."""

    headline: ClassVar[tuple[str, ...]] = ("read", "imported", "already_present", "skipped_total")

    not_recorded: ClassVar[frozenset[str]] = frozenset({"problems", "changes"})

    path: str
    field: str
    read: int = 0
    imported: int = 0
    already_present: int = 0
    restored: int = 0
    skipped: Counter[str] = Field(default_factory=Counter)
    cleaned: Counter[str] = Field(default_factory=Counter)
    problems: list[str] = Field(default_factory=list)  # the first skipped records, with why
    changes: list[str] = Field(default_factory=list)  # the first values cleaned or dropped in imported records

    def skip(self, record: Record, reason: str, detail: str) -> None:
        """Count a skipped record under `reason` and keep the first few messages."""
        self.skipped[reason] += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(f"{record.where}: {detail}")

    def clean(self, record: Record, reason: str, detail: str) -> None:
        """Count a value of an imported record cleaned or dropped under `reason`, and keep the first few messages."""
        self.cleaned[reason] += 1
        if len(self.changes) < MAX_REPORTED:
            self.changes.append(f"{record.where}: {detail}")

    @property
    def skipped_total(self) -> int:
        """All skipped records."""
        return sum(self.skipped.values())

    @property
    def usable(self) -> int:
        """Records that are now personas in the graph (created, or there already)."""
        return self.imported + self.already_present


# Store-owned properties that `personagraph export` writes and a re-import restores, with their types.
# status, hop, origin and run_id are Persona fields; these are set on the created node afterwards.
RESTORED_PROPERTIES: dict[str, type | tuple[type, ...]] = {
    "aliases": list, "merged_ids": list, "merged_into": str, "expanded": bool, "created_at": (int, float),
}
_STATUSES = frozenset(s.value for s in PersonaStatus)


def _report_cleaning(rec: Record, summary: ImportSummary, name: str, value: Any) -> None:
    """Count and report what `clean_value` changes in `value`."""
    raw = value if isinstance(value, str) else "".join(v for v in value if isinstance(v, str))
    problems = text_problems(raw)
    summary.clean(rec, problems, f"{name!r}: {problems}")


def _storable(rec: Record, summary: ImportSummary, name: str, value: Any) -> Any:
    """`value` as the store can hold it (see `clean_text`), the change counted and reported."""
    cleaned = clean_value(value)
    if cleaned is not value:
        _report_cleaning(rec, summary, name, value)
    return cleaned


def _attributes(rec: Record, field: str, summary: ImportSummary, everything: bool) -> dict[str, Any]:
    """The record's attributes: its nested `attributes` and its region attributes (with `everything`,
    all its other top-level properties too); names that cannot be property names are dropped and reported."""
    data = rec.data
    attrs: dict[str, Any] = {}
    nested = data.get("attributes")
    if isinstance(nested, dict):
        attrs.update(nested)
    for key in (data if everything else REGION_ATTRIBUTES):
        if key in data and key != field and key != "attributes":
            attrs[key] = data[key]
    region, dropped = canonical_attributes(attrs)
    for key, value in dropped.items():
        summary.clean(rec, "attribute values dropped", f"{key} {value!r} dropped: it fits no value of the region vocabulary")
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key in RESERVED_PROPERTIES:
            continue
        if value is None or not (isinstance(value, (str, int, float, bool))
                                 or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            continue
        if not isinstance(key, str) or not PROPERTY_RE.match(key) or len(key) > 64:
            summary.clean(rec, "attribute names dropped",
                          f"attribute {key!r} dropped: a property name is letters, digits and underscores")
            continue
        if key in REGION_ATTRIBUTES:
            if key not in region:
                continue
            value = region[key]
        out[key] = value
    cleaned = clean_props(out)
    if cleaned is not out:
        for key, value in out.items():
            if cleaned[key] is not value:
                _report_cleaning(rec, summary, key, value)
    return cleaned


def _restore(rec: Record, field: str, text: str, summary: ImportSummary, run_id: str) -> tuple[Persona, dict[str, Any]]:
    """A persona line written by `personagraph export` (its `id` is the hash of its description): the
    persona with its status, hop, origin, run and every property it had, and the store-owned
    properties to set on it once created."""
    data = rec.data
    status = data.get("status")
    if status not in _STATUSES:
        summary.clean(rec, "invalid status", f"status {status!r} is not one of {sorted(_STATUSES)}; imported as accepted")
        status = PersonaStatus.accepted.value
    hop = data.get("hop")
    extra = {k: _storable(rec, summary, k, data[k]) for k, kind in RESTORED_PROPERTIES.items()
             if isinstance(data.get(k), kind) and not (kind is list and not all(isinstance(v, str) for v in data[k]))}
    persona = Persona(
        id=data["id"], description=text, status=status,
        hop=hop if isinstance(hop, int) and not isinstance(hop, bool) and hop >= 0 else 0,
        origin=_storable(rec, summary, "origin", data["origin"]) if isinstance(data.get("origin"), str) else "import",
        run_id=_storable(rec, summary, "run_id", data["run_id"]) if isinstance(data.get("run_id"), str) else run_id,
        attributes=_attributes(rec, field, summary, everything=True),
    )
    if extra.get("expanded") is True:
        extra["pending"] = None  # expanded already: not on the frontier
    return persona, extra


def personas_from_records(
    records: Iterator[Record], field: str, summary: ImportSummary, min_chars: int, max_chars: int, run_id: str
) -> Iterator[tuple[Persona, dict[str, Any]]]:
    """Turn records into Personas (each with the store-owned properties to restore on it, usually none),
    recording every rejected record in `summary`."""
    for rec in records:
        summary.read += 1
        if rec.error:
            summary.skip(rec, "unreadable", rec.error)
            continue
        if field not in rec.data or rec.data[field] is None:
            summary.skip(rec, "missing field", f"no {field!r} field (fields: {sorted(rec.data)[:8]})")
            continue
        value = rec.data[field]
        if not isinstance(value, str):
            summary.skip(rec, "not text", f"{field!r} is a {type(value).__name__}, not text")
            continue
        text = _storable(rec, summary, field, value).strip()
        if len(text) < min_chars:
            summary.skip(rec, "too short", f"description has {len(text)} characters (minimum {min_chars})")
            continue
        if len(text) > max_chars:
            summary.skip(rec, "too long", f"description has {len(text):,} characters (maximum {max_chars:,})")
            continue
        try:
            pid = persona_id(text) if isinstance(rec.data.get("id"), str) else ""
            if pid and rec.data["id"] == pid:
                yield _restore(rec, field, text, summary, run_id)
            else:
                yield Persona(id=pid, description=text, origin="import", run_id=run_id,
                              attributes=_attributes(rec, field, summary, everything=False)), {}
        except ValidationError as exc:
            summary.skip(rec, "invalid", exc.errors()[0]["msg"])


def import_personas(
    store: GraphStore,
    path: Path,
    field: str | None = None,
    *,
    min_chars: int = 8,
    max_chars: int = 4000,
    run_id: str = "",
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import personas from `path` into `store`; the field is detected when not given.

    A file written by `personagraph export` comes back as it was: status, hop, origin, aliases and
    the other properties of each persona are kept (a persona already in the graph is left as it is).
    """
    field = choose_field(Path(path), PERSONA_FIELDS, field)
    summary = ImportSummary(path=str(path), field=field)
    batch: list[Persona] = []
    restore: dict[str, dict[str, Any]] = {}
    seen_in_batch: set[str] = set()

    def flush() -> None:
        if restore:
            # Only on personas this write creates: one already in the graph is left as it is.
            present = store.get_personas(list(restore))
            rows = [{"id": pid, "props": props} for pid, props in restore.items() if pid not in present]
            stats = store.write_together(batch, properties=rows)
            summary.restored += len(rows)
        else:
            stats = store.upsert_personas(batch)
        summary.imported += stats.nodes_created
        summary.already_present += len(batch) - stats.nodes_created
        if on_progress:
            on_progress(summary.read)
        batch.clear()
        restore.clear()
        seen_in_batch.clear()

    for persona, extra in personas_from_records(iter_records(Path(path)), field, summary, min_chars, max_chars, run_id):
        if persona.id in seen_in_batch:
            summary.already_present += 1
            continue
        seen_in_batch.add(persona.id)
        batch.append(persona)
        if extra:
            restore[persona.id] = extra
        if len(batch) >= store.options.batch_size:
            flush()
    if batch:
        flush()
    elif on_progress:
        on_progress(summary.read)
    return summary


class Import(Stage[ImportSummary]):
    """Import ready-made personas (JSONL, Parquet or CSV) as nodes; re-importing the same file changes nothing."""

    name: ClassVar[str] = "import"
    config: ImportConfig = Field(default_factory=ImportConfig)
    path: Path
    field: str | None = Field(default=None, description="Field holding the description (found automatically when obvious)")

    def run_facts(self) -> dict[str, Any]:
        return {"bytes": self.path.stat().st_size if self.path.is_file() else 0}

    async def run(self, ctx: StageContext, run_id: str) -> ImportSummary:
        label = f"importing {self.path.name}"
        summary = await asyncio.to_thread(
            import_personas, ctx.store, self.path, self.field, min_chars=self.config.min_chars,
            max_chars=self.config.max_chars, run_id=run_id, on_progress=lambda read: ctx.progress(label, read, None))
        ctx.progress(label, summary.read, summary.read)
        return summary
