"""Export stage: personas as JSONL/Parquet (loadable by Hugging Face `datasets`), the graph as GraphML, or neo4j-admin CSVs.

The writers are in personagraph.graph.export (they only read the store); this is their stage face.

    >>> personagraph.open(".personagraph").export("personas.parquet")
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from personagraph.graph.export import check_output, export_graph
from personagraph.graph.store import LIVE_STATUSES
from personagraph.stage import Stage, StageContext, StageSummary

ExportFormat = Literal["jsonl", "parquet", "graphml", "neo4j-csv"]
SUFFIXES: dict[str, ExportFormat] = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet",
                                     ".graphml": "graphml"}


class ExportSummary(StageSummary):
    """What an export wrote."""

    headline: ClassVar[tuple[str, ...]] = ("nodes",)

    output: str
    format: str
    nodes: int = 0


class Export(Stage[ExportSummary]):
    """Write the graph's personas (live ones unless `all_statuses`) to `output` in `format` (default: by suffix)."""

    name: ClassVar[str] = "export"
    output: Path
    format: ExportFormat | None = Field(default=None, description="jsonl | parquet | graphml | neo4j-csv (default: by suffix)")
    all_statuses: bool = Field(default=False, description="Include rejected and merged personas")

    @property
    def chosen_format(self) -> ExportFormat:
        return self.format or SUFFIXES.get(self.output.suffix.lower(), "jsonl")

    def run_facts(self) -> dict[str, Any]:
        return {"all_statuses": self.all_statuses}

    def check(self) -> None:
        """Refuse an output path the format cannot write to, before the store is read (ExportError)."""
        check_output(self.chosen_format, self.output)

    async def run(self, ctx: StageContext, run_id: str) -> ExportSummary:
        fmt = self.chosen_format
        self.check()
        ctx.progress(f"exporting {fmt} to {self.output}", 0, None)
        try:
            nodes = await asyncio.to_thread(export_graph, ctx.store, fmt, self.output,
                                            None if self.all_statuses else LIVE_STATUSES)
        except OSError as exc:  # permission denied, disk full, ...
            raise OSError(exc.errno, f"cannot write {exc.filename or self.output}: {exc.strerror or exc}") from None
        return ExportSummary(output=str(self.output), format=fmt, nodes=nodes)
