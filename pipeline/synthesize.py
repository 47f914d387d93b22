"""Persona-driven data synthesis: put sampled personas into a task prompt and collect what the model writes.

A *task* is a prompt file `prompts/synthesis/<task>.<lang>.md` (math_problem, logical_reasoning,
absurd_premise (弱智吧-style), user_instruction, knowledge_article, game_npc, tool_spec, dialogue,
relation_problem, npc_cast) with the variables `${persona}`, `${demonstrations}`, `${world}` (the
game world), `${other}`, `${edge}` and `${neighbours}`. A user adds a task by dropping
`<task>.<lang>.md` into a folder listed in `[synthesis] task_dirs`.

What one row is written about follows from the variables the prompt uses (`task_kind`):

- a *persona task* (neither of the below): one sampled persona, `${persona}`.
- an *edge task* (`${other}` or `${edge}`): one relationship edge, `(persona)-[edge]->(other)`, picked
  from the edges of personas the strategy draws (`iter_edges`); `${edge}` is its type in words
  ('patient of'), read from `${persona}` to `${other}`.
- a *cluster task* (`${neighbours}`): one connected cluster (the `cluster` strategy, whatever the
  configured one), `${persona}` its seed and `${neighbours}` the other members (P2, P3, ...) with
  every relationship among them (`P1 -[patient of]-> P2`).

Rows carry every persona involved (`persona_ids`, the main one first and also in `persona_id`) and
the edge types used (`edge_types`); written back, a `Sample` node is GENERATED_BY each of them.

Modes decide what `${demonstrations}` holds:

- `zero_shot`: nothing.
- `few_shot`: `shots` examples from a file (JSONL/Parquet rows with `text`).
- `persona_few_shot`: examples that carry the persona who wrote them (`persona` field).
- `neighbourhood_few_shot`: samples already generated for the persona's graph neighbours, and only
  theirs: the `Sample` nodes of neighbours in the graph (an earlier run with write-back), or the rows
  of an earlier output file given as examples. The row lists the neighbours used (`neighbourhood`).
- `no_persona`: the baseline `report` compares with: no demonstrations, and `${persona}` holds the
  neutral placeholder `prompts/synthesis/modes/no_persona.<lang>.md` instead of the persona. Rows
  still name the persona slot they filled (`persona_id`, `persona`: who *would* have been shown), and
  each request carries a `seed` of its own, since identical prompts would otherwise get one cached
  answer. Persona tasks only: an edge or a cluster without its people is not the same task.

Personas come from `pipeline.sample` (any strategy). One output row per persona (edge, cluster), written in input
order, so a rerun with the same seed on the same graph writes the same file; answers come from the
LLM cache on a rerun, so an interrupted run resumes without paying twice.

    >>> g = personagraph.open(".personagraph")
    >>> summary = g.synthesize("math_problem", "math.jsonl", count=100, strategy="cluster", size=10)
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from personagraph import prompts
from personagraph.graph.model import content_id
from personagraph.graph.store import GraphStore
from personagraph.llm import LLMRequest, LLMResult
from personagraph.readers import InputError, iter_records
from personagraph.config import SampleConfig, Strategy, SynthesisConfig
from personagraph.errors import NothingToDo
from personagraph.relations import relation_words
from personagraph.sample import GraphSample, draw_in_batches, sample_personas
from personagraph.executor import Shard
from personagraph.stage import Stage, StageContext, StageEstimate, StageSummary, merge_summaries

SYNTHESIS_DIR = prompts.PROMPTS_DIR / "synthesis"
# Edges and clusters are drawn this many at a time while the calls for the ones before are out.
UNIT_BATCH = 256
TASK_VARIABLES = {"persona", "demonstrations", "world", "other", "edge", "neighbours"}
EDGE_VARIABLES = {"other", "edge"}

TaskKind = Literal["persona", "edge", "cluster"]


class Demonstration(BaseModel):
    """An example output shown to the model; `persona_id` / `persona` say who wrote it, when known."""

    id: str
    text: str
    persona: str = ""
    persona_id: str = ""


class SynthesisRow(BaseModel):
    """One synthesized sample with its provenance (one output row, one optional `Sample` node)."""

    id: str
    persona_id: str = Field(description="the main persona: the persona, the edge's source, the cluster's seed")
    persona: str
    persona_ids: list[str] = Field(default_factory=list, description="every persona involved, the main one first")
    edge_types: list[str] = Field(default_factory=list, description="the edge's type, or the types among the cluster")
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
    kind: str = Field(default="persona", description="what a row is written about: persona, edge or cluster")
    personas: int = Field(default=0, description="distinct personas prompted with")
    edges: int = Field(default=0, description="relationship edges drawn (edge tasks)")
    clusters: int = Field(default=0, description="connected clusters drawn (cluster tasks)")
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
    task_kind(prompt)
    return prompt


def task_kind(prompt: prompts.Prompt) -> TaskKind:
    """What one row of a task is written about, from the variables its prompt uses: a cluster with
    `${neighbours}`, an edge with `${other}` or `${edge}`, otherwise a persona.

        >>> task_kind(load_task("dialogue", "en"))
        'edge'
    """
    variables = prompt.variables()
    if "neighbours" in variables:
        if variables & EDGE_VARIABLES:
            raise ValueError(f"{prompt.path}: a prompt with ${{neighbours}} is written about a cluster, which has no one "
                             "${other} or ${edge}; use ${persona} (the seed) and ${neighbours} (the others and their relationships)")
        return "cluster"
    return "edge" if variables & EDGE_VARIABLES else "persona"


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


@dataclass(frozen=True)
class SynthesisUnit:
    """What one row is written about: a persona; an edge, its source then its target; or a connected
    cluster, its seed first, with the relationships among its members (no self-loops)."""

    sample: GraphSample
    members: list[dict[str, Any]]
    edges: list[dict[str, str]] = field(default_factory=list)

    @property
    def persona_ids(self) -> list[str]:
        return [m["id"] for m in self.members]

    @property
    def edge_types(self) -> list[str]:
        """The types of the edges used, distinct, sorted."""
        return sorted({e["type"] for e in self.edges})

    @property
    def key(self) -> str:
        """Identity of the unit within a task: the persona id; `source|TYPE|target`; member ids joined by '+'."""
        if not self.edges:
            return self.members[0]["id"]
        if len(self.members) == 2 and len(self.edges) == 1:
            e = self.edges[0]
            return f"{e['source']}|{e['type']}|{e['target']}"
        return "+".join(self.persona_ids)

    def variables(self) -> dict[str, str]:
        """`${persona}`, `${other}`, `${edge}` and `${neighbours}` for this unit ('' where they do not apply)."""
        values = {"persona": self.members[0]["description"], "other": "", "edge": "", "neighbours": ""}
        if len(self.members) == 2 and len(self.edges) == 1:
            values |= {"other": self.members[1]["description"], "edge": relation_words(self.edges[0]["type"])}
        elif self.edges or len(self.members) > 2:
            values["neighbours"] = describe_cluster(self.members, self.edges)
        return values


def describe_cluster(members: Sequence[dict[str, Any]], edges: Sequence[dict[str, str]]) -> str:
    """`${neighbours}`: the members after the first (labelled P2, P3, ...; the first is P1), then one
    line per relationship in its stored direction, in words.

        >>> describe_cluster([{"id": "a", "description": "a nurse"}, {"id": "b", "description": "a patient"}],
        ...                  [{"source": "b", "target": "a", "type": "PATIENT_OF"}])
        'P2: a patient\\n\\nP2 -[patient of]-> P1'
    """
    label = {m["id"]: f"P{n}" for n, m in enumerate(members, start=1)}
    people = [f"{label[m['id']]}: {m['description']}" for m in members[1:]]
    relationships = [f"{label[e['source']]} -[{relation_words(e['type'])}]-> {label[e['target']]}" for e in edges]
    return "\n".join(people) + "\n\n" + "\n".join(relationships)


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


def iter_edges(store: GraphStore, spec: SampleConfig, count: int, batch: int = UNIT_BATCH) -> Iterator[list[SynthesisUnit]]:
    """`count` distinct relationship edges between sampleable personas (fewer if the graph runs out),
    a batch of anchors at a time.

    Anchor personas are drawn as a persona task draws them (`spec.strategy`); each anchor gives one
    of its edges (either direction, to another persona with one of `spec.statuses`) not taken yet,
    chosen by a generator seeded with (seed, anchor), so the same seed picks the same edges. Anchors
    without an edge are passed over; anchors are drawn (a sixteenth more than `count` at first) in
    doubling rounds, each round's new anchors taken in order, until `count` edges are found or the
    draw gives no more. The edge keeps its stored direction: its source is the main persona.
    """
    # A few percent of anchors give no edge (none, or only ones taken already): draw that many more
    # at once, so a connected graph needs one round.
    want = count + count // 16 + 8
    taken: set[tuple[str, str, str]] = set()
    asked: set[str] = set()
    while True:
        anchors = pick_personas(store, spec, want)
        fresh = [(sample, member) for sample, member in anchors if member["id"] not in asked]
        for start in range(0, len(fresh), batch):
            part = fresh[start : start + batch]
            asked.update(member["id"] for _, member in part)
            incident = store.incident_edges([member["id"] for _, member in part], spec.statuses)
            picked: list[tuple[GraphSample, dict[str, str]]] = []
            for sample, member in part:
                edges = incident.get(member["id"], [])
                rng = random.Random(f"{spec.seed}:{member['id']}:edge")
                for edge in rng.sample(edges, len(edges)):
                    key = (edge["source"], edge["type"], edge["target"])
                    if key not in taken:
                        taken.add(key)
                        picked.append((sample, edge))
                        break
                if len(taken) == count:
                    break
            people = {member["id"]: member for _, member in part}
            people.update(store.sample_members(list(dict.fromkeys(
                i for _, edge in picked for i in (edge["source"], edge["target"]) if i not in people))))
            yield [SynthesisUnit(sample=sample, members=[people[edge["source"]], people[edge["target"]]], edges=[edge])
                   for sample, edge in picked]
            if len(taken) >= count:
                return
        if len(anchors) < want:
            return
        want *= 2


def iter_clusters(store: GraphStore, spec: SampleConfig, count: int, batch: int = UNIT_BATCH) -> Iterator[list[SynthesisUnit]]:
    """`count` connected clusters of `spec.size` personas (`min_size` accepts smaller ones), drawn by
    the `cluster` strategy whatever `spec.strategy` says, a batch at a time; fewer if the graph has
    fewer, none raises NothingToDo saying why. Each unit: the seed first, then the other members,
    with the edges among them."""
    for draw in draw_in_batches(store, spec.model_copy(update={"strategy": Strategy.cluster, "count": count}), batch):
        if not draw.samples:
            draw.check_complete()
        units = []
        for sample in draw.samples:
            members = sorted(sample.members, key=lambda m: m["id"] != sample.seed_persona)  # the seed first, the rest in order
            edges = [e for e in sample.edges if e["source"] != e["target"]]
            units.append(SynthesisUnit(sample=sample, members=members, edges=edges))
        yield units


def pick_units(store: GraphStore, spec: SampleConfig, count: int, kind: TaskKind) -> list[SynthesisUnit]:
    """What `count` rows of a task of `kind` are written about: personas, edges or clusters."""
    return [unit for part in iter_units(store, spec, count, kind) for unit in part]


def iter_units(store: GraphStore, spec: SampleConfig, count: int, kind: TaskKind,
               batch: int = UNIT_BATCH) -> Iterator[list[SynthesisUnit]]:
    """`pick_units` a batch at a time, so the first calls go out while the rest is drawn."""
    if kind == "edge":
        yield from iter_edges(store, spec, count, batch)
    elif kind == "cluster":
        yield from iter_clusters(store, spec, count, batch)
    else:
        yield [SynthesisUnit(sample=sample, members=[member]) for sample, member in pick_personas(store, spec, count)]


class Synthesizer:
    """Builds the prompt of each persona for one spec (demonstrations chosen reproducibly per persona)."""

    def __init__(self, store: GraphStore, spec: Synthesize) -> None:
        self.store = store
        self.spec = spec
        self.prompt = load_task(spec.task, spec.config.lang, spec.config.task_dirs)
        self.variables = self.prompt.variables()
        self.kind = task_kind(self.prompt)
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
        self.placeholder: str | None = None
        if spec.config.mode == "no_persona":
            if self.kind != "persona":
                raise ValueError(f"mode no_persona is a baseline for persona tasks; {spec.task!r} is written about "
                                 f"a relationship {self.kind}, which without its people is another task")
            self.placeholder = prompts.load("no_persona", spec.config.lang, modes).render()[0]["content"].strip()
        no_header = ("zero_shot", "no_persona")
        self.header = None if spec.config.mode in no_header else prompts.load(spec.config.mode, spec.config.lang, modes)
        self.item = prompts.load("example" if spec.config.mode == "few_shot" else "persona_example", spec.config.lang, modes)

    def prepare_neighbourhoods(self, persona_ids: Sequence[str]) -> None:
        """For neighbourhood few-shot: the neighbours' samples of each persona, from the examples file or
        the graph (added to those of personas prepared before)."""
        if self.spec.config.mode != "neighbourhood_few_shot":
            return
        if self.spec.examples is None:
            self.neighbour_pool.update(neighbour_samples(self.store, persona_ids, self.spec.task, self.spec.config.lang))
            return
        by_persona: dict[str, list[Demonstration]] = {}
        for demo in self.pool:
            if demo.persona_id:
                by_persona.setdefault(demo.persona_id, []).append(demo)
        neighbours = self.store.neighbours(persona_ids)
        self.neighbour_pool.update({
            pid: [d for n in neighbours.get(pid, []) if n != pid for d in by_persona.get(n, [])] for pid in persona_ids
        })

    def demonstrations(self, persona_id: str, key: str | None = None) -> list[Demonstration]:
        """The demonstrations shown to this persona's prompt: a seeded choice, the same on every rerun.

        `key` names the unit when it is more than the persona (`SynthesisUnit.key`: an edge, a
        cluster), so two edges of one persona may see different ones; neighbours are the main persona's.
        """
        if self.spec.config.mode in ("zero_shot", "no_persona"):
            return []
        pool = self.neighbour_pool.get(persona_id, []) if self.spec.config.mode == "neighbourhood_few_shot" else self.pool
        rng = random.Random(f"{self.spec.config.seed}:{key or persona_id}:{self.spec.task}")
        return sorted(rng.sample(pool, min(self.spec.config.shots, len(pool))), key=lambda d: d.id)

    def render_demonstrations(self, demos: Sequence[Demonstration]) -> str:
        """The `${demonstrations}` block: the mode's header over numbered examples ('' when there are none)."""
        if not demos or self.header is None:
            return ""
        examples = "\n\n".join(
            self.item.render(number=n, text=d.text, persona=d.persona)[0]["content"] for n, d in enumerate(demos, start=1)
        )
        return self.header.render(examples=examples)[0]["content"] + "\n\n"

    def messages(self, persona: str, demos: Sequence[Demonstration], other: str = "", edge: str = "",
                 neighbours: str = "") -> list[dict[str, str]]:
        """The chat messages for one persona (with the other end and the edge, or the cluster's other members)."""
        values = {"persona": self.placeholder or persona, "demonstrations": self.render_demonstrations(demos), "world": self.spec.world.strip(),
                  "other": other, "edge": edge, "neighbours": neighbours}
        return self.prompt.render(**{k: v for k, v in values.items() if k in self.variables})

    def requests(self, units: Sequence[SynthesisUnit], model: str, start: int = 0) -> Iterator[LLMRequest]:
        """One request per unit (persona, edge or cluster); `meta` is (input position, counted from
        `start`, and the row without its text)."""
        spec = self.spec
        for position, unit in enumerate(units, start=start):
            main = unit.members[0]
            demos = self.demonstrations(main["id"], unit.key)
            row = {
                "id": content_id(f"{unit.key}|{spec.task}|{spec.config.mode}|{spec.config.lang}|{spec.config.seed}|{model}", "smp"),
                "persona_id": main["id"], "persona": main["description"], "persona_ids": unit.persona_ids,
                "edge_types": unit.edge_types, "task": spec.task, "mode": spec.config.mode,
                "lang": spec.config.lang, "prompt_file": self.prompt.path.name, "model": model,
                "sampling_strategy": unit.sample.strategy, "sample_id": unit.sample.sample_id, "seed": spec.config.seed,
                "neighbourhood": sorted({d.persona_id for d in demos}) if spec.config.mode == "neighbourhood_few_shot" else [],
                "demonstrations": [d.id for d in demos],
            }
            # Without a persona every prompt is the same: a seed per row makes each an independent draw
            # (and a cache entry of its own), reproducible on a rerun.
            params = {"seed": int(row["id"][-8:], 16) % 2**31} if self.placeholder is not None else {}
            yield LLMRequest(key=row["id"], messages=self.messages(demos=demos, **unit.variables()), params=params,
                             meta=(position, row))


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


