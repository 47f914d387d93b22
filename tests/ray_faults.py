"""Faults for the Ray tests, importable by the workers: a shard whose worker process dies mid-run, once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from personagraph.executor import Shard


@dataclass(frozen=True)
class DieOnce:
    """A shard hook: the worker of shard `index` exits (as a killed process would) after `after` items, the first time.

    `marker` is a file the first death leaves behind, so the retried task runs to its end.
    """

    marker: Path
    index: int = 1
    after: int = 5

    def __call__(self, shard: Shard, done: int) -> None:
        if shard.index == self.index and done >= self.after and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
