"""The diversity report on hand-made files, and on a persona run beside its no-persona baseline (fake endpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
from personagraph.cli import app
from personagraph.graph.store import GraphStore, StoreConfig
from personagraph.readers import InputError
from personagraph.report import distinct_n, measure, tokens
from personagraph.synthesize import Synthesizer
from typer.testing import CliRunner

from tests.fake_llm_server import FakeLLM
from tests.test_synthesize import api, run, spec

VARIED = [
    "A baker in Lyon prices 40 croissants so that flour costs stay under a third of revenue.",
    "Two ferries leave Piraeus at dawn; find when the faster one overtakes the slower.",
    "Prove that a nurse's rotating rota of 7 shifts repeats only after 420 days.",
    "How many ways can a beekeeper arrange 12 hives on a hexagonal grid without two touching?",
    "A retired fisherman's net has 1,000 knots; estimate the tension in each under a full catch.",
    "冰箱里的大象为什么要关灯？",
]


def write_rows(path: Path, texts: list[str], personas: list[str] | None = None) -> Path:
    personas = personas or [f"persona {i}" for i in range(len(texts))]
    path.write_text("".join(json.dumps({"text": t, "persona": p, "task": "math_problem", "mode": "zero_shot"},
                                       ensure_ascii=False) + "\n" for t, p in zip(texts, personas)), encoding="utf-8")
    return path


@pytest.fixture
def graph(store: GraphStore) -> nx.Graph:
    from tests.test_sample import build_graph

    return build_graph(store)


def test_tokens_split_words_and_each_cjk_character() -> None:
    assert tokens("Hello, World 你好") == ["hello", "world", "你", "好"]
    assert distinct_n(["x y z"], 3) == 1.0 and distinct_n([""], 1) == 0.0


def test_identical_rows_have_low_distinct_n_and_nearest_neighbour_similarity_one(tmp_path: Path) -> None:
    same = measure(write_rows(tmp_path / "same.jsonl", [VARIED[0]] * 6))
    varied = measure(write_rows(tmp_path / "varied.jsonl", VARIED))
    assert same.rows == varied.rows == 6
    for n in (1, 2, 3):
        assert same.distinct[n] < 0.2 < varied.distinct[n]
    assert same.nn_similarity["mean"] == pytest.approx(1.0, abs=1e-4) and same.near_copies == 1.0
    assert varied.nn_similarity["mean"] < 0.6 and varied.near_copies == 0.0
    assert same.mean_pairwise_distance < 1e-4 and varied.mean_pairwise_distance > 0.3
    assert same.centroid_distance < 1e-4 and varied.centroid_distance > 0.1


def test_outputs_written_about_their_persona_are_closer_to_it(tmp_path: Path) -> None:
    personas = ["a baker in Lyon", "a ferry captain in Piraeus", "a night-shift nurse", "a beekeeper",
                "a retired fisherman", "a zoo keeper"]
    matched = measure(write_rows(tmp_path / "matched.jsonl", VARIED, personas))
    shuffled = measure(write_rows(tmp_path / "shuffled.jsonl", VARIED, personas[3:] + personas[:3]))
    assert matched.persona_similarity is not None and shuffled.persona_similarity is not None
    assert matched.persona_similarity > shuffled.persona_similarity + 0.1


def test_a_file_without_text_is_refused_saying_what_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "personas.jsonl"
    path.write_text('{"description": "a nurse"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="`text`"):
        measure(path)


def test_no_persona_mode_shows_a_placeholder_and_keeps_the_slot(store: GraphStore, graph: nx.Graph) -> None:
    synth = Synthesizer(store, spec(task="math_problem", mode="no_persona"))
    user = synth.messages("a baker in Lyon", [])[-1]["content"]
    assert "a baker in Lyon" not in user and "no particular person" in user
    zh = Synthesizer(store, spec(task="math_problem", mode="no_persona", lang="zh")).messages("一名厨师", [])[-1]["content"]
    assert "一名厨师" not in zh and "不指定人物" in zh
    with pytest.raises(ValueError, match="baseline for persona tasks"):
        Synthesizer(store, spec(task="dialogue", mode="no_persona"))


def test_a_persona_run_is_more_diverse_than_its_baseline(store: GraphStore, graph: nx.Graph, fake_llm: FakeLLM,
                                                         tmp_path: Path) -> None:
    rows = run(store, fake_llm, tmp_path, "run.jsonl", task="math_problem", count=12, seed=3)
    base = run(store, fake_llm, tmp_path, "base.jsonl", task="math_problem", count=12, seed=3, mode="no_persona")
    assert [r["persona_id"] for r in base] == [r["persona_id"] for r in rows]  # the same persona slots ...
    assert {r["mode"] for r in base} == {"no_persona"} and all(r["persona"] for r in base)
    assert all(r["persona"].split()[0] not in r["text"] for r in base)  # ... never shown to the model
    report = api(store, fake_llm, tmp_path).report(tmp_path / "run.jsonl", tmp_path / "base.jsonl",
                                                   json=tmp_path / "r.json", chart=tmp_path / "r.png")
    assert report.baseline is not None
    for n in (1, 2, 3):
        assert report.run.distinct[n] > report.baseline.distinct[n]
    assert report.run.nn_similarity["mean"] < report.baseline.nn_similarity["mean"]
    assert report.run.persona_similarity > report.baseline.persona_similarity
    assert {verdict for *_, verdict in report.rows()} <= {"run", ""}
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["run"]["distinct"]["2"] == pytest.approx(report.run.distinct[2]) and "nn_values" not in saved["run"]
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_report_prints_a_table_and_writes_json_and_chart(store_options: StoreConfig, tmp_path: Path) -> None:
    run_file = write_rows(tmp_path / "run.jsonl", VARIED)
    base_file = write_rows(tmp_path / "base.jsonl", [VARIED[0]] * 6)
    result = CliRunner().invoke(app, ["--data-dir", str(store_options.data_dir), "report", str(run_file),
                                      "--baseline", str(base_file), "--json", str(tmp_path / "out.json"),
                                      "--chart", str(tmp_path / "out.png")])
    assert result.exit_code == 0, result.output
    assert "distinct-2" in result.output and "more diverse" in result.output
    assert json.loads((tmp_path / "out.json").read_text())["baseline"]["rows"] == 6
    assert (tmp_path / "out.png").stat().st_size > 10_000
