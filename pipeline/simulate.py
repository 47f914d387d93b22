"""Persona clusters for social simulation: export connected clusters, optionally let their members talk.

A cluster is a `cluster` sample (pipeline.sample): personas grown from a seed through relationship
edges, so every member reaches every other, with exactly the size asked unless `min_size` allows
fewer (a draw that cannot supply them says so: `SampleDraw.shortfall`). `export_clusters` turns each
into one JSON document of agents (id, persona, attributes) and the relationships among them, ready
for a multi-agent framework.

`converse` runs a short round-based conversation along the edges: in round r every relationship
(a)-[TYPE]->(b) carries one message, from a to b in even rounds and from b to a in odd ones, each
prompted (`prompts/simulate/turn`) with the speaker's persona, the listener's, their relationship and
what the two said before. All messages of a round, across all clusters, go to the LLM layer at once;
rounds follow each other. The transcript says who spoke to whom.

    >>> g = personagraph.open(".personagraph")
    >>> summary = g.simulate("clusters/", count=10, size=8, rounds=2)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from personagraph import prompts
from personagraph.config import Lang, SampleConfig, Strategy
from personagraph.llm import LLMClient, LLMRequest
from personagraph.relations import relation_words
from personagraph.sample import GraphSample, draw_samples
from personagraph.stage import Stage, StageContext, StageSummary

SIMULATE_DIR = prompts.PROMPTS_DIR / "simulate"


class Agent(BaseModel):
    """One member of a cluster: who they are."""

    id: str
    persona: str
    attributes: dict[str, Any] = Field(default_factory=dict)


class Relationship(BaseModel):
    """A typed relationship between two agents, as in the graph: `source` -[type]-> `target`."""

    source: str
    target: str
    type: str


class Message(BaseModel):
    """One line of the conversation: `speaker` said `text` to `listener` along `relation` in `round`."""

    round: int
    speaker: str
    listener: str
    relation: str
    text: str


class Cluster(BaseModel):
    """One cluster as exported: agents, the relationships among them, and the transcript (if run)."""

    cluster_id: str
    seed_persona: str | None
    agents: list[Agent]
    relationships: list[Relationship]
    transcript: list[Message] = Field(default_factory=list)


class ConversationSummary(BaseModel):
    """What `converse` did."""

    rounds: int = 0
    messages: int = 0
    failed: int = 0
    cached: int = 0


def export_clusters(samples: Sequence[GraphSample]) -> list[Cluster]:
    """Clusters from cluster samples: members become agents, edges become relationships (sorted, for stable files)."""
    clusters = []
    for s in samples:
        agents = [Agent(id=m["id"], persona=m["description"],
                        attributes={k: v for k, v in m.items() if k not in ("id", "description")}) for m in s.members]
        relationships = sorted(
            (Relationship(source=e["source"], target=e["target"], type=e["type"]) for e in s.edges),
            key=lambda r: (r.source, r.target, r.type),
        )
        clusters.append(Cluster(cluster_id=s.sample_id, seed_persona=s.seed_persona, agents=agents, relationships=relationships))
    return clusters


def turn_messages(cluster: Cluster, rel: Relationship, round_no: int, lang: str, scenario: str) -> tuple[str, str, list[dict[str, str]]]:
    """(speaker id, listener id, chat messages) for the message `rel` carries in round `round_no`."""
    speaker, listener = (rel.source, rel.target) if round_no % 2 == 0 else (rel.target, rel.source)
    persona = {a.id: a.persona for a in cluster.agents}
    lines = []
    for m in cluster.transcript:
        if {m.speaker, m.listener} == {speaker, listener}:
            who = "said_by_you" if m.speaker == speaker else "said_by_them"
            lines.append(prompts.load(who, lang, [SIMULATE_DIR]).render(text=m.text)[0]["content"])
    history = "\n".join(lines) or prompts.load("no_history", lang, [SIMULATE_DIR]).render()[0]["content"]
    situation = scenario.strip() or prompts.load("default_scenario", lang, [SIMULATE_DIR]).render()[0]["content"]
    messages = prompts.load("turn", lang, [SIMULATE_DIR]).render(
        speaker=persona[speaker], listener=persona[listener], source=persona[rel.source],
        relation=relation_words(rel.type), target=persona[rel.target], scenario=situation, history=history,
    )
    return speaker, listener, messages


async def converse(
    client: LLMClient, clusters: Sequence[Cluster], rounds: int, lang: str = "en", scenario: str = ""
) -> ConversationSummary:
    """Run `rounds` rounds of conversation in every cluster, appending to each cluster's transcript."""
    languages = sorted(f.name.split(".")[1] for f in SIMULATE_DIR.glob("turn.*.md"))
    if lang not in languages:
        raise ValueError(f"no conversation prompts in language {lang!r} (there are: {', '.join(languages)}); "
                         f"add {SIMULATE_DIR}/turn.{lang}.md and its companions to have one")
    summary = ConversationSummary(rounds=rounds)
    for round_no in range(rounds):
        requests = []
        for c_index, cluster in enumerate(clusters):
            for r_index, rel in enumerate(cluster.relationships):
                speaker, listener, messages = turn_messages(cluster, rel, round_no, lang, scenario)
                requests.append(LLMRequest(key=f"{cluster.cluster_id}/{round_no}/{r_index}", messages=messages,
                                           meta=(c_index, r_index, speaker, listener)))
        said: dict[tuple[int, int], Message] = {}
        async for result in client.stream(requests):
            summary.cached += result.cached
            if not result.ok:
                summary.failed += 1
                continue
            c_index, r_index, speaker, listener = result.request.meta
            rel = clusters[c_index].relationships[r_index]
            said[(c_index, r_index)] = Message(round=round_no, speaker=speaker, listener=listener, relation=rel.type,
                                               text=str(result.value).strip())
        # Appended in edge order, not completion order, so transcripts are the same on every run.
        for (c_index, _), message in sorted(said.items()):
            clusters[c_index].transcript.append(message)
        summary.messages += len(said)
    return summary


