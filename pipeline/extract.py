"""Text-to-Persona: ask, of every passage of a corpus, who would read / write / like it; put the answers in the graph.

    summary = personagraph.open(".personagraph").extract("corpus.jsonl", field="text")

Records stream from `pipeline.readers`; each text is checked (unreadable, not text, too short, already
extracted, repeated), split at paragraph breaks into chunks, and becomes one LLM request per chunk and
stance, pulled lazily by the client's worker pool. Each answer goes through the filter's cheap checks
with the chunk it came from (a copy of the text is no persona; `pipeline.filter`), and its attributes
through the region vocabulary (`graph.model.canonical_attributes`: what fits no value is dropped and
counted). Answers are written in batches as they stream back:
`Persona` nodes (content-hash ids, origin=text, hop=0, status candidate, or rejected with
`filter_reasons` when a cheap check failed), `Source` nodes and
`(:Persona)-[:EXTRACTED_FROM {stances, stance, chunk}]->(:Source)` edges, one per persona and source
whichever stances gave the persona: `stances` lists them all, sorted (`stance` joins them with commas;
graph.store pools them, so a later run's stance is added, not lost). A source is marked
`extracted = true` (with the stances and format asked, `extracted_as`) only after its personas and edges
are written; a rerun skips what was asked of sources marked so with no failures, and asks a new stance
of an old source: a run killed at any point resumes to the same graph, and the LLM cache makes the
repeated calls free. Failed answers are kept, with their raw text, in
`<data_dir>/runs/<run_id>/extract_failures.jsonl`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, ClassVar

from pydantic import BaseModel, Field, ValidationError

from personagraph import prompts
from personagraph.graph.model import Edge, Persona, PersonaStatus, Source, canonical_attributes, clean_text, text_hash, text_problems
from personagraph.graph.store import GraphStore
from personagraph.config import ExtractConfig, FilterConfig
from personagraph.filter import cheap_check, tidy_description, verdict_reasons
from personagraph.llm import LLMRequest, LLMResult
from personagraph.readers import TEXT_FIELDS, Record, choose_field, count_records, iter_records
from personagraph.stage import Stage, StageContext, StageEstimate, StageSummary

EDGE_TYPE = "EXTRACTED_FROM"
ATTRIBUTES = ("age_group", "occupation", "domain", "visibility", "language")
FLUSH_TEXTS = 200
FLUSH_SECONDS = 2.0
MAX_REPORTED = 20
# Shorter answers are failures (asked again on a rerun); what is short for its script is for the filter to say.
MIN_PERSONA_CHARS = 2
MAX_PERSONA_CHARS = 1000

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PARAGRAPHS = re.compile(r"\n\s*\n")
_LABEL = re.compile(r"^\s*(?:\**\s*)?(?:persona|人物画像|人物)\s*(?:description)?\s*\**\s*[:：]\s*", re.IGNORECASE)


class ExtractedPersona(BaseModel):
    """A persona inferred from a text: who they are, and the attributes graph regions are counted by."""

    # All required: constrained decoders (llama.cpp grammars) skip optional fields, and the attributes
    # are what regions are counted by. An empty string is still accepted.
    description: str = Field(min_length=MIN_PERSONA_CHARS, description="One or two sentences about one specific person")
    age_group: str = Field(description="child, teenager, young_adult, adult or older_adult")
    occupation: str = Field(description="The person's occupation")
    domain: str = Field(description="The field of life or work the person belongs to")
    visibility: str = Field(description="public-facing or behind-the-scenes")
    language: str = Field(description="ISO code of the language the person mainly speaks")


class ExtractSummary(StageSummary):
    """What an extract run did; every text read is extracted, failed (kept for a rerun) or skipped with a reason."""

    headline: ClassVar[tuple[str, ...]] = ("texts_read", "texts_skipped", "texts_failed", "personas_created", "personas_rejected", "personas_existing", "attributes_dropped")

    path: str
    field: str
    texts_read: int = 0
    texts_extracted: int = 0
    texts_failed: int = 0
    cleaned: int = 0  # texts with a NUL or an unpaired surrogate removed before they were asked about
    skipped: Counter[str] = Field(default_factory=Counter)
    chunks: int = 0
    requests: int = 0
    failed_requests: int = 0
    personas_created: int = 0
    personas_existing: int = 0
    personas_rejected: int = Field(default=0, description="Personas written as rejected: a cheap check failed")
    rejected: Counter[str] = Field(default_factory=Counter, description="Cheap checks failed, per check")
    attributes_dropped: Counter[str] = Field(default_factory=Counter, description="Attribute values that fit no value, per attribute")
    problems: list[str] = Field(default_factory=list)
    failures_file: str = ""
    llm: dict[str, int | list[str]] = Field(default_factory=dict)

    def skip(self, where: str, reason: str, detail: str) -> None:
        """Count a skipped text under `reason`, keeping the first messages."""
        self.skipped[reason] += 1
        self.note(f"{where}: {detail}")

    def note(self, message: str) -> None:
        """Keep one of the first problems for the end-of-run report."""
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(message)

    @property
    def texts_skipped(self) -> int:
        """All skipped texts."""
        return sum(self.skipped.values())

    @property
    def texts_done(self) -> int:
        """Texts finished one way or another (what a progress bar counts)."""
        return self.texts_extracted + self.texts_failed + self.texts_skipped

    def run_props(self) -> dict[str, Any]:
        """Flat numbers for the `Run` node."""
        props: dict[str, Any] = {
            "path": self.path, "field": self.field, "texts_read": self.texts_read,
            "texts_extracted": self.texts_extracted, "texts_failed": self.texts_failed,
            "texts_skipped": self.texts_skipped, "texts_cleaned": self.cleaned, "chunks": self.chunks, "requests": self.requests,
            "failed_requests": self.failed_requests, "personas_created": self.personas_created,
            "personas_existing": self.personas_existing, "personas_rejected": self.personas_rejected,
            "attributes_dropped": sum(self.attributes_dropped.values()), "seconds": self.seconds,
        }
        props.update({f"rejected_{k}": v for k, v in self.rejected.items()})
        props.update({f"dropped_{k}": v for k, v in self.attributes_dropped.items()})
        props.update({f"skipped_{re.sub(r'[^a-z0-9]+', '_', k)}": v for k, v in self.skipped.items()})
        return props


def text_language(text: str) -> str:
    """'zh' when more than a fifth of the non-space characters are CJK ideographs, else 'en'."""
    sample = "".join(text[:2000].split())
    return "zh" if sample and len(_CJK.findall(sample)) > len(sample) / 5 else "en"


def chunk_text(text: str, size: int) -> list[str]:
    """Split `text` into pieces of at most `size` characters, at paragraph breaks where possible."""
    chunks: list[str] = []
    current = ""
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        while len(paragraph) > size:  # a paragraph too long on its own: cut at the last space that fits
            cut = paragraph.rfind(" ", size // 2, size)
            cut = cut if cut > 0 else size
            if current:
                chunks.append(current)
                current = ""
            chunks.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if not paragraph:
            continue
        if current and len(current) + 2 + len(paragraph) > size:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        chunks.append(current)
    return chunks


def plain_description(answer: str) -> str:
    """The persona in a plain-format answer: the first paragraph, without a 'Persona:' label or quotes."""
    first = next((p for p in _PARAGRAPHS.split(answer.strip()) if p.strip()), "")
    text = tidy_description(_LABEL.sub("", first))
    if len(text) > MAX_PERSONA_CHARS:
        text = text[:MAX_PERSONA_CHARS].rsplit(" ", 1)[0]
    return text


@dataclass
class _Text:
    """A text in flight: its source node, requests still out, and what its answers gave so far."""

    source: Source
    where: str
    pending: int
    asked: set[str] = field(default_factory=set)  # "stance/format" pairs answered once this text is done
    failed: int = 0
    personas: list[Persona] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Ask:
    """What a request asks: of which source, which chunk (and its text, to compare the answer with), which stance."""

    source_id: str
    chunk: int
    stance: str
    text: str


class TextPlanner:
    """Turns input records into extract requests, accounting for every text it does not send."""

    def __init__(self, cfg: ExtractConfig, summary: ExtractSummary, extracted: dict[str, set[str]],
                 track: bool = True) -> None:
        self.cfg = cfg
        self.track = track  # keep texts in flight for their answers (not for a dry run)
        self.summary = summary
        self.extracted = extracted
        self.in_flight: dict[str, _Text] = {}
        self._seen: set[str] = set()
        self._prompts: dict[tuple[str, str], prompts.Prompt] = {}
        self.schema = ExtractedPersona if cfg.format == "structured" else None

    def prompt(self, stance: str, lang: str) -> prompts.Prompt:
        """The prompt file for a stance in a language (loaded once)."""
        if (stance, lang) not in self._prompts:
            suffix = "_structured" if self.cfg.format == "structured" else ""
            self._prompts[stance, lang] = prompts.load(f"extract/{stance}{suffix}", lang)
        return self._prompts[stance, lang]

    def text_of(self, record: Record, field_name: str) -> str | None:
        """The record's usable text, or None after counting why it is skipped."""
        s = self.summary
        if record.error:
            s.skip(record.where, "unreadable", record.error)
            return None
        value = record.data.get(field_name)
        if value is None:
            s.skip(record.where, "missing field", f"no {field_name!r} field (fields: {sorted(record.data)[:8]})")
            return None
        if not isinstance(value, str):
            s.skip(record.where, "not text", f"{field_name!r} is a {type(value).__name__}, not text")
            return None
        cleaned = clean_text(value)
        if cleaned is not value:
            s.cleaned += 1
            s.note(f"{record.where}: {field_name!r}: {text_problems(value)}")
        text = cleaned.strip()
        if len(text) < self.cfg.min_chars:
            s.skip(record.where, "too short", f"{len(text)} characters (minimum {self.cfg.min_chars})")
            return None
        return text

    def requests(self, records: Iterator[Record], field_name: str, run_id: str) -> Iterator[LLMRequest]:
        """One request per chunk and stance of every text not skipped (lazily)."""
        cfg, s = self.cfg, self.summary
        for record in records:
            s.texts_read += 1
            text = self.text_of(record, field_name)
            if text is None:
                continue
            digest = text_hash(text)
            done = self.extracted.get(digest, set())
            stances = [st for st in cfg.stances if f"{st}/{cfg.format}" not in done]
            if not stances:
                s.skipped["already extracted"] += 1
                continue
            if digest in self._seen:
                s.skip(record.where, "repeated text", "the same text appeared earlier in the input")
                continue
            self._seen.add(digest)
            chunks = chunk_text(text, cfg.chunk_chars)[: cfg.max_chunks]
            lang = text_language(text) if cfg.lang == "auto" else cfg.lang
            uri = str(record.data.get("uri") or record.data.get("url") or record.where)
            if clean_text(uri) is not uri:  # the Source node stores it cleaned; say so
                s.note(f"{record.where}: uri: {text_problems(uri)}")
            source = Source(text_hash=digest, uri=uri, props={
                "extracted": False, "failed": 0, "chunks": len(chunks), "chars": len(text), "run_id": run_id})
            if self.track:
                asked = done | {f"{st}/{cfg.format}" for st in stances}
                self.in_flight[source.id] = _Text(source, record.where, pending=len(chunks) * len(stances), asked=asked)
            s.chunks += len(chunks)
            for index, chunk in enumerate(chunks):
                for stance in stances:
                    s.requests += 1
                    yield LLMRequest(
                        key=f"{source.id}/{index}/{stance}",
                        messages=self.prompt(stance, lang).render(text=chunk),
                        schema=self.schema,
                        meta=_Ask(source.id, index, stance, chunk),
                    )


