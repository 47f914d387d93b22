"""The `personagraph` command line: thin commands that read the config once, open the store and call a stage."""

from __future__ import annotations

import csv
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

import cypher
from graph import server
from graph.store import GraphStore, QueryError, ReadOnlyViolation, StoreOptions, StoreUnavailable, open_store
from pipeline.errors import UserActionNeeded
from pipeline.config import CONFIG_FILE_NAME, Settings, load_settings, write_default_config
from pipeline.readers import InputError

if TYPE_CHECKING:  # the stages are imported by the commands that run them (a fast --help)
    from pipeline.llm import LLMClient
    from pipeline.sample import SampleDraw

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="personagraph",
    help=(
        "Build a persona social graph from web text and use it to synthesise data (Persona Hub's method, "
        "graph-first). Personas are nodes, relationships are typed edges, every stage is a query or a "
        "write on the graph: an embedded FalkorDB by default, Neo4j via --store neo4j://host:7687."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
db_app = typer.Typer(help="Start, stop and inspect the embedded FalkorDB server of the data folder.", no_args_is_help=True)
app.add_typer(db_app, name="db")
model_app = typer.Typer(help="Start, stop and inspect the embedded SmolLM2 model server of the data folder.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@dataclass
class AppState:
    """What every command needs: the settings (read once) and a lazily opened store."""

    config_path: Optional[Path] = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Optional[Settings] = None
    _store: Optional[GraphStore] = None
    _llm_clients: list[LLMClient] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            for key, value in self.overrides.items():
                setattr(self._settings.store, key, value)
        return self._settings

    def store_options(self) -> StoreOptions:
        s = self.settings.store
        return StoreOptions(
            uri=s.uri,
            data_dir=s.data_dir,
            graph=s.graph,
            user=s.user,
            password=s.password.get_secret_value(),
            batch_size=s.batch_size,
        )

    def store(self) -> GraphStore:
        if self._store is None:
            self._store = open_store(self.store_options())
        return self._store

    def llm_client(self) -> LLMClient:
        """A connected LLM client for this command; `user_errors` fails the command if none of its calls succeeded."""
        from pipeline.llm import LLMClient

        client = LLMClient.from_settings(self.settings)
        self._llm_clients.append(client)
        return client

    def nothing_answered(self) -> str:
        """Why the command did nothing useful: it asked the LLM and no request succeeded ('' when some did, or none was made)."""
        for client in self._llm_clients:
            u = client.usage
            if u.requests and not u.succeeded:
                return (f"no LLM call succeeded: all {u.requests:,} requests to {client.base_url} failed (last error: "
                        f"{u.last_error[:300]}); nothing came from the model. `personagraph doctor` checks the endpoint; "
                        "rerun to retry")
        return ""

    def finish(self) -> None:
        """Before a command reports success: check that what it wrote is on disk."""
        if self._store is not None:
            self._store.persist()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


STATE = AppState()


def fail(message: str, code: int = 1) -> None:
    """Print one clear error line (no traceback) and exit."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # one line, unwrapped
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can act on into one-line messages; check durability before success."""
    try:
        yield
        STATE.finish()
        if why := STATE.nothing_answered():
            fail(why)
    except (StoreUnavailable, UserActionNeeded) as exc:
        fail(str(exc), 3)
    except ReadOnlyViolation:
        fail("this query writes to the graph and was refused; rerun with --write if you mean it", 2)
    except QueryError as exc:
        fail(f"the database rejected the query: {exc}", 2)
    except (InputError, FileNotFoundError, ValueError) as exc:
        if why := STATE.nothing_answered():  # e.g. `run` finding no persona to synthesize with: a consequence
            fail(f"{why} (then: {exc})")
        fail(str(exc), 2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: what was written so far is kept; rerun to continue")
        raise typer.Exit(130) from None
    finally:
        STATE.close()


def progress() -> Progress:
    """The progress bar every long command uses: count, rate-bearing bar, elapsed and ETA."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def print_estimate(title: str, rows: list[tuple[str, str]], estimate: Any) -> None:
    """A --dry-run report: the stage's own rows, then the LLM calls and rough tokens it would spend."""
    table = Table(title=f"{title} --dry-run (nothing called, nothing written)", show_header=False)
    for name, value in rows:
        table.add_row(name, value)
    table.add_row("LLM requests", f"{estimate.requests:,} ({estimate.cached:,} answered by the cache)")
    table.add_row("LLM calls", f"{estimate.calls:,}")
    table.add_row("prompt tokens (approx.)", f"{estimate.prompt_tokens:,}")
    table.add_row("completion tokens (at most)", f"{estimate.max_completion_tokens:,}")
    console.print(table)


def new_run_id(stage: str) -> str:
    """A run id that sorts by time: `<stage>-<yyyymmddHHMMSS>-<random>`."""
    return f"{stage}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"


@app.callback()
def main_options(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help=f"TOML config file (default: ./{CONFIG_FILE_NAME} if present)")] = None,
    store: Annotated[Optional[str], typer.Option("--store", help="'embedded' or a Neo4j URI (neo4j://host:7687, bolt://...)")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Folder of the embedded store, caches and indexes")] = None,
    graph: Annotated[Optional[str], typer.Option("--graph", help="Graph name (FalkorDB) or database (Neo4j)")] = None,
) -> None:
    """Options that apply to every command."""
    STATE.config_path = config
    STATE._settings = None
    STATE._store = None
    STATE._llm_clients = []
    STATE.overrides = {k: v for k, v in {"uri": store, "data_dir": data_dir, "graph": graph}.items() if v is not None}


@app.command()
def init(
    reset: Annotated[bool, typer.Option("--reset", help="Delete every node and edge of the graph first")] = False,
) -> None:
    """Create the config file (if missing), start the store and create its indexes and constraints."""
    with user_errors():
        cfg = Path(CONFIG_FILE_NAME)
        if STATE.config_path is None and not cfg.exists():
            write_default_config(cfg)
            console.print(f"wrote [bold]{cfg}[/] (edit it, or override with PERSONAGRAPH_* variables)")
        st = STATE.store()
        if reset:
            st.reset()
            console.print("graph reset: every node and edge deleted")
        console.print(f"store ready: {st.describe()}")


@app.command()
def run(
    corpus: Annotated[Path, typer.Argument(help="Texts: JSONL/Parquet/CSV with a text field, or a folder of .txt/.md files")],
    field_name: Annotated[Optional[str], typer.Option("--field", help="Field holding the text (found automatically when obvious)")] = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where personas.jsonl and the synthesized rows go")] = Path("out"),
    hops: Annotated[int, typer.Option("--hops", help="Persona-to-Persona hops (0 = no expansion)", min=0, max=6)] = 2,
    fanout: Annotated[int, typer.Option("--fanout", help="Personas asked for per seed and relation", min=1)] = 2,
    max_new: Annotated[int, typer.Option("--max-new", help="Expansion budget: new personas at most", min=0)] = 60,
    task: Annotated[str, typer.Option("--task", help="Synthesis task (personagraph synthesize --list)")] = "math_problem",
    count: Annotated[int, typer.Option("-n", "--count", help="Rows to synthesize (0 = none)", min=0)] = 10,
    lang: Annotated[str, typer.Option("--lang", help="Prompt language for expansion and synthesis: en or zh")] = "en",
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed for synthesis")] = 0,
    judge: Annotated[Optional[bool], typer.Option("--judge/--no-judge", help="LLM judge in the filter (default: only with a configured endpoint, not the tiny embedded model)")] = None,
) -> None:
    """The whole method on a corpus: extract, filter, dedup, expand, filter, dedup, synthesize. Rerun to resume."""
    from pipeline.run import RunOptions, run_pipeline

    with user_errors():
        options = RunOptions(corpus=corpus, field=field_name, output_dir=output_dir, hops=hops, fanout=fanout,
                             max_new=max_new, task=task, count=count, lang=lang, seed=seed, judge=judge)
        st = STATE.store()
        client = STATE.llm_client()
        run_id = new_run_id("run")
        with client, console.status("starting") as status:
            summary = run_pipeline(STATE.settings, st, client, options, run_id=run_id,
                                   on_stage=lambda msg: (status.update(msg), console.log(msg)))
        table = Table("stage", "seconds", "what it did", title=f"personagraph run {corpus} ({run_id})")
        for s in summary.stages:
            table.add_row(s.stage, f"{s.seconds:.1f}", ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in s.numbers.items()))
        console.print(table)
        u = summary.usage
        console.print(f"graph: {summary.live_personas:,} live personas, {summary.edges:,} edges; LLM: {u.get('llm_requests', 0):,} requests "
                      f"({u.get('llm_cached', 0):,} cached), {u.get('llm_prompt_tokens', 0):,} + {u.get('llm_completion_tokens', 0):,} tokens")
        console.print(f"wrote {summary.personas_file}" + (f" and {summary.samples_file}" if summary.samples_file else "")
                      + "; explore with `personagraph stats`, `personagraph coverage`, `personagraph query --list`")


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="Personas as JSONL, Parquet or CSV (e.g. Persona Hub's {\"persona\": ...} lines)")],
    field_name: Annotated[Optional[str], typer.Option("--field", help="Field holding the description (found automatically when obvious)")] = None,
) -> None:
    """Import ready-made personas as nodes. Re-importing the same file changes nothing."""
    from pipeline.importer import import_personas

    with user_errors():
        st = STATE.store()
        run_id = new_run_id("import")
        size = file.stat().st_size if file.is_file() else 0
        with progress() as bar:
            task = bar.add_task(f"importing {file.name}", total=None, rate="")
            started = time.monotonic()

            def tick(read: int) -> None:
                rate = read / max(time.monotonic() - started, 1e-6)
                bar.update(task, completed=read, rate=f"{rate:,.0f} rec/s")

            summary = import_personas(
                st, file, field_name,
                min_chars=STATE.settings.import_.min_chars, max_chars=STATE.settings.import_.max_chars,
                run_id=run_id, on_progress=tick,
            )
            bar.update(task, total=summary.read)
        st.record_run(run_id, {"stage": "import", "path": str(file), "bytes": size, "read": summary.read,
                               "imported": summary.imported, "skipped": summary.skipped_total})
        for problem in summary.problems:
            err_console.print(f"[yellow]skipped[/] {escape(problem)}", highlight=False)
        for change in summary.changes:
            err_console.print(f"[yellow]cleaned[/] {escape(change)}", highlight=False)
        table = Table(title=f"import {file} (field {summary.field!r})", show_header=False)
        table.add_row("records read", f"{summary.read:,}")
        table.add_row("personas created", f"{summary.imported:,}")
        table.add_row("already in the graph", f"{summary.already_present:,}")
        table.add_row("skipped", f"{summary.skipped_total:,}" + (f"  ({', '.join(f'{k}: {v}' for k, v in summary.skipped.items())})" if summary.skipped else ""))
        if summary.cleaned:
            table.add_row("values cleaned", f"{sum(summary.cleaned.values()):,}  ({', '.join(f'{k}: {v}' for k, v in summary.cleaned.items())})")
        if summary.restored:
            table.add_row("exported properties restored", f"{summary.restored:,} personas (status, hop, aliases, ...)")
        console.print(table)
        if not summary.usable:
            fail(f"nothing imported from {file}: none of its {summary.read:,} records has a usable {summary.field!r} field")


