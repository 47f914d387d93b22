"""The web app behind `personagraph serve`: a JSON API over a `personagraph.Graph` and the single-page front end.

`create_app(graph)` builds it; the command runs it with uvicorn on 127.0.0.1. Security, in short
(docs/web.md has the whole of it): the console is read-only unless the app is made with
`write=True`; a read query has `timeout_s` and at most `row_cap` rows; no endpoint reads or writes a
file outside the data folder; on loopback, a request naming another host (DNS rebinding) or a
write from another origin is refused; pages load nothing but the app's own files (CSP), and
persona text, which is LLM output, is JSON data the page shows as text.

    >>> app = create_app(personagraph.open(".personagraph"), row_cap=500)
    >>> TestClient(app, base_url="http://localhost").get("/api/info").json()["counts"]
    {'personas': 1200, 'edges': 3400, ...}
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import personagraph
from personagraph.api import Graph
from personagraph.coverage import CoverageReport, region_coverage
from personagraph.graph.model import REGION_ATTRIBUTES, InvalidName, check_property
from personagraph.graph.store import LIVE_STATUSES, QueryError, QueryTimeout, ReadOnlyViolation, StoreUnavailable
from personagraph.web import personas, samples
from personagraph.web.console import ConsoleRefusal, ready_queries, ready_query_text, run_console_query
from personagraph.web.models import (
    Counts,
    ErrorBody,
    Info,
    Neighbourhood,
    PersonaHit,
    PersonaPage,
    QueryAnswer,
    QueryRequest,
    ReadyQuery,
    RunInfo,
    SampleFile,
    SamplePage,
    jsonable,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
PAGES = ("/", "/persona/{persona_id}", "/neighbourhood/{persona_id}", "/coverage", "/runs", "/samples")
# Edge types that link a persona to where it came from or what it made: not relationships between personas.
PROVENANCE_EDGES = frozenset({"EXTRACTED_FROM", "GENERATED_BY"})
_RUN_TIME = re.compile(r"-(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})-")
_COUNTER_LINE = re.compile(r"^.+: -?\d+(\.\d+)?$")
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 403, 404, 408, 503)}


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine only."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host of a Host header, without the port ('[::1]:8765' -> '::1')."""
    if header.startswith("["):
        return header[1:header.find("]")].lower() if "]" in header else header.lower()
    return header.rsplit(":", 1)[0].lower() if header.count(":") == 1 else header.lower()


def run_info(props: dict[str, Any]) -> RunInfo:
    """A Run node as the runs page shows it: numbers are counts, llm_* are tokens, the rest inputs."""
    counts: dict[str, Any] = {}
    tokens: dict[str, int] = {}
    inputs: dict[str, Any] = {}
    for key, value in sorted(props.items()):
        if key in ("id", "stage", "seconds"):
            continue
        if key.startswith("llm_") and isinstance(value, (int, float)):
            tokens[key.removeprefix("llm_")] = int(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            counts[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, str) and _COUNTER_LINE.match(v) for v in value):
            counts[key] = value
        else:
            inputs[key] = value
    run_id = str(props.get("id", ""))
    when = _RUN_TIME.search(run_id)
    started = "{}-{}-{}T{}:{}:{}".format(*when.groups()) if when else None
    seconds = props.get("seconds")
    return RunInfo(id=run_id, stage=props.get("stage"), started=started,
                   elapsed_s=float(seconds) if isinstance(seconds, (int, float)) else None,
                   counts=jsonable(counts), tokens=tokens, inputs=jsonable(inputs))


def info_counts(stats: dict[str, Any]) -> Counts:
    """The header's counts from `Graph.stats()`."""
    by_label: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for row in stats["nodes"]:
        by_label[str(row["label"])] = by_label.get(str(row["label"]), 0) + int(row["nodes"])
        if row["label"] == "Persona":
            by_status[str(row["status"])] = by_status.get(str(row["status"]), 0) + int(row["nodes"])
    by_type = {str(r["type"]): int(r["edges"]) for r in stats["edges"]}
    return Counts(personas=sum(n for s, n in by_status.items() if s in LIVE_STATUSES),
                  edges=sum(n for t, n in by_type.items() if t not in PROVENANCE_EDGES),
                  sources=by_label.get("Source", 0), samples=by_label.get("Sample", 0), runs=by_label.get("Run", 0),
                  personas_by_status=by_status, edges_by_type=by_type)