class GraphWriter:
    """Writes finished texts in batches, in a worker thread so calls keep flowing, one batch at a time, in order."""

    def __init__(self, store: GraphStore, summary: ExtractSummary) -> None:
        self.store = store
        self.summary = summary
        self.ready: list[_Text] = []
        self._writing: asyncio.Future[None] | None = None
        self._last = time.monotonic()

    async def add(self, text: _Text) -> None:
        """Queue a finished text; start a write when the batch is full or a couple of seconds old."""
        self.ready.append(text)
        if len(self.ready) >= FLUSH_TEXTS or time.monotonic() - self._last > FLUSH_SECONDS:
            await self.flush(wait=False)

    async def flush(self, wait: bool = True) -> None:
        """Write the queued texts after the previous batch is done; with `wait`, until this one is too."""
        if self._writing is not None:
            await self._writing
            self._writing = None
        self._last = time.monotonic()
        batch, self.ready = self.ready, []
        if batch:
            self._writing = asyncio.ensure_future(asyncio.to_thread(self._write, batch))
        if wait and self._writing is not None:
            await self._writing
            self._writing = None

    def _write(self, batch: list[_Text]) -> None:
        """Personas, sources, edges, then the sources' `extracted` mark last: a crash mid-batch leaves them to redo."""
        personas = [p for t in batch for p in t.personas]
        if personas:
            stats = self.store.upsert_personas(personas)
            self.summary.personas_created += stats.nodes_created
            self.summary.personas_existing += len(personas) - stats.nodes_created
        self.store.upsert_sources([t.source for t in batch])
        # In chunk and stance order, not the order answers arrived in: the first row of a persona's
        # edge sets its chunk, so a rerun writes the same edge whatever the timing.
        edges = [e for t in batch for e in sorted(t.edges, key=lambda e: (e.props["chunk"], e.props["stances"]))]
        if edges:
            self.store.add_edges(edges, target_label="Source")
        self.store.set_properties(
            [{"id": t.source.id, "props": {"extracted": True, "failed": t.failed, "extracted_as": ",".join(sorted(t.asked))}}
             for t in batch],
            label="Source",
        )


