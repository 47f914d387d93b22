"""Filter: the cheap checks on real and weak-model personas, attributes held to the region vocabulary,
both through extract and expand on the project's fake endpoint, the LLM judge, verdicts on a real graph."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from pydantic import ValidationError

from bench.bench_filter import (
    accepted_non_personas,
    same_as_seed,
    stage_checks,
    weak_outputs,
)
from personagraph.graph.model import (
    Edge,
    Persona,
    PersonaStatus,
    canonical_attributes,
    canonical_region_value,
    persona_id,
)
from personagraph.graph.store import GraphStore, StoreConfig
from personagraph.config import FilterConfig
from personagraph.filter import (
    CriterionScore,
    JudgeScores,
    cheap_check,
    cheap_checks,
    FilterSummary,
    filter_report,
    judge_messages,
    judged_failures,
    purge_rejected,
    restates_seed,
    source_overlap,
    verdict_reasons,
    word_count,
)
from personagraph.api import Graph
from personagraph.probe import balanced_weights, fit_logistic
from tests.conftest import graph_on
from tests.expand_fake import expand_fake_server
from tests.fake_llm_server import FakeLLM

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "filter"


def api(store: GraphStore, base_url: str | None = None, **sections: object) -> Graph:
    """The Python API on the test's graph; an endpoint (without a response cache) when one is given."""
    return graph_on(store, Path("/nonexistent"), llm={"base_url": base_url, "model": "fake-model", "cache": False}, **sections)


def decide(store: GraphStore, **config: object) -> FilterSummary:
    """The filter stage through the API with the cheap checks alone (no judge)."""
    return api(store).filter(judge=False, **config)

GOOD = "A night-shift nurse in a Lyon children's hospital who calms anxious parents and studies for a midwifery degree."
SEED = "A pediatric nurse in Lyon who trains for marathons and reads crime novels."


@pytest.mark.parametrize(
    ("text", "criterion"),
    [
        ("A person.", "specificity"),
        ("someone", "specificity"),
        ("Customers", "specificity"),
        ("A nurse.", "specificity"),
        ("A baker in Lyon who loooooooves bread and wakes at four every day.", "readability"),
        ("A baker baker baker in Lyon who wakes at four every day to bake.", "readability"),
        ("Here is a persona: a baker in Lyon who wakes at four every day.", "readability"),
        ("1. A baker in Lyon who wakes early.\n2. A fisherman in Brest who mends nets.", "readability"),
        ("A 5-year-old CEO who runs a multinational company from her bedroom in Paris.", "plausibility"),
        ("x" * 700, "readability"),
    ],
)
def test_cheap_checks_reject_with_the_criterion_that_failed(text: str, criterion: str) -> None:
    verdict = cheap_check(text)
    assert not verdict.ok
    assert criterion in verdict.reasons, verdict.reasons


def test_cheap_checks_accept_specific_readable_personas_in_english_and_chinese() -> None:
    assert cheap_check(GOOD).ok
    assert cheap_check("一位在成都开小面馆的退休厨师，每天清晨给附近的学生做早餐。").ok
    assert cheap_check("A 7-year-old girl in Nairobi who wants to become a surgeon like her aunt.").ok


def test_relevance_is_embedding_similarity_to_the_seed() -> None:
    related, unrelated = cheap_checks(
        [GOOD, "A medieval historian in Krakow who restores illuminated manuscripts for a museum."],
        [SEED, SEED],
        FilterConfig(min_relevance=0.3),
    )
    assert related.ok and related.relevance is not None and related.relevance > 0.3
    assert not unrelated.ok and "relevance" in unrelated.reasons
    assert unrelated.relevance < related.relevance


def test_thresholds_come_from_config() -> None:
    short = "A baker in Lyon who bakes."
    assert cheap_check(short, config=FilterConfig(min_words=5)).ok  # baker, in, Lyon, who, bakes
    assert not cheap_check(short, config=FilterConfig(min_words=6)).ok
    assert not cheap_check("一位在成都开小面馆的退休厨师，每天清晨给附近的学生做早餐。", config=FilterConfig(languages=["en"])).ok


