"""Commands that build the graph: init, run, import, extract, filter, dedup, expand (thin layers over the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from personagraph.cli.common import (
    ExecutorOption,
    WorkersOption,
    console,
    counts,
    dropped,
    endpoint_rows,
    fail,
    notes,
    print_estimate,
    state,
    use_executor,
    user_errors,
)
from personagraph.config import CONFIG_FILE_NAME, DedupMethod, Lang, Stance, write_default_config

app = typer.Typer()


@app.command()
def init(
    ctx: typer.Context,
    reset: Annotated[bool, typer.Option("--reset", help="Delete every node and edge of the graph first")] = False,
) -> None:
    """Create the config file (if missing), start the store and create its indexes and constraints."""
    st = state(ctx)
    with user_errors(st):
        cfg = Path(CONFIG_FILE_NAME)
        if st.config_path is None and not cfg.exists():
            write_default_config(cfg)
            console.print(f"wrote [bold]{cfg}[/] (edit it, or override with PERSONAGRAPH_* variables)")
        store = st.graph.store
        if reset:
            store.reset()
            console.print("graph reset: every node and edge deleted")
        console.print(f"store ready: {store.describe()}")


@app.command()
def run(
    ctx: typer.Context,
    corpus: Annotated[Path, typer.Argument(help="Texts: JSONL/Parquet/CSV with a text field, or a folder of .txt/.md files")],
    field_name: Annotated[Optional[str], typer.Option("--field", help="Field holding the text (found automatically when obvious)")] = None,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Where personas.jsonl and the synthesized rows go ([run] default: out)")] = None,
    hops: Annotated[Optional[int], typer.Option("--hops", help="Persona-to-Persona hops (0 = no expansion; [run] default: 2)", min=0, max=6)] = None,
    fanout: Annotated[Optional[int], typer.Option("--fanout", help="Personas asked for per seed and relation ([run] default: 2)", min=1)] = None,
    max_new: Annotated[Optional[int], typer.Option("--max-new", help="Expansion budget: new personas at most ([run] default: 60)", min=0)] = None,
    task: Annotated[Optional[str], typer.Option("--task", help="Synthesis task (personagraph synthesize --list; default: math_problem)")] = None,
    count: Annotated[Optional[int], typer.Option("-n", "--count", help="Rows to synthesize (0 = none; [run] default: 10)", min=0)] = None,
    lang: Annotated[Optional[Lang], typer.Option("--lang", help="Prompt language for every stage")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Sampling seed for synthesis")] = None,
    judge: Annotated[Optional[bool], typer.Option("--judge/--no-judge", help="LLM judge in the filter (default: only with a configured endpoint, not the tiny embedded model)")] = None,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
) -> None:
    """The whole method on a corpus: extract, filter, dedup, expand, filter, dedup, synthesize. Rerun to resume."""
    st = state(ctx)
    with user_errors(st):
        use_executor(st, executor, workers)
        settings = st.settings
        budget = {k: v for k, v in {"hops": hops, "fanout": fanout, "max_new": max_new}.items() if v is not None}
        if seed is not None:
            settings.synthesis = settings.synthesis.model_copy(update={"seed": seed})
        summary = st.graph.run(corpus, field=field_name, lang=lang, output_dir=output_dir, task=task, count=count,
                               judge=judge, expand={**settings.run.expand, **budget})
        table = Table("stage", "seconds", "what it did", title=f"personagraph run {corpus} ({summary.run_id})")
        for s in summary.stages:
            table.add_row(s.stage, f"{s.seconds:.1f}", ", ".join(
                f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k.replace('_', ' ')} {v}" for k, v in s.numbers.items()))
        console.print(table)
        u = st.graph.llm.usage if st.graph.llm_started else None
        llm = (f"; LLM: {u.requests:,} requests ({u.cached:,} cached), {u.prompt_tokens:,} + {u.completion_tokens:,} tokens"
               + (f" ({u.endpoint_line()})" if u.endpoint_line() else "") if u else "")
        console.print(f"graph: {summary.live_personas:,} live personas, {summary.edges:,} edges{llm}")
        console.print(f"wrote {summary.personas_file}" + (f" and {summary.samples_file}" if summary.samples_file else "")
                      + "; explore with `personagraph stats`, `personagraph coverage`, `personagraph query --list`")


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Personas as JSONL, Parquet or CSV (e.g. Persona Hub's {\"persona\": ...} lines)")],
    field_name: Annotated[Optional[str], typer.Option("--field", help="Field holding the description (found automatically when obvious)")] = None,
) -> None:
    """Import ready-made personas as nodes. Re-importing the same file changes nothing."""
    st = state(ctx)
    with user_errors(st):
        summary = st.graph.import_personas(file, field=field_name)
        notes("skipped", summary.problems)
        notes("cleaned", summary.changes)
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
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Texts: JSONL, Parquet or CSV with a text field, or a folder of .txt/.md files")],
    field_name: Annotated[Optional[str], typer.Option("--field", help="Field holding the text (found automatically when obvious)")] = None,
    stance: Annotated[Optional[list[Stance]], typer.Option("--stance", help="Who would read / write / like the text (repeatable; config default: read)")] = None,
    output_format: Annotated[Optional[str], typer.Option("--format", help="plain (description) or structured (with attributes)")] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="Prompt language: auto, en or zh")] = None,
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", help="LLM calls in flight", min=1)] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Read only the first N records", min=1)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the calls and rough tokens it would spend; call and write nothing")] = False,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
) -> None:
    """Text-to-Persona: infer who would read / write / like each text; personas, sources and edges go into the graph."""
    st = state(ctx)
    with user_errors(st):
        use_executor(st, executor, workers)
        if concurrency:
            st.settings.llm = st.settings.llm.model_copy(update={"concurrency": concurrency})
        g = st.graph
        options = {"field": field_name, "limit": limit, "stances": stance or None, "format": output_format, "lang": lang}
        if dry_run:
            print_estimate(f"extract {file}", g.estimate(g.extract_stage(file, **options)))
            return
        summary = g.extract(file, **options)
        notes("note", summary.problems)
        llm = summary.llm
        table = Table(title=f"extract {file} (field {summary.field!r}, {summary.seconds:.1f}s)", show_header=False)
        table.add_row("texts read", f"{summary.texts_read:,}")
        table.add_row("texts extracted", f"{summary.texts_extracted:,} ({summary.chunks:,} chunks)")
        table.add_row("texts with failures", f"{summary.texts_failed:,}" + (f"  (kept for a rerun; raw answers in {summary.failures_file})" if summary.failures_file else ""))
        table.add_row("skipped", f"{summary.texts_skipped:,}" + counts(summary.skipped))
        if summary.cleaned:
            table.add_row("texts cleaned", f"{summary.cleaned:,} (NUL characters or unpaired surrogates removed)")
        table.add_row("personas created", f"{summary.personas_created:,}")
        table.add_row("rejected by the filter", f"{summary.personas_rejected:,} (kept with status rejected)" + counts(summary.rejected))
        table.add_row("already in the graph", f"{summary.personas_existing:,}")
        if summary.attributes_dropped:
            table.add_row("attribute values dropped", dropped(summary.attributes_dropped))
        table.add_row("LLM requests", f"{llm.get('llm_requests', 0):,} ({llm.get('llm_cached', 0):,} cached, {llm.get('llm_failed', 0):,} failed, {llm.get('llm_calls', 0):,} calls)")
        table.add_row("tokens", f"{llm.get('llm_prompt_tokens', 0):,} prompt + {llm.get('llm_completion_tokens', 0):,} completion")
        endpoint_rows(table, llm)
        console.print(table)
        if summary.texts_skipped - summary.skipped["already extracted"] == summary.texts_read:
            fail(f"nothing to extract from {file}: none of its {summary.texts_read:,} records has usable text in {summary.field!r}")


@app.command("filter")
def filter_cmd(
    ctx: typer.Context,
    report: Annotated[bool, typer.Option("--report", help="Show counts per status and criterion, with examples; change nothing")] = False,
    purge: Annotated[bool, typer.Option("--purge", help="Delete the rejected personas and their edges")] = False,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Cheap checks only, no LLM judge")] = False,
    lang: Annotated[Lang, typer.Option("--lang", help="Judge prompt language")] = Lang.en,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
) -> None:
    """Judge personas on relevance, plausibility, specificity and readability: cheap checks, then an LLM."""
    st = state(ctx)
    with user_errors(st):
        use_executor(st, executor, workers)
        if report:
            rep = st.graph.filter_report()
            console.print("status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(rep.status.items())))
            table = Table("criterion", "rejected", "examples (reason)", title="rejections by criterion")
            for criterion, n in sorted(rep.rejected_by.items(), key=lambda kv: -kv[1]):
                table.add_row(criterion, f"{n:,}", "\n".join(f"{d[:80]} ({r})" for d, r in rep.examples.get(criterion, [])))
            console.print(table)
            return
        if purge:
            console.print(f"purged {st.graph.purge_rejected():,} rejected personas")
            return
        summary = st.graph.filter(judge=not no_llm, lang=lang)
        console.print(f"examined {summary.examined:,}: accepted {summary.accepted:,}, rejected {summary.rejected:,}"
                      + (f", judge failed {summary.judge_failed:,} (rerun to retry)" if summary.judge_failed else ""))
        if summary.rejected_by:
            console.print("rejected by criterion: " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.rejected_by.items())))


@app.command()
def dedup(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the groups that would merge, with similarity; change nothing")] = False,
    method: Annotated[Optional[DedupMethod], typer.Option("--method", help="Detectors (config default: both)")] = None,
    show: Annotated[int, typer.Option("--show", help="Groups to list", min=0)] = 20,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
) -> None:
    """Merge near-duplicate personas (MinHash and embeddings) into one survivor each, moving their edges."""
    st = state(ctx)
    with user_errors(st):
        use_executor(st, executor, workers)
        report = st.graph.dedup(method=method, dry_run=dry_run)
        shown = report.groups[:show]
        texts = st.graph.store.get_personas([i for g in shown for i in [g.survivor, *g.duplicates]])
        table = Table("survivor", "duplicates", "similarity", "by", title="groups" + (" (dry run: nothing merged)" if dry_run else ""))
        for g in shown:
            dups = "\n".join(texts.get(d, {}).get("description", d) for d in g.duplicates)
            table.add_row(texts.get(g.survivor, {}).get("description", g.survivor), dups, f"{g.similarity:.2f}", ",".join(g.methods))
        if shown:
            console.print(table)
        console.print(f"{report.personas:,} live personas, pairs {report.pairs or '{}'}, {len(report.groups):,} groups, "
                      f"{report.merged:,} personas merged" + (f", {report.write.relationships_created:,} edges moved" if not dry_run else ""))


@app.command()
def expand(
    ctx: typer.Context,
    hops: Annotated[Optional[int], typer.Option("--hops", help="Deepest hop a new persona may get (1-6; config default 6)", min=1, max=6)] = None,
    fanout: Annotated[Optional[int], typer.Option("--fanout", help="Personas asked for per seed and relation", min=1)] = None,
    max_new: Annotated[Optional[int], typer.Option("--max-new", help="Stop after creating this many personas", min=0)] = None,
    max_calls: Annotated[Optional[int], typer.Option("--max-calls", help="Stop after sending this many LLM requests", min=0)] = None,
    focus: Annotated[Optional[list[str]], typer.Option("--focus", help="Aim at a region ATTRIBUTE=VALUE, e.g. age_group=child (repeatable)")] = None,
    target: Annotated[Optional[Path], typer.Option("--target", help="Targets TOML (share per region value): each round aims at the values furthest below")] = None,
    tolerance: Annotated[Optional[float], typer.Option("--tolerance", help="With --target: a share within this of its target is met (default 0.02)", min=0, max=0.99)] = None,
    relation: Annotated[Optional[list[str]], typer.Option("--relation", "-r", help="Relation to ask about (repeatable; default: all, see --list-relations)")] = None,
    lang: Annotated[Optional[Lang], typer.Option("--lang", help="Prompt language")] = None,
    list_relations: Annotated[bool, typer.Option("--list-relations", help="List the relation vocabulary and exit")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the next round's calls and tokens (cache consulted), call nothing")] = False,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
) -> None:
    """Persona-to-Persona: propose related personas from the frontier, hop by hop, as typed edges (rerun to resume)."""
    from personagraph.expand import describe_region, no_frontier
    from personagraph.relations import parse_focus

    st = state(ctx)
    use_executor(st, executor, workers)
    with user_errors(st):
        if list_relations:
            table = Table("relation", "edge", "leads to", "meaning", title="relations")
            for rel in st.graph.relations():
                edge = f"(new)-[:{rel.edge_type}]->(seed)" if rel.direction == "to_seed" else f"(seed)-[:{rel.edge_type}]->(new)"
                table.add_row(rel.name, edge, "; ".join(f"{k}={','.join(v)}" for k, v in rel.leads_to.items()), rel.description)
            console.print(table)
            return
        g = st.graph
        options = {"hops": hops, "fanout": fanout, "max_new": max_new, "max_calls": max_calls,
                   "focus": parse_focus(focus or []) or None, "relations": relation or None, "lang": lang,
                   "target": target, "tolerance": tolerance}
        stage = g.expand_stage(**options)
        if dry_run:
            print_estimate("expand", g.estimate(stage))
            return
        summary = g.run_stage(stage)
        notes("failed request", summary.errors[:5])
        table = Table(title=f"expand {summary.run_id} ({summary.seconds:.1f}s, stopped: {summary.stopped_by})", show_header=False)
        table.add_row("rounds (hops)", ", ".join(f"{r.hop}->{r.hop + 1}: {r.seeds:,} seeds" + (f" ({describe_region(r.focus)})" if target else "")
                                                 for r in summary.rounds) or no_frontier(stage.config.hops))
        if summary.target_gaps:
            table.add_row("targets (now / wanted)", ", ".join(f"{t.attribute}={t.value} {t.actual:.1%} / {t.target:.1%}"
                                                               for t in summary.target_gaps))
        table.add_row("seeds expanded", f"{summary.seeds_expanded:,}")
        table.add_row("LLM requests", f"{summary.requests:,} ({summary.usage.get('llm_cached', 0):,} cached, {summary.failed_requests:,} failed)")
        table.add_row("tokens", f"{summary.usage.get('llm_prompt_tokens', 0):,} prompt + {summary.usage.get('llm_completion_tokens', 0):,} completion")
        endpoint_rows(table, summary.usage)
        table.add_row("proposals", f"{summary.proposals:,}")
        table.add_row("personas created", f"{summary.created:,}")
        table.add_row("linked to existing personas", f"{summary.linked:,}")
        table.add_row("rejected", f"{sum(summary.rejected.values()):,}" + counts(summary.rejected, 8))
        table.add_row("relation names rejected", f"{sum(summary.relation_rejected.values()):,}" + counts(summary.relation_rejected, 3))
        if summary.attributes_dropped:
            table.add_row("attribute values dropped", dropped(summary.attributes_dropped))
        table.add_row("edges created", f"{summary.edges_created:,}" + (f"  ({', '.join(f'{k}: {v:,}' for k, v in summary.edge_types.most_common(6))})" if summary.edge_types else ""))
        console.print(table)
