"""The explorer page (`personagraph serve`, pipeline/web/static) in headless Chromium against a real server
process on a real graph: a query's rows and drawing, a persona's page, its neighbourhood expanded by a click,
coverage, runs and samples; and a persona whose description is an HTML injection, shown as inert text.

Uses Debian's `chromium` (never Playwright's downloaded browsers). Without it the tests are skipped, except
in CI, where a missing browser is a failure (.ci/run installs it). Screenshots go to pytest's tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from personagraph.graph.model import Edge, Persona, PersonaStatus, Source
from personagraph.graph.store import FalkorStore, StoreConfig

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'


def browser_path() -> str:
    """Debian's chromium, or a skip (a failure in CI) saying how to get it."""
    found = shutil.which("chromium")
    if found is None:
        message = "chromium is not installed (Debian: apt-get install -y chromium); the browser tests need it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        message = "playwright is not installed: pip install -e '.[dev]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class World:
    """The served graph: a seed extracted from a text, two hops of expansion below it, a merged duplicate,
    colleagues around the seed, a hostile description, a sample file and two runs."""

    base: str
    root: Persona
    child: Persona
    grandchild: Persona
    duplicate: Persona
    hostile: Persona
    samples_file: str


def build_graph(store: FalkorStore, folder: Path) -> dict[str, Any]:
    source = Source(text_hash="cd" * 32, uri="corpus.jsonl:7", props={"text": "Vaccination days at the Lyon clinic: bring the booklet."})
    root = Persona(description="A pediatric nurse in Lyon who runs a vaccination clinic", origin="text",
                   attributes={"age_group": "adult", "occupation": "nurse", "domain": "health"})
    child = Persona(description="A seven-year-old patient of the Lyon vaccination clinic", hop=1, origin="expand",
                    status=PersonaStatus.candidate,
                    attributes={"age_group": "child", "expanded_from": root.id, "via_relation": "patient", "via_edge": "PATIENT_OF"})
    grandchild = Persona(description="The single father of a seven-year-old clinic patient in Lyon", hop=2, origin="expand",
                         attributes={"age_group": "adult", "expanded_from": child.id, "via_relation": "parent", "via_edge": "PARENT_OF"})
    duplicate = Persona(description="A paediatric nurse in Lyon running a vaccination clinic", origin="text")
    hostile = Persona(description=HOSTILE, origin="import", attributes={"age_group": "adult"})
    colleagues = [Persona(description=f"A {job} at the Lyon children's hospital", hop=1, origin="expand",
                          attributes={"age_group": "adult", "occupation": job, "domain": "health"})
                  for job in ("midwife", "pharmacist", "hospital porter", "night-shift cleaner", "paediatrician")]
    store.upsert_sources([source])
    store.upsert_personas([root, child, grandchild, duplicate, hostile, *colleagues])
    store.add_edges([Edge(source=root.id, target=source.id, type="EXTRACTED_FROM", props={"stance": "read", "stances": ["read"]})],
                    target_label="Source")
    store.add_edges([Edge(source=child.id, target=root.id, type="PATIENT_OF"),
                     Edge(source=grandchild.id, target=child.id, type="PARENT_OF"),
                     Edge(source=root.id, target=hostile.id, type="COLLEAGUE_OF"),
                     Edge(source=hostile.id, target=colleagues[0].id, type="SUPPLIER_OF"),
                     *(Edge(source=c.id, target=root.id, type="COLLEAGUE_OF") for c in colleagues)])
    store.set_properties([{"id": root.id, "props": {"score_relevance": 5, "reason_relevance": "a clear reader of the text",
                                                    "filter_failed": [], "filtered_at": 1.0}}])
    store.merge_nodes(root.id, [duplicate.id])
    store.upsert_samples([{"id": "smp_1", "persona_ids": [root.id],
                           "props": {"task": "math_problem", "text": "How many doses does the clinic need for 40 children?"}}])
    store.record_run("extract-20240102030405-abcdef", {"stage": "extract", "texts_read": 3, "seconds": 1.5,
                                                       "llm_prompt_tokens": 120, "llm_completion_tokens": 40, "path": "corpus.jsonl"})
    store.record_run("expand-20240103000000-123456", {"stage": "expand", "new_personas": 7, "seconds": 0.5})
    out = folder / "math_problem.jsonl"
    out.write_text("".join(json.dumps(row) + "\n" for row in [
        {"persona_id": root.id, "task": "math_problem", "text": "How many doses does the clinic need for 40 children?"},
        {"persona_ids": [child.id, grandchild.id], "task": "dialogue", "text": HOSTILE},
    ]))
    return {"root": root, "child": child, "grandchild": grandchild, "duplicate": duplicate, "hostile": hostile}


