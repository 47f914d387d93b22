"""Coverage: region counts and shares of live personas, the tail folded into 'other', the chart and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from personagraph.graph.model import Persona, PersonaStatus
from personagraph.graph.store import GraphStore
from personagraph.coverage import CoverageReport, plot_coverage, region_coverage
from personagraph.targets import load_targets

ROOT = Path(__file__).resolve().parent.parent


def fill(store: GraphStore) -> None:
    people = [("child", "behind-the-scenes")] * 2 + [("adult", "public-facing")] * 5 + [("older_adult", None)]
    store.upsert_personas([
        Persona(description=f"Persona number {i} of the coverage test",
                attributes={"age_group": age, **({"visibility": vis} if vis else {})})
        for i, (age, vis) in enumerate(people)
    ] + [Persona(description="A rejected persona that does not count", status=PersonaStatus.rejected,
                 attributes={"age_group": "child"})])


def test_shares_count_live_personas_per_region_value(store: GraphStore) -> None:
    fill(store)
    report = region_coverage(store, ["age_group", "visibility"])
    assert report.total == 8
    assert [(r.value, r.personas) for r in report.attributes["age_group"]] == [("adult", 5), ("child", 2), ("older_adult", 1)]
    assert report.share("age_group", "child") == 0.25
    assert report.count("visibility", "unknown") == 1
    assert report.share("age_group", "teenager") == 0.0


def test_values_past_top_are_folded_into_other(store: GraphStore) -> None:
    fill(store)
    rows = region_coverage(store, ["age_group"], top=1).attributes["age_group"]
    assert [(r.value, r.personas) for r in rows] == [("adult", 5), ("other", 3)]


def test_chart_is_a_png_with_before_and_after(store: GraphStore, tmp_path: Path) -> None:
    fill(store)
    before = CoverageReport.model_validate_json(region_coverage(store).model_dump_json())
    path = plot_coverage(region_coverage(store), tmp_path / "charts" / "coverage.png", before)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_cli_saves_and_compares_reports(store: GraphStore, tmp_path: Path) -> None:
    fill(store)
    base = [sys.executable, "-m", "personagraph.cli", "--data-dir", str(store.options.data_dir), "--graph", store.options.graph,
            "coverage", "-a", "age_group"]
    env = {**os.environ, "COLUMNS": "120", "PERSONAGRAPH_CONFIG": str(tmp_path / "none.toml")}
    saved = tmp_path / "before.json"
    first = subprocess.run([*base, "--save", str(saved)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "62.5%" in first.stdout and saved.is_file()
    store.upsert_personas([Persona(description=f"A child added later, number {i}", attributes={"age_group": "child"})
                           for i in range(2)])
    second = subprocess.run([*base, "--compare", str(saved), "--chart", str(tmp_path / "c.png")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    # child: 2/8 = 25% -> 4/10 = 40%
    assert "+15.0 pts" in second.stdout and (tmp_path / "c.png").is_file()


def test_targets_give_target_actual_and_gap_per_value(store: GraphStore, tmp_path: Path) -> None:
    fill(store)
    report = region_coverage(store, ["age_group"], targets=load_targets({"age_group": {"child": 0.4, "teenager": 0.1},
                                                                          "visibility": {"behind-the-scenes": 0.2}}))
    child, teen, hidden = report.targets
    assert (child.target, child.actual, child.gap, child.personas) == (0.4, 0.25, 0.15, 2)
    assert (teen.actual, teen.gap) == (0.0, 0.1)
    assert (hidden.actual, hidden.gap) == (0.25, -0.05)
    assert "visibility" in report.attributes  # a targeted attribute is counted too
    path = report.plot(tmp_path / "targets.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graph_metrics_match_networkx_on_a_small_graph(store: GraphStore) -> None:
    import networkx as nx

    from personagraph.graph.analysis import to_networkx
    from personagraph.graph.model import Edge, persona_id

    texts = [f"Persona {i} of the small metrics graph" for i in range(7)]
    store.upsert_personas([Persona(description=t, hop=min(i, 2)) for i, t in enumerate(texts)])
    ids = [persona_id(t) for t in texts]
    store.add_edges([Edge(source=ids[0], target=ids[1], type="PARENT_OF"), Edge(source=ids[1], target=ids[2], type="FRIEND_OF"),
                        Edge(source=ids[2], target=ids[0], type="FRIEND_OF"), Edge(source=ids[3], target=ids[4], type="COWORKER_OF")])
    store.set_properties([{"id": ids[0], "props": {"expanded": True}}])
    m = region_coverage(store, ["age_group"], graph=True).graph
    g = to_networkx(store)
    u = nx.Graph(g.to_undirected())
    assert (m.personas, m.edges) == (7, 4) == (g.number_of_nodes(), g.number_of_edges())
    assert m.components == nx.number_connected_components(u) == 4
    assert m.component_sizes == {1: 2, 2: 1, 3: 1} and m.largest_component == 3
    assert m.degrees == {d: list(dict(u.degree()).values()).count(d) for d in set(dict(u.degree()).values())}
    assert m.isolated == len(list(nx.isolates(u))) == 2
    assert m.relation_types == {"FRIEND_OF": 2, "COWORKER_OF": 1, "PARENT_OF": 1}
    assert m.hops == {0: 1, 1: 1, 2: 5}
    assert m.frontier == 6


def test_cli_shows_targets_and_graph_and_refuses_a_bad_targets_file_in_one_line(store: GraphStore, tmp_path: Path) -> None:
    fill(store)
    base = [sys.executable, "-m", "personagraph.cli", "--data-dir", str(store.options.data_dir), "--graph", store.options.graph,
            "coverage", "-a", "age_group"]
    env = {**os.environ, "COLUMNS": "160", "PERSONAGRAPH_CONFIG": str(tmp_path / "none.toml")}
    targets = tmp_path / "targets.toml"
    targets.write_text("[age_group]\nchild = 0.40\nadult = 0.5\n", encoding="utf-8")
    shown = subprocess.run([*base, "--target", str(targets), "--graph"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "+15.0 pts short" in shown.stdout and "met" in shown.stdout
    assert "isolated personas" in shown.stdout and "unexpanded frontier" in shown.stdout
    targets.write_text("[age_group]\ntoddler = 0.40\n", encoding="utf-8")
    bad = subprocess.run([*base, "--target", str(targets)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "unknown value 'toddler' of age_group" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
