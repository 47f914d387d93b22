"""Filter stage: keep personas that are relevant, plausible, specific and readable.

Cheap checks run first and alone decide most rejections: length bounds, one description only,
repeated characters, accepted script (language), generic placeholder phrases, an implausible
child-in-charge pattern, and relevance as embedding cosine to the seed persona. `cheap_check` is a
pure function, so expansion can call it inline before writing a proposal. What passes goes to an LLM
judge (`prompts/filter/judge.*.md`, one rubric file per criterion) that returns a 1-5 score and a
one-line reason per criterion. Verdicts are written on the node (`status` accepted / rejected,
`score_<criterion>`, `reason_<criterion>`, `filter_failed`, `filter_stage`, `filtered_at`), so a
rerun skips what is decided; `purge_rejected` deletes the rejected, `filter_report` counts them.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

import prompts
from graph.store import GraphStore
from pipeline.config import FilterConfig

CRITERIA = ("relevance", "plausibility", "specificity", "readability")
Criterion = Literal["relevance", "plausibility", "specificity", "readability"]

# Whole descriptions (after the article) that name nobody in particular.
_GENERIC = re.compile(
    r"^(?:an?|the|some|one)?\s*(?:person|people|individual|human(?: being)?|someone|somebody|anyone|user|"
    r"customer|customers|client|member of the public|man|woman|persona|character|guy|citizen|"
    r"(?:seed )?persona'?s? \w+)\s*[.!]?$",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\b(?:lorem ipsum|n/a|todo|tbd|placeholder|example persona|insert (?:name|persona))\b", re.I)
_META = re.compile(r"^\s*(?:here is|here's|sure[,!]|as an ai|persona\s*\d*\s*:)", re.IGNORECASE)
_LIST = re.compile(r"(?:^|\n)\s*(?:\d+[.)]|[-*•])\s+\S", re.MULTILINE)
# A young child described as holding an adult's position ("a 5-year-old CEO", "a toddler who runs a
# bank"); the role must follow within three words, so "a 7-year-old who wants to become a surgeon" passes.
_CHILD_IN_CHARGE = re.compile(
    r"\b(?:(?:[1-9]|1[0-2])[- ]year[- ]old|toddler|kindergartner|preschooler)(?:\W+\w+){0,3}?\W+"
    r"(?:ceo|chief executive|runs (?:a|an|the) (?:multinational|company|corporation|hospital|bank)|surgeon|"
    r"judge|senator|professor|airline pilot|owns (?:a|an) (?:company|factory|bank)|investment banker)\b",
    re.IGNORECASE,
)


class FilterVerdict(BaseModel):
    """Outcome of the cheap checks: ok, or the failed criteria each with a short reason."""

    ok: bool
    reasons: dict[str, str] = Field(default_factory=dict)
    relevance: float | None = Field(default=None, description="Cosine to the seed, when a seed was given")


class CriterionScore(BaseModel):
    """The judge's score for one criterion and why."""

    score: int = Field(ge=1, le=5)
    reason: str = Field(description="one line")


class JudgeScores(BaseModel):
    """The LLM judge's structured answer: a score and a reason per criterion."""

    relevance: CriterionScore
    plausibility: CriterionScore
    specificity: CriterionScore
    readability: CriterionScore


def _script_share(text: str) -> dict[str, float]:
    """Share of letters per script family: latin (en) and cjk (zh)."""
    counts: Counter[str] = Counter()
    for ch in text:
        if not ch.isalpha():
            continue
        if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf":
            counts["zh"] += 1
        elif ch.isascii() or "LATIN" in unicodedata.name(ch, ""):
            counts["en"] += 1
        else:
            counts["other"] += 1
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in counts.items()}


def _word_count(text: str) -> int:
    """Words, counting each CJK character as one (Chinese has no spaces)."""
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return len(re.findall(r"[^\W\u4e00-\u9fff]+", text)) + cjk


