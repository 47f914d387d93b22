"""Commands that make data from the graph and measure it: synthesize, report and simulate (thin layers over the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from personagraph.cli.common import (
    ExecutorOption,
    WorkersOption,
    console,
    endpoint_rows,
    fail,
    notes,
    print_estimate,
    state,
    use_executor,
    user_errors,
)
from personagraph.cli.explore import smaller_clusters
from personagraph.config import Lang, Mode, SimulationFormat, Strategy

app = typer.Typer()


@app.command()
def synthesize(
    ctx: typer.Context,
    task: Annotated[str, typer.Option("--task", "-t", help="Task prompt name (see --list)")] = "",
    count: Annotated[int, typer.Option("-n", "--count", help="Rows to synthesize (one per persona, or per edge / cluster for relationship tasks)", min=1)] = 10,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output .jsonl or .parquet (loads with `datasets`)")] = None,
    mode: Annotated[Optional[Mode], typer.Option("--mode", "-m", help="How the prompt's demonstrations are chosen")] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="en or zh (or a language of your own task files)")] = None,
    strategy: Annotated[Optional[Strategy], typer.Option("--strategy", "-s", help="How personas are sampled (see `personagraph sample`)")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Members per sample")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (same seed, same graph: same rows)")] = None,
    examples: Annotated[Optional[Path], typer.Option("--examples", help="Demonstrations (JSONL/Parquet with `text`, `persona`, `persona_id`), e.g. an earlier output")] = None,
    world: Annotated[Optional[Path], typer.Option("--world", help="Text file describing the game world (game_npc, npc_cast)")] = None,
    write_back: Annotated[Optional[bool], typer.Option("--write-back/--no-write-back", help="Store rows as (:Sample)-[:GENERATED_BY]->(:Persona)")] = None,
    list_tasks: Annotated[bool, typer.Option("--list", help="List the tasks and their languages, then exit")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the personas, calls and rough tokens it would spend (cache consulted); call and write nothing")] = False,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
) -> None:
    """Synthesize data with sampled personas: one row per persona (per edge or cluster for relationship tasks), with its provenance."""
    st = state(ctx)
    with user_errors(st):
        use_executor(st, executor, workers)
        if list_tasks:
            for name, langs in st.graph.tasks().items():
                console.print(f"[bold]{name}[/]  {', '.join(langs)}")
            return
        if not task or (output is None and not dry_run):
            fail("give --task NAME and --output FILE (personagraph synthesize --list shows the tasks)", 2)
        g = st.graph
        stage = g.synthesize_stage(task, output or Path("dry-run.jsonl"), count=count, examples=examples,
                                   world=world.read_text(encoding="utf-8") if world else "", mode=mode, lang=lang,
                                   strategy=strategy, size=size, seed=seed, write_back=write_back)
        if dry_run:
            print_estimate(f"synthesize {task}", g.estimate(stage))
            return
        summary = g.run_stage(stage)
        config = stage.config
        from personagraph.synthesize import sampled_lines  # the stage's module, loaded only by a command that runs it
        notes("failed", summary.failures)
        usage = g.llm.usage
        table = Table(title=f"synthesize {task} -> {output}", show_header=False)
        for label, value in sampled_lines(summary, config):
            table.add_row(label, value)
        table.add_row("rows written", f"{summary.written:,} ({summary.cached:,} answered from the cache)")
        table.add_row("failed", f"{summary.failed:,}" + (" (rerun to retry them)" if summary.failed else ""))
        if config.mode == Mode.neighbourhood_few_shot:
            table.add_row("no neighbour samples", f"{summary.without_neighbour_samples:,} (prompted without demonstrations)")
        if config.write_back:
            table.add_row("GENERATED_BY links", f"{summary.written_back:,} (Sample node to each persona involved)")
        table.add_row("tokens", f"{usage.prompt_tokens:,} prompt, {usage.completion_tokens:,} completion")
        endpoint_rows(table, usage.as_dict())
        console.print(table)


@app.command()
def report(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A `synthesize` output (.jsonl or .parquet)")],
    baseline: Annotated[Optional[Path], typer.Option("--baseline", "-b", help="The same task synthesized with --mode no_persona")] = None,
    sample: Annotated[int, typer.Option("--sample", min=0, help="Rows (seeded sample) the embedding measures are taken on; 0 = all")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of that sample")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the measures as JSON here")] = None,
    chart: Annotated[Optional[Path], typer.Option("--chart", help="Draw the measures into this PNG")] = None,
) -> None:
    """Does persona-driven data differ? Distinct n-grams, embedding spread, nearest-neighbour and persona similarity.

    Compare a run with its baseline: `personagraph synthesize --task T -n N --mode no_persona -o base.jsonl`.
    """
    st = state(ctx)
    with user_errors(st):
        result = st.graph.report(file, baseline, sample=sample, seed=seed, json=json_out, chart=chart)
        table = Table(title=f"report {file}" + (f" vs {baseline}" if baseline else ""))
        table.add_column("measure")
        table.add_column(f"run ({result.run.rows:,} rows, {result.run.embedded_rows:,} embedded)", justify="right")
        if result.baseline is not None:
            table.add_column(f"baseline ({result.baseline.rows:,} rows, {result.baseline.embedded_rows:,} embedded)",
                             justify="right")
            table.add_column("more diverse")
        for label, mine, theirs, verdict in result.rows():
            table.add_row(label, mine, *((theirs, verdict) if result.baseline is not None else ()))
        console.print(table)
        for label, path in (("measures", json_out), ("chart", chart)):
            if path is not None:
                console.print(f"{label} written to {path}")


@app.command()
def simulate(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder: one <cluster_id>.json per cluster (a <cluster_id>/ folder for oasis, tinytroupe)")],
    count: Annotated[int, typer.Option("-n", "--count", help="Number of clusters")] = 5,
    size: Annotated[Optional[int], typer.Option("--size", help="Personas per cluster")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (same seed, same graph: same clusters)")] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="Conversation rounds along the edges (0 = export only)", min=0)] = 0,
    lang: Annotated[Optional[Lang], typer.Option("--lang", help="Conversation language")] = None,
    scenario: Annotated[str, typer.Option("--scenario", help="The situation the members meet in")] = "",
    format: Annotated[SimulationFormat, typer.Option("--format", help="json, or the files OASIS or TinyTroupe load")] = SimulationFormat.json,  # noqa: A002
    min_size: Annotated[Optional[int], typer.Option("--min-size", min=1, help="Smallest cluster accepted (default: --size)")] = None,
    allow_smaller: Annotated[bool, typer.Option("--allow-smaller", help="Accept clusters smaller than --size (= --min-size 1)")] = False,
) -> None:
    """Export connected persona clusters for multi-agent simulation, optionally with a conversation among members.

    Every cluster has exactly --size connected members unless --min-size / --allow-smaller; a graph
    that cannot supply -n of them is an error before any conversation is paid for.
    """
    st = state(ctx)
    with user_errors(st):
        summary = st.graph.simulate(output, count=count, rounds=rounds, lang=lang, scenario=scenario, format=format, size=size,
                                    seed=seed, min_size=smaller_clusters(min_size, allow_smaller))
        talk = summary.conversation
        line = f"; {talk.messages:,} messages in {rounds} rounds ({talk.cached:,} cached, {talk.failed:,} failed)" if talk else ""
        skipped = f", {summary.seeds_skipped:,} seeds skipped (their component too small)" if summary.seeds_skipped else ""
        console.print(f"wrote {summary.clusters:,} clusters ({summary.agents:,} agents{skipped}) to {output}{line} "
                      f"in {summary.seconds:.1f}s")