LIST_COLUMNS = frozenset({"persona_ids", "edge_types", "neighbourhood", "demonstrations"})


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

        fields = [pa.field(name, pa.list_(pa.string()) if name in LIST_COLUMNS
                           else pa.int64() if name == "seed" else pa.string())
                  for name in SynthesisRow.model_fields]
        pq.write_table(pa.Table.from_pylist(self.rows, schema=pa.schema(fields)), self.path)


def shard_file(output: Path, shard: Shard) -> Path:
    """Where one shard writes its rows: `output` itself for the whole, else a part beside it."""
    return output if shard.whole else output.with_name(f"{output.stem}{shard.suffix()}{output.suffix}")


def join_row_files(parts: Sequence[Path], output: Path) -> None:
    """Concatenate the shards' row files into `output` (JSONL line by line, Parquet table by table), then remove them."""
    if output.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.concat_tables([pq.read_table(p) for p in parts]), output)
    else:
        with output.open("wb") as out:
            for part in parts:
                out.write(part.read_bytes())
    for part in parts:
        part.unlink()


def write_samples_to_graph(store: GraphStore, rows: Sequence[SynthesisRow], run_id: str) -> int:
    """Store rows as `(:Sample)-[:GENERATED_BY]->(:Persona)`, one edge to every persona involved, in
    batches; returns the GENERATED_BY edges made (one per row for persona tasks)."""
    samples = [{"id": r.id, "persona_ids": r.persona_ids or [r.persona_id],
                "props": {**r.model_dump(exclude={"id", "persona"}), "run_id": run_id}}
               for r in rows]
    return store.upsert_samples(samples).matched