def serve(data_dir: Path, graph: str) -> tuple[subprocess.Popen[str], str]:
    """`personagraph serve --port 0` as a real process; its address once /api/info answers."""
    command = [sys.executable, "-m", "personagraph", "--data-dir", str(data_dir), "--graph", graph, "serve", "--port", "0"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    line = proc.stdout.readline() if proc.stdout else ""
    found = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if not found:
        proc.kill()
        raise AssertionError(f"serve did not start: {line!r} {proc.communicate()[1]}")
    base = found.group(0)
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(base + "api/info", timeout=5):
                return proc, base.rstrip("/")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module", autouse=True)
def chromium() -> str:
    """The browser, looked for before any graph is built or server started."""
    return browser_path()


@pytest.fixture(scope="module")
def world(falkordb_dir: Path) -> Iterator[World]:
    """The graph served by a `personagraph serve` process for the whole module, stopped with Ctrl-C at the end."""
    options = StoreConfig(data_dir=falkordb_dir, graph=f"web_browser_{os.getpid()}")
    store = FalkorStore(options)
    store.ensure_schema()
    files = falkordb_dir / f"samples_{os.getpid()}"
    files.mkdir()
    made = build_graph(store, files)
    proc, base = serve(falkordb_dir, options.graph)
    try:
        yield World(base=base, samples_file=f"{files.name}/math_problem.jsonl", **made)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        shutil.rmtree(files, ignore_errors=True)
        try:
            store._graph.delete()
        finally:
            store.close()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


@dataclass
class Tab:
    """A browser page with what it reported: script errors, and console errors other than failed requests."""

    page: Any
    errors: list[str]
    shots: Path

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def tab(browser: Any, tmp_path: Path) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
    # A refused write or a Cypher error answers 4xx on purpose; anything else on the console is a fault
    # (a CSP violation above all).
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    yield Tab(page, errors, tmp_path)
    print(f"screenshots in {tmp_path}")
    context.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def node_count(page: Any) -> int:
    return int(page.locator("#nb-stats").get_attribute("data-nodes"))


def click_node(page: Any, node_id: str) -> None:
    """A real mouse click on a node of the neighbourhood drawing, where Cytoscape drew it."""
    at = page.evaluate("(id) => window.__pg.cy.getElementById(id).renderedPosition()", node_id)
    box = page.locator("#nb-canvas").bounding_box()
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])