def persona_from(result: LLMResult, run_id: str, source: str | None = None,
                 config: FilterConfig | None = None) -> tuple[Persona, list[str], dict[str, str]]:
    """The Persona node of a successful answer (plain text or ExtractedPersona), the cheap checks it
    failed against its `source` text (then it is `rejected`, with `filter_reasons`), and the attributes
    dropped (name -> value given); ValueError if the answer holds no description."""
    attributes: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    if isinstance(result.value, ExtractedPersona):
        description = tidy_description(result.value.description)
        attributes, dropped = canonical_attributes({name: getattr(result.value, name) for name in ATTRIBUTES})
    else:
        description = plain_description(str(result.value))
    if len(description) < MIN_PERSONA_CHARS:
        raise ValueError(f"persona description too short: {description!r}")
    description = description[:MAX_PERSONA_CHARS]
    # The person probe is left to the filter stage, which embeds its candidates in one batch: here it
    # would embed one description per answer on the event loop (~5 ms each, more than the rest of extraction).
    verdict = cheap_check(description, config=config, source=source, probe=False)
    if not verdict.ok:
        attributes["filter_reasons"] = verdict_reasons(verdict)
    return Persona(description=description, status=PersonaStatus.candidate if verdict.ok else PersonaStatus.rejected,
                   hop=0, origin="text", run_id=run_id, attributes=attributes), verdict.checks, dropped


