"""The test endpoint answering expansion prompts with plausible related personas (for tests and bench/).

`ExpandFakeLLM` is the project's fake OpenAI endpoint (`tests.fake_llm_server.FakeLLM`, same faults
and latency) whose answers to the `Proposals` schema are made from the prompt instead of random
strings: it reads the seed, the relation, the number asked for and the region line, and proposes
that many people, deterministically per prompt. Descriptions come from a finite pool, so different
seeds sometimes propose the same person (cross-links), and a description always carries the same
attributes. When the prompt names a region, the proposals are in it, as a cooperative model's would be.

A test can replace the proposer: `fake.propose = lambda ask: [{"description": ..., ...}]`.

From a shell or bench/: `python -m tests.expand_fake --port 8766 --latency 0.2`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fake_llm_server import FakeLLM, Faults, command_line, fake_llm_subprocess, faults_from, serve_forever

SCHEMA_NAME = "Proposals"
AGES = ("child", "teenager", "young_adult", "adult", "older_adult")
AGE_WORDS = {"child": "eight-year-old", "teenager": "fifteen-year-old", "young_adult": "twenty-four-year-old",
             "adult": "forty-year-old", "older_adult": "seventy-five-year-old"}
JOBS = (("nurse", "health", "public-facing"), ("warehouse picker", "logistics", "behind-the-scenes"),
        ("teacher", "education", "public-facing"), ("night cleaner", "facilities", "behind-the-scenes"),
        ("shop owner", "retail", "public-facing"), ("line cook", "food service", "behind-the-scenes"),
        ("bus driver", "transport", "public-facing"), ("server technician", "it", "behind-the-scenes"),
        ("pharmacist", "health", "public-facing"), ("seamstress", "garment making", "behind-the-scenes"),
        ("farmer", "agriculture", "behind-the-scenes"), ("street musician", "arts", "public-facing"))
PLACES = ("Lyon", "Osaka", "Nairobi", "Lima", "Pune", "Leeds", "Izmir", "Quebec")
# Extra variety for runs that need thousands of distinct personas (bench/): `--traits N` uses N of them.
TRAITS = ("known in the neighbourhood for patience and routine", "who saves every spare coin for a trip home",
          "who sings in a small church choir", "who repairs old radios for neighbours", "who never misses a football match",
          "who keeps a vegetable plot behind the building", "who is learning English from podcasts",
          "who looks after a younger cousin after school", "who walks two hours to work and back",
          "who writes letters to a pen friend abroad", "who runs a small savings group", "who plays chess in the park",
          "who cooks for the whole family on Sundays", "who is saving up for a second-hand bicycle",
          "who volunteers at the local clinic", "who trains for a half marathon", "who feeds the stray cats at night",
          "who collects stamps from every country", "who teaches herself to code at night", "who fixes roofs after storms")
STUDENT_ROLE = {"child": ("pupil", "education"), "teenager": ("student", "education")}


@dataclass(frozen=True)
class ExpansionAsk:
    """What an expansion prompt asks for, read back from its text."""

    seed: str
    relation: str
    fanout: int
    region: dict[str, list[str]]
    key: str


def read_ask(messages: list[dict[str, Any]]) -> ExpansionAsk:
    """Parse the user message of `prompts/expand/propose.en.md`."""
    text = str(messages[-1].get("content") or "")
    seed = re.search(r"^Persona: (.*)$", text, re.M)
    relation = re.search(r"^Relation: (.*?) \(", text, re.M)
    fanout = re.search(r"^Propose (\d+) ", text, re.M)
    region_line = re.search(r"^Region[^:]*: (.*)$", text, re.M)
    region: dict[str, list[str]] = {}
    if region_line and region_line.group(1).strip() != "any":
        for part in region_line.group(1).split(";"):
            key, _, values = part.partition("=")
            region[key.strip()] = [v.strip() for v in values.split(" or ")]
    return ExpansionAsk(
        seed=seed.group(1) if seed else "", relation=relation.group(1) if relation else "",
        fanout=int(fanout.group(1)) if fanout else 2, region=region,
        key=hashlib.sha1(text.encode()).hexdigest(),
    )


def _pick(options: tuple[Any, ...] | list[Any], *parts: object) -> Any:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def persona_for(age: str, job: tuple[str, str, str], place: str, trait: str = TRAITS[0]) -> dict[str, Any]:
    """A pool persona: its description and the attributes that description implies."""
    if age in STUDENT_ROLE:
        (occupation, domain), visibility = STUDENT_ROLE[age], job[2]
        who = f"{occupation} whose parent works as a {job[0]}"
    else:
        occupation, domain, visibility = job
        who = occupation
    article = "An" if AGE_WORDS[age][0] in "aeiou" else "A"
    comma = "," if trait.startswith("known") else ""
    return {
        "description": f"{article} {AGE_WORDS[age]} {who} in {place}{comma} {trait}",
        "age_group": age, "occupation": occupation, "domain": domain, "visibility": visibility, "language": "en",
    }


def default_proposals(ask: ExpansionAsk, traits: int = 1) -> list[dict[str, Any]]:
    """`fanout` pool personas for the prompt, inside the region it names (if any); `traits` widens the pool."""
    ages = [a for a in AGES if a in ask.region.get("age_group", AGES)] or list(AGES)
    jobs = [j for j in JOBS if j[2] in ask.region.get("visibility", (j[2],))] or list(JOBS)
    out = []
    for i in range(ask.fanout):
        age = _pick(ages, ask.key, i, "age")
        out.append(persona_for(age, _pick(jobs, ask.key, i, "job"), _pick(PLACES, ask.key, i, "place"),
                               _pick(TRAITS[:traits], ask.key, i, "trait")))
    return out


class ExpandFakeLLM(FakeLLM):
    """The fake endpoint with expansion-aware answers for the `Proposals` schema; other calls as FakeLLM."""

    def __init__(self, faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0, traits: int = 1) -> None:
        super().__init__(faults, host, port)
        self.propose: Callable[[ExpansionAsk], list[dict[str, Any]]] = functools.partial(default_proposals, traits=traits)

    async def _chat(self, request: web.Request) -> web.Response:
        """FakeLLM's answer, with the `Proposals` of a successful expansion call made from the prompt."""
        response = await super()._chat(request)
        if response.status != 200 or not isinstance(response, web.Response) or response.body is None:
            return response
        completion = json.loads(response.body)  # type: ignore[arg-type]
        message = completion["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        if calls and calls[0]["function"]["name"] == SCHEMA_NAME:
            calls[0]["function"]["arguments"] = self._rewrite(calls[0]["function"]["arguments"], await request.json())
        elif message.get("content"):
            message["content"] = self._rewrite(message["content"], await request.json())
        return web.json_response(completion)

    def _rewrite(self, answer: str, body: dict[str, Any]) -> str:
        """Our proposals in place of a well-formed schema-made answer (faults such as cut-off JSON stay)."""
        try:
            value = json.loads(answer)
        except ValueError:
            return answer
        if not isinstance(value, dict) or not isinstance(value.get("personas"), list):
            return answer
        return json.dumps({"personas": self.propose(read_ask(body.get("messages", [])))})


@contextlib.contextmanager
def expand_fake_server(faults: Faults | None = None) -> Iterator[ExpandFakeLLM]:
    """A running expansion-aware test endpoint in a thread on a free loopback port."""
    server = ExpandFakeLLM(faults).start()
    try:
        yield server  # type: ignore[misc]
    finally:
        server.stop()


@contextlib.contextmanager
def expand_fake_subprocess(faults: Faults | None = None, traits: int = 1) -> Iterator[str]:
    """The expansion-aware endpoint in a child process (its own interpreter and core); yields its base_url."""
    with fake_llm_subprocess(faults, module="tests.expand_fake", extra=[f"--traits={traits}"]) as base_url:
        yield base_url


def main() -> None:
    """Serve in the foreground."""
    parser = command_line(__doc__.splitlines()[0], 8766)
    parser.add_argument("--traits", type=int, default=1, help=f"pool variety, 1-{len(TRAITS)}")
    args = parser.parse_args()
    serve_forever(ExpandFakeLLM(faults_from(args), args.host, args.port, args.traits))


if __name__ == "__main__":
    main()
