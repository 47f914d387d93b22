"""Dedup at the default settings: character shingles, Chinese, templated people, edited copies of real
personas (a small planted fixture from bench/planted_edits.py), and groups a rerun does not extend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.planted_duplicates import pair_scores
from personagraph.config import DedupConfig
from personagraph.dedup import duplicate_groups, find_duplicates
from personagraph.dedup.index import DedupIndex, open_index
from personagraph.dedup.minhash import MinHasher, tokens
from personagraph.dedup.pairs import minhasher
from personagraph.dedup.stage import merge_duplicates
from personagraph.graph.model import Edge, Persona
from personagraph.graph.store import GraphStore

FIXTURE = Path(__file__).parent / "fixtures" / "dedup" / "planted_real.jsonl"


def members(groups) -> list[list[int]]:
    return sorted(sorted(g.members) for g in groups)


def test_character_shingles_see_no_case_punctuation_or_spacing() -> None:
    assert tokens("  A Nurse,  in LYON! ", "chars") == list("a nurse in lyon")
    hasher = MinHasher(shingle_size=3, unit="chars")
    a, b = hasher.signatures(["A nurse, in Lyon!", "a  nurse in lyon"])
    assert np.array_equal(a, b)


def test_chinese_personas_with_a_typo_or_a_synonym_are_one_and_different_people_are_not() -> None:
    texts = [
        "一位50岁的历史学教授，对科幻和时空穿越小说深感兴趣，但对年轻时代流行的网络剧不太了解。",
        "一位50岁的历史学教授，对科幻和时空穿越小说深感兴趣，但队年轻时代流行地网络剧不太了解。",  # two typos
        "我是一位50岁的历史学教授，对科幻和时空穿越小说很感兴趣，但对年轻时代流行的网络剧不太了解。",  # person, synonym
        "一位30岁的物理学教授，对古典音乐和歌剧深感兴趣，但对流行的短视频平台不太了解。",  # someone else
        "香港的小企业主，关心政府财政政策对企业的影响",
        "香港的小企业主，关注政府财政政策对企业的影响",
    ]
    assert members(find_duplicates(texts, DedupConfig())) == [[0, 1, 2], [4, 5]]


def test_templated_descriptions_of_different_people_do_not_merge() -> None:
    texts = [
        "A seventy-five-year-old nurse in Lima, known in the neighbourhood for patience and routine.",
        "A forty-year-old night cleaner in Lima, known in the neighbourhood for patience and routine.",
        "A twenty-year-old student in Lima, known in the neighbourhood for patience and routine.",
    ]
    assert find_duplicates(texts, DedupConfig()) == []
    assert find_duplicates(texts, DedupConfig(), "minhash") == []


def test_an_edited_copy_merges_with_its_original() -> None:
    original = "A sports journalist who has interviewed Michael Jordan multiple times and has insider stories about his career"
    texts = [
        original,
        "I am a sports journalist who has interviewd Michael Jordan multiple times and has insider stories about his career.",
        "A sports journalist who has interviewed Michael Jordan many times",
        "A sports journalist who covers the NBA draft for a local paper",
    ]
    assert members(find_duplicates(texts, DedupConfig())) == [[0, 1, 2]]


def test_a_group_is_closed_under_its_own_linkage_once_its_survivor_is_chosen() -> None:
    # A~B and B~C, but A and C too far apart to be in one group: {A, B} forms first. If B survives
    # the merge, B~C is a pair a rerun would merge, so the search goes on until nothing is left.
    angles = np.radians([0.0, 20.0, 40.0])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    config = DedupConfig(embedding_threshold=0.9, link_cosine=0.8)
    _, first_survives = duplicate_groups(None, vectors, config, "embedding")
    assert members(first_survives) == [[0, 1]]
    _, b_survives = duplicate_groups(None, vectors, config, "embedding", representatives=lambda gs: [1 for _ in gs])
    assert members(b_survives) == [[0, 1, 2]] and b_survives[0].representative == 1


def test_planted_edits_of_real_personas_at_the_defaults() -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    groups = find_duplicates([r["text"] for r in rows], DedupConfig())
    precision, recall = pair_scores([g.members for g in groups], [r["cluster"] for r in rows])
    assert precision >= 0.98 and recall >= 0.97, (precision, recall)


def test_a_rerun_after_a_finished_pass_finds_nothing_to_merge(store: GraphStore, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    personas = [Persona(description=r["text"]) for r in rows]
    store.upsert_personas(personas)
    ids = [p.id for p in personas]
    # Edges make later copies the most connected: survivors are not simply the first of each group.
    store.add_edges([Edge(source=ids[i], target=ids[(i * 7 + 3) % len(ids)], type="KNOWS")
                     for i in range(len(ids)) if rows[i]["kind"] is not None])
    first = merge_duplicates(store, DedupConfig(), tmp_path)
    assert first.merged > 100
    again = merge_duplicates(store, DedupConfig(), tmp_path)
    assert again.groups == [] and again.merged == 0


def test_an_index_saved_with_other_shingles_is_rebuilt_not_mixed(store: GraphStore, tmp_path: Path) -> None:
    store.upsert_personas([Persona(description=t) for t in ("A beekeeper in Oslo.", "A tax accountant in Quito.")])
    words = DedupConfig(method="minhash", shingles="words", shingle_size=1)
    open_index(store, words, tmp_path)
    chars = DedupConfig(method="minhash")
    assert len(DedupIndex.load(chars, tmp_path)) == 0  # the saved signatures are of word shingles
    index = open_index(store, chars, tmp_path)
    assert np.array_equal(index.signatures, minhasher(chars).signatures(index.texts))


def test_the_index_file_keeps_texts_exactly_and_reads_the_earlier_fixed_width_layout(tmp_path: Path) -> None:
    texts = ["A beekeeper in Oslo.", "一位在上海工作的护士", "", "x" * 5_000, "Emoji 🐝 and a lone \ud800 surrogate"]
    config = DedupConfig(method="minhash")
    index = DedupIndex(config, tmp_path)
    index.add([f"p_{i}" for i in range(len(texts))], texts)
    index.save()
    with np.load(tmp_path / "index.npz") as data:
        assert "texts" not in data and data["texts_utf8"].dtype == np.uint8  # no row padded to the longest
        earlier = {k: data[k] for k in data.files if not k.startswith("texts_")}
    assert DedupIndex.load(config, tmp_path).texts == texts
    # A file written before the packed layout (one fixed-width string array) loads the same.
    np.savez(tmp_path / "index.npz", **earlier, texts=np.array(texts[:4] + ["Emoji 🐝"], dtype=str))
    assert DedupIndex.load(config, tmp_path).texts == texts[:4] + ["Emoji 🐝"]
