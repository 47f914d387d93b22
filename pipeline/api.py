"""The Python API: one object for a persona graph and every stage of the method over it.

    >>> import personagraph as pg
    >>> g = pg.open(".personagraph")                      # the embedded FalkorDB in that folder
    >>> g.import_personas("personas.jsonl")
    >>> g.expand(hops=2, fanout=3)
    >>> g.query("MATCH (p:Persona) RETURN p.description AS d LIMIT $n", n=5)
    >>> g.synthesize("math_problem", "math.jsonl", count=100, strategy="cluster")

Each stage method returns that stage's summary model and has an async twin (`await g.aexpand(...)`);
the sync ones also work inside a running event loop (a notebook). Keyword arguments beyond a
method's own inputs are settings of the stage's config section (`[extract]`, `[expand]`, ...),
validated as in the TOML file. The CLI is a thin layer over this class.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from personagraph.config import LLMConfig, Settings, load_settings, with_overrides
from personagraph.graph.store import GraphStore, open_store
from personagraph.stage import LazyLLM, ProgressFn, Stage, StageContext, StageEstimate, StageSummary, run_sync

if TYPE_CHECKING:
    import networkx as nx

    from personagraph.coverage import CoverageReport
    from personagraph.dedup.stage import DedupReport
    from personagraph.expand import ExpandSummary
    from personagraph.export import ExportSummary
    from personagraph.extract import ExtractSummary
    from personagraph.filter import FilterReport, FilterSummary
    from personagraph.importer import ImportSummary
    from personagraph.executor import RayExecutor
    from personagraph.llm import LLMClient
    from personagraph.relations import Relation
    from personagraph.report import DiversityReport
    from personagraph.run import RunSummary
    from personagraph.sample import SampleDraw
    from personagraph.simulate import SimulationSummary
    from personagraph.synthesize import SynthesisSummary

P = ParamSpec("P")
R = TypeVar("R")
NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def synced(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The sync face of an async method: same signature and docstring, runs it to its end (also in a notebook)."""

    @functools.wraps(method)
    def sync(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_sync(method(*args, **kwargs))

    sync.__name__ = sync.__qualname__ = method.__name__.removeprefix("a")
    return sync


def open(  # noqa: A001 - `pg.open(...)`, as `h5py.File` or `zarr.open`
    store: str | Path | None = None,
    *,
    graph: str | None = None,
    config: Settings | str | Path | None = None,
    llm: LLMConfig | dict[str, Any] | str | None = None,
    progress: bool | ProgressFn = True,
) -> Graph:
    """Open a persona graph: a folder for the embedded FalkorDB, or a Neo4j URI (neo4j://host:7687).

    `config` is a `Settings` object or a TOML file (default: ./personagraph.toml and PERSONAGRAPH_*
    variables); `graph` names the graph (FalkorDB) or database (Neo4j); `llm` is an endpoint URL, an
    `LLMConfig` or a dict of `[llm]` settings (default: the config's, else the embedded SmolLM2).
    `progress` draws rich bars (True), nothing (False), or calls your function with
    `(description, done, total)`.
    """
    settings = config if isinstance(config, Settings) else load_settings(Path(config) if config else None)
    settings = settings.model_copy(deep=True)
    if store is not None:
        where = str(store)
        if where.startswith(NEO4J_SCHEMES):
            settings.store = with_overrides(settings.store, uri=where)
        else:
            settings.store = with_overrides(settings.store, uri="embedded", data_dir=Path(where))
    if graph is not None:
        settings.store = with_overrides(settings.store, graph=graph)
    if isinstance(llm, str):
        settings.llm = with_overrides(settings.llm, base_url=llm)
    elif isinstance(llm, dict):
        settings.llm = with_overrides(settings.llm, **llm)
    elif isinstance(llm, LLMConfig):
        settings.llm = llm
    return Graph(settings, progress=progress)


class Graph:
    """A persona graph (embedded FalkorDB or Neo4j) and the method's stages over it."""

    def __init__(self, settings: Settings, *, store: GraphStore | None = None, progress: bool | ProgressFn = True,
                 executor: RayExecutor | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self.executor = executor  # None: `[run] executor` decides where the LLM stages run
        from personagraph.dedup.embedding import set_backend

        set_backend(settings.dedup.embedding_backend)  # the encoder dedup and the inline filter embed with
        self._store = store
        self._llm = LazyLLM(self._make_llm)

    # -- what the stages share --------------------------------------------------------------------
    @property
    def store(self) -> GraphStore:
        """The store, opened (and for the embedded one, its server started) on first use."""
        if self._store is None:
            self._store = open_store(self.settings.store)
        return self._store

    def _make_llm(self, connect: bool = True) -> LLMClient:
        from personagraph.llm import LLMClient

        return LLMClient.from_settings(self.settings, connect=connect)

    @property
    def llm(self) -> LLMClient:
        """The LLM client, made on first use (starting the embedded model when no endpoint is configured)."""
        return self._llm.client

    @property
    def llm_started(self) -> bool:
        """Whether a stage has used the LLM yet (its usage is in `g.llm.usage`)."""
        return self._llm.started

    def _context(self, on_progress: ProgressFn | None, *, connect: bool = True) -> StageContext:
        """A stage's context: this graph's store and client; an estimate gets a client that starts no model."""
        lazy = self._llm if connect else LazyLLM(functools.partial(self._make_llm, connect=False))
        return StageContext(settings=self.settings, store=self.store, lazy_llm=lazy, on_progress=on_progress,
                            executor=self.executor)

    async def arun_stage(self, stage: Stage[Any]) -> Any:
        """Run any stage (yours too) on this graph: progress as configured, its Run node recorded."""
        if self.progress is True:
            from personagraph.progress import ProgressBars

            with ProgressBars() as bars:
                return await stage(self._context(bars))
        return await stage(self._context(self.progress or None))

    run_stage = synced(arun_stage)

    async def aestimate(self, stage: Stage[Any]) -> StageEstimate:
        """What `stage` would do, calling no model (the cache is consulted) and writing nothing: a `--dry-run`."""
        ctx = self._context(None, connect=False)
        try:
            return await stage.estimate(ctx)
        finally:
            if ctx.lazy_llm is not None:
                ctx.lazy_llm.close()

    estimate = synced(aestimate)

    # -- queries ----------------------------------------------------------------------------------
    def query(self, cypher: str, /, *, write: bool = False, **params: Any) -> list[dict[str, Any]]:
        """Run Cypher over the graph and return the rows as dicts; read-only unless `write=True`.

        A ready-made query's name (`personagraph query --list`) or a `.cypher` file works too.
        """
        from personagraph.cypher import resolve_query

        return self.store.query(resolve_query(cypher, self.store.dialect), params, write=write).records()

    def to_networkx(self, ids: Sequence[str] | None = None) -> nx.MultiDiGraph:
        """The live personas and their relationships as a networkx graph (with `ids`, the subgraph they induce)."""
        from personagraph.graph.analysis import to_networkx

        return to_networkx(self.store, ids)

    def stats(self) -> dict[str, Any]:
        """Counts of nodes by label and status, edges by type, live personas by hop."""
        return self.store.stats()

    def filter_report(self, examples: int = 3) -> FilterReport:
        """What the filter decided so far: counts per status and per failed criterion, with examples."""
        from personagraph.filter import filter_report

        return filter_report(self.store, examples)

    def purge_rejected(self) -> int:
        """Delete the rejected personas and their edges; returns how many were deleted."""
        from personagraph.filter import purge_rejected

        return purge_rejected(self.store)

    def relations(self) -> list[Relation]:
        """The relation vocabulary expansion asks about (the defaults plus `[expand] extra_relations`)."""
        from personagraph.relations import RelationVocabulary

        return list(RelationVocabulary.default(spec.to_relation() for spec in self.settings.expand.extra_relations))

    def tasks(self) -> dict[str, list[str]]:
        """The synthesis tasks and their languages (packaged ones and those in `[synthesis] task_dirs`)."""
        from personagraph.synthesize import available_tasks

        return available_tasks(self.settings.synthesis.task_dirs)

    # -- the stages -------------------------------------------------------------------------------
    async def aimport_personas(self, path: str | Path, *, field: str | None = None, **settings: Any) -> ImportSummary:
        """Import ready-made personas (JSONL, Parquet or CSV, e.g. Persona Hub's); a re-import changes nothing."""
        from personagraph.importer import Import

        return await self.arun_stage(Import(config=with_overrides(self.settings.import_, **settings), path=Path(path), field=field))

    async def aextract(self, path: str | Path, *, field: str | None = None, limit: int | None = None,
                       **settings: Any) -> ExtractSummary:
        """Text-to-Persona: who would read / write / like each text (`[extract]` settings: stances, format, lang, ...)."""
        return await self.arun_stage(self.extract_stage(path, field=field, limit=limit, **settings))

    def extract_stage(self, path: str | Path, *, field: str | None = None, limit: int | None = None, **settings: Any) -> Stage[Any]:
        """The `extract` stage as `aextract` builds it (to estimate, or to put in your own list)."""
        from personagraph.extract import Extract

        return Extract(config=with_overrides(self.settings.extract, **settings), path=Path(path), field=field, limit=limit)

    async def afilter(self, *, judge: bool | None = None, lang: str = "en", **settings: Any) -> FilterSummary:
        """Give every persona without a verdict one: cheap checks, then the LLM judge (`judge`, default: `[filter] use_llm`)."""
        return await self.arun_stage(self.filter_stage(judge=judge, lang=lang, **settings))

    def filter_stage(self, *, judge: bool | None = None, lang: str = "en", **settings: Any) -> Stage[Any]:
        """The `filter` stage as `afilter` builds it."""
        from personagraph.filter import Filter

        return Filter(config=with_overrides(self.settings.filter, **settings), judge=True if judge is None else judge, lang=lang)

    async def adedup(self, *, method: str | None = None, dry_run: bool = False, **settings: Any) -> DedupReport:
        """Merge near-duplicate personas into one survivor each (MinHash and embeddings); `dry_run` only lists the groups."""
        from personagraph.dedup.stage import Dedup

        return await self.arun_stage(Dedup(config=with_overrides(self.settings.dedup, **settings), method=method, dry_run=dry_run))

    async def aexpand(self, **settings: Any) -> ExpandSummary:
        """Persona-to-Persona from the frontier (`[expand]` settings: hops, fanout, max_new, max_calls, focus, relations, lang, ...)."""
        return await self.arun_stage(self.expand_stage(**settings))

    def expand_stage(self, **settings: Any) -> Stage[Any]:
        """The `expand` stage as `aexpand` builds it."""
        from personagraph.expand import Expand

        return Expand(config=with_overrides(self.settings.expand, **settings), filter=self.settings.filter)

    async def acoverage(self, attributes: Sequence[str] | None = None, *, top: int = 12,
                        target: str | Path | dict[str, dict[str, float]] | None = None, graph: bool = False) -> CoverageReport:
        """Live personas per region value (age group, occupation, domain, visibility, language).

        `target` (a targets TOML file or {attribute: {value: share}}) adds target, actual and gap per
        targeted value (`report.targets`); `graph=True` adds the graph's shape (`report.graph`: hop
        depths, components, degrees, relation types, unexpanded frontier, isolated personas).
        """
        from personagraph.coverage import Coverage

        options = {"top": top, "target": target, "graph": graph} | ({} if attributes is None else {"attributes": list(attributes)})
        return await self.arun_stage(Coverage(**options))

    async def asample(self, **settings: Any) -> SampleDraw:
        """Draw samples of personas by where they sit in the graph (`[synthesis]` sampling: strategy, size, count, seed, ...)."""
        from personagraph.sample import Sample

        base = self.settings.synthesis.sampling()
        return await self.arun_stage(Sample(config=with_overrides(base, **settings)))

    async def asynthesize(self, task: str, output: str | Path, *, count: int = 10, examples: str | Path | None = None,
                          world: str = "", **settings: Any) -> SynthesisSummary:
        """`count` rows of `task` from sampled personas into `output` (`[synthesis]` settings: mode, lang, strategy, ...).

        A relationship task (`dialogue`, `relation_problem`, `npc_cast`, or any whose prompt uses
        `${other}`, `${edge}` or `${neighbours}`) writes one row per relationship edge or connected cluster.
        """
        return await self.arun_stage(self.synthesize_stage(task, output, count=count, examples=examples, world=world, **settings))

    def synthesize_stage(self, task: str, output: str | Path, *, count: int = 10, examples: str | Path | None = None,
                         world: str = "", **settings: Any) -> Stage[Any]:
        """The `synthesize` stage as `asynthesize` builds it."""
        from personagraph.synthesize import Synthesize

        return Synthesize(config=with_overrides(self.settings.synthesis, **settings), task=task, output=Path(output),
                          count=count, examples=Path(examples) if examples else None, world=world)

    async def asimulate(self, output: str | Path, *, count: int = 5, rounds: int = 0, lang: str | None = None,
                        scenario: str = "", format: str = "json", **settings: Any) -> SimulationSummary:  # noqa: A002
        """Write `count` connected clusters for multi-agent simulation, with `rounds` of conversation:
        one JSON each, or (`format`) the files OASIS or TinyTroupe load (`oasis`, `tinytroupe`)."""
        from personagraph.config import Strategy
        from personagraph.simulate import Simulate

        base = self.settings.synthesis.sampling()
        config = with_overrides(base, **settings, strategy=Strategy.cluster, count=count)
        return await self.arun_stage(Simulate(config=config, output=Path(output), rounds=rounds,
                                              lang=lang or self.settings.synthesis.lang, scenario=scenario,
                                              format=format))

    def report(self, path: str | Path, baseline: str | Path | None = None, *, sample: int = 1000, seed: int = 0,
               json: str | Path | None = None, chart: str | Path | None = None) -> DiversityReport:
        """Diversity of a `synthesize` output (distinct-n, embedding spread, nearest-neighbour and persona
        similarity), beside `baseline` (the same task run with `mode="no_persona"`) when given; the
        embedding measures on a seeded sample of `sample` rows (0 = all); `json` and `chart` (a PNG)
        write it out too. Reads the files only: no store, no LLM.
        """
        from personagraph.report import diversity_report, draw_chart

        result = diversity_report(path, baseline, batch_size=self.settings.dedup.embed_batch_size, sample=sample, seed=seed)
        if json is not None:
            Path(json).parent.mkdir(parents=True, exist_ok=True)
            Path(json).write_text(result.model_dump_json(indent=2), encoding="utf-8")
        if chart is not None:
            draw_chart(result, chart)
        return result

    async def aexport(self, output: str | Path, *, format: str | None = None, all_statuses: bool = False) -> ExportSummary:  # noqa: A002
        """Personas to JSONL or Parquet (loadable with `datasets`), the graph to GraphML, or neo4j-admin CSVs."""
        from personagraph.export import Export

        return await self.arun_stage(Export(output=Path(output), format=format, all_statuses=all_statuses))

    async def arun(self, corpus: str | Path, *, field: str | None = None, lang: str | None = None, **settings: Any) -> RunSummary:
        """The whole method on a corpus: extract, filter, dedup, expand, filter, dedup, export, synthesize.

        `settings` are `[run]` values: output_dir, task, count, judge, expand (a dict of `[expand]`
        budgets; hops 0 = no expansion). Rerun to resume after a crash or Ctrl-C.
        """
        from personagraph.run import Run, method_stages

        run = with_overrides(self.settings.run, **settings)
        stages = method_stages(self.settings, Path(corpus), field=field, run=run, lang=lang)
        return await self.arun_stage(Run(corpus=Path(corpus), stages=stages))

    import_personas = synced(aimport_personas)
    extract = synced(aextract)
    filter = synced(afilter)
    dedup = synced(adedup)
    expand = synced(aexpand)
    coverage = synced(acoverage)
    sample = synced(asample)
    synthesize = synced(asynthesize)
    simulate = synced(asimulate)
    export = synced(aexport)
    run = synced(arun)

    # -- lifetime ---------------------------------------------------------------------------------
    def persist(self) -> None:
        """Check that every write acknowledged so far is on disk (raises `StoreUnavailable` if not)."""
        if self._store is not None:
            self._store.persist()

    def close(self) -> None:
        """Close the store connection and the LLM cache (the embedded servers keep running for the next use)."""
        self._llm.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.settings.store
        place = where.uri if where.uri not in ("", "embedded", "falkordb") else str(where.data_dir)
        return f"<personagraph.Graph {where.graph!r} at {place}>"


__all__ = ["Graph", "StageSummary", "open", "synced"]