@app.command()
def extract(
    file: Annotated[Path, typer.Argument(help="Texts: JSONL, Parquet or CSV with a text field, or a folder of .txt/.md files")],
    field_name: Annotated[Optional[str], typer.Option("--field", help="Field holding the text (found automatically when obvious)")] = None,
    stance: Annotated[list[str], typer.Option("--stance", help="Who would read / write / like the text (repeatable; config default: read)")] = [],
    output_format: Annotated[Optional[str], typer.Option("--format", help="plain (description) or structured (with attributes)")] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="Prompt language: auto, en or zh")] = None,
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", help="LLM calls in flight", min=1)] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Read only the first N records", min=1)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the calls and rough tokens it would spend; call and write nothing")] = False,
) -> None:
    """Text-to-Persona: infer who would read / write / like each text; personas, sources and edges go into the graph."""
    from pydantic import ValidationError

    from pipeline.config import ExtractConfig
    from pipeline.extract import estimate_extract, extract_personas
    from pipeline.llm import LLMClient
    from pipeline.readers import count_records

    with user_errors():
        settings = STATE.settings
        updates = {"stances": stance or None, "format": output_format, "lang": lang}
        try:
            settings.extract = ExtractConfig.model_validate(
                settings.extract.model_dump() | {k: v for k, v in updates.items() if v is not None})
        except ValidationError as exc:
            flags = {"stances": "--stance", "format": "--format", "lang": "--lang"}
            fail("; ".join(f"{flags.get(str(e['loc'][0]), e['loc'][0])} {e['input']!r}: {e['msg']}" for e in exc.errors()), 2)
        if concurrency:
            settings.llm.concurrency = concurrency
        st = STATE.store()
        if dry_run:
            with LLMClient.from_settings(settings, connect=False) as client:
                planned, estimate = estimate_extract(settings, st, client, file, field_name, limit=limit)
            print_estimate(f"extract {file} (field {planned.field!r})", [
                ("texts read", f"{planned.texts_read:,}"),
                ("would be skipped", f"{planned.texts_skipped:,}" + "".join(f"\n  {k}: {v:,}" for k, v in planned.skipped.most_common())),
            ], estimate)
            return
        client = STATE.llm_client()
        run_id = new_run_id("extract")
        with client, progress() as bar:
            total = count_records(file)
            job = bar.add_task(f"extracting {file.name}", total=min(total, limit) if total and limit else total or limit, rate="")
            started = time.monotonic()

            def tick(summary: Any) -> None:
                rate = summary.texts_done / max(time.monotonic() - started, 1e-6)
                bar.update(job, completed=summary.texts_done, rate=f"{rate:,.1f} texts/s")

            summary = extract_personas(settings, st, client, file, field_name, run_id=run_id, limit=limit, on_progress=tick)
            bar.update(job, total=summary.texts_read, completed=summary.texts_done)
        for problem in summary.problems:
            err_console.print(f"[yellow]note[/] {escape(problem)}", highlight=False)
        llm = summary.llm
        table = Table(title=f"extract {file} (field {summary.field!r}, {summary.seconds:.1f}s)", show_header=False)
        table.add_row("texts read", f"{summary.texts_read:,}")
        table.add_row("texts extracted", f"{summary.texts_extracted:,} ({summary.chunks:,} chunks)")
        table.add_row("texts with failures", f"{summary.texts_failed:,}" + (f"  (kept for a rerun; raw answers in {summary.failures_file})" if summary.failures_file else ""))
        table.add_row("skipped", f"{summary.texts_skipped:,}" + "".join(f"\n  {k}: {v:,}" for k, v in summary.skipped.most_common()))
        if summary.cleaned:
            table.add_row("texts cleaned", f"{summary.cleaned:,} (NUL characters or unpaired surrogates removed)")
        table.add_row("personas created", f"{summary.personas_created:,}")
        table.add_row("rejected by the filter", f"{summary.personas_rejected:,} (kept with status rejected)"
                      + "".join(f"\n  {k}: {v:,}" for k, v in summary.rejected.most_common()))
        table.add_row("already in the graph", f"{summary.personas_existing:,}")
        if summary.attributes_dropped:
            table.add_row("attribute values dropped", _dropped(summary.attributes_dropped))
        table.add_row("LLM requests", f"{llm.get('llm_requests', 0):,} ({llm.get('llm_cached', 0):,} cached, {llm.get('llm_failed', 0):,} failed, {llm.get('llm_calls', 0):,} calls)")
        table.add_row("tokens", f"{llm.get('llm_prompt_tokens', 0):,} prompt + {llm.get('llm_completion_tokens', 0):,} completion")
        console.print(table)
        if client.cache is not None and client.cache.write_error is not None:
            raise client.cache.write_error
        if summary.texts_skipped - summary.skipped["already extracted"] == summary.texts_read:
            fail(f"nothing to extract from {file}: none of its {summary.texts_read:,} records has usable text in {summary.field!r}")