def plan_synthesis(store: GraphStore, spec: Synthesize) -> tuple[Synthesizer, list[SynthesisUnit]]:
    """The prompt builder and the units (personas, edges or clusters) a run would prompt with
    (neighbours' samples looked up): what `run` and `estimate` share."""
    synth = Synthesizer(store, spec)
    units = pick_units(store, spec.config, spec.count, synth.kind)
    if not units:
        raise nothing_to_synthesize(spec, synth.kind)
    synth.prepare_neighbourhoods(list(dict.fromkeys(unit.members[0]["id"] for unit in units)))
    return synth, units


def nothing_to_synthesize(spec: Synthesize, kind: TaskKind) -> Exception:
    """The error of a draw that found nothing to write about, saying what to run first."""
    statuses = "/".join(spec.config.statuses)
    if kind == "edge":
        return NothingToDo(f"task {spec.task!r} is written about a relationship edge, and no {statuses} persona has an edge "
                           f"to another: grow the graph with `personagraph expand` first")
    return ValueError(f"no persona with status {statuses} to synthesize with: "
                      "import or extract personas first (`personagraph stats` shows what the graph holds)")


async def drawn_ahead(batches: Iterator[list[SynthesisUnit]]) -> AsyncIterator[list[SynthesisUnit]]:
    """`batches` drawn in a worker thread one batch ahead of the consumer, so the event loop keeps
    answering while the graph is read (the store's client is thread-safe)."""
    done = object()
    ahead = asyncio.ensure_future(asyncio.to_thread(next, batches, done))
    try:
        while (batch := await ahead) is not done:
            ahead = asyncio.ensure_future(asyncio.to_thread(next, batches, done))
            yield batch  # type: ignore[misc]
    finally:
        if not ahead.done():
            await asyncio.wait({ahead})