def test_judge_prompt_carries_every_rubric_and_the_seed() -> None:
    messages = judge_messages(GOOD, SEED, "colleague")
    text = "\n".join(m["content"] for m in messages)
    for criterion in ("relevance", "plausibility", "specificity", "readability"):
        assert f"**{criterion}**" in text
    assert SEED in text and "colleague" in text and GOOD in text
    assert "种子画像" in "\n".join(m["content"] for m in judge_messages(GOOD, SEED, "colleague", "zh"))


def test_judged_failures_use_per_criterion_thresholds() -> None:
    s = JudgeScores(
        relevance=CriterionScore(score=5, reason="fits"), plausibility=CriterionScore(score=2, reason="odd"),
        specificity=CriterionScore(score=3, reason="ok"), readability=CriterionScore(score=4, reason="clear"),
    )
    assert judged_failures(s, FilterConfig()) == {"plausibility": "odd"}
    strict = FilterConfig(min_scores={"relevance": 3, "plausibility": 1, "specificity": 4, "readability": 3})
    assert judged_failures(s, strict) == {"specificity": "ok"}


def _graph(store: GraphStore) -> dict[str, str]:
    seed = Persona(description=SEED, hop=0)
    good = Persona(description=GOOD, hop=1, status=PersonaStatus.candidate)
    vague = Persona(description="A person.", hop=1, status=PersonaStatus.candidate)
    off = Persona(description="A medieval historian in Krakow who restores illuminated manuscripts.", hop=1,
                  status=PersonaStatus.candidate)
    store.upsert_personas([seed, good, vague, off])
    store.add_edges([Edge(source=seed.id, target=p.id, type="COLLEAGUE_OF", props={"relation": "colleague"})
                     for p in (good, vague, off)])
    return {"seed": seed.id, "good": good.id, "vague": vague.id, "off": off.id}


def test_cheap_filter_run_writes_verdicts_reports_and_purges(store: GraphStore) -> None:
    ids = _graph(store)
    summary = decide(store, min_relevance=0.3)
    assert (summary.examined, summary.accepted, summary.rejected) == (4, 2, 2)
    assert summary.rejected_by["specificity"] == 1 and summary.rejected_by["relevance"] >= 1
    nodes = store.get_personas(list(ids.values()))
    assert nodes[ids["vague"]]["status"] == "rejected"
    assert "specificity" in nodes[ids["vague"]]["filter_failed"]
    assert nodes[ids["off"]]["filter_failed"] == ["relevance"]
    assert "generic" in nodes[ids["vague"]]["reason_specificity"]
    assert nodes[ids["good"]]["status"] == "accepted" and nodes[ids["good"]]["filter_stage"] == "cheap"
    # A rerun has nothing left to decide.
    assert decide(store, min_relevance=0.3).examined == 0
    report = filter_report(store)
    assert report.status == {"accepted": 2, "rejected": 2}
    assert sorted(d for d, _ in report.examples["relevance"]) == ["A medieval historian in Krakow who restores illuminated manuscripts.", "A person."]
    # Rejected personas stay queryable until purged; purge removes them and their edges.
    assert purge_rejected(store) == 2
    assert set(store.get_personas(list(ids.values()))) == {ids["seed"], ids["good"]}
    assert store.degrees([ids["seed"]])[ids["seed"]] == 1


def test_the_report_counts_personas_extract_or_expand_rejected_inline(store: GraphStore) -> None:
    copy = "Day 4 of my rye starter and it doubled! I keep it at 26 degrees and feed it twice a day."
    verdict = cheap_check(copy, source=copy)
    assert not verdict.ok
    store.upsert_personas([
        Persona(description=copy, status=PersonaStatus.rejected, attributes={"filter_reasons": verdict_reasons(verdict)}),
        Persona(description=GOOD, status=PersonaStatus.candidate),
    ])
    report = filter_report(store)
    assert report.status == {"rejected": 1, "unfiltered": 1}
    criterion = next(iter(verdict.reasons))
    assert report.rejected_by == {c: 1 for c in verdict.reasons}
    assert report.examples[criterion] == [(copy, verdict.reasons[criterion])]