def extracted_sources(store: GraphStore) -> dict[str, set[str]]:
    """For each source extracted without failures, the "stance/format" pairs it was asked (not asked again)."""
    return {
        node["text_hash"]: set(str(node.get("extracted_as") or "").split(","))
        for page in store.iter_nodes("Source")
        for node in page
        if node.get("extracted") is True and not node.get("failed") and node.get("text_hash")
    }


class _FailureLog:
    """Failed answers with their raw text, one JSON line each, in the run's folder (opened on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def write(self, row: dict[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class Extract(Stage[ExtractSummary]):
    """Text-to-Persona on a corpus (JSONL, Parquet, CSV or a folder of texts); see the module docstring."""

    name: ClassVar[str] = "extract"
    shardable: ClassVar[bool] = True
    config: ExtractConfig = Field(default_factory=ExtractConfig)
    path: Path
    field: str | None = Field(default=None, description="Field holding the text (found automatically when obvious)")
    limit: int | None = Field(default=None, ge=1, description="Read only the first `limit` records")

    def _plan(self, run_id: str, track: bool, done: dict[str, set[str]]) -> tuple[ExtractSummary, TextPlanner, Iterator[LLMRequest]]:
        """The summary, the planner and the lazy requests of a run (or of its estimate)."""
        field_name = choose_field(self.path, TEXT_FIELDS, self.field or self.config.field)
        summary = ExtractSummary(path=str(self.path), field=field_name, run_id=run_id)
        planner = TextPlanner(self.config, summary, done, track=track)
        records = islice(iter_records(self.path), self.limit)
        if not self.shard.whole:  # a worker reads the input and keeps the records at its positions
            records = (record for position, record in enumerate(records) if self.shard.owns_position(position))
        return summary, planner, planner.requests(records, field_name, run_id)

    async def run(self, ctx: StageContext, run_id: str) -> ExtractSummary:
        """Extract personas from the texts into the graph, writing as answers stream back."""
        client, store = ctx.llm, ctx.store
        usage_before = client.usage.model_copy()
        summary, planner, requests = self._plan(run_id, True, extracted_sources(store))
        writer = GraphWriter(store, summary)
        failures = _FailureLog(ctx.settings.store.data_dir / "runs" / run_id / f"extract_failures{self.shard.suffix()}.jsonl")
        total = count_records(self.path)
        total = min(total, self.limit) if total and self.limit else total or self.limit
        if total and not self.shard.whole:
            total = len(range(self.shard.index, total, self.shard.count))
        label = f"extracting {self.path.name}"
        try:
            async for result in client.stream(requests):
                ask: _Ask = result.request.meta
                text = planner.in_flight[ask.source_id]
                text.pending -= 1
                error = result.error
                if result.ok:
                    try:
                        persona, failed_checks, dropped = persona_from(result, run_id, ask.text, ctx.settings.filter)
                        summary.personas_rejected += bool(failed_checks)
                        summary.rejected.update(failed_checks)
                        summary.attributes_dropped.update(dropped.keys())
                        text.personas.append(persona)
                        text.edges.append(Edge(source=persona.id, target=ask.source_id, type=EDGE_TYPE, props={
                            "stances": [ask.stance], "chunk": ask.chunk, "run_id": run_id, "model": client.config.model}))
                    except (ValueError, ValidationError) as exc:
                        error = f"unusable persona: {exc}"
                if error:
                    text.failed += 1
                    summary.failed_requests += 1
                    summary.note(f"{text.where}: {ask.stance}: {error[:300]}")
                    failures.write({"where": text.where, "source": ask.source_id, "chunk": ask.chunk, "stance": ask.stance,
                                    "error": error, "raw_text": result.raw_text})
                if text.pending == 0:
                    del planner.in_flight[ask.source_id]
                    if text.failed:
                        summary.texts_failed += 1
                    else:
                        summary.texts_extracted += 1
                    await writer.add(text)
                ctx.progress(label, summary.texts_done, total)
        finally:
            await writer.flush()  # what was answered is kept even when the run stops early
            failures.close()
        if failures.path.exists():
            summary.failures_file = str(failures.path)
        summary.llm = client.usage.since(usage_before).as_dict()
        ctx.progress(label, summary.texts_done, summary.texts_read)
        if client.cache is not None and client.cache.write_error is not None:
            raise client.cache.write_error
        return summary

    async def estimate(self, ctx: StageContext) -> StageEstimate:
        """The texts a run would skip, and the calls and rough tokens it would spend; writes nothing."""
        summary, _, requests = self._plan("dry-run", False, extracted_sources(ctx.store))
        llm = ctx.llm.estimate(requests)
        return StageEstimate(stage=self.name, llm=llm, lines=[
            (f"texts read (field {summary.field!r})", f"{summary.texts_read:,}"),
            ("would be skipped", f"{summary.texts_skipped:,}" + "".join(f"\n  {k}: {v:,}" for k, v in summary.skipped.most_common())),
        ])
