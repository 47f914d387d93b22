"""Coverage: region counts and shares of live personas, the tail folded into 'other', the chart and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from personagraph.graph.model import Persona, PersonaStatus
from personagraph.graph.store import GraphStore
from personagraph.coverage import CoverageReport, plot_coverage, region_coverage

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