def _textual_checks(text: str, config: FilterConfig) -> dict[str, str]:
    """The checks that need only the text: criterion -> reason for each failure."""
    failed: dict[str, str] = {}
    stripped = text.strip()
    if len(stripped) < config.min_chars:
        failed["specificity"] = f"too short ({len(stripped)} < {config.min_chars} characters)"
    elif _word_count(stripped) < config.min_words:
        failed["specificity"] = f"too few words ({_word_count(stripped)} < {config.min_words})"
    if _GENERIC.match(stripped) or _PLACEHOLDER.search(stripped):
        failed["specificity"] = "a generic or placeholder description, not a particular person"
    if len(stripped) > config.max_chars:
        failed["readability"] = f"too long ({len(stripped)} > {config.max_chars} characters)"
    elif re.search(r"(.)\1{%d,}" % config.max_char_run, stripped):
        failed["readability"] = f"a character repeated more than {config.max_char_run} times"
    elif re.search(r"\b(\w+)(?:\s+\1\b){2,}", stripped, re.IGNORECASE):
        failed["readability"] = "a word repeated three times in a row"
    elif _META.search(stripped):
        failed["readability"] = "meta-commentary instead of a description"
    elif len(_LIST.findall(stripped)) >= 2:
        failed["readability"] = "a list of several personas, not one description"
    else:
        shares = _script_share(stripped)
        main = max(shares, key=shares.get) if shares else "other"
        if main not in config.languages:
            failed["readability"] = f"not in an accepted language ({', '.join(config.languages)})"
    if _CHILD_IN_CHARGE.search(stripped):
        failed["plausibility"] = "a young child in an adult's position of responsibility"
    return failed


def cheap_checks(
    descriptions: Sequence[str],
    seeds: Sequence[str | None] | None = None,
    config: FilterConfig | None = None,
    embed_fn: Callable[[Sequence[str]], Any] | None = None,
) -> list[FilterVerdict]:
    """Cheap verdicts for many descriptions; relevance to `seeds[i]` is one batched embedding pass."""
    config = config or FilterConfig()
    seeds = list(seeds) if seeds is not None else [None] * len(descriptions)
    verdicts = [FilterVerdict(ok=True, reasons=_textual_checks(d, config)) for d in descriptions]
    with_seed = [i for i, s in enumerate(seeds) if s]
    if with_seed:
        if embed_fn is None:
            from pipeline.dedup.embedding import embed as embed_fn
        vecs = embed_fn([descriptions[i] for i in with_seed] + [seeds[i] for i in with_seed])
        n = len(with_seed)
        for k, i in enumerate(with_seed):
            cos = float(vecs[k] @ vecs[n + k])
            verdicts[i].relevance = cos
            if cos < config.min_relevance:
                verdicts[i].reasons.setdefault(
                    "relevance", f"unrelated to the seed persona (cosine {cos:.2f} < {config.min_relevance})"
                )
    for v in verdicts:
        v.ok = not v.reasons
    return verdicts


def cheap_check(description: str, seed_description: str | None = None, config: FilterConfig | None = None) -> FilterVerdict:
    """Cheap verdict for one description (usable inline during expansion)."""
    return cheap_checks([description], [seed_description], config)[0]


def judge_messages(description: str, seed: str | None, relation: str | None, lang: str = "en") -> list[dict[str, str]]:
    """The judge prompt for one persona, with the four rubric files composed into it."""
    criteria = "\n\n".join(prompts.load(f"filter/{c}", lang).parts[0][1].strip() for c in CRITERIA)
    return prompts.load("filter/judge", lang).render(
        criteria=criteria, seed=seed or "(none: an imported persona)", relation=relation or "(none)",
        description=description,
    )


def judged_failures(scores: JudgeScores, config: FilterConfig) -> dict[str, str]:
    """Criteria whose judge score is below its threshold, each with the judge's reason."""
    out = {}
    for c in CRITERIA:
        s: CriterionScore = getattr(scores, c)
        if s.score < config.min_scores.get(c, 1):
            out[c] = s.reason
    return out


class FilterItem(BaseModel):
    """A persona waiting for a verdict, with the seed and relation it was proposed from (if any)."""

    id: str
    description: str
    seed: str | None = None
    relation: str | None = None


class FilterSummary(BaseModel):
    """What a filter run did."""

    examined: int = 0
    accepted: int = 0
    rejected: int = 0
    judge_failed: int = Field(default=0, description="Judge calls that failed; these stay undecided for a rerun")
    rejected_by: dict[str, int] = Field(default_factory=dict, description="Rejections per criterion")
    by_stage: dict[str, int] = Field(default_factory=dict, description="Rejections by the cheap checks vs the judge")


def pending_items(store: GraphStore) -> list[FilterItem]:
    """Live personas without a filter verdict, each with its nearest lower-hop neighbour as seed."""
    todo = [n for n in store.iter_personas() if n.get("filtered_at") is None]
    seeds: dict[str, dict[str, Any]] = {}
    ids = [n["id"] for n in todo if int(n.get("hop") or 0) > 0]
    for start in range(0, len(ids), store.options.batch_size):
        for rec in store.run_named("filter_seeds", {"ids": ids[start : start + store.options.batch_size]}).records():
            seeds[rec["id"]] = rec
    return [
        FilterItem(id=n["id"], description=n["description"], seed=seeds.get(n["id"], {}).get("seed"),
                   relation=seeds.get(n["id"], {}).get("relation"))
        for n in todo
    ]