@app.command()
def doctor() -> None:
    """Check the graph store and the LLM endpoint (lists models, makes one tiny call) and say what is wrong."""
    from pipeline.llm import check_endpoint
    from pipeline.llm.local_server import LOCAL_MODEL_NAME

    problems: list[str] = []
    try:
        st = STATE.store()
        console.print(f"[green]ok[/] store: {st.describe()}")
    except Exception as exc:  # any failure to reach the store is the finding itself
        problems.append(f"store: {exc}")
    finally:
        STATE.close()
    settings = STATE.settings
    endpoint = settings.llm.base_url or "embedded SmolLM2 (no OPENAI_BASE_URL / llm.base_url set)"
    found = check_endpoint(settings)
    problems += [f"LLM: {p}" for p in found]
    if not found:
        console.print(f"[green]ok[/] LLM: {endpoint}, model {settings.llm.model if settings.llm.base_url else LOCAL_MODEL_NAME}")
    for problem in problems:
        err_console.print(f"[bold red]problem[/] {escape(problem)}", highlight=False)
    if problems:
        raise typer.Exit(1)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs; values are JSON when they parse as JSON (numbers, lists, true), text otherwise."""
    params: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--param {pair!r}: expected NAME=VALUE")
        key, raw = pair.split("=", 1)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def resolve_query(text: str, dialect: str) -> str:
    """A .cypher file path, the name of a ready-made query in cypher/queries/, or literal Cypher."""
    path = Path(text)
    if text.endswith(".cypher") and path.is_file():
        return path.read_text(encoding="utf-8")
    if text in cypher.ready_made():
        return cypher.load(f"queries/{text}", dialect)
    return text


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


@app.command()
def query(
    cypher_or_file: Annotated[str, typer.Argument(help="Cypher text, a .cypher file, or a ready-made query name (see --list)")] = "",
    param: Annotated[list[str], typer.Option("--param", "-p", help="Query parameter NAME=VALUE (VALUE parsed as JSON when it can be)")] = [],
    write: Annotated[bool, typer.Option("--write", help="Allow the query to change the graph (read-only otherwise)")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, json (a list of row objects; nodes as property maps) or csv")] = OutputFormat.table,
    list_queries: Annotated[bool, typer.Option("--list", help="List the ready-made queries and exit")] = False,
) -> None:
    """Run Cypher over the persona graph. Read-only unless --write."""
    if list_queries:
        for name in cypher.ready_made():
            first = cypher.CYPHER_DIR.joinpath("queries", f"{name}.cypher").read_text(encoding="utf-8").splitlines()[0]
            console.print(f"[bold]{name}[/]  {first.lstrip('/ ')}")
        return
    if not cypher_or_file:
        fail("give a Cypher query, a .cypher file or a ready-made query name (personagraph query --list)", 2)
    with user_errors():
        st = STATE.store()
        res = st.query(resolve_query(cypher_or_file, st.dialect), parse_params(param), write=write)
        if fmt is OutputFormat.json:
            sys.stdout.write(json.dumps(res.records(), ensure_ascii=False, indent=2, default=str) + "\n")
        elif fmt is OutputFormat.csv:
            w = csv.writer(sys.stdout)
            w.writerow(res.columns)
            for row in res.rows:
                w.writerow([_cell(v) for v in row])
        else:
            table = Table(*res.columns) if res.columns else Table("result")
            for row in res.rows:
                table.add_row(*[_cell(v) for v in row])
            console.print(table)
            if write:
                s = res.stats
                console.print(f"nodes +{s.nodes_created} -{s.nodes_deleted}, edges +{s.relationships_created} -{s.relationships_deleted}, properties set {s.properties_set}")


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON")] = False,
) -> None:
    """Counts of personas by status and hop, of sources, runs and edges by type."""
    with user_errors():
        st = STATE.store()
        data = st.stats()
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        nodes = Table("label", "status", "nodes", title="nodes")
        for r in data["nodes"]:
            nodes.add_row(str(r["label"]), str(r["status"] or ""), f"{r['nodes']:,}")
        edges = Table("type", "edges", title="edges")
        for r in data["edges"]:
            edges.add_row(r["type"], f"{r['edges']:,}")
        hops = Table("hop", "live personas", title="hops")
        for r in data["hops"]:
            hops.add_row(str(r["hop"]), f"{r['personas']:,}")
        console.print(nodes, edges, hops)


def _dropped(counts: Counter[str]) -> str:
    """Attribute values a stage dropped because they fit no value of the region vocabulary, per attribute."""
    return f"{sum(counts.values()):,} (fit no value of the vocabulary)" + "".join(f"\n  {k}: {v:,}" for k, v in counts.most_common())


def _no_frontier(hops: int) -> str:
    """What `expand` says when no persona is left to expand (the run and its --dry-run alike)."""
    return (f"none: no accepted, unexpanded persona below hop {hops} (extracted personas become seeds once "
            "`personagraph filter` accepts them)")


@app.command()
def expand(
    hops: Annotated[Optional[int], typer.Option("--hops", help="Deepest hop a new persona may get (1-6; config default 6)", min=1, max=6)] = None,
    fanout: Annotated[Optional[int], typer.Option("--fanout", help="Personas asked for per seed and relation", min=1)] = None,
    max_new: Annotated[Optional[int], typer.Option("--max-new", help="Stop after creating this many personas", min=0)] = None,
    max_calls: Annotated[Optional[int], typer.Option("--max-calls", help="Stop after sending this many LLM requests", min=0)] = None,
    focus: Annotated[list[str], typer.Option("--focus", help="Aim at a region ATTRIBUTE=VALUE, e.g. age_group=child (repeatable)")] = [],
    relation: Annotated[list[str], typer.Option("--relation", "-r", help="Relation to ask about (repeatable; default: all, see --list-relations)")] = [],
    lang: Annotated[Optional[str], typer.Option("--lang", help="Prompt language: en or zh")] = None,
    list_relations: Annotated[bool, typer.Option("--list-relations", help="List the relation vocabulary and exit")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the next round's calls and tokens (cache consulted), call nothing")] = False,
) -> None:
    """Persona-to-Persona: propose related personas from the frontier, hop by hop, as typed edges (rerun to resume)."""
    from pipeline.expand import ExpandOptions, expand_with_settings, expander_from_settings
    from pipeline.llm import LLMClient
    from pipeline.relations import RelationVocabulary, parse_focus

    with user_errors():
        cfg = STATE.settings.expand
        vocabulary = RelationVocabulary.default(spec.to_relation() for spec in cfg.extra_relations)
        if list_relations:
            table = Table("relation", "edge", "leads to", "meaning", title="relations")
            for rel in vocabulary:
                edge = f"(new)-[:{rel.edge_type}]->(seed)" if rel.direction == "to_seed" else f"(seed)-[:{rel.edge_type}]->(new)"
                table.add_row(rel.name, edge, "; ".join(f"{k}={','.join(v)}" for k, v in rel.leads_to.items()), rel.description)
            console.print(table)
            return
        for name in relation:
            vocabulary[name]  # an unknown name fails here, listing the known ones
        options = ExpandOptions.from_config(cfg, hops=hops, fanout=fanout, max_new=max_new, max_calls=max_calls,
                                            focus=parse_focus(focus) or None, relations=relation or None, language=lang)
        st = STATE.store()
        run_id = new_run_id("expand")
        if dry_run:
            with LLMClient.from_settings(STATE.settings, connect=False) as client:
                stats, est = expander_from_settings(st, client, STATE.settings, options, run_id=run_id).estimate()
            next_round = (f"hop {stats.hop} -> {stats.hop + 1}, {stats.seeds:,} seeds (later rounds depend on its answers)"
                          if stats.seeds else _no_frontier(options.hops))
            print_estimate("expand", [("next round", next_round)], est)
            return
        started = time.monotonic()
        with STATE.llm_client() as client, progress() as bar:
            job = bar.add_task("expanding", total=None, rate="")

            def tick(label: str, done: int, total: int) -> None:
                rate = client.usage.requests / max(time.monotonic() - started, 1e-6)
                bar.update(job, description=label, completed=done, total=total, rate=f"{rate:,.1f} req/s")

            summary = expand_with_settings(st, client, STATE.settings, options, run_id=run_id, on_progress=tick)
        for error in summary.errors[:5]:
            err_console.print(f"[yellow]failed request[/] {escape(error)}", highlight=False)
        table = Table(title=f"expand {run_id} ({time.monotonic() - started:.1f}s, stopped: {summary.stopped_by})", show_header=False)
        table.add_row("rounds (hops)", ", ".join(f"{r.hop}->{r.hop + 1}: {r.seeds:,} seeds" for r in summary.rounds)
                      or _no_frontier(options.hops))
        table.add_row("seeds expanded", f"{summary.seeds_expanded:,}")
        table.add_row("LLM requests", f"{summary.requests:,} ({summary.usage.get('llm_cached', 0):,} cached, {summary.failed_requests:,} failed)")
        table.add_row("tokens", f"{summary.usage.get('llm_prompt_tokens', 0):,} prompt + {summary.usage.get('llm_completion_tokens', 0):,} completion")
        table.add_row("proposals", f"{summary.proposals:,}")
        table.add_row("personas created", f"{summary.created:,}")
        table.add_row("linked to existing personas", f"{summary.linked:,}")
        table.add_row("rejected", f"{sum(summary.rejected.values()):,}" + "".join(f"\n  {k}: {v:,}" for k, v in summary.rejected.most_common(8)))
        table.add_row("relation names rejected", f"{sum(summary.relation_rejected.values()):,}" + "".join(f"\n  {k}: {v:,}" for k, v in summary.relation_rejected.most_common(3)))
        if summary.attributes_dropped:
            table.add_row("attribute values dropped", _dropped(summary.attributes_dropped))
        table.add_row("edges created", f"{summary.edges_created:,}" + (f"  ({', '.join(f'{k}: {v:,}' for k, v in summary.edge_types.most_common(6))})" if summary.edge_types else ""))
        console.print(table)


@app.command()
def coverage(
    attribute: Annotated[list[str], typer.Option("--attribute", "-a", help="Region attribute (repeatable; default: age_group, occupation, domain, visibility, language)")] = [],
    top: Annotated[int, typer.Option("--top", help="Values shown per attribute; the rest are summed as 'other'", min=1)] = 12,
    chart: Annotated[Optional[Path], typer.Option("--chart", help="Also draw the shares as a PNG chart")] = None,
    save: Annotated[Optional[Path], typer.Option("--save", help="Save the report as JSON (to --compare against later)")] = None,
    compare: Annotated[Optional[Path], typer.Option("--compare", help="An earlier --save report: show the change in share")] = None,
) -> None:
    """How live personas spread over the regions (age group, domain, visibility, ...): counts and shares."""
    from graph.model import REGION_ATTRIBUTES, check_property
    from pipeline.coverage import CoverageReport, plot_coverage, region_coverage

    with user_errors():
        before = CoverageReport.model_validate_json(compare.read_text(encoding="utf-8")) if compare else None
        report = region_coverage(STATE.store(), [check_property(a) for a in attribute] or REGION_ATTRIBUTES, top)
        for name, rows in report.attributes.items():
            table = Table("value", "personas", "share", *(["change"] if before else []), title=f"{name} ({report.total:,} live personas)")
            for r in rows:
                change = [f"{100 * (r.share - before.share(name, r.value)):+.1f} pts"] if before else []
                table.add_row(r.value, f"{r.personas:,}", f"{r.share:.1%}", *change)
            console.print(table)
        if save:
            save.write_text(report.model_dump_json(indent=2), encoding="utf-8")
            console.print(f"saved the report to {save}")
        if chart:
            console.print(f"wrote the chart to {plot_coverage(report, chart, before)}")


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (a folder for neo4j-csv)")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl | parquet | graphml | neo4j-csv")] = "jsonl",
    all_statuses: Annotated[bool, typer.Option("--all", help="Include rejected and merged personas")] = False,
) -> None:
    """Export personas (JSONL/Parquet, loadable by `datasets`), the graph (GraphML), or neo4j-admin CSVs."""
    from graph.export import FORMATS, check_output, export_graph
    from graph.store import LIVE_STATUSES

    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", 2)
    with user_errors():
        check_output(fmt, output)  # before the store is opened
        st = STATE.store()
        started = time.monotonic()
        try:
            with console.status(f"exporting {fmt} to {output}"):
                n = export_graph(st, fmt, output, None if all_statuses else LIVE_STATUSES)
        except OSError as exc:  # permission denied, disk full, ...
            fail(f"cannot write {exc.filename or output}: {exc.strerror or exc}")
        console.print(f"wrote {n:,} nodes to {output} ({fmt}) in {time.monotonic() - started:.1f}s")


def smaller_clusters(min_size: Optional[int], allow_smaller: bool) -> Optional[int]:
    """The smallest cluster `--min-size` / `--allow-smaller` accept (None: the config's, by default `--size`)."""
    if allow_smaller and min_size is not None:
        fail("give --min-size N or --allow-smaller (the same as --min-size 1), not both", 2)
    return 1 if allow_smaller else min_size


def check_cluster_draw(draw: SampleDraw) -> str:
    """Fail, writing nothing, when a cluster draw fell short of what was asked; else a note on the seeds it skipped."""
    spec = draw.spec
    short = draw.shortfall()
    if short:
        found, smallest = len(draw.samples), spec.smallest_cluster
        options = ([f"ask for -n {found:,}"] if found else []) + (
            ["a smaller --size", "pass --allow-smaller to accept smaller clusters"] if smallest > 1 else [])
        fail(f"{short}; nothing written" + (f" ({', or '.join(options)})" if options else ""))
    if not draw.seeds_skipped:
        return ""
    return (f"; {draw.seeds_skipped:,} seeds skipped, their component holding fewer than {spec.smallest_cluster} "
            f"{'/'.join(spec.statuses)} personas")


@app.command()
def sample(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file: one sample per line")],
    strategy: Annotated[Optional[str], typer.Option("--strategy", "-s", help="uniform | stratified | ego | walk | community | cluster")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Members per sample")] = None,
    count: Annotated[int, typer.Option("-n", "--count", help="Number of samples")] = 10,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (same seed, same graph: same samples)")] = None,
    hops: Annotated[Optional[int], typer.Option("--hops", help="Ego-network radius")] = None,
    stratify_by: Annotated[Optional[str], typer.Option("--by", help="Attribute whose values get equal shares (stratified)")] = None,
    min_size: Annotated[Optional[int], typer.Option("--min-size", min=1, help="cluster: smallest cluster accepted (default: --size)")] = None,
    allow_smaller: Annotated[bool, typer.Option("--allow-smaller", help="cluster: accept clusters smaller than --size (= --min-size 1)")] = False,
) -> None:
    """Sample personas by where they sit in the graph; each line has the members and the edges among them.

    Clusters have exactly --size connected members: seeds whose component is smaller are skipped (and
    counted), and a graph that cannot supply -n of them is an error, unless --min-size / --allow-smaller.
    """
    from pipeline.sample import STRATEGIES, SampleSpec, draw_samples

    if strategy is not None and strategy not in STRATEGIES:
        fail(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}", 2)
    with user_errors():
        spec = SampleSpec.from_config(STATE.settings.synthesis, strategy=strategy, size=size, count=count, seed=seed,
                                      hops=hops, stratify_by=stratify_by, min_size=smaller_clusters(min_size, allow_smaller))
        if spec.strategy != "cluster" and (min_size is not None or allow_smaller):
            fail(f"--min-size and --allow-smaller apply to --strategy cluster, not {spec.strategy}", 2)
        st = STATE.store()
        started = time.monotonic()
        with console.status(f"sampling {count:,} x {spec.strategy}"):
            draw = draw_samples(st, spec)
        skipped = check_cluster_draw(draw)
        with output.open("w", encoding="utf-8") as fh:
            for s in draw.samples:
                fh.write(s.model_dump_json() + "\n")
        members = sum(len(s.members) for s in draw.samples)
        edges = sum(len(s.edges) for s in draw.samples)
        console.print(f"wrote {len(draw.samples):,} {spec.strategy} samples ({members:,} members, {edges:,} edges, "
                      f"seed {spec.seed}{skipped}) to {output} in {time.monotonic() - started:.1f}s")


@app.command()
def synthesize(
    task: Annotated[str, typer.Option("--task", "-t", help="Task prompt name (see --list)")] = "",
    count: Annotated[int, typer.Option("-n", "--count", help="Rows to synthesize (one per persona)")] = 10,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output .jsonl or .parquet (loads with `datasets`)")] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", "-m", help="zero_shot | few_shot | persona_few_shot | neighbourhood_few_shot")] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="en or zh")] = None,
    strategy: Annotated[Optional[str], typer.Option("--strategy", "-s", help="How personas are sampled (see `personagraph sample`)")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Members per sample")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (same seed, same graph: same rows)")] = None,
    examples: Annotated[Optional[Path], typer.Option("--examples", help="Demonstrations (JSONL/Parquet with `text`, `persona`, `persona_id`), e.g. an earlier output")] = None,
    world: Annotated[Optional[Path], typer.Option("--world", help="Text file describing the game world (game_npc)")] = None,
    write_back: Annotated[Optional[bool], typer.Option("--write-back/--no-write-back", help="Store rows as (:Sample)-[:GENERATED_BY]->(:Persona)")] = None,
    list_tasks: Annotated[bool, typer.Option("--list", help="List the tasks and their languages, then exit")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the personas, calls and rough tokens it would spend (cache consulted); call and write nothing")] = False,
) -> None:
    """Synthesize data with sampled personas: one row per persona, with the persona, task, mode and neighbourhood used."""
    from pipeline.llm import LLMClient
    from pipeline.sample import STRATEGIES, SampleSpec
    from pipeline.synthesize import MODES, SynthesisSpec, available_tasks, estimate_synthesis, synthesize as run_synthesis

    if strategy is not None and strategy not in STRATEGIES:
        fail(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}", 2)
    if mode is not None and mode not in MODES:
        fail(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}", 2)
    with user_errors():
        cfg = STATE.settings.synthesis
        if list_tasks:
            for name, langs in available_tasks(cfg.task_dirs).items():
                console.print(f"[bold]{name}[/]  {', '.join(langs)}")
            return
        if not task or (output is None and not dry_run):
            fail("give --task NAME and --output FILE (personagraph synthesize --list shows the tasks)", 2)
        spec = SynthesisSpec(
            task=task, count=count, mode=mode or cfg.mode, lang=lang or cfg.lang, shots=cfg.shots, examples=examples,
            world=world.read_text(encoding="utf-8") if world else "", task_dirs=cfg.task_dirs,
            write_back=cfg.write_back if write_back is None else write_back,
            sample=SampleSpec.from_config(cfg, strategy=strategy, size=size, seed=seed),
        )
        st = STATE.store()
        if dry_run:
            with LLMClient.from_settings(STATE.settings, connect=False) as client:
                personas, estimate = estimate_synthesis(st, client, spec)
            print_estimate(f"synthesize {spec.task}",
                           [("personas sampled", f"{personas:,} ({spec.sample.strategy}, seed {spec.sample.seed})")], estimate)
            return
        run_id = new_run_id("synthesize")
        started = time.monotonic()
        with STATE.llm_client() as client, progress() as bar:
            job = bar.add_task(f"{spec.task} ({spec.mode}, {spec.lang})", total=None, rate="")

            def tick(done: int, total: int) -> None:
                bar.update(job, completed=done, total=total, rate=f"{done / max(time.monotonic() - started, 1e-6):,.1f} rows/s")

            summary = run_synthesis(st, client, spec, output, run_id, tick)
            usage = client.usage.as_dict()
        st.record_run(run_id, {"stage": "synthesize", "task": spec.task, "mode": spec.mode, "lang": spec.lang,
                               "strategy": spec.sample.strategy, "seed": spec.sample.seed, "output": str(output),
                               "written": summary.written, "failed": summary.failed, **usage})
        for failure in summary.failures:
            err_console.print(f"[yellow]failed[/] {escape(failure)}", highlight=False)
        table = Table(title=f"synthesize {spec.task} -> {output}", show_header=False)
        table.add_row("personas sampled", f"{summary.personas:,} ({spec.sample.strategy}, seed {spec.sample.seed})")
        table.add_row("rows written", f"{summary.written:,} ({summary.cached:,} answered from the cache)")
        table.add_row("failed", f"{summary.failed:,}" + (" (rerun to retry them)" if summary.failed else ""))
        if spec.mode == "neighbourhood_few_shot":
            table.add_row("no neighbour samples", f"{summary.without_neighbour_samples:,} (prompted without demonstrations)")
        if spec.write_back:
            table.add_row("Sample nodes linked", f"{summary.written_back:,}")
        table.add_row("tokens", f"{usage['llm_prompt_tokens']:,} prompt, {usage['llm_completion_tokens']:,} completion")
        console.print(table)