def test_llm_judge_scores_what_the_cheap_checks_pass(store: GraphStore, fake_llm, tmp_path) -> None:
    ids = _graph(store)
    summary = api(store, fake_llm.base_url).filter(min_relevance=0.3)
    # Only the two personas the cheap checks passed reach the judge.
    assert fake_llm.stats.requests == 2
    assert summary.examined == 4 and summary.by_stage.get("cheap") == 2
    node = store.get_personas([ids["good"]])[ids["good"]]
    assert node["filter_stage"] == "llm"
    for criterion in ("relevance", "plausibility", "specificity", "readability"):
        assert 1 <= node[f"score_{criterion}"] <= 5 and node[f"reason_{criterion}"]
    expected = "rejected" if node["filter_failed"] else "accepted"
    assert node["status"] == expected


# -- real personas pass, whatever their script ------------------------------------------------------

REAL_SHORT = [  # released Persona Hub personas (tests/fixtures/filter/README.md) that the length rules once rejected
    "台灣環保人士", "香港电影忠实粉丝", "篮球评论员", "李文华（生态学家）",
    "A practicing Kabbalist.", "A loyal PlayStation fanboy", "PHP programmer", "Heather A. Cameron", "An NZR employee",
    "Айтишник с двадцатилетним опытом работы", "Российский айтишник, который заботится о безопасности серверов.",
    "นักพัฒนาซอฟต์แวร์ที่เชี่ยวชาญในงานการพัฒนาเว็บไซต์", "นักออกแบบภาษาไอคอนที่พัฒนากราฟิกและแสดงผลให้กับส่วนต่างๆของอินเทอร์เฟซ",
]


@pytest.mark.parametrize("text", REAL_SHORT)
def test_short_real_personas_in_chinese_english_russian_and_thai_pass(text: str) -> None:
    verdict = cheap_check(text)
    assert verdict.ok, verdict.reasons


@pytest.mark.parametrize("text", ["A nurse.", "一位护士", "我是老师", "Врач.", "ครู", "The reader."])
def test_one_word_is_too_short_in_every_script(text: str) -> None:
    assert "too_short" in cheap_check(text).checks


def test_words_are_counted_per_script() -> None:
    assert word_count("A loyal PlayStation fanboy") == 3  # the article does not count
    assert word_count("I am a bureaucratic satirist.") == 2
    assert word_count("一位护士") == pytest.approx(2 / 1.7)  # "一位" (a) does not count; ~1.7 characters a word
    assert word_count("香港电影忠实粉丝") == pytest.approx(8 / 1.7)
    assert 2 < word_count("นักพัฒนาซอฟต์แวร์") < 5


def test_any_language_is_kept_unless_the_config_restricts_it() -> None:
    russian, thai = REAL_SHORT[9], REAL_SHORT[11]
    assert cheap_check(russian).ok and cheap_check(thai).ok
    en_zh = FilterConfig(languages=["en", "zh"])
    assert not cheap_check(russian, config=en_zh).ok and "cyrillic" in cheap_check(russian, config=en_zh).reasons["readability"]
    assert not cheap_check(thai, config=en_zh).ok and cheap_check("香港电影忠实粉丝", config=en_zh).ok
    russian_only = FilterConfig(languages=["Russian"])  # a name is taken for its code
    assert russian_only.languages == ["ru"]
    assert cheap_check(russian, config=russian_only).ok and not cheap_check(GOOD, config=russian_only).ok
    assert not cheap_check("日本の小さな町でパン屋を営む女性", config=FilterConfig(languages=["zh"])).ok
    assert cheap_check("日本の小さな町でパン屋を営む女性", config=FilterConfig(languages=["ja"])).ok
    with pytest.raises(ValidationError, match="not a language"):
        FilterConfig(languages=["klingon"])


