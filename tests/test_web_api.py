"""The web app's JSON API (`personagraph serve`, pipeline/web) against the real embedded FalkorDB: the console and
its guards, the persona page, neighbourhoods, coverage, runs, samples files kept inside the data folder, the
security headers and the Host check, and the command itself as a real server process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from personagraph.api import Graph
from personagraph.config import Settings
from personagraph.graph import server
from personagraph.graph.model import Edge, Persona, PersonaStatus, Source
from personagraph.graph.store import GraphStore, StoreConfig
from personagraph.web import create_app
from personagraph.web.console import capped
from tests.conftest import graph_on

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "A forum moderator <script>alert('x')</script> who posts <img src=x onerror=alert(1)> & \"quotes\""
# A read that takes seconds: 25M rows of a cross product, checked against the timeout as they stream.
SLOW_QUERY = "UNWIND range(1, 5000) AS a UNWIND range(1, 5000) AS b WITH a, b WHERE a * b = -1 RETURN a"


@dataclass
class World:
    """A small graph with everything the persona page shows: a source, a path of expansion, filter verdicts,
    a merged duplicate, a sample and a run."""

    root: Persona
    child: Persona
    grandchild: Persona
    duplicate: Persona
    hostile: Persona
    source: Source


def build_world(store: GraphStore) -> World:
    source = Source(text_hash="ab" * 32, uri="corpus.jsonl:1")
    root = Persona(description="A pediatric nurse in Lyon who runs a vaccination clinic", origin="text",
                   attributes={"age_group": "adult", "occupation": "nurse", "domain": "health"})
    child = Persona(description="A seven-year-old patient of the Lyon vaccination clinic", hop=1, origin="expand",
                    status=PersonaStatus.candidate,
                    attributes={"age_group": "child", "expanded_from": root.id, "via_relation": "patient", "via_edge": "PATIENT_OF"})
    grandchild = Persona(description="The single father of a seven-year-old clinic patient in Lyon", hop=2, origin="expand",
                         attributes={"age_group": "adult", "expanded_from": child.id, "via_relation": "parent", "via_edge": "PARENT_OF"})
    duplicate = Persona(description="A paediatric nurse in Lyon running a vaccination clinic", origin="text")
    hostile = Persona(description=HOSTILE, origin="import")
    store.upsert_sources([source])
    store.upsert_personas([root, child, grandchild, duplicate, hostile])
    store.add_edges([Edge(source=root.id, target=source.id, type="EXTRACTED_FROM", props={"stance": "read", "stances": ["read"]})],
                    target_label="Source")
    store.add_edges([Edge(source=child.id, target=root.id, type="PATIENT_OF"),
                     Edge(source=grandchild.id, target=child.id, type="PARENT_OF"),
                     Edge(source=root.id, target=hostile.id, type="COLLEAGUE_OF")])
    store.set_properties([
        {"id": root.id, "props": {"score_relevance": 5, "reason_relevance": "a clear reader of the text",
                                  "filter_failed": [], "filtered_at": 1.0}},
        {"id": child.id, "props": {"filter_reasons": ["specificity: names no place of its own"]}},
    ])
    store.merge_nodes(root.id, [duplicate.id])
    store.upsert_samples([{"id": "smp_1", "persona_ids": [root.id],
                           "props": {"task": "math_problem", "text": "How many doses does the clinic need?"}}])
    store.record_run("extract-20240102030405-abcdef", {"stage": "extract", "texts_read": 3, "seconds": 1.5,
                                                       "llm_prompt_tokens": 120, "llm_completion_tokens": 40,
                                                       "path": "corpus.jsonl", "rejected": ["too short: 2"]})
    store.record_run("filter-20240103000000-123456", {"stage": "filter", "accepted": 2, "seconds": 0.5})
    return World(root, child, grandchild, duplicate, hostile, source)


@pytest.fixture
def served(store: GraphStore, tmp_path: Path) -> Graph:
    """The graph the app serves: the Python API over this test's graph (no LLM is needed)."""
    return graph_on(store, tmp_path / "llm_cache")


@pytest.fixture
def world(store: GraphStore) -> World:
    return build_world(store)


@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def client(served: Graph, data_folder: Path | None = None, **options: object) -> TestClient:
    """The app as a browser on this machine reaches it (Host: localhost)."""
    return TestClient(create_app(served, data_dir=data_folder, **options), base_url="http://localhost")  # type: ignore[arg-type]