def test_the_explorer_runs_a_query_opens_a_persona_and_expands_its_neighbourhood(world: World, tab: Tab) -> None:
    page = tab.page
    page.goto(world.base + "/")
    # Both fill in when /api/info answers, after the page has loaded: wait for them.
    expect(page.locator("#mode-badge")).to_have_text(re.compile("read-only", re.I))
    expect(page.locator("#limits")).to_contain_text(re.compile(r"stops after 10 s and shows at most 1,000 rows"))

    # a query: rows in the table, nodes in the drawing
    page.fill("#cypher", "MATCH (a:Persona)-[r]->(b:Persona) RETURN a, r, b")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#result-note")
    assert page.locator("table.results tbody tr").count() == 9  # every relationship between personas
    expect(page.locator(".graph-canvas")).to_have_attribute("data-nodes", "9")  # every live persona but the merged one
    tab.shot("1-console")

    # a ready-made query is one click away; a write is refused with the server's reason on the page
    page.locator("li[data-query=most_connected] button").click()
    page.wait_for_selector("#result-note")
    assert "MATCH" in page.input_value("#cypher") and page.locator("table.results tbody tr").count() >= 1
    page.fill("#cypher", "MATCH (p:Persona) SET p.x = 1")
    page.get_by_role("button", name="Run", exact=True).click()
    assert "read-only" in page.get_by_role("alert").inner_text().lower()

    # the search box lists personas by words of their description; a persona's page, reached from there:
    # description, relationships out and in with their types
    page.fill("#persona-id", "Lyon")
    page.press("#persona-id", "Enter")
    page.locator("#search-results a", has_text=world.root.description).click()
    expect(page.locator("#persona-description")).to_have_text(world.root.description)
    assert page.url.endswith(f"/persona/{world.root.id}")
    page.wait_for_selector("table.rel-out")
    out_rows = page.locator("table.rel-out tbody tr")
    assert out_rows.filter(has_text="COLLEAGUE_OF").filter(has_text=HOSTILE).count() == 1
    assert page.locator("table.rel-in tbody tr").filter(has_text="PATIENT_OF").filter(has_text=world.child.description).count() == 1
    assert page.get_by_text(world.duplicate.description).count() == 1  # its alias
    assert page.get_by_text("a clear reader of the text").count() == 1
    tab.shot("2-persona")

    # the grandchild's path back to the source text, and a merged id answered with its survivor
    page.fill("#persona-id", world.grandchild.id)  # an exact id opens its page at once
    page.press("#persona-id", "Enter")
    steps = page.locator("ol.path > li")
    expect(steps).to_have_count(4)
    assert "Vaccination days at the Lyon clinic" in steps.nth(0).inner_text()
    assert "PARENT_OF" in steps.nth(3).inner_text() and "this persona" in steps.nth(3).inner_text()
    page.get_by_role("link", name="expansion_path in the console").click()  # the same chain as a ready-made query
    expect(page.locator("table.results tbody tr")).to_have_count(1)
    assert page.url.endswith(f"/?name=expansion_path&p.id={world.grandchild.id}")
    page.goto(f"{world.base}/persona/p_nobody")
    assert "p_nobody" in page.get_by_role("alert").inner_text()
    page.goto(f"{world.base}/persona/{world.duplicate.id}")
    page.wait_for_selector("#persona-description")
    assert "which was merged into this persona" in page.locator(".persona-head").inner_text()
    assert page.url.endswith(f"/persona/{world.root.id}")

    # its neighbourhood, one hop, then a click on the child draws the child's own neighbours
    page.goto(f"{world.base}/neighbourhood/{world.root.id}?hops=1")
    page.wait_for_selector("#nb-canvas[data-ready]")
    before = node_count(page)
    assert before == 8  # the root, the child, the hostile one and five colleagues
    click_node(page, world.child.id)
    expect(page.locator("#nb-stats")).to_have_attribute("data-nodes", str(before + 1))  # and now the grandchild
    assert page.locator("#nb-detail").inner_text().startswith(world.child.description)
    tab.shot("3-neighbourhood")

    # coverage, runs, samples (each row's personas linked)
    page.get_by_role("link", name="Coverage").click()
    page.wait_for_selector("figure[data-attribute=age_group] .bar-row")
    assert page.locator("figure[data-measure=relation_types]").count() == 1
    tab.shot("4-coverage")
    page.get_by_role("link", name="Runs").click()
    expect(page.locator("table.runs tbody tr")).to_have_count(2)
    tab.shot("5-runs")
    page.get_by_role("link", name="Samples").click()
    page.get_by_role("link", name=world.samples_file).click()
    expect(page.locator("table.samples-table tbody tr")).to_have_count(2)
    tab.shot("6-samples")
    page.locator("table.samples-table a.persona-link", has_text=world.grandchild.id).click()
    expect(page.locator("#persona-description")).to_have_text(world.grandchild.description)
    page.go_back()
    page.wait_for_selector("table.samples-table")
    assert tab.errors == []


def test_a_hostile_description_is_shown_as_inert_text_everywhere(world: World, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{world.base}/persona/{world.hostile.id}")
    expect(page.locator("#persona-description")).to_have_text(HOSTILE)
    page.goto(f"{world.base}/persona/{world.root.id}")
    page.wait_for_selector("table.rel-out")
    page.goto(f"{world.base}/neighbourhood/{world.root.id}?hops=2")
    page.wait_for_selector("#nb-canvas[data-ready]")
    click_node(page, world.hostile.id)
    page.wait_for_selector("#nb-detail .description")
    assert page.locator("#nb-detail .description").inner_text() == HOSTILE
    page.goto(world.base + "/?" + urllib.parse.urlencode({"cypher": "MATCH (p:Persona) RETURN p.description, p"}))
    expect(page.locator("table.results td", has_text=HOSTILE)).not_to_have_count(0)
    page.goto(f"{world.base}/samples?file={urllib.parse.quote(world.samples_file)}")
    expect(page.locator("table.samples-table .cell-text", has_text=HOSTILE)).to_have_count(1)
    tab.shot("injection")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0 and page.locator("#view script").count() == 0
    assert tab.errors == []
