"""Persona-driven data synthesis: put sampled personas into a task prompt and collect what the model writes.

A *task* is a prompt file `prompts/synthesis/<task>.<lang>.md` (math_problem, logical_reasoning,
absurd_premise (弱智吧-style), user_instruction, knowledge_article, game_npc, tool_spec) with the
variables `${persona}`, `${demonstrations}` and, for game_npc, `${world}`. A user adds a task by
dropping `<task>.<lang>.md` into a folder listed in `[synthesis] task_dirs`.

Modes decide what `${demonstrations}` holds:

- `zero_shot`: nothing.
- `few_shot`: `shots` examples from a file (JSONL/Parquet rows with `text`).
- `persona_few_shot`: examples that carry the persona who wrote them (`persona` field).
- `neighbourhood_few_shot`: samples already generated for the persona's graph neighbours, and only
  theirs: the `Sample` nodes of neighbours in the graph (an earlier run with write-back), or the rows
  of an earlier output file given as examples. The row lists the neighbours used (`neighbourhood`).

Personas come from `pipeline.sample` (any strategy). One output row per persona, written in input
order, so a rerun with the same seed on the same graph writes the same file; answers come from the
LLM cache on a rerun, so an interrupted run resumes without paying twice.

    >>> g = personagraph.open(".personagraph")
    >>> summary = g.synthesize("math_problem", "math.jsonl", count=100, strategy="cluster", size=10)
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from personagraph import prompts
from personagraph.graph.model import content_id
from personagraph.graph.store import GraphStore
from personagraph.llm import LLMRequest, LLMResult
from personagraph.readers import InputError, iter_records
from personagraph.config import SampleConfig, SynthesisConfig
from personagraph.sample import GraphSample, sample_personas
from personagraph.stage import Stage, StageContext, StageEstimate, StageSummary

SYNTHESIS_DIR = prompts.PROMPTS_DIR / "synthesis"
TASK_VARIABLES = {"persona", "demonstrations", "world"}


class Demonstration(BaseModel):
    """An example output shown to the model; `persona_id` / `persona` say who wrote it, when known."""

    id: str
    text: str
    persona: str = ""
    persona_id: str = ""


class SynthesisRow(BaseModel):
    """One synthesized sample with its provenance (one output row, one optional `Sample` node)."""

    id: str
    persona_id: str
    persona: str
    task: str
    mode: str
    lang: str
    prompt_file: str
    model: str
    sampling_strategy: str
    sample_id: str
    seed: int
    neighbourhood: list[str] = Field(default_factory=list, description="neighbours whose samples were demonstrations")
    demonstrations: list[str] = Field(default_factory=list, description="ids of the demonstrations shown")
    text: str


class SynthesisSummary(StageSummary):
    """What a run did."""

    headline: ClassVar[tuple[str, ...]] = ("personas", "written", "failed", "cached")

    not_recorded: ClassVar[frozenset[str]] = frozenset({"failures"})

    task: str = ""
    personas: int = 0
    written: int = 0
    failed: int = 0
    cached: int = 0
    without_neighbour_samples: int = 0
    written_back: int = 0
    output: str = ""
    failures: list[str] = Field(default_factory=list, description="first few failures, `persona: error`")


def task_folders(task_dirs: Sequence[Path]) -> list[Path]:
    """Where task prompts are looked up: the user's folders first, then the packaged `prompts/synthesis`."""
    return [Path(d) for d in task_dirs] + [SYNTHESIS_DIR]


def available_tasks(task_dirs: Sequence[Path] = ()) -> dict[str, list[str]]:
    """Task name -> languages it has a prompt file in (`<task>.<lang>.md` directly in a task folder)."""
    tasks: dict[str, set[str]] = {}
    for folder in task_folders(task_dirs):
        for f in folder.glob("*.md") if folder.is_dir() else ():
            task, _, lang = f.name[: -len(".md")].partition(".")
            tasks.setdefault(task, set()).add(lang or "en")
    return {task: sorted(langs) for task, langs in sorted(tasks.items())}