# -- the console ----------------------------------------------------------------------------------
def test_info_counts_what_the_graph_holds(served: Graph, world: World) -> None:
    info = client(served, row_cap=7, timeout_s=3.0).get("/api/info").json()
    assert info["backend"] == "falkordb" and info["write"] is False
    assert info["data_dir"] == str(served.settings.store.data_dir.resolve())
    assert (info["row_cap"], info["timeout_s"]) == (7, 3.0)
    # root, child, grandchild, hostile are live; the duplicate is a merged tombstone
    assert info["counts"] | {"personas_by_status": None, "edges_by_type": None} == {
        "personas": 4, "edges": 3, "sources": 1, "samples": 1, "runs": 2, "personas_by_status": None, "edges_by_type": None}
    assert info["counts"]["personas_by_status"]["merged"] == 1


def test_ready_made_queries_are_listed_with_their_parameters_and_run_by_name(served: Graph, world: World) -> None:
    api = client(served)
    listed = {q["name"]: q for q in api.get("/api/queries").json()}
    assert listed["expansion_path"]["params"] == ["id"] and listed["most_connected"]["params"] == []
    answer = api.post("/api/query", json={"name": "expansion_path", "params": {"id": world.grandchild.id}}).json()
    chain = answer["rows"][0][answer["columns"].index("personas")]
    assert [p["id"] for p in chain] == [world.root.id, world.child.id, world.grandchild.id]
    assert api.post("/api/query", json={"name": "../queries/most_connected"}).status_code == 404


def test_cells_are_nodes_edges_and_paths_and_the_graph_gathers_them_once(served: Graph, world: World) -> None:
    api = client(served)
    answer = api.post("/api/query", json={"cypher": "MATCH p = (a:Persona {id: $id})-[e:PARENT_OF]->(b) RETURN a, e, p",
                                          "params": {"id": world.grandchild.id}}).json()
    node, edge, path = answer["rows"][0]
    assert node == {"_kind": "node", "id": world.grandchild.id, "labels": ["Persona"], "properties": node["properties"]}
    assert edge == {"_kind": "edge", "type": "PARENT_OF", "source": world.grandchild.id, "target": world.child.id, "properties": {}}
    assert path["_kind"] == "path" and [n["id"] for n in path["nodes"]] == [world.grandchild.id, world.child.id]
    assert sorted(n["id"] for n in answer["graph"]["nodes"]) == sorted([world.grandchild.id, world.child.id])
    assert len(answer["graph"]["edges"]) == 1
    # relationships alone: their ends are named by the nodes' id property all the same
    ends = api.post("/api/query", json={"cypher": "MATCH (:Persona)-[e:PATIENT_OF]->(:Persona) RETURN e"}).json()
    assert (ends["rows"][0][0]["source"], ends["rows"][0][0]["target"]) == (world.child.id, world.root.id)
    assert ends["graph"]["nodes"] == []


def test_a_write_is_refused_without_write_and_runs_with_it(served: Graph, world: World) -> None:
    create = {"cypher": "CREATE (:Note {id: 'n1', text: 'hello'})"}
    refused = client(served).post("/api/query", json=create)
    assert refused.status_code == 403 and "--write" in refused.json()["detail"]
    assert served.query("MATCH (n:Note) RETURN count(n) AS n")[0]["n"] == 0
    done = client(served, write=True).post("/api/query", json=create)
    assert done.status_code == 200 and done.json()["wrote"]["nodes_created"] == 1
    assert served.query("MATCH (n:Note) RETURN n.text AS t") == [{"t": "hello"}]
    # the LIMIT the row cap appends cuts the rows returned, not the writes
    many = client(served, write=True, row_cap=2).post("/api/query", json={
        "cypher": "UNWIND range(1, 10) AS x CREATE (n:Tick {x: x}) RETURN n.x AS x"}).json()
    assert many["rows"] == [[1], [2]] and many["truncated"] is True
    assert served.query("MATCH (n:Tick) RETURN count(n) AS n") == [{"n": 10}]


