"""personagraph: a persona social graph for synthetic data (Persona Hub's method, graph-first).

    >>> import personagraph as pg
    >>> g = pg.open(".personagraph")         # or pg.open("neo4j://host:7687")
    >>> g.import_personas("personas.jsonl")
    >>> g.expand(hops=2)
    >>> g.synthesize("math_problem", "math.jsonl", count=100)

The package is this folder (pipeline/: the API, the stages, the CLI); `personagraph.graph`,
`personagraph.cypher` and `personagraph.prompts` are the layout's graph/, cypher/ and prompts/.
Names are imported on first use, so `import personagraph` (and the CLI's --help) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "open": "personagraph.api",
    "Graph": "personagraph.api",
    "Settings": "personagraph.config",
    "load_settings": "personagraph.config",
    "Stage": "personagraph.stage",
    "StageContext": "personagraph.stage",
    "StageSummary": "personagraph.stage",
    "StageEstimate": "personagraph.stage",
    "Import": "personagraph.importer",
    "Extract": "personagraph.extract",
    "Filter": "personagraph.filter",
    "Dedup": "personagraph.dedup.stage",
    "Expand": "personagraph.expand",
    "Coverage": "personagraph.coverage",
    "Sample": "personagraph.sample",
    "Synthesize": "personagraph.synthesize",
    "Simulate": "personagraph.simulate",
    "Export": "personagraph.export",
    "Run": "personagraph.run",
}

if TYPE_CHECKING:
    from personagraph.api import Graph, open  # noqa: A004
    from personagraph.config import Settings, load_settings
    from personagraph.coverage import Coverage
    from personagraph.dedup.stage import Dedup
    from personagraph.expand import Expand
    from personagraph.export import Export
    from personagraph.extract import Extract
    from personagraph.filter import Filter
    from personagraph.importer import Import
    from personagraph.run import Run
    from personagraph.sample import Sample
    from personagraph.simulate import Simulate
    from personagraph.stage import Stage, StageContext, StageEstimate, StageSummary
    from personagraph.synthesize import Synthesize


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'personagraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "Coverage", "Dedup", "Expand", "Export", "Extract", "Filter", "Graph", "Import", "Run", "Sample", "Settings",
    "Simulate", "Stage", "StageContext", "StageEstimate", "StageSummary", "Synthesize", "load_settings", "open",
]