def load_task(task: str, lang: str, task_dirs: Sequence[Path] = ()) -> prompts.Prompt:
    """The prompt of `task` in `lang`; a clear error lists the tasks there are."""
    tasks = available_tasks(task_dirs)
    if task not in tasks or lang not in tasks[task]:
        known = ", ".join(f"{t} ({'/'.join(langs)})" for t, langs in tasks.items())
        raise ValueError(f"no synthesis task {task!r} in language {lang!r}; tasks: {known}. "
                         f"Add one as <task>.<lang>.md in a folder listed in [synthesis] task_dirs.")
    prompt = prompts.load(task, lang, task_folders(task_dirs))
    unknown = prompt.variables() - TASK_VARIABLES
    if unknown:
        raise ValueError(f"{prompt.path}: unknown variables {sorted(unknown)}; a task prompt may use "
                         f"{', '.join('${' + v + '}' for v in sorted(TASK_VARIABLES))}")
    return prompt


def load_demonstrations(path: Path, task: str, lang: str) -> list[Demonstration]:
    """Example rows from a JSONL/Parquet file: `text` (required), `persona`, `persona_id`, `id`.

    Rows naming another task or language (`task` / `lang` fields) are skipped, so an earlier output
    file or one file of examples for many tasks serves as it is. A bad line raises, naming it.
    """
    out: list[Demonstration] = []
    for record in iter_records(path):
        if record.error:
            raise InputError(f"{record.where}: {record.error}")
        data = record.data
        if data.get("task", task) != task or data.get("lang", lang) != lang:
            continue
        text = str(data.get("text") or "").strip()
        if not text:
            raise InputError(f"{record.where}: an example needs a non-empty `text` field")
        persona = str(data.get("persona") or "")
        out.append(Demonstration(id=str(data.get("id") or content_id(text, "ex")), text=text, persona=persona,
                                 persona_id=str(data.get("persona_id") or "")))
    return out


def neighbour_samples(store: GraphStore, persona_ids: Sequence[str], task: str, lang: str) -> dict[str, list[Demonstration]]:
    """`Sample` nodes of `task`/`lang` already in the graph for the personas' neighbours, per persona id.

    Only samples generated by a neighbour (an edge either way between the two personas) come back.
    """
    out: dict[str, list[Demonstration]] = {}
    for rec in store.neighbour_samples(persona_ids, task, lang):
        out.setdefault(rec["persona"], []).append(Demonstration(
            id=rec["id"], text=rec["text"], persona=rec["neighbour_description"], persona_id=rec["neighbour"]))
    for demos in out.values():
        demos.sort(key=lambda d: d.id)
    return out


def pick_personas(store: GraphStore, spec: SampleConfig, count: int) -> list[tuple[GraphSample, dict[str, Any]]]:
    """`count` distinct personas (fewer if the graph runs out), each with the sample it was drawn in.

    Draws twice as many samples as `count / size` would need, since samples of graph strategies overlap.
    """
    wanted = math.ceil(count / spec.size) * (1 if spec.strategy in ("uniform", "stratified") else 2)
    picked: dict[str, tuple[GraphSample, dict[str, Any]]] = {}
    for sample in sample_personas(store, spec.model_copy(update={"count": wanted}), with_edges=False):
        for member in sample.members:
            if len(picked) < count:
                picked.setdefault(member["id"], (sample, member))
    return list(picked.values())


