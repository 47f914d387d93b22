"""Commands for the processes personagraph runs beside you: doctor, `db` (embedded FalkorDB) and `model` (embedded SmolLM2)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from personagraph.cli.common import console, err_console, state, user_errors
from personagraph.graph import server

app = typer.Typer()
db_app = typer.Typer(help="Start, stop and inspect the embedded FalkorDB server of the data folder.", no_args_is_help=True)
model_app = typer.Typer(help="Start, stop and inspect the embedded SmolLM2 model server of the data folder.", no_args_is_help=True)


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Check the graph store and the LLM endpoint (lists models, makes one tiny call) and say what is wrong."""
    from personagraph.llm import check_endpoint
    from personagraph.llm.local_server import LOCAL_MODEL_NAME

    st = state(ctx)
    problems: list[str] = []
    try:
        console.print(f"[green]ok[/] store: {st.graph.store.describe()}")
    except Exception as exc:  # any failure to reach the store is the finding itself
        problems.append(f"store: {exc}")
    finally:
        st.close()
    settings = st.settings
    endpoint = ", ".join(settings.llm.base_urls) or "embedded SmolLM2 (no OPENAI_BASE_URL / llm.base_url set)"
    found = check_endpoint(settings)
    problems += [f"LLM: {p}" for p in found]
    if not found:
        console.print(f"[green]ok[/] LLM: {endpoint}, model {settings.llm.model if settings.llm.base_url else LOCAL_MODEL_NAME}")
    for problem in problems:
        err_console.print(f"[bold red]problem[/] {escape(problem)}", highlight=False)
    if problems:
        raise typer.Exit(1)


@db_app.command("start")
def db_start(ctx: typer.Context) -> None:
    """Start the embedded server (or find the one already running)."""
    st = state(ctx)
    with user_errors(st):
        data_dir = st.settings.store.data_dir
        sock = server.ensure_running(data_dir)
        console.print(f"running: pid {server.status(data_dir).pid}, socket {sock}")


@db_app.command("stop")
def db_stop(ctx: typer.Context) -> None:
    """Stop the embedded server (everything it acknowledged is already on disk)."""
    st = state(ctx)
    with user_errors(st):
        data_dir = st.settings.store.data_dir
        stopped = server.stop(data_dir)
        console.print("stopped" if stopped else f"no server was running for {data_dir.resolve()}")


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """Whether the embedded server runs and answers, its pid, socket, memory and size on disk."""
    st = state(ctx)
    with user_errors(st):
        found = server.status(st.settings.store.data_dir)
        if found.running and found.answering:
            mem = f", {found.memory_bytes / 2**20:,.0f} MiB resident" if found.memory_bytes else ""
            console.print(f"running: pid {found.pid}, socket {found.socket}{mem}, {found.disk_bytes:,} bytes on disk")
        elif found.running:
            console.print(f"running but not answering: pid {found.pid} (loading a large graph, or stuck: see "
                          f"{found.data_dir / server.LOG_NAME}; `personagraph db stop` stops it)")
            raise typer.Exit(1)
        else:
            console.print(f"not running (data folder {found.data_dir}, {found.disk_bytes:,} bytes on disk)")
            raise typer.Exit(1)


@model_app.command("start")
def model_start(ctx: typer.Context) -> None:
    """Start the embedded model server (used when no OPENAI_BASE_URL / llm.base_url is set), or find it running."""
    from personagraph.llm.local_server import ensure_local_server

    st = state(ctx)
    with user_errors(st):
        running = ensure_local_server(st.settings)
        console.print(f"running: pid {running.pid}, {running.base_url}")


@model_app.command("stop")
def model_stop(ctx: typer.Context) -> None:
    """Stop the embedded model server."""
    from personagraph.llm.local_server import stop_local_server

    st = state(ctx)
    with user_errors(st):
        console.print("stopped" if stop_local_server(st.settings) else "no model server was running")


@model_app.command("status")
def model_status(ctx: typer.Context) -> None:
    """Whether the embedded model server runs, its pid and endpoint."""
    from personagraph.llm.local_server import running_local_server

    st = state(ctx)
    with user_errors(st):
        running = running_local_server(st.settings)
        if running is None:
            console.print("not running")
            raise typer.Exit(1)
        console.print(f"running: pid {running.pid}, {running.base_url}, model {Path(running.model_path).name}")
