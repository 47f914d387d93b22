"""The whole method in one call: Text-to-Persona, filter, dedup, Persona-to-Persona, synthesis.

`run_pipeline` composes the stages exactly as their own commands do (each stage is resumable, so a
rerun after a crash or Ctrl-C continues where the last one stopped and ends with the same graph).
It is what `personagraph run CORPUS` calls, and what the README's first command runs on the
embedded store and the embedded SmolLM2 model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from graph.export import export_jsonl
from graph.store import LIVE_STATUSES, GraphStore
from pipeline.config import Settings
from pipeline.dedup.index import index_folder
from pipeline.dedup.stage import merge_duplicates
from pipeline.expand import ExpandOptions, expand_with_settings
from pipeline.extract import extract_personas
from pipeline.filter import filter_personas
from pipeline.llm import LLMClient
from pipeline.sample import SampleSpec
from pipeline.synthesize import SynthesisSpec, synthesize


class RunOptions(BaseModel):
    """The budgets of one end-to-end run (small by default: a first run should take a minute or two)."""

    corpus: Path
    field: str | None = None
    output_dir: Path = Path("out")
    hops: int = Field(default=2, ge=0, le=6, description="Persona-to-Persona hops (0 = no expansion)")
    fanout: int = Field(default=2, ge=1)
    relations_per_seed: int = Field(default=2, ge=1)
    max_new: int = Field(default=60, ge=0)
    task: str = "math_problem"
    count: int = Field(default=10, ge=0, description="Synthesized rows (0 = no synthesis)")
    lang: str = "en"
    seed: int = 0
    judge: bool | None = Field(default=None, description="LLM judge in the filter; None = only with a configured endpoint")


class StageResult(BaseModel):
    """One stage's headline numbers for the end-of-run summary."""

    stage: str
    seconds: float
    numbers: dict[str, Any]


class RunSummary(BaseModel):
    """Every stage's result, the files written and the graph's counts at the end."""

    stages: list[StageResult] = Field(default_factory=list)
    personas_file: Path | None = None
    samples_file: Path | None = None
    live_personas: int = 0
    edges: int = 0
    usage: dict[str, int] = Field(default_factory=dict)


def _timed(summary: RunSummary, stage: str, started: float, **numbers: Any) -> None:
    summary.stages.append(StageResult(stage=stage, seconds=round(time.monotonic() - started, 2), numbers=numbers))


def run_pipeline(
    settings: Settings,
    store: GraphStore,
    client: LLMClient,
    options: RunOptions,
    *,
    run_id: str,
    on_stage: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run extract -> filter -> dedup -> expand (-> filter, dedup) -> synthesize on `options.corpus`."""
    summary = RunSummary()
    say = on_stage or (lambda _stage: None)
    use_judge = options.judge if options.judge is not None else settings.llm.base_url is not None
    judge = client if (use_judge and settings.filter.use_llm) else None
    dedup_dir = index_folder(settings.store.data_dir, settings.store.graph)

    say("extract: who would read, write or like each text")
    t = time.monotonic()
    ex = extract_personas(settings, store, client, options.corpus, options.field, run_id=f"{run_id}-extract")
    _timed(summary, "extract", t, texts=ex.texts_read, skipped=ex.texts_skipped, failed=ex.texts_failed,
           personas_created=ex.personas_created, rejected=ex.personas_rejected, already_present=ex.personas_existing,
           attributes_dropped=sum(ex.attributes_dropped.values()))

    def filter_and_dedup(label: str) -> None:
        say(f"filter{label}: relevance, plausibility, specificity, readability")
        t = time.monotonic()
        fs = filter_personas(store, settings.filter, judge, options.lang)
        _timed(summary, f"filter{label}", t, examined=fs.examined, accepted=fs.accepted, rejected=fs.rejected,
               judge="llm" if judge else "cheap checks")
        say(f"dedup{label}: MinHash + embeddings, duplicates merged")
        t = time.monotonic()
        dd = merge_duplicates(store, settings.dedup, dedup_dir)
        _timed(summary, f"dedup{label}", t, groups=len(dd.groups), merged=dd.merged)

    filter_and_dedup("")
    if options.hops > 0 and options.max_new > 0:
        say(f"expand: related personas, up to {options.hops} hops")
        t = time.monotonic()
        opts = ExpandOptions.from_config(settings.expand, hops=options.hops, fanout=options.fanout,
                                         max_new=options.max_new, relations_per_seed=options.relations_per_seed,
                                         language=options.lang)
        es = expand_with_settings(store, client, settings, opts, run_id=f"{run_id}-expand")
        _timed(summary, "expand", t, seeds=es.seeds_expanded, created=es.created, linked=es.linked,
               edges=es.edges_created, rejected=sum(es.rejected.values()),
               attributes_dropped=sum(es.attributes_dropped.values()), stopped_by=es.stopped_by)
        filter_and_dedup(" (expanded)")

    options.output_dir.mkdir(parents=True, exist_ok=True)
    summary.personas_file = options.output_dir / "personas.jsonl"
    export_jsonl(store, summary.personas_file, LIVE_STATUSES)
    if options.count > 0:
        say(f"synthesize: {options.count} x {options.task}")
        t = time.monotonic()
        summary.samples_file = options.output_dir / f"{options.task}.jsonl"
        spec = SynthesisSpec(task=options.task, count=options.count, lang=options.lang,
                             sample=SampleSpec.from_config(settings.synthesis, seed=options.seed))
        sy = synthesize(store, client, spec, summary.samples_file, f"{run_id}-synthesize")
        _timed(summary, "synthesize", t, rows=sy.written, failed=sy.failed)

    counts = store.stats()
    summary.live_personas = sum(r["nodes"] for r in counts["nodes"] if r["label"] == "Persona" and r["status"] in LIVE_STATUSES)
    summary.edges = sum(r["edges"] for r in counts["edges"])
    summary.usage = client.usage.as_dict()
    store.record_run(run_id, {"stage": "run", "corpus": str(options.corpus), "live_personas": summary.live_personas,
                              "edges": summary.edges, **summary.usage})
    return summary