@app.command()
def simulate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder: one <cluster_id>.json per cluster")],
    count: Annotated[int, typer.Option("-n", "--count", help="Number of clusters")] = 5,
    size: Annotated[Optional[int], typer.Option("--size", help="Personas per cluster")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (same seed, same graph: same clusters)")] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="Conversation rounds along the edges (0 = export only)")] = 0,
    lang: Annotated[Optional[str], typer.Option("--lang", help="Conversation language: en or zh")] = None,
    scenario: Annotated[str, typer.Option("--scenario", help="The situation the members meet in")] = "",
    min_size: Annotated[Optional[int], typer.Option("--min-size", min=1, help="Smallest cluster accepted (default: --size)")] = None,
    allow_smaller: Annotated[bool, typer.Option("--allow-smaller", help="Accept clusters smaller than --size (= --min-size 1)")] = False,
) -> None:
    """Export connected persona clusters for multi-agent simulation, optionally with a conversation among members.

    Every cluster has exactly --size connected members unless --min-size / --allow-smaller; a graph
    that cannot supply -n of them is an error before any conversation is paid for.
    """
    import asyncio

    from pipeline.sample import SampleSpec, draw_samples
    from pipeline.simulate import converse, export_clusters, write_clusters

    with user_errors():
        cfg = STATE.settings.synthesis
        spec = SampleSpec.from_config(cfg, strategy="cluster", size=size, count=count, seed=seed,
                                      min_size=smaller_clusters(min_size, allow_smaller))
        st = STATE.store()
        started = time.monotonic()
        with console.status(f"sampling {count:,} connected clusters of {spec.size}"):
            draw = draw_samples(st, spec)
        skipped = check_cluster_draw(draw)
        clusters = export_clusters(draw.samples)
        line = ""
        if rounds > 0:
            with STATE.llm_client() as client, console.status(f"{rounds} conversation rounds"):
                talk = asyncio.run(converse(client, clusters, rounds, lang or cfg.lang, scenario))
                usage = client.usage.as_dict()
            st.record_run(new_run_id("simulate"), {"stage": "simulate", "clusters": len(clusters), "rounds": rounds,
                                                   "seed": spec.seed, "output": str(output), **usage})
            line = f"; {talk.messages:,} messages in {rounds} rounds ({talk.cached:,} cached, {talk.failed:,} failed)"
        paths = write_clusters(clusters, output)
        agents = sum(len(c.agents) for c in clusters)
        console.print(f"wrote {len(paths):,} clusters ({agents:,} agents, seed {spec.seed}{skipped}) to {output}{line} "
                      f"in {time.monotonic() - started:.1f}s")


