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

`write_clusters` writes each cluster as our JSON or as the files a simulator loads (`format`):

- `oasis` (camel-ai/oasis): `<cluster_id>/twitter_profiles.csv`, the agent profile CSV its Twitter
  loaders (`generate_twitter_agent_graph`, `generate_agents`) read: `user_id`, `name`, `username`,
  `description`, `user_char` (the persona), `following_agentid_list` (row numbers, a Python list
  literal) and `previous_tweets` (a list literal: the agent's transcript lines); every relationship
  is a follow both ways. And `<cluster_id>/reddit_profiles.json`, the list its Reddit loader
  (`generate_reddit_agent_graph`) reads: `realname`, `username`, `bio`, `persona`, `age`, `gender`,
  `mbti`, `country` (attributes we do not have are "").
- `tinytroupe` (microsoft/TinyTroupe): `<cluster_id>/<name>.agent.json` per agent, the specification
  `TinyPerson.load_specification` reads (`{"type": "TinyPerson", "persona": {"name", ...}}`, the
  relationships in the persona's documented `relationships` list), and
  `<cluster_id>/social_network.json`: the agents' files and `relations` in the shape of
  `TinySocialNetwork.relations` (relation name -> pairs of agent names), for `add_relation`.

    >>> g = personagraph.open(".personagraph")
    >>> summary = g.simulate("clusters/", count=10, size=8, rounds=2)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from personagraph import prompts
from personagraph.config import Lang, SampleConfig, SimulationFormat, Strategy
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


def write_clusters(clusters: Sequence[Cluster], folder: Path, format: SimulationFormat = SimulationFormat.json) -> list[Path]:  # noqa: A002
    """Each cluster into `folder`: `<cluster_id>.json`, or the OASIS / TinyTroupe files in `<cluster_id>/`; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = {SimulationFormat.json: write_json, SimulationFormat.oasis: write_oasis,
              SimulationFormat.tinytroupe: write_tinytroupe}[SimulationFormat(format)]
    return [path for cluster in clusters for path in writer(cluster, folder)]


def write_json(cluster: Cluster, folder: Path) -> list[Path]:
    """`<cluster_id>.json`: the cluster as `Cluster` dumps it."""
    path = folder / f"{cluster.cluster_id}.json"
    path.write_text(cluster.model_dump_json(indent=2), encoding="utf-8")
    return [path]


def agent_names(cluster: Cluster) -> dict[str, str]:
    """A short unique name per agent (simulators address agents by name): `P<n>_<id tail>`, the seed P1."""
    return {a.id: f"P{n}_{a.id.rsplit('_', 1)[-1][:6]}" for n, a in enumerate(cluster.agents, start=1)}


def said_by(cluster: Cluster) -> dict[str, list[str]]:
    """Each agent's lines in the transcript, in order."""
    lines: dict[str, list[str]] = {a.id: [] for a in cluster.agents}
    for m in cluster.transcript:
        lines[m.speaker].append(m.text)
    return lines


def write_oasis(cluster: Cluster, folder: Path) -> list[Path]:
    """OASIS's Twitter profile CSV (with the follow graph) and Reddit profile JSON, in `<cluster_id>/`."""
    import csv

    out = folder / cluster.cluster_id
    out.mkdir(parents=True, exist_ok=True)
    row_of = {a.id: n for n, a in enumerate(cluster.agents)}  # OASIS agent ids are row numbers
    follows: dict[str, set[int]] = {a.id: set() for a in cluster.agents}
    for r in cluster.relationships:  # a relationship is a tie both ways: each follows the other
        if r.source != r.target:
            follows[r.source].add(row_of[r.target])
            follows[r.target].add(row_of[r.source])
    names, lines = agent_names(cluster), said_by(cluster)
    csv_path = out / "twitter_profiles.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user_id", "name", "username", "description", "user_char", "following_agentid_list",
                         "previous_tweets"])
        for a in cluster.agents:
            # The list columns are Python literals: OASIS reads them with ast.literal_eval.
            writer.writerow([row_of[a.id], names[a.id], names[a.id].lower(), a.persona, a.persona,
                             repr(sorted(follows[a.id])), repr(lines[a.id])])
    reddit = [{"realname": names[a.id], "username": names[a.id].lower(), "bio": a.persona, "persona": a.persona,
               "age": str(a.attributes.get("age") or a.attributes.get("age_group") or ""),
               "gender": str(a.attributes.get("gender") or ""), "mbti": str(a.attributes.get("mbti") or ""),
               "country": str(a.attributes.get("country") or a.attributes.get("location") or "")}
              for a in cluster.agents]
    json_path = out / "reddit_profiles.json"
    json_path.write_text(json.dumps(reddit, ensure_ascii=False, indent=2), encoding="utf-8")
    return [csv_path, json_path]


def write_tinytroupe(cluster: Cluster, folder: Path) -> list[Path]:
    """TinyTroupe agent specifications (`<name>.agent.json`) and the social network's relations, in `<cluster_id>/`."""
    out = folder / cluster.cluster_id
    out.mkdir(parents=True, exist_ok=True)
    names = agent_names(cluster)
    ties: dict[str, list[dict[str, str]]] = {a.id: [] for a in cluster.agents}
    relations: dict[str, list[list[str]]] = {}
    for r in cluster.relationships:
        if r.source == r.target:
            continue
        words = relation_words(r.type)
        # The edge's words read from source to target ('patient of'): say them that way round.
        ties[r.source].append({"name": names[r.target], "description": f"you are {words} {names[r.target]}"})
        ties[r.target].append({"name": names[r.source], "description": f"{names[r.source]} is {words} you"})
        relations.setdefault(words, []).append([names[r.source], names[r.target]])
    paths = []
    for a in cluster.agents:
        persona = {"name": names[a.id], **{k: v for k, v in a.attributes.items() if v not in (None, "")},
                   "description": a.persona, "relationships": ties[a.id]}
        path = out / f"{names[a.id]}.agent.json"
        path.write_text(json.dumps({"type": "TinyPerson", "persona": persona}, ensure_ascii=False, indent=2), encoding="utf-8")
        paths.append(path)
    network = {"type": "TinySocialNetwork", "name": cluster.cluster_id, "agents": [p.name for p in paths],
               "relations": relations, "transcript": [m.model_dump() for m in cluster.transcript]}
    net_path = out / "social_network.json"
    net_path.write_text(json.dumps(network, ensure_ascii=False, indent=2), encoding="utf-8")
    return [*paths, net_path]


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
    format: SimulationFormat = Field(default=SimulationFormat.json, description="Files to write: json, oasis or tinytroupe")

    def run_facts(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "seed": self.config.seed, "size": self.config.size, "format": self.format}

    async def run(self, ctx: StageContext, run_id: str) -> SimulationSummary:
        """Draw the clusters (all of them, or an error before any conversation is paid for), talk, write."""
        import asyncio

        spec = self.config.model_copy(update={"strategy": Strategy.cluster})
        ctx.progress(f"sampling {spec.count:,} connected clusters of {spec.size}", 0, None)
        draw = await asyncio.to_thread(draw_samples, ctx.store, spec)
        draw.check_complete()
        clusters = export_clusters(draw.samples)
        talk = await converse(ctx.llm, clusters, self.rounds, self.lang, self.scenario) if self.rounds > 0 else None
        paths = write_clusters(clusters, self.output, self.format)
        return SimulationSummary(output=str(self.output), clusters=len(clusters), agents=sum(len(c.agents) for c in clusters),
                                 seeds_skipped=draw.seeds_skipped, paths=[str(p) for p in paths], conversation=talk)