class Synthesizer:
    """Builds the prompt of each persona for one spec (demonstrations chosen reproducibly per persona)."""

    def __init__(self, store: GraphStore, spec: Synthesize) -> None:
        self.store = store
        self.spec = spec
        self.prompt = load_task(spec.task, spec.config.lang, spec.config.task_dirs)
        self.variables = self.prompt.variables()
        if "world" in self.variables and not spec.world.strip():
            raise ValueError(f"task {spec.task!r} needs a description of the game world: pass --world FILE")
        self.pool: list[Demonstration] = []
        if spec.examples is not None:
            self.pool = load_demonstrations(spec.examples, spec.task, spec.config.lang)
        if spec.config.mode in ("few_shot", "persona_few_shot") and not self.pool:
            raise ValueError(f"mode {spec.config.mode} needs examples of task {spec.task!r} ({spec.config.lang}): pass --examples FILE")
        if spec.config.mode == "persona_few_shot":
            self.pool = [d for d in self.pool if d.persona]
            if not self.pool:
                raise ValueError(f"mode persona_few_shot needs examples with a `persona` field in {spec.examples}")
        self.neighbour_pool: dict[str, list[Demonstration]] = {}
        modes = [SYNTHESIS_DIR / "modes"]
        self.header = None if spec.config.mode == "zero_shot" else prompts.load(spec.config.mode, spec.config.lang, modes)
        self.item = prompts.load("example" if spec.config.mode == "few_shot" else "persona_example", spec.config.lang, modes)

    def prepare_neighbourhoods(self, persona_ids: Sequence[str]) -> None:
        """For neighbourhood few-shot: the neighbours' samples of each persona, from the examples file or the graph."""
        if self.spec.config.mode != "neighbourhood_few_shot":
            return
        if self.spec.examples is None:
            self.neighbour_pool = neighbour_samples(self.store, persona_ids, self.spec.task, self.spec.config.lang)
            return
        by_persona: dict[str, list[Demonstration]] = {}
        for demo in self.pool:
            if demo.persona_id:
                by_persona.setdefault(demo.persona_id, []).append(demo)
        neighbours = self.store.neighbours(persona_ids)
        self.neighbour_pool = {
            pid: [d for n in neighbours.get(pid, []) if n != pid for d in by_persona.get(n, [])] for pid in persona_ids
        }

    def demonstrations(self, persona_id: str) -> list[Demonstration]:
        """The demonstrations shown to this persona's prompt: a seeded choice, the same on every rerun."""
        if self.spec.config.mode == "zero_shot":
            return []
        pool = self.neighbour_pool.get(persona_id, []) if self.spec.config.mode == "neighbourhood_few_shot" else self.pool
        rng = random.Random(f"{self.spec.config.seed}:{persona_id}:{self.spec.task}")
        return sorted(rng.sample(pool, min(self.spec.config.shots, len(pool))), key=lambda d: d.id)

    def render_demonstrations(self, demos: Sequence[Demonstration]) -> str:
        """The `${demonstrations}` block: the mode's header over numbered examples ('' when there are none)."""
        if not demos or self.header is None:
            return ""
        examples = "\n\n".join(
            self.item.render(number=n, text=d.text, persona=d.persona)[0]["content"] for n, d in enumerate(demos, start=1)
        )
        return self.header.render(examples=examples)[0]["content"] + "\n\n"

    def messages(self, persona: str, demos: Sequence[Demonstration]) -> list[dict[str, str]]:
        """The chat messages for one persona."""
        values = {"persona": persona, "demonstrations": self.render_demonstrations(demos), "world": self.spec.world.strip()}
        return self.prompt.render(**{k: v for k, v in values.items() if k in self.variables})

    def requests(self, picked: Sequence[tuple[GraphSample, dict[str, Any]]], model: str) -> Iterator[LLMRequest]:
        """One request per persona; `meta` is (input position, the row without its text)."""
        spec = self.spec
        for position, (sample, member) in enumerate(picked):
            demos = self.demonstrations(member["id"])
            row = {
                "id": content_id(f"{member['id']}|{spec.task}|{spec.config.mode}|{spec.config.lang}|{spec.config.seed}|{model}", "smp"),
                "persona_id": member["id"], "persona": member["description"], "task": spec.task, "mode": spec.config.mode,
                "lang": spec.config.lang, "prompt_file": self.prompt.path.name, "model": model,
                "sampling_strategy": sample.strategy, "sample_id": sample.sample_id, "seed": spec.config.seed,
                "neighbourhood": sorted({d.persona_id for d in demos}) if spec.config.mode == "neighbourhood_few_shot" else [],
                "demonstrations": [d.id for d in demos],
            }
            yield LLMRequest(key=row["id"], messages=self.messages(member["description"], demos), meta=(position, row))


async def in_input_order(results: AsyncIterator[LLMResult]) -> AsyncIterator[LLMResult]:
    """Re-order a completion-order stream by the input position in `meta[0]` (buffering only what is early)."""
    heap: list[tuple[int, int, LLMResult]] = []
    expected = 0
    tie = 0
    async for result in results:
        heapq.heappush(heap, (result.request.meta[0], tie, result))
        tie += 1
        while heap and heap[0][0] == expected:
            yield heapq.heappop(heap)[2]
            expected += 1
    while heap:
        yield heapq.heappop(heap)[2]