def _jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_at_most_half_a_percent_of_real_personas_is_rejected() -> None:
    real = [row["persona"] for row in _jsonl("real_personas.jsonl")]
    assert len(real) >= 3000
    rejected = [(p, v.checks) for p, v in zip(real, cheap_checks(real)) if not v.ok]
    assert len(rejected) <= 0.005 * len(real), rejected


# -- non-personas are stopped --------------------------------------------------------------------------

SOURDOUGH = ("Day 4 of my rye starter and it finally doubled! I keep it at 26°C on top of the fridge, feed 1:5:5 "
             "twice a day, and use a mix of whole rye and bread flour. Tomorrow I'll try a 70% hydration country "
             "loaf with a long cold retard. If your starter smells like nail polish remover, it's hungry — feed it "
             "more often.")


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("Day 4 of my rye starter and it finally doubled! I keep it at 26°C on top of the fridge ...", "source_copy"),
        (("Day 4 of my rye starter and it finally doubled, I keep it at 26°C on top of the fridge, feed 1:5:5 twice a "
          "day, use a mix of whole rye and bread flour, and tomorrow is hungry — feed it more often."), "source_copy"),
        (("I keep it at 26°C on top of the fridge, feed 1:5:5 twice a day, which is a traditional method used by home "
          "bakers all around the world to keep their starters alive through the winter."), "source_copy"),  # copied, a clause added
        ("{ Person} is likely to read this text.", "template"),
        ("They are a skilled employee who is passionate about [industry/field].", "template"),
        ("A <occupation> from <city> who enjoys <hobby>.", "template"),
        ("{ Person} is likely to read this text.", "statement"),
        ("This text describes a person who has just finished their rye starter and wants to share it.", "statement"),
        ("The persona description is a phrase \"I'm writing about,\" which was likely an early version of the text.", "statement"),
        ("A person who has written this text is likely to have been a travel writer.", "statement"),
        ("Here is a persona: a baker in Lyon who wakes at four every day.", "statement"),
        ("They are a skilled employee who is passionate about their work.", "generic"),
        ("A person who enjoys reading and learning new things.", "generic"),
        ("Someone who is interested in this topic.", "generic"),
    ],
)
def test_weak_model_non_personas_are_rejected_by_the_check_that_fits(text: str, check: str) -> None:
    verdict = cheap_check(text, source=SOURDOUGH)
    assert not verdict.ok and check in verdict.checks, verdict


def test_a_persona_that_names_details_of_its_text_is_no_copy() -> None:
    persona = "A home baker who keeps a rye starter on top of the fridge and plans a 70% hydration country loaf"
    assert source_overlap(persona, SOURDOUGH) < 0.5
    assert cheap_check(persona, source=SOURDOUGH).ok
    assert source_overlap(SOURDOUGH[:120], SOURDOUGH) == 1.0
    assert source_overlap("今天早高峰地铁十号线又延误了二十分钟", "今天早高峰地铁十号线又延误了二十分钟,车厢里挤得连手机都拿不出来。") == 1.0


# Answers of the third held-out set (tests/fixtures/filter/README.md) the probe was never trained on.
RETOLD = ["Mite drop of over 300 in the first week after an oxalic acid treatment in Devon.",
          "Wingspan with the Oceania expansion, where nectar tokens make games 20 minutes longer."]
HELD_OUT_PERSONAS = ["Broadband support agent", "A night-shift nurse whose video calls with her children keep freezing",
                     "A first-time marathoner.", "Board game café owner", "A depot manager who draws up the drivers' rotas"]


@pytest.mark.parametrize("text", RETOLD)
def test_the_person_probe_rejects_text_retold_as_a_persona_that_the_rules_let_through(text: str) -> None:
    verdict = cheap_check(text)
    assert verdict.checks == ["not_a_person"], verdict
    assert "not a person" in verdict.reasons["specificity"]
    assert cheap_check(text, config=FilterConfig(person_probe=False)).ok  # the rules alone keep it