@app.command()
def dedup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the groups that would merge, with similarity; change nothing")] = False,
    method: Annotated[Optional[str], typer.Option("--method", help="minhash, embedding or both (config default: both)")] = None,
    show: Annotated[int, typer.Option("--show", help="Groups to list", min=0)] = 20,
) -> None:
    """Merge near-duplicate personas (MinHash and embeddings) into one survivor each, moving their edges."""
    from pipeline.dedup.index import index_folder
    from pipeline.dedup.stage import merge_duplicates

    with user_errors():
        if method not in (None, "minhash", "embedding", "both"):
            raise ValueError(f"--method must be minhash, embedding or both, not {method!r}")
        st = STATE.store()
        folder = index_folder(STATE.settings.store.data_dir, STATE.settings.store.graph)
        with progress() as bar:
            task = bar.add_task("dedup", total=None, rate="")
            report = merge_duplicates(st, STATE.settings.dedup, folder, method=method, dry_run=dry_run,  # type: ignore[arg-type]
                                      on_progress=lambda msg: bar.update(task, description=msg))
            bar.update(task, total=1, completed=1, description="dedup")
        shown = report.groups[:show]
        texts = st.get_personas([i for g in shown for i in [g.survivor, *g.duplicates]])
        table = Table("survivor", "duplicates", "similarity", "by", title="groups" + (" (dry run: nothing merged)" if dry_run else ""))
        for g in shown:
            dups = "\n".join(texts.get(d, {}).get("description", d) for d in g.duplicates)
            table.add_row(texts.get(g.survivor, {}).get("description", g.survivor), dups, f"{g.similarity:.2f}", ",".join(g.methods))
        if shown:
            console.print(table)
        console.print(f"{report.personas:,} live personas, pairs {report.pairs or '{}'}, {len(report.groups):,} groups, "
                      f"{report.merged:,} personas merged" + (f", {report.write.relationships_created:,} edges moved" if not dry_run else ""))