def unit_counts(kind: TaskKind, units: Sequence[SynthesisUnit]) -> dict[str, int]:
    """The summary's `personas`, `edges` and `clusters` for the units drawn."""
    return {"personas": len({i for u in units for i in u.persona_ids}),
            "edges": len(units) if kind == "edge" else 0, "clusters": len(units) if kind == "cluster" else 0}


def sampled_lines(summary: SynthesisSummary, config: SynthesisConfig) -> list[tuple[str, str]]:
    """What a run drew, as (label, value) lines for the CLI's table and `--dry-run`."""
    how = f"seed {config.seed}"
    if summary.kind == "edge":
        return [("edges sampled", f"{summary.edges:,} (from {config.strategy} anchors, {how})"),
                ("personas involved", f"{summary.personas:,}")]
    if summary.kind == "cluster":
        return [("clusters sampled", f"{summary.clusters:,} (cluster, size {config.size}, {how})"),
                ("personas involved", f"{summary.personas:,}")]
    return [("personas sampled", f"{summary.personas:,} ({config.strategy}, {how})")]


class Synthesize(Stage[SynthesisSummary]):
    """Synthesize `count` rows of `task` into `output` (JSONL or Parquet): one row per persona, per edge
    (edge tasks) or per connected cluster (cluster tasks), as the task's prompt decides (`task_kind`)."""

    name: ClassVar[str] = "synthesize"
    shardable: ClassVar[bool] = True
    config: SynthesisConfig = Field(default_factory=SynthesisConfig)
    task: str
    output: Path
    count: int = Field(default=10, ge=1, description="Rows to write (fewer when the graph has fewer personas, edges or clusters)")
    examples: Path | None = Field(default=None, description="Demonstrations: JSONL/Parquet with `text` (and `persona`)")
    world: str = Field(default="", description="The game world (game_npc, npc_cast)")

    def run_facts(self) -> dict[str, Any]:
        c = self.config
        return {"task": self.task, "mode": c.mode, "lang": c.lang, "strategy": c.strategy, "seed": c.seed}

    async def run(self, ctx: StageContext, run_id: str) -> SynthesisSummary:
        """Draw personas (edges, clusters), prompt the model for each, write one row per answer to `output` in input order."""
        client, store = ctx.llm, ctx.store
        synth = Synthesizer(store, self)
        batches = drawn_ahead(iter_units(store, self.config, self.count, synth.kind))
        first = await anext(batches, [])
        if not first:
            raise nothing_to_synthesize(self, synth.kind)
        units: list[SynthesisUnit] = []
        drawing = True

        async def requests() -> AsyncIterator[LLMRequest]:
            """Each batch's requests as soon as it is drawn; every worker draws the same units and keeps its own."""
            nonlocal drawing
            batch: list[SynthesisUnit] | None = first
            while batch is not None:
                mine = [unit for unit in batch if self.shard.owns(unit.key)]
                await asyncio.to_thread(synth.prepare_neighbourhoods, list(dict.fromkeys(u.members[0]["id"] for u in mine)))
                start = len(units)
                units.extend(mine)
                for request in synth.requests(mine, client.config.model, start):
                    yield request
                batch = await anext(batches, None)
            drawing = False

        summary = SynthesisSummary(task=self.task, kind=synth.kind, output=str(self.output))
        writer = RowWriter(shard_file(self.output, self.shard))
        back: list[SynthesisRow] = []
        label = f"{self.task} ({self.config.mode}, {self.config.lang})"
        try:
            async for result in in_input_order(client.stream(requests())):
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
                        summary.failures.append(f"{' / '.join(row['persona_ids'])}: {result.error}")
                ctx.progress(label, summary.written + summary.failed, None if drawing else len(units))
        finally:
            writer.close()
            await batches.aclose()
        summary = summary.model_copy(update=unit_counts(synth.kind, units))
        if back:
            summary.written_back = write_samples_to_graph(store, back, run_id)
        return summary

    async def merge_shards(self, ctx: StageContext, run_id: str, summaries: list[SynthesisSummary]) -> SynthesisSummary:
        """The shards' files joined into `output` (in shard order), and the units counted once over all shards."""
        summary = merge_summaries(summaries)
        parts = [shard_file(self.output, Shard(index=i, count=len(summaries))) for i in range(len(summaries))]
        join_row_files(parts, self.output)
        synth, units = plan_synthesis(ctx.store, self)
        return summary.model_copy(update={**unit_counts(synth.kind, units), "output": str(self.output)})

    async def estimate(self, ctx: StageContext) -> StageEstimate:
        """The personas (edges, clusters) a run would draw, and the calls and rough tokens it would spend (the cache consulted)."""
        synth, units = plan_synthesis(ctx.store, self)
        llm = ctx.llm.estimate(synth.requests(units, ctx.llm.config.model))
        return StageEstimate(stage=self.name, llm=llm, lines=sampled_lines(SynthesisSummary(
            kind=synth.kind, **unit_counts(synth.kind, units)), self.config))