def test_rows_past_the_cap_are_cut_off_and_said_so(served: Graph, world: World) -> None:
    api = client(served, row_cap=3)
    capped = api.post("/api/query", json={"cypher": "UNWIND range(1, 10) AS x RETURN x ORDER BY x"}).json()
    assert capped["rows"] == [[1], [2], [3]] and capped["truncated"] is True and capped["row_cap"] == 3
    own_limit = api.post("/api/query", json={"cypher": "UNWIND range(1, 10) AS x RETURN x LIMIT 5 // five"}).json()
    assert len(own_limit["rows"]) == 3 and own_limit["truncated"] is True
    under = api.post("/api/query", json={"cypher": "UNWIND range(1, 3) AS x RETURN x"}).json()
    assert len(under["rows"]) == 3 and under["truncated"] is False


@pytest.mark.parametrize(("query", "capped_at"), [
    ("MATCH (n) RETURN n", "MATCH (n) RETURN n\nLIMIT 11"),
    ("MATCH (n) RETURN n ORDER BY n.id SKIP 2;", "MATCH (n) RETURN n ORDER BY n.id SKIP 2\nLIMIT 11"),
    ("MATCH (n) RETURN n // all of them", "MATCH (n) RETURN n // all of them\nLIMIT 11"),
    ("CALL { MATCH (n) RETURN n } RETURN n", "CALL { MATCH (n) RETURN n } RETURN n\nLIMIT 11"),
    ("MATCH (n) RETURN n LIMIT 3", None),  # its own LIMIT
    ("MATCH (n) RETURN n.a AS a UNION MATCH (m) RETURN m.a AS a", None),  # a LIMIT would bind the last part only
    ("MATCH (n) RETURN [x IN n.list WHERE x > 1] AS xs", None),  # a WHERE after RETURN: left as it is
    ("MATCH (n) WHERE n.x = 'RETURN n' SET n.y = 1", None),  # RETURN only inside a string
    ("CALL db.labels()", None),
])
def test_a_limit_is_appended_only_where_it_binds_the_whole_result(query: str, capped_at: str | None) -> None:
    assert capped(query, 10) == (capped_at or query)


def test_a_query_past_the_timeout_is_stopped_with_408(served: Graph, world: World) -> None:
    started = time.monotonic()
    answer = client(served, timeout_s=0.05).post("/api/query", json={"cypher": SLOW_QUERY})
    assert answer.status_code == 408 and "0.05 s" in answer.json()["detail"]
    assert time.monotonic() - started < 2.0  # the database stopped it: the whole query takes seconds


def test_a_cypher_error_is_400_with_the_database_message(served: Graph, world: World) -> None:
    answer = client(served).post("/api/query", json={"cypher": "MATCH (n RETURN n"})
    assert answer.status_code == 400 and "Invalid input" in answer.json()["detail"]
    assert client(served).post("/api/query", json={"params": {}}).status_code == 400


@pytest.mark.parametrize("query", ["LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
                                   "load  csv with headers from 'https://example.com/x.csv' AS r RETURN r"])
def test_the_console_refuses_queries_that_read_files_on_the_server(served: Graph, world: World, query: str) -> None:
    answer = client(served, write=True).post("/api/query", json={"cypher": query})
    assert answer.status_code == 403 and "LOAD CSV" in answer.json()["detail"]
    quoted = client(served).post("/api/query", json={"cypher": "RETURN 'LOAD CSV is refused' AS text"})
    assert quoted.json()["rows"] == [["LOAD CSV is refused"]]


def test_parameter_names_cannot_smuggle_cypher_into_the_query(served: Graph, world: World) -> None:
    # FalkorDB reads parameters from a `CYPHER name=value` header: a name is never spliced in as it is
    smuggled = {"cypher": "RETURN $x AS x", "params": {"x=1 MATCH (p:Persona) RETURN p.description AS x //": 1}}
    answer = client(served).post("/api/query", json=smuggled)
    assert answer.status_code == 422 and "parameter name" in answer.text
    assert client(served).post("/api/query", json={"cypher": "RETURN $x AS x", "params": {"x": "'; MATCH (n) RETURN n //"}}).json()[
        "rows"] == [["'; MATCH (n) RETURN n //"]]


def test_a_stopped_database_is_503_with_what_to_do(data_dir: Path, tmp_path: Path) -> None:
    alone = Graph(Settings(store=StoreConfig(data_dir=data_dir), llm={"cache_dir": tmp_path / "cache"}), progress=False)
    api = client(alone)
    assert api.get("/api/info").status_code == 200
    server.stop(data_dir)
    answer = api.get("/api/runs")
    assert answer.status_code == 503 and "personagraph db status" in answer.json()["detail"]
    alone.close()