def _row(item: FilterItem, failed: dict[str, str], stage: str, scores: JudgeScores | None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "status": "rejected" if failed else "accepted",
        "filter_failed": sorted(failed),
        "filter_stage": stage,
        "filtered_at": time.time(),
    }
    for c in CRITERIA:
        if scores is not None:
            props[f"score_{c}"] = getattr(scores, c).score
            props[f"reason_{c}"] = getattr(scores, c).reason
        elif c in failed:
            props[f"reason_{c}"] = failed[c]
    return {"id": item.id, "props": props}


def filter_personas(
    store: GraphStore,
    config: FilterConfig,
    client: Any | None = None,
    lang: str = "en",
    on_progress: Callable[[int], None] | None = None,
) -> FilterSummary:
    """Give every live persona without a verdict one: cheap checks, then the judge (if `client`).

    Without a client (or with `config.use_llm` off) the cheap checks decide alone. Verdicts are
    written in batches as they come, so an interrupted run keeps what it decided.
    """
    items = pending_items(store)
    summary = FilterSummary(examined=len(items))
    tick = on_progress or (lambda _n: None)
    verdicts = cheap_checks([i.description for i in items], [i.seed for i in items], config)
    rows: list[dict[str, Any]] = []
    to_judge: list[FilterItem] = []

    def record(item: FilterItem, failed: dict[str, str], stage: str, scores: JudgeScores | None = None) -> None:
        rows.append(_row(item, failed, stage, scores))
        if failed:
            summary.rejected += 1
            summary.by_stage[stage] = summary.by_stage.get(stage, 0) + 1
            for c in failed:
                summary.rejected_by[c] = summary.rejected_by.get(c, 0) + 1
        else:
            summary.accepted += 1
        if len(rows) >= store.options.batch_size:
            flush()
        tick(1)

    def flush() -> None:
        if rows:
            store.set_properties(rows)
            rows.clear()

    for item, verdict in zip(items, verdicts):
        if not verdict.ok or client is None or not config.use_llm:
            record(item, verdict.reasons, "cheap")
        else:
            to_judge.append(item)
    if to_judge:
        requests = (
            _judge_request(item, lang) for item in to_judge
        )

        async def judge() -> None:
            async for result in client.stream(requests):
                item: FilterItem = result.request.meta
                if result.ok:
                    scores: JudgeScores = result.value
                    record(item, judged_failures(scores, config), "llm", scores)
                else:
                    summary.judge_failed += 1
                    tick(1)

        try:
            asyncio.run(judge())
        finally:
            flush()  # the verdicts so far stay written when the judge's endpoint goes down
    flush()
    return summary


def _judge_request(item: FilterItem, lang: str) -> Any:
    from pipeline.llm import LLMRequest

    return LLMRequest(
        key=f"filter/{item.id}", messages=judge_messages(item.description, item.seed, item.relation, lang),
        schema=JudgeScores, params={"temperature": 0.0}, meta=item,
    )


class FilterReport(BaseModel):
    """Counts per status and per failed criterion, with a few examples of each rejection."""

    status: dict[str, int]
    rejected_by: dict[str, int]
    examples: dict[str, list[tuple[str, str]]] = Field(description="criterion -> (description, reason)")


def filter_report(store: GraphStore, examples: int = 3) -> FilterReport:
    """What the filter decided so far, read from the nodes."""
    status: Counter[str] = Counter()
    rejected_by: Counter[str] = Counter()
    shown: dict[str, list[tuple[str, str]]] = {}
    for node in store.iter_personas(statuses=None):
        status[node.get("status", "?") if node.get("filtered_at") is not None or node.get("status") == "merged"
               else "unfiltered"] += 1
        if node.get("status") != "rejected":
            continue
        for c in node.get("filter_failed") or []:
            rejected_by[c] += 1
            if len(shown.setdefault(c, [])) < examples:
                shown[c].append((node["description"], node.get(f"reason_{c}", "")))
    return FilterReport(status=dict(status), rejected_by=dict(rejected_by), examples=shown)


def purge_rejected(store: GraphStore) -> int:
    """Delete rejected personas and their edges; returns how many were deleted."""
    deleted = 0
    while True:
        n = int(store.run_named("filter_purge_rejected", {"limit": store.options.batch_size}, write=True).value(0) or 0)
        deleted += n
        if n == 0:
            return deleted