@app.command("filter")
def filter_cmd(
    report: Annotated[bool, typer.Option("--report", help="Show counts per status and criterion, with examples; change nothing")] = False,
    purge: Annotated[bool, typer.Option("--purge", help="Delete the rejected personas and their edges")] = False,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Cheap checks only, no LLM judge")] = False,
    lang: Annotated[str, typer.Option("--lang", help="Judge prompt language: en or zh")] = "en",
) -> None:
    """Judge personas on relevance, plausibility, specificity and readability: cheap checks, then an LLM."""
    from pipeline.filter import filter_personas, filter_report, purge_rejected

    with user_errors():
        st = STATE.store()
        if report:
            rep = filter_report(st)
            console.print("status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(rep.status.items())))
            table = Table("criterion", "rejected", "examples (reason)", title="rejections by criterion")
            for criterion, count in sorted(rep.rejected_by.items(), key=lambda kv: -kv[1]):
                table.add_row(criterion, f"{count:,}", "\n".join(f"{d[:80]} ({r})" for d, r in rep.examples.get(criterion, [])))
            console.print(table)
            return
        if purge:
            console.print(f"purged {purge_rejected(st):,} rejected personas")
            return
        cfg = STATE.settings.filter
        use_llm = cfg.use_llm and not no_llm
        client = STATE.llm_client() if use_llm else None
        try:
            with progress() as bar:
                task = bar.add_task("filtering", total=None, rate="")
                summary = filter_personas(st, cfg, client, lang, on_progress=lambda n: bar.advance(task, n))
        finally:
            if client is not None:
                client.close()
        console.print(f"examined {summary.examined:,}: accepted {summary.accepted:,}, rejected {summary.rejected:,}"
                      + (f", judge failed {summary.judge_failed:,} (rerun to retry)" if summary.judge_failed else ""))
        if summary.rejected_by:
            console.print("rejected by criterion: " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.rejected_by.items())))


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server (or find the one already running)."""
    with user_errors():
        opts = STATE.store_options()
        sock = server.ensure_running(opts.data_dir)
        st = server.status(opts.data_dir)
        console.print(f"running: pid {st.pid}, socket {sock}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server (everything it acknowledged is already on disk)."""
    with user_errors():
        opts = STATE.store_options()
        stopped = server.stop(opts.data_dir)
        console.print("stopped" if stopped else f"no server was running for {opts.data_dir.resolve()}")