# -- personas -------------------------------------------------------------------------------------
def test_the_persona_page_has_edges_both_ways_the_verdict_aliases_source_and_samples(served: Graph, world: World) -> None:
    page = client(served).get(f"/api/persona/{world.root.id}").json()
    assert page["description"] == world.root.description and page["status"] == "accepted" and page["hop"] == 0
    assert page["origin"] == "text"
    assert page["attributes"] == {"age_group": "adult", "domain": "health", "occupation": "nurse"}
    assert page["scores"] == {"relevance": 5.0}
    assert page["reasons"] == [{"criterion": "relevance", "score": 5.0, "reason": "a clear reader of the text", "failed": False}]
    assert [(e["type"], e["id"]) for e in page["out"]] == [("COLLEAGUE_OF", world.hostile.id)]
    assert [(e["type"], e["id"], e["description"]) for e in page["in"]] == [("PATIENT_OF", world.child.id, world.child.description)]
    assert page["aliases"] == [world.duplicate.description] and page["merged_ids"] == [world.duplicate.id]
    assert page["resolved_from"] is None
    assert page["source"] == {"id": world.source.id, "uri": "corpus.jsonl:1", "text": None, "stance": "read", "chars": None}
    assert page["samples"] == [{"id": "smp_1", "task": "math_problem", "text": "How many doses does the clinic need?"}]


def test_the_path_leads_from_the_persona_back_to_its_seed_and_source(served: Graph, world: World) -> None:
    page = client(served).get(f"/api/persona/{world.grandchild.id}").json()
    assert [(s["id"], s["type"]) for s in page["path"]] == [
        (world.grandchild.id, "PARENT_OF"), (world.child.id, "PATIENT_OF"), (world.root.id, None)]
    assert page["source"]["id"] == world.source.id
    assert [(e["type"], e["id"]) for e in page["out"]] == [("PARENT_OF", world.child.id)] and page["in"] == []
    child = client(served).get(f"/api/persona/{world.child.id}").json()
    assert child["status"] == "candidate"
    assert child["reasons"] == [{"criterion": "specificity", "score": None, "reason": "names no place of its own", "failed": True}]
    assert "expanded_from" not in child["attributes"] and child["attributes"] == {"age_group": "child"}


def test_a_merged_id_opens_its_survivor_and_an_unknown_one_is_404(served: Graph, world: World) -> None:
    api = client(served)
    page = api.get(f"/api/persona/{world.duplicate.id}").json()
    assert page["id"] == world.root.id and page["resolved_from"] == world.duplicate.id
    missing = api.get("/api/persona/p_nobody")
    assert missing.status_code == 404 and "p_nobody" in missing.json()["detail"]


def test_a_hostile_description_comes_back_as_the_exact_string(served: Graph, world: World) -> None:
    api = client(served)
    assert api.get(f"/api/persona/{world.hostile.id}").json()["description"] == HOSTILE
    rows = api.post("/api/query", json={"cypher": "MATCH (p:Persona {id: $id}) RETURN p.description AS d",
                                        "params": {"id": world.hostile.id}}).json()["rows"]
    assert rows == [[HOSTILE]]
    hood = api.get(f"/api/neighbourhood/{world.hostile.id}?hops=0").json()
    assert hood["nodes"][0]["description"] == HOSTILE


def test_the_search_box_finds_personas_by_text_or_id(served: Graph, world: World) -> None:
    api = client(served)
    found = api.get("/api/personas", params={"q": "LYON"}).json()
    assert {p["id"] for p in found} == {world.root.id, world.child.id, world.grandchild.id}  # not the merged duplicate
    assert [p["id"] for p in api.get("/api/personas", params={"q": world.hostile.id}).json()] == [world.hostile.id]
    assert len(api.get("/api/personas", params={"q": "lyon", "limit": 2}).json()) == 2
    assert api.get("/api/personas", params={"q": ""}).status_code == 422


def star(store: GraphStore, leaves: int) -> tuple[str, list[str], list[str]]:
    """A centre with `leaves` neighbours, each with one neighbour of its own: (centre, hop-1 ids, hop-2 ids)."""
    centre = Persona(description="the centre of a star of personas")
    ring = [Persona(description=f"ring persona number {i}") for i in range(leaves)]
    outer = [Persona(description=f"outer persona number {i}") for i in range(leaves)]
    store.upsert_personas([centre, *ring, *outer])
    store.add_edges([Edge(source=centre.id, target=r.id, type="COLLEAGUE_OF") for r in ring]
                    + [Edge(source=o.id, target=r.id, type="PARENT_OF") for r, o in zip(ring, outer)])
    return centre.id, [r.id for r in ring], [o.id for o in outer]


