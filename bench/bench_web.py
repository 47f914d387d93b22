"""Web explorer benchmark: a 1,000-persona neighbourhood drawn in headless Chromium.

Imports a power-law persona graph (bench/bench_graph.py's templates and edge generator) into a fresh
data folder with its own embedded FalkorDB, starts `personagraph serve --port 0` on it as a real
process, and opens /neighbourhood/<hub>?hops=2&limit=1000 in Debian's headless Chromium `--runs`
times, each in a fresh browser context (nothing cached). The page records its own timings
(`window.__pgTimings.neighbourhood`, ms since navigation start): request sent, answer parsed, graph
built and fitted, first frame drawn. Reports best and median of each span and the load average
(the machine is shared); with --force-layout also Cytoscape's force layout (`cose`) on the same nodes.

    python -m bench.bench_web                       # 20k personas, 60k edges, 7 runs
    python -m bench.bench_web --runs 3 --personas 5000
    python -m bench.bench_web --browser-arg=--disable-gpu    # a Chromium switch (no faster here)
    python -m bench.bench_web --screenshot docs/img/explorer.png   # also regenerate the README's screenshot
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_graph import EDGE_TYPES, persona_chunks, power_law_edges
from personagraph.graph import server
from personagraph.graph.model import Edge
from personagraph.graph.store import GraphStore, StoreConfig, open_store

ROOT = Path(__file__).resolve().parent.parent
GRAPH = "bench_web"


def build(store: GraphStore, n_personas: int, n_edges: int, seed: int) -> str:
    """Import the personas and typed power-law edges; return the id of the persona with the most edges."""
    ids: list[str] = []
    for chunk in persona_chunks(n_personas):
        store.upsert_personas(chunk)
        ids += [p.id for p in chunk]
    src, dst, typ = power_law_edges(n_personas, n_edges, seed)
    edges = [Edge(source=ids[a], target=ids[b], type=EDGE_TYPES[t]) for a, b, t in zip(src, dst, typ)]
    for start in range(0, len(edges), 50_000):
        store.add_edges(edges[start:start + 50_000])
    degree = np.bincount(np.concatenate([src, dst]), minlength=n_personas)
    return ids[int(degree.argmax())]


@contextmanager
def serving(data_dir: Path) -> Iterator[str]:
    """`personagraph serve --port 0` on the folder, as a real process; yields its address, stops it with Ctrl-C."""
    command = [sys.executable, "-m", "personagraph", "--data-dir", str(data_dir), "--graph", GRAPH, "serve", "--port", "0"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not found:
            raise SystemExit(f"serve did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        base = found.group(0)
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/api/info", timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def spans(t: dict[str, float]) -> dict[str, float]:
    """The spans reported, in ms, from the page's own timings."""
    return {
        "navigation to first frame": t["drawn"],
        "request to first frame": t["drawn"] - t["request"],
        "API answer (request to parsed JSON)": t["response"] - t["request"],
        "drawing (parsed JSON to first frame)": t["drawn"] - t["response"],
    }


def measure(browser: Any, url: str, runs: int) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Open `url` `runs` times, each in a fresh context; the spans of each run and the last run's timings."""
    results, last = [], {}
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#nb-canvas[data-ready]", timeout=60_000)
        last = page.evaluate("window.__pgTimings.neighbourhood")
        results.append(spans(last))
        context.close()
    return results, last


def force_layout_ms(browser: Any, url: str) -> float:
    """Time of Cytoscape's force layout (`cose`) on the same neighbourhood, chosen in the page's layout menu."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#nb-canvas[data-ready]", timeout=60_000)
    # (select_option waits on an actionability check that never settles beside a live canvas; set the menu directly)
    page.evaluate("() => { const s = document.querySelector('#nb-layout'); s.value = 'cose'; s.dispatchEvent(new Event('change')); }")
    deadline = time.monotonic() + 120
    while (relayout := page.evaluate("window.__pgTimings.relayout")) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    context.close()
    return float(relayout["ms"]) if relayout else float("nan")


def screenshot(browser: Any, base: str, center: str, path: Path) -> None:
    """The README's picture: a neighbourhood coloured by domain with one persona selected and expanded."""
    context = browser.new_context(viewport={"width": 1360, "height": 860}, device_scale_factor=1)
    page = context.new_page()
    page.goto(f"{base}/neighbourhood/{center}?hops=2&limit=400")
    page.wait_for_selector("#nb-canvas[data-ready]", timeout=60_000)
    page.evaluate("() => { const s = document.querySelector('#nb-colour'); s.value = 'domain'; s.dispatchEvent(new Event('change')); }")
    pick = page.evaluate("""() => {
        const cy = window.__pg.cy;
        const n = cy.nodes().filter((x) => x.data('hop') === 1).max((x) => x.degree()).ele;
        return n.id();
    }""")
    at = page.evaluate("(id) => window.__pg.cy.getElementById(id).renderedPosition()", pick)
    box = page.locator("#nb-canvas").bounding_box()
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
    page.wait_for_selector("#nb-detail .description")
    time.sleep(1.0)  # the expansion's nodes drawn
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    context.close()
    print(f"screenshot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--personas", type=int, default=20_000)
    ap.add_argument("--edges", type=int, default=60_000)
    ap.add_argument("--limit", type=int, default=1000, help="personas in the neighbourhood drawn")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--browser-arg", action="append", default=[], help="a Chromium switch, e.g. --browser-arg=--disable-gpu")
    ap.add_argument("--force-layout", action="store_true", help="also time Cytoscape's force layout (cose) on it: minutes")
    ap.add_argument("--screenshot", type=Path, help="also save the README's screenshot here (docs/img/explorer.png)")
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="pgw-", dir="/tmp"))
    try:
        t0 = time.perf_counter()
        with open_store(StoreConfig(data_dir=folder, graph=GRAPH)) as store:
            center = build(store, args.personas, args.edges, args.seed)
        print(f"imported {args.personas:,} personas and {args.edges:,} edges in {time.perf_counter() - t0:.1f} s")
        with serving(folder) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=args.browser_arg)
            url = f"{base}/neighbourhood/{center}?hops=2&limit={args.limit}"
            load_before = os.getloadavg()
            results, last = measure(browser, url, args.runs)
            cose = force_layout_ms(browser, url) if args.force_layout else None
            load_after = os.getloadavg()
            if args.screenshot:
                screenshot(browser, base, center, args.screenshot)
            browser.close()
        print(f"\nneighbourhood of {center}: {last['nodes']:,} personas, {last['edges']:,} relationships; "
              f"{args.runs} runs in headless Chromium {' '.join(args.browser_arg)}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
        print("| span | best | median |\n|---|---|---|")
        for name in results[0]:
            values = [r[name] for r in results]
            print(f"| {name} | {min(values):,.0f} ms | {statistics.median(values):,.0f} ms |")
        if cose is not None:
            print(f"| force layout (`cose`) on the same graph, for comparison | {cose:,.0f} ms | (one run) |")
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