def test_the_person_probe_keeps_held_out_personas_and_reads_only_latin_script() -> None:
    assert all(v.ok for v in cheap_checks(HELD_OUT_PERSONAS)), HELD_OUT_PERSONAS
    calls: list[list[str]] = []

    def embed_fn(texts: list[str]) -> Any:
        from personagraph.dedup.embedding import embed

        calls.append(list(texts))
        return embed(texts)

    chinese, retold = cheap_checks(["养猫的上班族，每天加班到九点", RETOLD[0]], embed_fn=embed_fn)
    assert chinese.ok and retold.checks == ["not_a_person"]
    assert calls == [[RETOLD[0]]]  # the encoder reads English: a Chinese description is not scored


def test_fit_logistic_finds_the_direction_that_separates_two_classes() -> None:
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(16)
    direction /= np.linalg.norm(direction)
    x = rng.standard_normal((400, 16))
    y = (x @ direction > 0.3).astype(float)
    w, b = fit_logistic(x, y, balanced_weights(y), ridge=0.1)
    assert ((x @ w + b > 0) == (y == 1)).mean() > 0.97
    assert w @ direction / np.linalg.norm(w) > 0.9  # the learned weights point along the true direction


@pytest.mark.parametrize(
    ("rejected", "near_miss", "check"),
    [
        # a sentence about a thing or an event; a persona's "The ..." is someone, or a relative clause follows
        ("The pod stays in CrashLoopBackOff and restarts every minute.", "The owner of a bakery who bakes at dawn",
         "statement"),
        ("The Mantis Lords skip finally clicked after 200 attempts.",
         "The novelist whose work serves as the source material for the film", "statement"),
        # a first-person account that never says who speaks
        ("Surgery, not a sport. I can bend to 110 degrees but stairs still hurt.",
         "A local resident in Tallaght who follows local news. I walk the hills every weekend.", "statement"),
        ("Six weeks in, I'm 34 and I still cannot run.", "I teach yoga in Bristol and I volunteer at a food bank.",
         "statement"),
        # someone only by a relation to the text or to a character of it
        ("A person related to the text.", "A proud parent of one of the students featured in the article", "statement"),
        ("A friend of the protagonist.", "An actor who played the protagonist of a long-running soap opera",
         "statement"),
        # a bare role whose every word is vague
        ("service worker", "PHP programmer", "generic"),
        ("A hard worker.", "An NZR employee", "generic"),
        # an act or a state instead of someone
        ("Demonstration of a CUDA_ERROR_ILLEGAL_ADDRESS on driver 555.", "An authority on medieval law", "generic"),
        ("Explanation of exit code 137 for a Kubernetes pod", "A retirement planning advisor for teachers", "generic"),
        # someone only by a relation to someone not described
        ("A friend of the technician.", "A friend of the family who runs a bakery in Leeds", "generic"),
        ("Patient of the surgeon", "A patient of a Toronto heart clinic recovering from bypass surgery", "generic"),
        # what is written or done, a span of time, a question, a category without an article
        ("Review of the Gaggia Classic Pro espresso machine.", "A review editor at a food magazine", "generic"),
        ("Troubleshooting a paper jam on an HP LaserJet.", "Aspiring Brazilian neuroscientist", "generic"),
        ("Six weeks after ACL surgery, can bend to 110 degrees.", "Twenty years a nurse, now a hospice volunteer",
         "statement"),
        ("How a pod ends up in CrashLoopBackOff.", "Howard Stern superfan", "statement"),
        ("Bird lovers.", "Die-hard Yankees fan", "generic"),
    ],
)
def test_a_description_that_names_no_one_is_rejected_and_its_near_miss_is_kept(rejected: str, near_miss: str,
                                                                             check: str) -> None:
    assert check in cheap_check(rejected).checks, cheap_check(rejected)
    assert cheap_check(near_miss).ok, cheap_check(near_miss).reasons


SURGEON = "A cardiac surgeon in Toronto who mentors residents on minimally invasive techniques"


