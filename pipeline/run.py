"""The whole method as a list of stages: Text-to-Persona, filter, dedup, Persona-to-Persona, filter, dedup, export, synthesis.

`method_stages` builds the list from the settings (the `[run]` section holds a first run's small
budgets); `Run` is itself a stage that runs the list in order, each stage recording its own `Run`
node, then records one for the whole. Every stage is resumable, so a rerun after a crash or Ctrl-C
continues where the last one stopped and ends with the same graph. It is what `personagraph run
CORPUS` and `Graph.run` call, and what the README's first command runs on the embedded defaults.

    >>> summary = personagraph.open(".personagraph").run("docs/examples/texts.jsonl")
    >>> [s.stage for s in summary.stages]
    ['extract', 'filter', 'dedup', 'expand', 'filter', 'dedup', 'export', 'synthesize']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from personagraph.config import RunConfig, Settings, with_overrides
from personagraph.dedup.stage import Dedup
from personagraph.expand import Expand
from personagraph.export import Export
from personagraph.extract import Extract
from personagraph.filter import Filter
from personagraph.graph.store import LIVE_STATUSES
from personagraph.stage import Stage, StageContext, StageSummary
from personagraph.synthesize import Synthesize


class StageResult(BaseModel):
    """One stage's run id, time and headline numbers, for the end-of-run summary."""

    stage: str
    run_id: str
    seconds: float
    numbers: dict[str, Any]


class RunSummary(StageSummary):
    """Every stage's result, the files written and the graph's counts at the end."""

    not_recorded: ClassVar[frozenset[str]] = frozenset({"stages"})
    headline: ClassVar[tuple[str, ...]] = ("live_personas", "edges")

    corpus: str = ""
    stages: list[StageResult] = Field(default_factory=list)
    personas_file: str | None = None
    samples_file: str | None = None
    live_personas: int = 0
    edges: int = 0


def method_stages(settings: Settings, corpus: Path, *, field: str | None = None, run: RunConfig | None = None,
                  lang: str | None = None) -> list[Stage[Any]]:
    """The whole method on `corpus` as stages, in order, with the run's budgets (`[run]`) and `lang` for every prompt."""
    run = run or settings.run
    judge = run.judge if run.judge is not None else settings.llm.base_url is not None
    filter_stage = Filter(config=settings.filter, judge=judge, lang=lang or "en")
    dedup_stage = Dedup(config=settings.dedup)
    stages: list[Stage[Any]] = [
        Extract(config=with_overrides(settings.extract, lang=lang), path=corpus, field=field), filter_stage, dedup_stage]
    budget = dict(run.expand)
    if budget.get("hops", 1) > 0 and budget.get("max_new", 1) != 0:
        expand = with_overrides(settings.expand, **budget, lang=lang)
        stages += [Expand(config=expand, filter=settings.filter), filter_stage, dedup_stage]
    stages.append(Export(output=run.output_dir / "personas.jsonl", format="jsonl"))
    if run.count > 0:
        stages.append(Synthesize(config=with_overrides(settings.synthesis, lang=lang), task=run.task, count=run.count,
                                 output=run.output_dir / f"{run.task}.jsonl"))
    return stages


class Run(Stage[RunSummary]):
    """A list of stages run in order (each records its own Run node), then the graph's counts."""

    name: ClassVar[str] = "run"
    corpus: Path
    stages: list[Stage]  # type: ignore[type-arg]  # any stage (a parametrised Stage[...] would not match them)

    def run_facts(self) -> dict[str, Any]:
        return {"corpus": str(self.corpus), "stages": [s.name for s in self.stages]}

    async def run(self, ctx: StageContext, run_id: str) -> RunSummary:
        summary = RunSummary(corpus=str(self.corpus))
        self.check_outputs()
        for stage in self.stages:
            result = await stage(ctx)
            summary.stages.append(StageResult(stage=stage.name, run_id=result.run_id, seconds=result.seconds,
                                              numbers=result.headline_numbers()))
            if isinstance(stage, Export):
                summary.personas_file = str(stage.output)
            elif isinstance(stage, Synthesize):
                summary.samples_file = str(stage.output)
        counts = ctx.store.stats()
        summary.live_personas = sum(r["nodes"] for r in counts["nodes"]
                                    if r["label"] == "Persona" and r["status"] in LIVE_STATUSES)
        summary.edges = sum(r["edges"] for r in counts["edges"])
        return summary

    def check_outputs(self) -> None:
        """Create the output folders and refuse unusable paths before the first LLM call, not after the last."""
        for stage in self.stages:
            if isinstance(stage, Export):
                stage.output.parent.mkdir(parents=True, exist_ok=True)
                stage.check()
            elif isinstance(stage, Synthesize):
                stage.output.parent.mkdir(parents=True, exist_ok=True)

