"""Progress bars for long stages: one rich bar per stage run, in a terminal or a notebook alike.

A stage reports `(description, done, total)` through its context (`StageContext.progress`); this
turns the reports into a bar with count, rate, elapsed time and ETA. The CLI and the Python API use
the same bars.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressBars:
    """A callable progress listener drawing bars (a context manager around a stage run, or a list of them).

    A report whose count goes back (the next stage of a run, the next round of an expansion) starts
    a new bar, so each bar's rate and time are its own.
    """

    def __init__(self, console: Console | None = None, unit: str = "") -> None:
        self.unit = unit
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None
        self._started = time.monotonic()
        self._done = 0

    def __enter__(self) -> ProgressBars:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def __call__(self, description: str, done: int, total: int | None = None) -> None:
        if self._task is None or done < self._done:
            self._started = time.monotonic()
            self._task = self._progress.add_task(description, total=total, rate="")
        self._done = done
        rate = done / max(time.monotonic() - self._started, 1e-6)
        self._progress.update(self._task, description=description, completed=done, total=total,
                              rate=f"{rate:,.1f}/s" if done else "")