@pytest.mark.parametrize(
    ("proposal", "restated"),
    [
        ("Kerbal Surgeon in Toronto", True),  # one word added, the rest cut
        ("A fellow cardiac surgeon in Toronto", True),
        ("A cardiac surgeon in Toronto who mentored residents on minimally-invasive techniques", True),
        ("A cardiac nurse in Toronto", False),  # a role of their own
        ("A surgical resident in Toronto mentored by a cardiac surgeon", False),
        ("A cardiac surgeon in Montreal who mentors residents on minimally invasive techniques", False),  # a detail changed
    ],
)
def test_a_proposal_that_restates_its_seed_is_a_copy(proposal: str, restated: bool) -> None:
    assert restates_seed(proposal, SURGEON) is restated
    verdict = cheap_check(proposal, SURGEON, relevance=False)
    assert ("source_copy" in verdict.checks) is restated, verdict.reasons


def test_at_most_five_percent_of_weak_model_non_personas_get_into_the_graph() -> None:
    rows, sources = weak_outputs()
    verdicts = stage_checks(rows, sources, FilterConfig())
    # As the stages run: the cheap checks, and in expansion the dedup index matching a proposal to its seed.
    rejected = [not v.ok or same for v, same in zip(verdicts, same_as_seed(rows))]
    accepted, non_personas = accepted_non_personas(rows, rejected)
    assert non_personas >= 150
    assert len(accepted) <= 0.05 * non_personas, [(r["label"], r["description"][:80]) for r in accepted]
    # ... while what the weak model got right is kept by the checks
    assert all(v.ok for r, v in zip(rows, verdicts) if r["label"] == "person")


# -- attributes are held to the region vocabulary ---------------------------------------------------

@pytest.mark.parametrize(
    ("key", "given", "stored"),
    [
        ("language", "English", "en"), ("language", "en-US", "en"), ("language", "ZH", "zh"), ("language", "中文", "zh"),
        ("language", "Русский", "ru"), ("language", "Thai", "th"), ("language", "English, French", "en"),
        ("language", "iso 3489", None), ("language", "business; bakers; baking", None), ("language", "iso code", None),
        ("age_group", "Young Adult", "young_adult"), ("age_group", "34", "adult"), ("age_group", "70s", "older_adult"),
        ("age_group", "younger adults", None), ("age_group", "Millbrook children,", None),
        ("visibility", "Behind the scenes", "behind-the-scenes"), ("visibility", "public-facing or behind-the-scenes", None),
        ("occupation", " Night Cleaner ", "night cleaner"), ("domain", "Health care.", "health care"),
        ("domain", "the field of life or work job name", None), ("domain", "[industry/field]", None),
        ("occupation", "founder of the world's largest commercial yeast-based bread company,", None),
        ("occupation", "An age_group", None), ("domain", "Environmental Protection,", None),
    ],
)
def test_attribute_values_fit_the_vocabulary_or_are_dropped(key: str, given: str, stored: str | None) -> None:
    assert canonical_region_value(key, given) == stored


def test_dropped_attributes_are_reported_and_unknown_is_no_value() -> None:
    kept, dropped = canonical_attributes({"age_group": "unknown", "language": "iso 3489", "occupation": "baker",
                                          "visibility": "", "domain": "N/A"})
    assert kept == {"occupation": "baker"} and dropped == {"language": "iso 3489"}


# -- through extract and expand on the test endpoint ---------------------------------------------------

BAKER = "A home baker in Leeds who keeps a rye starter on top of her fridge and bakes country loaves at weekends"


class ScriptedExtractFake(FakeLLM):
    """The fake endpoint answering each extract prompt with the persona `answer(text)` gives for its text."""

    def __init__(self, answer: Callable[[str], dict[str, Any]]) -> None:
        super().__init__()
        self.answer = answer

    async def _chat(self, request: web.Request) -> web.Response:
        user = str((await request.json())["messages"][-1]["content"])
        completion = json.loads((await super()._chat(request)).body)  # type: ignore[arg-type]
        text = user.split("Text:\n", 1)[1].rsplit("\n\n", 1)[0]
        completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = json.dumps(self.answer(text))
        return web.json_response(completion)