def test_the_neighbourhood_grows_by_hop_nearest_first_up_to_the_limit(served: Graph, store: GraphStore) -> None:
    centre, ring, outer = star(store, 10)
    api = client(served)
    one = api.get(f"/api/neighbourhood/{centre}?hops=1").json()
    assert {n["id"]: n["hop"] for n in one["nodes"]} == {centre: 0, **{r: 1 for r in ring}}
    assert len(one["edges"]) == 10 and one["truncated"] is False
    two = api.get(f"/api/neighbourhood/{centre}?hops=2").json()
    assert {n["id"]: n["hop"] for n in two["nodes"]} == {centre: 0, **{r: 1 for r in ring}, **{o: 2 for o in outer}}
    assert {(e["source"], e["type"]) for e in two["edges"] if e["target"] == ring[0]} == {(centre, "COLLEAGUE_OF"), (outer[0], "PARENT_OF")}
    cut = api.get(f"/api/neighbourhood/{centre}?hops=2&limit=14").json()
    hops = [n["hop"] for n in cut["nodes"]]
    assert cut["truncated"] is True and len(hops) == 14 and hops == sorted(hops) and hops.count(1) == 10
    kept = {n["id"] for n in cut["nodes"]}
    assert all(e["source"] in kept and e["target"] in kept for e in cut["edges"]) and len(cut["edges"]) == 13
    assert api.get("/api/neighbourhood/p_nobody").status_code == 404


# -- coverage and runs ----------------------------------------------------------------------------
def test_coverage_gives_region_shares_and_the_graph_measures(served: Graph, world: World) -> None:
    report = client(served).get("/api/coverage?attribute=age_group").json()
    assert list(report["attributes"]) == ["age_group"] and report["total"] == 4
    shares = {r["value"]: r["personas"] for r in report["attributes"]["age_group"]}
    assert shares == {"adult": 2, "child": 1, "unknown": 1}
    assert report["graph"]["personas"] == 4 and report["graph"]["relation_types"] == {"COLLEAGUE_OF": 1, "PARENT_OF": 1, "PATIENT_OF": 1}
    assert client(served).get("/api/coverage?attribute=bad-name").status_code == 400
    assert client(served).get("/api/coverage?target=../targets.toml").status_code == 403


def test_runs_come_newest_first_with_counts_tokens_and_inputs(served: Graph, world: World) -> None:
    runs = client(served).get("/api/runs").json()
    assert [r["stage"] for r in runs] == ["filter", "extract"]
    extract = runs[1]
    assert extract["started"] == "2024-01-02T03:04:05" and extract["elapsed_s"] == 1.5
    assert extract["counts"] == {"texts_read": 3, "rejected": ["too short: 2"]}
    assert extract["tokens"] == {"prompt_tokens": 120, "completion_tokens": 40}
    assert extract["inputs"] == {"path": "corpus.jsonl"}