def _docs_page() -> HTMLResponse:
    """Swagger UI from the vendored files; its one inline script allowed by its hash, nothing else inline."""
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="personagraph API",
                               swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
                               swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
                               swagger_favicon_url="data:,")
    html = bytes(page.body).decode("utf-8")
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline)
    # Swagger UI also sets inline styles: allowed on this page only.
    csp = CSP.replace("default-src 'self';", f"default-src 'self'; script-src 'self' {hashes};")
    page.headers["Content-Security-Policy"] = csp.replace("style-src 'self';", "style-src 'self' 'unsafe-inline';")
    return page


def create_app(graph: Graph, *, write: bool = False, row_cap: int = 1000, timeout_s: float = 10.0,
               host: str = "127.0.0.1", data_dir: Path | None = None) -> FastAPI:
    """The web app over `graph`.

    `write` lets the console change the graph; `row_cap` and `timeout_s` bound a console query;
    `host` is the interface it is served on (on loopback, requests naming any other host are
    refused); `data_dir` is the folder samples may be read from (default: the store's data folder).
    """
    folder = (data_dir or graph.settings.store.data_dir).resolve()
    guard_host = is_loopback(host)
    allowed_hosts = LOOPBACK_NAMES | {host.strip("[]").lower()}
    app = FastAPI(title="personagraph", version=personagraph.__version__, docs_url=None, redoc_url=None,
                  description="The persona graph over HTTP: the Cypher console, personas, neighbourhoods, coverage, "
                              "runs and synthesized samples. Read-only unless served with --write.")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Refuse other hosts' names (DNS rebinding) and cross-origin writes; set the security headers."""
        host_header = request.headers.get("host", "")
        if guard_host and _host_name(host_header) not in allowed_hosts:
            response: Response = JSONResponse({"detail": f"host {host_header!r} refused: this server answers to localhost only"},
                                              status_code=403)
        elif (request.method not in ("GET", "HEAD", "OPTIONS") and (origin := request.headers.get("origin"))
              and urlsplit(origin).netloc.lower() != host_header.lower()):
            response = JSONResponse({"detail": f"origin {origin!r} refused: requests that may change something "
                                               "must come from this app's own pages"}, status_code=403)
        else:
            response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(QueryError)
    async def query_error(request: Request, exc: QueryError) -> JSONResponse:
        """A store error as the HTTP error the page shows: 403 for a write, 408 past the timeout, 400 otherwise."""
        if isinstance(exc, ReadOnlyViolation):
            return JSONResponse({"detail": "this query writes to the graph, and this server is read-only (start it "
                                           "with `personagraph serve --write` to allow writes)"}, status_code=403)
        if isinstance(exc, QueryTimeout):
            return JSONResponse({"detail": f"the query ran longer than {timeout_s:g} s and was stopped (add a LIMIT, "
                                           "or start the server with a larger --timeout)"}, status_code=408)
        return JSONResponse({"detail": f"the database rejected the query: {exc}"}, status_code=400)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        """The database is down or unreachable: say so, and what to do."""
        return JSONResponse({"detail": f"{exc}; `personagraph db status` says why"}, status_code=503)

    @app.get("/api/info", response_model=Info, tags=["graph"])
    def info() -> Info:
        """The server's settings (write, row cap, timeout) and what the graph holds."""
        store = graph.store
        return Info(graph=store.options.graph, backend=store.dialect, where=store.describe(), data_dir=str(folder), write=write,
                    row_cap=row_cap, timeout_s=timeout_s, version=personagraph.__version__,
                    counts=info_counts(graph.stats()))

    @app.get("/api/queries", response_model=list[ReadyQuery], tags=["console"])
    def queries() -> list[ReadyQuery]:
        """The ready-made queries (`personagraph query --list`), with their parameters and text."""
        return ready_queries(graph.store.dialect)

    @app.post("/api/query", response_model=QueryAnswer, responses=ERRORS, tags=["console"])
    def query(body: QueryRequest) -> QueryAnswer:
        """Run Cypher (or a ready-made query by name): 403 for a write on a read-only server, 408 past
        the timeout, 400 for the database's errors; rows past the cap are cut off (`truncated`)."""
        if (body.cypher is None) == (body.name is None):
            raise HTTPException(400, "give either `cypher` (the query's text) or `name` (a ready-made query)")
        store = graph.store
        try:
            text = body.cypher if body.cypher is not None else ready_query_text(body.name or "", store.dialect)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        if not text.strip():
            raise HTTPException(400, "the query is empty")
        try:
            return run_console_query(store, text, body.params, write=write, row_cap=row_cap, timeout_s=timeout_s)
        except ConsoleRefusal as exc:
            raise HTTPException(403, str(exc)) from None
        except ValueError as exc:  # a parameter value the database cannot be sent
            raise HTTPException(400, str(exc)) from None

    @app.get("/api/personas", response_model=list[PersonaHit], responses=ERRORS, tags=["personas"])
    def search(q: Annotated[str, Query(min_length=1, max_length=500, description="An id, or text the description contains")],
               limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[PersonaHit]:
        """Personas whose id is `q` or whose description contains it (any case): a scan, bounded by the timeout."""
        return personas.search_personas(graph.store, q, limit, timeout_s)

    @app.get("/api/persona/{persona_id}", response_model=PersonaPage, response_model_by_alias=True,
             responses=ERRORS, tags=["personas"])
    def persona(persona_id: str) -> PersonaPage:
        """A persona: description, attributes, filter verdict, relationships both ways, the path back to
        its source text, aliases and merged ids, and its samples. A merged id answers with its survivor."""
        try:
            return personas.persona_page(graph.store, persona_id)
        except personas.UnknownPersona as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/api/neighbourhood/{persona_id}", response_model=Neighbourhood, responses=ERRORS, tags=["personas"])
    def neighbourhood(persona_id: str,
                      hops: Annotated[int, Query(ge=0, le=6, description="Relationship hops from the centre")] = 2,
                      limit: Annotated[int, Query(ge=1, le=5000, description="Most personas returned, nearest first")] = 1000,
                      ) -> Neighbourhood:
        """The personas within `hops` of a persona (edges either way), nearest first, and the edges among them."""
        try:
            return personas.neighbourhood(graph.store, persona_id, hops, limit)
        except personas.UnknownPersona as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/api/coverage", response_model=CoverageReport, responses=ERRORS, tags=["graph"])
    def coverage(attribute: Annotated[list[str] | None, Query(description="Region attribute (repeatable; default: "
                                                                         + ", ".join(REGION_ATTRIBUTES) + ")")] = None,
                 top: Annotated[int, Query(ge=1, le=100, description="Values per attribute; the rest summed as 'other'")] = 12,
                 graph_measures: Annotated[bool, Query(alias="graph", description="Also measure the graph's shape "
                                                       "(reads every persona and edge)")] = True,
                 target: Annotated[str | None, Query(description="A targets TOML file inside the data folder")] = None,
                 ) -> CoverageReport:
        """Live personas per region value with shares (and target gaps), and the graph's shape: hops,
        components, degrees, relation types, frontier, isolated personas."""
        from personagraph.targets import load_targets

        try:
            attributes = [check_property(a) for a in attribute or REGION_ATTRIBUTES]
            targets = load_targets(samples.inside(folder, target)) if target else None
        except samples.OutsideDataFolder as exc:
            raise HTTPException(403, str(exc)) from None
        except (InvalidName, ValueError, OSError) as exc:
            raise HTTPException(400, str(exc)) from None
        return region_coverage(graph.store, attributes, top, targets, graph_measures)

    @app.get("/api/runs", response_model=list[RunInfo], tags=["graph"])
    def runs() -> list[RunInfo]:
        """Every recorded stage run (Run nodes), newest first, with its counts, tokens and inputs."""
        found = [run_info(row[0]) for row in graph.store.run_named("web/runs").rows]
        return sorted(found, key=lambda r: (r.started or "", r.id), reverse=True)

    @app.get("/api/samples/files", response_model=list[SampleFile], tags=["samples"])
    def sample_files() -> list[SampleFile]:
        """JSONL and Parquet files under the data folder (the store's own folders left out)."""
        return samples.sample_files(folder)

    @app.get("/api/samples", response_model=SamplePage, responses=ERRORS, tags=["samples"])
    def sample_rows(file: Annotated[str, Query(description="Path relative to the data folder")],
                    offset: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=samples.MAX_PAGE)] = 50) -> SamplePage:
        """A page of a samples file's rows as written (their persona_id / persona_ids link to persona pages)."""
        try:
            return samples.read_page(folder, file, offset, limit)
        except samples.OutsideDataFolder as exc:
            raise HTTPException(403, str(exc)) from None
        except samples.NotASampleFile as exc:
            raise HTTPException(400, str(exc)) from None
        except FileNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return _docs_page()

    def page() -> Response:
        """The single-page front end; it routes on location.pathname."""
        index = STATIC_DIR / "index.html"
        if not index.is_file():
            return HTMLResponse("<!doctype html><title>personagraph</title><p>The front end is not installed; "
                                "the API is at <a href=\"/docs\">/docs</a>.</p>")
        return FileResponse(index, media_type="text/html")

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    return app