def write_clusters(clusters: Sequence[Cluster], folder: Path) -> list[Path]:
    """One `<cluster_id>.json` per cluster in `folder`; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for cluster in clusters:
        path = folder / f"{cluster.cluster_id}.json"
        path.write_text(cluster.model_dump_json(indent=2), encoding="utf-8")
        paths.append(path)
    return paths


class SimulationSummary(StageSummary):
    """What `simulate` wrote: clusters and agents, the files, and the conversation (when rounds were run)."""

    headline: ClassVar[tuple[str, ...]] = ("clusters", "agents")

    not_recorded: ClassVar[frozenset[str]] = frozenset({"paths"})

    output: str = ""
    clusters: int = 0
    agents: int = 0
    seeds_skipped: int = Field(default=0, description="Cluster seeds whose component was smaller than the smallest cluster")
    paths: list[str] = Field(default_factory=list)
    conversation: ConversationSummary | None = None


class Simulate(Stage[SimulationSummary]):
    """Connected persona clusters for multi-agent simulation, written as JSON, optionally with a conversation."""

    name: ClassVar[str] = "simulate"
    config: SampleConfig = Field(default_factory=lambda: SampleConfig(strategy=Strategy.cluster, count=5))
    output: Path
    rounds: int = Field(default=0, ge=0, description="Conversation rounds along the edges (0 = export only)")
    lang: str = Field(default=Lang.en, description="Conversation language: en or zh")
    scenario: str = Field(default="", description="The situation the members meet in")

    def run_facts(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "seed": self.config.seed, "size": self.config.size}

    async def run(self, ctx: StageContext, run_id: str) -> SimulationSummary:
        """Draw the clusters (all of them, or an error before any conversation is paid for), talk, write."""
        import asyncio

        spec = self.config.model_copy(update={"strategy": Strategy.cluster})
        ctx.progress(f"sampling {spec.count:,} connected clusters of {spec.size}", 0, None)
        draw = await asyncio.to_thread(draw_samples, ctx.store, spec)
        draw.check_complete()
        clusters = export_clusters(draw.samples)
        talk = await converse(ctx.llm, clusters, self.rounds, self.lang, self.scenario) if self.rounds > 0 else None
        paths = write_clusters(clusters, self.output)
        return SimulationSummary(output=str(self.output), clusters=len(clusters), agents=sum(len(c.agents) for c in clusters),
                                 seeds_skipped=draw.seeds_skipped, paths=[str(p) for p in paths], conversation=talk)
