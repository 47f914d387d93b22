"""Import ready-made personas (e.g. Persona Hub's `{"persona": ...}` lines) into the graph.

Streams the file, validates each record, writes in batches, and accounts for every line: imported,
already present, or skipped with a reason that names the file and line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from graph.model import REGION_ATTRIBUTES, RESERVED_PROPERTIES, PROPERTY_RE, Persona, canonical_region_value
from graph.store import GraphStore
from pipeline.readers import PERSONA_FIELDS, Record, detect_field, iter_records

MAX_REPORTED = 20


class ImportSummary(BaseModel):
    """What an import did: counts, and the first problems with their file:line."""

    path: str
    field: str
    read: int = 0
    imported: int = 0
    already_present: int = 0
    skipped: Counter[str] = Field(default_factory=Counter)
    problems: list[str] = Field(default_factory=list)

    def skip(self, record: Record, reason: str, detail: str) -> None:
        """Count a skipped record under `reason` and keep the first few messages."""
        self.skipped[reason] += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(f"{record.where}: {detail}")

    @property
    def skipped_total(self) -> int:
        """All skipped records."""
        return sum(self.skipped.values())


def _attributes(data: dict[str, Any], field: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    nested = data.get("attributes")
    if isinstance(nested, dict):
        attrs.update(nested)
    for key in REGION_ATTRIBUTES:
        if key in data and key != field:
            attrs[key] = data[key]
        if key in attrs:
            attrs[key] = canonical_region_value(key, attrs[key])
    return {
        k: v
        for k, v in attrs.items()
        if isinstance(k, str) and PROPERTY_RE.match(k) and k not in RESERVED_PROPERTIES
        and isinstance(v, (str, int, float, bool))
    }


def personas_from_records(
    records: Iterator[Record], field: str, summary: ImportSummary, min_chars: int, max_chars: int, run_id: str
) -> Iterator[Persona]:
    """Turn records into Personas, recording every rejected record in `summary`."""
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
        text = value.strip()
        if len(text) < min_chars:
            summary.skip(rec, "too short", f"description has {len(text)} characters (minimum {min_chars})")
            continue
        if len(text) > max_chars:
            summary.skip(rec, "too long", f"description has {len(text):,} characters (maximum {max_chars:,})")
            continue
        if "\x00" in text:
            summary.skip(rec, "unreadable", "description contains NUL bytes")
            continue
        try:
            yield Persona(description=text, origin="import", run_id=run_id, attributes=_attributes(rec.data, field))
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
    """Import personas from `path` into `store`; the field is detected when not given."""
    field = field or detect_field(Path(path), PERSONA_FIELDS)
    summary = ImportSummary(path=str(path), field=field)
    batch: list[Persona] = []
    seen_in_batch: set[str] = set()

    def flush() -> None:
        stats = store.upsert_personas(batch)
        summary.imported += stats.nodes_created
        summary.already_present += len(batch) - stats.nodes_created
        if on_progress:
            on_progress(summary.read)
        batch.clear()
        seen_in_batch.clear()

    for persona in personas_from_records(iter_records(Path(path)), field, summary, min_chars, max_chars, run_id):
        if persona.id in seen_in_batch:
            summary.already_present += 1
            continue
        seen_in_batch.add(persona.id)
        batch.append(persona)
        if len(batch) >= store.options.batch_size:
            flush()
    if batch:
        flush()
    elif on_progress:
        on_progress(summary.read)
    return summary