def test_extract_rejects_a_copy_and_a_template_and_drops_attributes_outside_the_vocabulary(
    store: GraphStore, store_options: StoreConfig, tmp_path: Path
) -> None:
    texts = [SOURDOUGH, "Flour shortage at the Leeds market again: three stalls had no strong bread flour by nine.",
             "Our school bake sale raised 412 pounds for the library; thanks to every parent who baked."]
    answers = {
        texts[0]: {"description": SOURDOUGH[:150], "age_group": "adult", "occupation": "baker", "domain": "baking",
                   "visibility": "public-facing", "language": "en"},
        texts[1]: {"description": "{ Person} is likely to read this text.", "age_group": "adult", "occupation": "trader",
                   "domain": "retail", "visibility": "public-facing", "language": "en"},
        texts[2]: {"description": BAKER, "age_group": "younger adults", "occupation": "home baker,",
                   "domain": "the field of life or work job name", "visibility": "Behind the scenes", "language": "iso 3489"},
    }
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"uri": f"t/{i}", "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    fake = ScriptedExtractFake(lambda text: answers[text]).start()
    try:
        summary = api(store, fake.base_url).extract(path)
    finally:
        fake.stop()
    assert summary.texts_extracted == 3 and summary.personas_created == 3 and summary.personas_rejected == 2
    assert summary.rejected["source_copy"] == 1 and summary.rejected["template"] == 1
    assert summary.attributes_dropped == {"age_group": 1, "occupation": 1, "domain": 1, "language": 1}
    nodes = store.get_personas([persona_id(a["description"]) for a in answers.values()])
    copy, template, baker = (nodes[persona_id(a["description"])] for a in answers.values())
    assert copy["status"] == template["status"] == "rejected"
    assert any("copy of the text" in r for r in copy["filter_reasons"])
    assert any("template" in r for r in template["filter_reasons"])
    assert baker["status"] == "candidate" and baker["visibility"] == "behind-the-scenes"
    assert not {"age_group", "occupation", "domain", "language"} & set(baker)
    run = store.run("MATCH (r:Run {id: $id}) RETURN r", {"id": summary.run_id}, write=False).value()
    assert run["personas_rejected"] == 2 and run["dropped_language"] == 1
    # The filter stage has only the candidate left to decide.
    assert decide(store).examined == 1


def test_expand_rejects_a_copy_of_its_seed_and_a_template_and_drops_attributes_outside_the_vocabulary(
    store: GraphStore, tmp_path: Path
) -> None:
    seed = "A pediatric nurse in a busy Lyon hospital who calms anxious parents during night shifts"
    store.upsert_personas([Persona(description=seed)])
    pharmacist = "A hospital pharmacist in Lyon who prepares the night's medication trays for the children's ward"
    with expand_fake_server() as fake:
        fake.propose = lambda ask: [
            # what SmolLM2 proposes as the nurse's patient: the nurse again, two words dropped
            {"description": "A pediatric nurse in Lyon hospital who calms anxious parents during night shifts."},
            {"description": "They are a skilled employee who is passionate about [industry/field]", "age_group": "adult"},
            {"description": pharmacist, "age_group": "younger adults", "visibility": "sometimes", "language": "iso 3489",
             "occupation": "hospital pharmacist", "domain": "the field of life or work job name"},
        ]
        summary = api(store, fake.base_url).expand(hops=1, fanout=3, relations=["colleague"], relations_per_seed=1,
                                                    dedup="exact", relevance_check=False)
    assert summary.created == 1 and summary.rejected["specificity"] == 2
    assert summary.attributes_dropped == {"age_group": 1, "visibility": 1, "language": 1, "domain": 1}
    nodes = {n["description"]: n for n in store.iter_personas(statuses=None)}
    assert nodes[pharmacist]["status"] == "accepted" and nodes[pharmacist]["occupation"] == "hospital pharmacist"
    assert not {"age_group", "visibility", "language", "domain"} & set(nodes[pharmacist])
    rejected = [n for n in nodes.values() if n["status"] == "rejected"]
    assert len(rejected) == 2
    assert any("copy of the text" in r for n in rejected for r in n["filter_reasons"])
    assert any("template" in r for n in rejected for r in n["filter_reasons"])