class RowWriter:
    """Rows to JSONL as they come, or to Parquet at the end (chosen by the file suffix); both load with `datasets`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parquet = path.suffix.lower() in (".parquet", ".pq")
        self.rows: list[dict[str, Any]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = None if self.parquet else path.open("w", encoding="utf-8")

    def write(self, row: SynthesisRow) -> None:
        """Add one row."""
        if self._fh is not None:
            self._fh.write(row.model_dump_json() + "\n")
            self._fh.flush()
        else:
            self.rows.append(row.model_dump())

    def close(self) -> None:
        """Finish the file (Parquet is written here, with the list columns typed even when empty)."""
        if self._fh is not None:
            self._fh.close()
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        fields = [pa.field(name, pa.list_(pa.string()) if name in ("neighbourhood", "demonstrations")
                           else pa.int64() if name == "seed" else pa.string())
                  for name in SynthesisRow.model_fields]
        pq.write_table(pa.Table.from_pylist(self.rows, schema=pa.schema(fields)), self.path)


def write_samples_to_graph(store: GraphStore, rows: Sequence[SynthesisRow], run_id: str) -> int:
    """Store rows as `(:Sample)-[:GENERATED_BY]->(:Persona)` in batches; returns the samples linked."""
    samples = [{"id": r.id, "persona_id": r.persona_id, "props": {**r.model_dump(exclude={"id", "persona"}), "run_id": run_id}}
               for r in rows]
    return store.upsert_samples(samples).matched


def plan_synthesis(store: GraphStore, spec: Synthesize) -> tuple[Synthesizer, list[tuple[GraphSample, dict[str, Any]]]]:
    """The prompt builder and the personas a run would prompt (neighbours' samples looked up): what
    `synthesize` and `estimate_synthesis` share."""
    synth = Synthesizer(store, spec)
    picked = pick_personas(store, spec.config, spec.count)
    if not picked:
        raise ValueError(f"no persona with status {'/'.join(spec.config.statuses)} to synthesize with: "
                         "import or extract personas first (`personagraph stats` shows what the graph holds)")
    synth.prepare_neighbourhoods([member["id"] for _, member in picked])
    return synth, picked


class Synthesize(Stage[SynthesisSummary]):
    """Synthesize `count` rows of `task` with sampled personas into `output` (JSONL or Parquet), one row per persona."""

    name: ClassVar[str] = "synthesize"
    config: SynthesisConfig = Field(default_factory=SynthesisConfig)
    task: str
    output: Path
    count: int = Field(default=10, ge=1, description="Rows to write (fewer when the graph has fewer personas)")
    examples: Path | None = Field(default=None, description="Demonstrations: JSONL/Parquet with `text` (and `persona`)")
    world: str = Field(default="", description="The game world (game_npc)")

    def run_facts(self) -> dict[str, Any]:
        c = self.config
        return {"task": self.task, "mode": c.mode, "lang": c.lang, "strategy": c.strategy, "seed": c.seed}

    async def run(self, ctx: StageContext, run_id: str) -> SynthesisSummary:
        """Draw personas, prompt the model for each, write one row per answer to `output` in input order."""
        client, store = ctx.llm, ctx.store
        synth, picked = plan_synthesis(store, self)
        summary = SynthesisSummary(task=self.task, personas=len(picked), output=str(self.output))
        writer = RowWriter(self.output)
        back: list[SynthesisRow] = []
        label = f"{self.task} ({self.config.mode}, {self.config.lang})"
        try:
            async for result in in_input_order(client.stream(synth.requests(picked, client.config.model))):
                _, row = result.request.meta
                summary.cached += result.cached
                if self.config.mode == "neighbourhood_few_shot" and not row["demonstrations"]:
                    summary.without_neighbour_samples += 1
                if result.ok:
                    out = SynthesisRow(**row, text=str(result.value).strip())
                    writer.write(out)
                    summary.written += 1
                    if self.config.write_back:
                        back.append(out)
                else:
                    summary.failed += 1
                    if len(summary.failures) < 5:
                        summary.failures.append(f"{row['persona_id']}: {result.error}")
                ctx.progress(label, summary.written + summary.failed, len(picked))
        finally:
            writer.close()
        if back:
            summary.written_back = write_samples_to_graph(store, back, run_id)
        return summary

    async def estimate(self, ctx: StageContext) -> StageEstimate:
        """The personas a run would draw, and the calls and rough tokens it would spend (the cache consulted)."""
        synth, picked = plan_synthesis(ctx.store, self)
        llm = ctx.llm.estimate(synth.requests(picked, ctx.llm.config.model))
        return StageEstimate(stage=self.name, llm=llm, lines=[
            ("personas sampled", f"{len(picked):,} ({self.config.strategy}, seed {self.config.seed})")])
