"""Filter: the cheap checks, the LLM judge through the project's fake endpoint, verdicts on a real graph."""

from __future__ import annotations

import pytest

from graph.model import Edge, Persona, PersonaStatus
from graph.store import GraphStore
from pipeline.config import FilterConfig, Settings
from pipeline.filter import (
    CriterionScore,
    JudgeScores,
    cheap_check,
    cheap_checks,
    filter_personas,
    filter_report,
    judge_messages,
    judged_failures,
    purge_rejected,
)

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
        ("Пекарь из Лиона, который просыпается в четыре утра каждый день.", "readability"),
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
    assert cheap_check(short, config=FilterConfig(min_chars=10)).ok
    assert not cheap_check(short, config=FilterConfig(min_chars=40)).ok
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
    summary = filter_personas(store, FilterConfig(min_relevance=0.3))
    assert (summary.examined, summary.accepted, summary.rejected) == (4, 2, 2)
    assert summary.rejected_by["specificity"] == 1 and summary.rejected_by["relevance"] >= 1
    nodes = store.get_personas(list(ids.values()))
    assert nodes[ids["vague"]]["status"] == "rejected"
    assert "specificity" in nodes[ids["vague"]]["filter_failed"]
    assert nodes[ids["off"]]["filter_failed"] == ["relevance"]
    assert "generic" in nodes[ids["vague"]]["reason_specificity"]
    assert nodes[ids["good"]]["status"] == "accepted" and nodes[ids["good"]]["filter_stage"] == "cheap"
    # A rerun has nothing left to decide.
    assert filter_personas(store, FilterConfig(min_relevance=0.3)).examined == 0
    report = filter_report(store)
    assert report.status == {"accepted": 2, "rejected": 2}
    assert sorted(d for d, _ in report.examples["relevance"]) == ["A medieval historian in Krakow who restores illuminated manuscripts.", "A person."]
    # Rejected personas stay queryable until purged; purge removes them and their edges.
    assert purge_rejected(store) == 2
    assert set(store.get_personas(list(ids.values()))) == {ids["seed"], ids["good"]}
    assert store.degrees([ids["seed"]])[ids["seed"]] == 1


def test_llm_judge_scores_what_the_cheap_checks_pass(store: GraphStore, fake_llm, tmp_path) -> None:
    from pipeline.llm import LLMClient

    ids = _graph(store)
    settings = Settings(llm={"base_url": fake_llm.base_url, "model": "fake-model", "cache": False},
                        store={"data_dir": tmp_path})
    with LLMClient.from_settings(settings) as client:
        summary = filter_personas(store, FilterConfig(min_relevance=0.3), client)
    # Only the two personas the cheap checks passed reach the judge.
    assert fake_llm.stats.requests == 2
    assert summary.examined == 4 and summary.by_stage.get("cheap") == 2
    node = store.get_personas([ids["good"]])[ids["good"]]
    assert node["filter_stage"] == "llm"
    for criterion in ("relevance", "plausibility", "specificity", "readability"):
        assert 1 <= node[f"score_{criterion}"] <= 5 and node[f"reason_{criterion}"]
    expected = "rejected" if node["filter_failed"] else "accepted"
    assert node["status"] == expected
