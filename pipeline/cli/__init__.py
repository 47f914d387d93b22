"""The `personagraph` command line: thin commands over the Python API (`personagraph.api`), one module per group.

- `build`: init, run, import, extract, filter, dedup, expand
- `explore`: query, stats, coverage, sample, export
- `synth`: synthesize, report, simulate
- `servers`: doctor, db start/stop/status, model start/stop/status
- `web`: serve

The global options (--config, --store, --data-dir, --graph) go into an `AppState` in typer's context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from personagraph.cli import build, explore, servers, synth, web
from personagraph.cli.common import AppState
from personagraph.config import CONFIG_FILE_NAME

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
for group in (build, explore, synth, servers, web):
    app.registered_commands += group.app.registered_commands
app.add_typer(servers.db_app, name="db")
app.add_typer(servers.model_app, name="model")


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help=f"TOML config file (default: ./{CONFIG_FILE_NAME} if present)")] = None,
    store: Annotated[Optional[str], typer.Option("--store", help="'embedded' or a Neo4j URI (neo4j://host:7687, bolt://...)")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Folder of the embedded store, caches and indexes")] = None,
    graph: Annotated[Optional[str], typer.Option("--graph", help="Graph name (FalkorDB) or database (Neo4j)")] = None,
) -> None:
    """Options that apply to every command."""
    ctx.obj = AppState(config_path=config, overrides={"uri": store, "data_dir": data_dir, "graph": graph})


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
