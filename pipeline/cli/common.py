"""What every command shares: the state in typer's context, one-line errors, and the summary tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from personagraph.config import Settings, load_settings, with_overrides
from personagraph.errors import NothingToDo, UserActionNeeded
from personagraph.graph.store import QueryError, ReadOnlyViolation, StoreUnavailable, StoreUnreachable
from personagraph.readers import InputError

if TYPE_CHECKING:  # the API and the stages are imported by the commands that run them (a fast --help)
    from personagraph.api import Graph
    from personagraph.stage import StageEstimate

console = Console()
err_console = Console(stderr=True)


@dataclass
class AppState:
    """What every command needs: the settings (read once) and the graph, opened on first use."""

    config_path: Optional[Path] = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Optional[Settings] = None
    _graph: Optional[Graph] = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(self.config_path)
            settings.store = with_overrides(settings.store, **self.overrides)
            self._settings = settings
        return self._settings

    @property
    def graph(self) -> Graph:
        """The API's Graph over the configured store (the store opens on first use)."""
        if self._graph is None:
            from personagraph.api import Graph

            self._graph = Graph(self.settings, progress=True)
        return self._graph

    def nothing_answered(self) -> str:
        """Why the command did nothing useful: it asked the LLM and no request succeeded ('' when some did, or none was made)."""
        if self._graph is None or not self._graph.llm_started:
            return ""
        client = self._graph.llm
        u = client.usage
        if u.requests and not u.succeeded:
            return (f"no LLM call succeeded: all {u.requests:,} requests to {client.base_url} failed (last error: "
                    f"{u.last_error[:300]}); nothing came from the model. `personagraph doctor` checks the endpoint; "
                    "rerun to retry")
        return ""

    def finish(self) -> None:
        """Before a command reports success: check that what it wrote is on disk."""
        if self._graph is not None:
            self._graph.persist()

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None


def state(ctx: typer.Context) -> AppState:
    """The command's state (made by the `personagraph` callback; a fresh one when a command is invoked alone)."""
    if not isinstance(ctx.obj, AppState):
        ctx.obj = AppState()
    return ctx.obj


def fail(message: str, code: int = 1) -> None:
    """Print one clear error line (no traceback) and exit."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # one line, unwrapped
    raise typer.Exit(code)


def _validation_line(exc: Any) -> str:
    """A pydantic ValidationError as one line: `field value: problem; ...`."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])} {e['input']!r}: {e['msg']}" for e in exc.errors())


@contextmanager
def user_errors(app_state: AppState) -> Iterator[None]:
    """Turn the errors a user can act on into one-line messages; check durability before success."""
    from pydantic import ValidationError

    try:
        yield
        app_state.finish()
        if why := app_state.nothing_answered():
            fail(why)
    except StoreUnreachable as exc:
        fail(f"{exc}; `personagraph db status` says why, `personagraph db start` starts it", 3)
    except (StoreUnavailable, UserActionNeeded) as exc:
        fail(str(exc), 3)
    except ReadOnlyViolation:
        fail("this query writes to the graph and was refused; rerun with --write if you mean it", 2)
    except QueryError as exc:
        fail(f"the database rejected the query: {exc}", 2)
    except ValidationError as exc:
        fail(_validation_line(exc), 2)
    except NothingToDo as exc:
        fail(str(exc), 1)
    except OSError as exc:  # a full disk or a permission on an output file: one line, not a traceback
        if isinstance(exc, FileNotFoundError):
            fail(str(exc), 2)
        fail(str(exc) if exc.strerror is None else f"{exc.strerror}: {exc.filename or exc}")
    except (InputError, ValueError, TypeError) as exc:
        if why := app_state.nothing_answered():  # e.g. `run` finding no persona to synthesize with: a consequence
            fail(f"{why} (then: {exc})")
        fail(str(exc), 2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: what was written so far is kept; rerun to continue")
        raise typer.Exit(130) from None
    finally:
        app_state.close()


def print_estimate(title: str, estimate: StageEstimate) -> None:
    """A --dry-run report: the stage's own lines, then the LLM calls and rough tokens it would spend."""
    table = Table(title=f"{title} --dry-run (nothing called, nothing written)", show_header=False)
    for name, value in estimate.lines:
        table.add_row(name, value)
    if estimate.llm is not None:
        llm = estimate.llm
        table.add_row("LLM requests", f"{llm.requests:,} ({llm.cached:,} answered by the cache)")
        table.add_row("LLM calls", f"{llm.calls:,}")
        table.add_row("prompt tokens (approx.)", f"{llm.prompt_tokens:,}")
        table.add_row("completion tokens (at most)", f"{llm.max_completion_tokens:,}")
    console.print(table)


class Executor(StrEnum):
    """Where the LLM stages and dedup's MinHash pairs run (`--executor`)."""

    local = "local"
    ray = "ray"


ExecutorOption = Annotated[Optional[Executor], typer.Option(
    "--executor", help="local (this process) or ray (shards on Ray workers; pip install 'personagraph\\[ray]')")]
WorkersOption = Annotated[Optional[int], typer.Option("--workers", help="Ray workers (shards)", min=1)]


def use_executor(app_state: AppState, executor: Executor | None, workers: int | None) -> None:
    """Apply `--executor` / `--workers` to the run settings (the `[run]` section otherwise decides)."""
    settings = app_state.settings
    settings.run = with_overrides(settings.run, executor=executor.value if executor else None, workers=workers)


def endpoint_rows(table: Table, llm: dict[str, Any]) -> None:
    """Add a row of calls answered per endpoint (`llm_endpoint_calls` of `Usage.as_dict`) when there were several."""
    calls = llm.get("llm_endpoint_calls") or []
    if len(calls) > 1:
        table.add_row("calls by endpoint", ", ".join(calls))


def counts(counter: Counter[str] | dict[str, int], top: int | None = None) -> str:
    """Per-reason counts as indented lines under a table cell."""
    items = counter.most_common(top) if isinstance(counter, Counter) else sorted(counter.items(), key=lambda kv: -kv[1])[:top]
    return "".join(f"\n  {k}: {v:,}" for k, v in items)


def dropped(values: Counter[str]) -> str:
    """Attribute values a stage dropped because they fit no value of the region vocabulary, per attribute."""
    return f"{sum(values.values()):,} (fit no value of the vocabulary)" + counts(values)


def notes(kind: str, lines: list[str]) -> None:
    """The first problems a stage met (skipped records, failed requests), one per line."""
    for line in lines:
        err_console.print(f"[yellow]{kind}[/] {escape(line)}", highlight=False)