@db_app.command("status")
def db_status() -> None:
    """Whether the embedded server runs and answers, its pid, socket, memory and size on disk."""
    with user_errors():
        opts = STATE.store_options()
        st = server.status(opts.data_dir)
        if st.running and st.answering:
            mem = f", {st.memory_bytes / 2**20:,.0f} MiB resident" if st.memory_bytes else ""
            console.print(f"running: pid {st.pid}, socket {st.socket}{mem}, {st.disk_bytes:,} bytes on disk")
        elif st.running:
            console.print(f"running but not answering: pid {st.pid} (loading a large graph, or stuck: see "
                          f"{st.data_dir / server.LOG_NAME}; `personagraph db stop` stops it)")
            raise typer.Exit(1)
        else:
            console.print(f"not running (data folder {st.data_dir}, {st.disk_bytes:,} bytes on disk)")
            raise typer.Exit(1)


@model_app.command("start")
def model_start() -> None:
    """Start the embedded model server (used when no OPENAI_BASE_URL / llm.base_url is set), or find it running."""
    from pipeline.llm.local_server import ensure_local_server

    with user_errors():
        running = ensure_local_server(STATE.settings)
        console.print(f"running: pid {running.pid}, {running.base_url}")


@model_app.command("stop")
def model_stop() -> None:
    """Stop the embedded model server."""
    from pipeline.llm.local_server import stop_local_server

    with user_errors():
        stopped = stop_local_server(STATE.settings)
        console.print("stopped" if stopped else "no model server was running")


@model_app.command("status")
def model_status() -> None:
    """Whether the embedded model server runs, its pid and endpoint."""
    from pipeline.llm.local_server import running_local_server

    with user_errors():
        running = running_local_server(STATE.settings)
        if running is None:
            console.print("not running")
            raise typer.Exit(1)
        console.print(f"running: pid {running.pid}, {running.base_url}, model {Path(running.model_path).name}")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
