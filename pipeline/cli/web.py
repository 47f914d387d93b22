"""`personagraph serve`: the web app (pipeline/web) on a local port, over the graph the global options name."""

from __future__ import annotations

import signal
import socket
from types import FrameType
from typing import Annotated

import typer

from personagraph.cli.common import console, err_console, fail, state, user_errors

app = typer.Typer()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, made here so a port in use is one clear line, and port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another with --port (0 picks a free one)", 2)
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on. The default, 127.0.0.1, is this machine only; "
                                                     "anything else exposes the graph (and with --write, changes to it) to the network")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: a free one, printed)")] = 8765,
    write: Annotated[bool, typer.Option("--write", help="Let the Cypher console change the graph (read-only otherwise: "
                                                        "write queries are refused)")] = False,
    row_cap: Annotated[int, typer.Option("--row-cap", min=1, help="Most rows a console query returns; the rest are cut off")] = 1000,
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds a console read query may run before the "
                                                                        "database stops it")] = 10.0,
) -> None:
    """Serve a local web app over the persona graph: a Cypher console with the ready-made queries, persona pages,
    neighbourhoods, coverage charts, runs and synthesized samples, and its JSON API (documented at /docs).

    Listens on 127.0.0.1 unless --host says otherwise; read-only unless --write. Ctrl-C stops it.
    """
    import uvicorn

    from personagraph.web import create_app
    from personagraph.web.app import is_loopback

    st = state(ctx)
    with user_errors(st):
        graph = st.graph
        graph.progress = False  # no progress bars on the server's console
        where = graph.store.describe()  # opened (the embedded server started) before the port is announced
        sock = bind(host, port)
        bound = sock.getsockname()[1]
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        if not is_loopback(host):
            err_console.print(f"[bold yellow]warning:[/] listening on {host}: the graph is exposed to every machine that "
                              f"can reach this one{', and --write lets them change it' if write else ''}")
        app = create_app(graph, write=write, row_cap=row_cap, timeout_s=timeout, host=host)
        console.print(f"personagraph serving {where} at http://{shown}:{bound}/ "
                      f"({'writes allowed' if write else 'read-only'}; Ctrl-C stops)", highlight=False, soft_wrap=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        # uvicorn shuts down cleanly on Ctrl-C or SIGTERM, then raises the signal again: ours
        # turns SIGTERM into the same KeyboardInterrupt, so both end here with the graph closed.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        console.print("stopped")