# -- samples files --------------------------------------------------------------------------------
def write_samples(folder: Path) -> None:
    (folder / "out").mkdir()
    with (folder / "out" / "math.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(120):
            fh.write(json.dumps({"id": f"smp_{i}", "persona_id": f"p_{i}", "persona_ids": [f"p_{i}"], "text": f"problem {i}"}) + "\n")
    rows = [{"id": f"d_{i}", "persona_ids": [f"p_{i}", f"p_{i + 1}"], "text": f"dialogue {i}"} for i in range(30)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "dialogue.parquet", row_group_size=8)
    (folder / "appendonly").mkdir()
    (folder / "appendonly" / "store.jsonl").write_text("{}\n")  # the store's own folder: not a samples file
    (folder / "notes.txt").write_text("not samples")


def test_samples_files_are_listed_and_read_a_page_at_a_time(served: Graph, data_folder: Path) -> None:
    write_samples(data_folder)
    api = client(served, data_folder)
    files = {f["path"]: f for f in api.get("/api/samples/files").json()}
    assert set(files) == {"out/math.jsonl", "dialogue.parquet"}
    assert (files["out/math.jsonl"]["rows"], files["dialogue.parquet"]["rows"]) == (120, 30)
    assert files["out/math.jsonl"]["format"] == "jsonl" and files["out/math.jsonl"]["size_bytes"] > 0
    page = api.get("/api/samples?file=out/math.jsonl&offset=100&limit=50").json()
    assert page["total"] == 120 and [r["id"] for r in page["rows"]] == [f"smp_{i}" for i in range(100, 120)]
    assert page["rows"][0]["persona_ids"] == ["p_100"]
    parquet = api.get("/api/samples?file=dialogue.parquet&offset=6&limit=5").json()  # spans two row groups
    assert parquet["total"] == 30 and [r["id"] for r in parquet["rows"]] == [f"d_{i}" for i in range(6, 11)]
    assert parquet["rows"][0]["persona_ids"] == ["p_6", "p_7"]
    assert api.get("/api/samples?file=notes.txt").status_code == 400
    assert api.get("/api/samples?file=gone.jsonl").status_code == 404


def test_no_path_outside_the_data_folder_is_read(served: Graph, data_folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"secret": 1}) + "\n")
    (data_folder / "link.jsonl").symlink_to(secret)
    (data_folder / "linked_dir").symlink_to(tmp_path)
    api = client(served, data_folder)
    for name in ["../secret.jsonl", str(secret), "link.jsonl", "linked_dir/secret.jsonl", "out/../../secret.jsonl"]:
        answer = api.get("/api/samples", params={"file": name})
        assert answer.status_code == 403, name
        assert '"secret":' not in answer.text
    assert api.get("/api/samples?file=%2e%2e%2fsecret.jsonl").status_code == 403  # ../ percent-encoded
    assert api.get("/api/samples", params={"file": "~/secret.jsonl"}).status_code == 404  # no ~ expansion: a name in the folder
    assert api.get("/api/samples/files").json() == []


# -- what every response carries, and who may ask ---------------------------------------------------
def test_pages_and_api_carry_the_security_headers(served: Graph, world: World) -> None:
    api = client(served)
    for path in ["/", f"/persona/{world.root.id}", "/coverage", "/api/info"]:
        answer = api.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "object-src 'none'" in csp and "script-src" not in csp
        assert "unsafe-inline" not in csp  # no inline style either: only /docs needs it
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert api.get("/").headers["content-type"].startswith("text/html")


def test_the_api_documents_itself_with_swagger_ui_from_the_package(served: Graph) -> None:
    api = client(served)
    paths = api.get("/openapi.json").json()["paths"]
    for path in ["/api/info", "/api/queries", "/api/query", "/api/persona/{persona_id}", "/api/neighbourhood/{persona_id}",
                 "/api/coverage", "/api/runs", "/api/samples/files", "/api/samples"]:
        assert path in paths
    docs = api.get("/docs")
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    inline = re.search(r"<script>(.*?)</script>", docs.text, re.S)
    assert inline is not None and "'sha256-" in docs.headers["content-security-policy"]


def test_requests_naming_another_host_or_writing_from_another_origin_are_refused(served: Graph, world: World) -> None:
    api = client(served, write=True)
    assert api.get("/api/info", headers={"host": "evil.example:8765"}).status_code == 403
    assert api.get("/api/info", headers={"host": "127.0.0.1:8765"}).status_code == 200
    assert api.get("/api/info", headers={"host": "[::1]:8765"}).status_code == 200
    cross = api.post("/api/query", json={"cypher": "CREATE (:Note)"}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403 and served.query("MATCH (n:Note) RETURN count(n) AS n")[0]["n"] == 0
    same = api.post("/api/query", json={"cypher": "RETURN 1 AS one"}, headers={"origin": "http://localhost"})
    assert same.status_code == 200
    exposed = client(served, host="0.0.0.0")  # bound to every interface on purpose: any name reaches it
    assert exposed.get("/api/info", headers={"host": "box.lan:8765"}).status_code == 200


# -- the command ----------------------------------------------------------------------------------
def test_personagraph_serve_answers_over_http_and_stops_on_ctrl_c(store_options: StoreConfig, world: World) -> None:
    command = [sys.executable, "-m", "personagraph", "--data-dir", str(store_options.data_dir), "--graph", store_options.graph,
               "serve", "--port", "0"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = found.group(0)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(base + "api/info", timeout=5) as answer:
                    info = json.load(answer)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert info["counts"]["personas"] == 4 and info["write"] is False
        with urllib.request.urlopen(base, timeout=5) as answer:
            assert answer.status == 200 and "text/html" in answer.headers["content-type"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
