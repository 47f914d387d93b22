"""Coverage: how the live personas spread over the attribute regions (age group, domain, visibility, ...).

The method's point is reaching people who rarely write online; this report shows whether the graph
does. It counts live personas per value of each region attribute (`graph.model.REGION_ATTRIBUTES`),
gives each value's share, and compares with an earlier report saved as JSON to show the shift a run
made (e.g. `expand --focus age_group=child`). With targets (`personagraph.targets`) it also gives
target, actual and gap per targeted value; with `graph=True`, the graph's own shape
(`graph.analysis.GraphMetrics`: hop depths, components, degrees, relation types, frontier, isolated).

    >>> report = region_coverage(store)
    >>> report.share("age_group", "child")
    0.04
    >>> plot_coverage(report, Path("coverage.png"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from personagraph.graph.analysis import GraphMetrics, graph_metrics, to_networkx
from personagraph.graph.model import REGION_ATTRIBUTES, check_property
from personagraph.graph.store import GraphStore
from personagraph.stage import Stage, StageContext, StageSummary
from personagraph.targets import CoverageTargets, TargetGap, TargetShares, load_targets, target_gaps

UNKNOWN = "unknown"
OTHER = "other"


class RegionCount(BaseModel):
    """Live personas with one value of one attribute."""

    value: str
    personas: int
    share: float


class CoverageReport(StageSummary):
    """Per attribute, its values with counts and shares (largest first; the tail folded into 'other')."""

    total: int = 0
    attributes: dict[str, list[RegionCount]] = Field(default_factory=dict)
    targets: list[TargetGap] = Field(default_factory=list, description="Target, actual share and gap per targeted value")
    graph: GraphMetrics | None = Field(default=None, description="The graph's shape, when asked for")

    def target(self, attribute: str, value: str) -> TargetGap | None:
        """The target set on `attribute` = `value`, with its actual share and gap (None when not targeted)."""
        return next((t for t in self.targets if (t.attribute, t.value) == (attribute, value)), None)

    def share(self, attribute: str, value: str) -> float:
        """Share of live personas with `attribute` = `value` (0.0 when absent)."""
        return next((r.share for r in self.attributes.get(attribute, []) if r.value == value), 0.0)

    def plot(self, path: Path, before: CoverageReport | None = None) -> Path:
        """Draw the shares as a PNG chart (with `before`, the earlier report beside each bar); see `plot_coverage`."""
        return plot_coverage(self, path, before)

    def count(self, attribute: str, value: str) -> int:
        """Live personas with `attribute` = `value`."""
        return next((r.personas for r in self.attributes.get(attribute, []) if r.value == value), 0)


def region_coverage(store: GraphStore, attributes: Sequence[str] = REGION_ATTRIBUTES, top: int = 12,
                    targets: CoverageTargets | None = None, graph: bool = False) -> CoverageReport:
    """Count live personas per region value, one query per attribute; values past `top` become 'other'.

    With `targets`, each targeted value's target, actual share and gap (targeted attributes are
    counted even when not in `attributes`); with `graph`, the graph's metrics (it is read into
    networkx, so this costs a pass over every persona and edge).
    """
    report = CoverageReport()
    if targets is not None:
        report.targets = target_gaps(store, targets)
        attributes = list(dict.fromkeys([*attributes, *targets.root]))
    if graph:
        report.graph = graph_metrics(to_networkx(store))
    for attribute in attributes:
        counts = store.region_counts(attribute)
        total = sum(counts.values())
        report.total = max(report.total, total)
        ranked = sorted(((UNKNOWN if v is None else str(v), n) for v, n in counts.items()), key=lambda x: (-x[1], x[0]))
        shown, tail = ranked[:top], ranked[top:]
        if tail:
            shown.append((OTHER, sum(n for _, n in tail)))
        report.attributes[attribute] = [
            RegionCount(value=v, personas=n, share=n / total if total else 0.0) for v, n in shown
        ]
    return report


def plot_coverage(report: CoverageReport, path: Path, before: CoverageReport | None = None) -> Path:
    """A PNG with one horizontal bar chart of shares per attribute (and the earlier report's, if given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.attributes)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 + 0.32 * sum(len(v) for v in report.attributes.values())),
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        rows = report.attributes[name]
        shown = [r.value for r in rows]
        labels = (shown + [t.value for t in report.targets if t.attribute == name and t.value not in shown])[::-1]
        now = [report.share(name, v) for v in labels]
        ys = range(len(labels))
        if before is not None:
            ax.barh([y + 0.2 for y in ys], [before.share(name, v) for v in labels], height=0.4, label="before", color="#bbbbbb")
            ax.barh([y - 0.2 for y in ys], now, height=0.4, label="now", color="#3b75af")
            ax.legend(loc="lower right", fontsize=7)
        else:
            ax.barh(list(ys), now, color="#3b75af")
        marks = [(t.target, y) for y, v in enumerate(labels) if (t := report.target(name, v)) is not None]
        if marks:  # the wanted share as a tick across its bar
            ax.scatter([m[0] for m in marks], [m[1] for m in marks], marker="|", s=260, color="#d62728", label="target", zorder=3)
            ax.legend(loc="lower right", fontsize=7)
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.set_title(f"{name} (share of {report.total:,} live personas)", fontsize=9, loc="left")
        ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class Coverage(Stage[CoverageReport]):
    """Live personas per region value (a query: no Run node); see `region_coverage`."""

    name: ClassVar[str] = "coverage"
    records_run: ClassVar[bool] = False
    attributes: list[str] = Field(default_factory=lambda: list(REGION_ATTRIBUTES))
    top: int = Field(default=12, ge=1, description="Values shown per attribute; the rest are summed as 'other'")
    target: TargetShares = Field(default_factory=dict, description="Shares wanted ({attribute: {value: share}} or a TOML file)")
    graph: bool = Field(default=False, description="Also measure the graph: hops, components, degrees, relation types, frontier")

    async def run(self, ctx: StageContext, run_id: str) -> CoverageReport:
        import asyncio

        targets = load_targets(self.target) if self.target else None
        return await asyncio.to_thread(region_coverage, ctx.store, [check_property(a) for a in self.attributes], self.top,
                                       targets, self.graph)
