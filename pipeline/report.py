"""Does persona-driven data differ? Diversity measures of a `synthesize` output, beside a no-persona baseline.

One file of rows (JSONL or Parquet, as `synthesize` writes them) gives one `CorpusMeasures`:

- **distinct-n** (n = 1, 2, 3): distinct n-grams over all n-grams of all rows (Li et al., 2016), on
  lower-cased word tokens, each CJK character a token of its own. It falls as files grow, so compare
  files of about the same size (a run and its baseline with the same `-n`).
- **spread** in embedding space (all-MiniLM-L6-v2, `personagraph.dedup.embedding.embed`): the mean
  pairwise cosine distance between outputs, and the mean cosine distance to their centroid.
- **nearest-neighbour similarity**: for each output, its highest cosine to another output; the mean
  and the 50th / 90th / 99th percentiles, and the share of rows with a near-copy (>= 0.95).
- **persona similarity**: the mean cosine of each output to the persona of its row. In a
  `no_persona` baseline the row's persona is the slot it filled but was never shown: the level
  chance gives, to read the persona run's figure against.

`diversity_report(run, baseline)` measures both files and says which way each measure moved.

The embedding measures are taken on a seeded random sample of `sample` rows (default 1,000; 0 =
all): the encoder is the cost (about 25-80 texts/s on two shared CPU cores), and a thousand rows
settle the means to about +-0.01. Distinct-n counts every row. Nearest-neighbour similarity grows
with the number of rows compared, so a run and its baseline are sampled to the same size.

    >>> report = diversity_report("math.jsonl", baseline="math_baseline.jsonl")  # doctest: +SKIP
    >>> report.run.distinct[2], report.baseline.distinct[2]                      # doctest: +SKIP
    (0.71, 0.38)
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from personagraph.readers import InputError, iter_records
from pydantic import BaseModel, Field

# One token per CJK character (no spaces to split Chinese or Japanese on), words elsewhere.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN = re.compile(rf"[{CJK}]|[^\W{CJK}]+")
NEAR_COPY = 0.95
BLOCK = 2048  # rows per block of the nearest-neighbour product: 2048 x n float32 stays small


class CorpusMeasures(BaseModel):
    """The diversity of one file of synthesized rows."""

    file: str
    rows: int
    embedded_rows: int = Field(default=0, description="rows in the seeded sample the embedding measures are taken on")
    tasks: list[str] = Field(default_factory=list, description="task values in the file")
    modes: list[str] = Field(default_factory=list, description="mode values in the file")
    distinct: dict[int, float] = Field(default_factory=dict, description="n -> distinct n-grams / all n-grams")
    mean_pairwise_distance: float = Field(default=0.0, description="mean cosine distance between two outputs")
    centroid_distance: float = Field(default=0.0, description="mean cosine distance of an output to the centroid")
    nn_similarity: dict[str, float] = Field(default_factory=dict,
                                            description="highest cosine to another output: mean, p50, p90, p99")
    near_copies: float = Field(default=0.0, description=f"share of rows with another row at cosine >= {NEAR_COPY}")
    persona_similarity: float | None = Field(default=None, description="mean cosine of an output to its row's persona")
    nn_values: list[float] = Field(default_factory=list, exclude=True, description="per-row values, for the chart")


class DiversityReport(BaseModel):
    """A run's measures, and its baseline's when one was given."""

    run: CorpusMeasures
    baseline: CorpusMeasures | None = None

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(measure, run, baseline, which is more diverse) lines for a table; '' where there is no baseline."""
        out = []
        for label, higher_is_diverse, get in MEASURES:
            mine = get(self.run)
            theirs = get(self.baseline) if self.baseline is not None else None
            verdict = ""
            if mine is not None and theirs is not None and mine != theirs:
                verdict = "run" if (mine > theirs) == higher_is_diverse else "baseline"
            out.append((label, fmt(mine), fmt(theirs) if self.baseline is not None else "", verdict))
        return out


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


MEASURES: list[tuple[str, bool, Any]] = [
    ("distinct-1", True, lambda m: m.distinct.get(1)),
    ("distinct-2", True, lambda m: m.distinct.get(2)),
    ("distinct-3", True, lambda m: m.distinct.get(3)),
    ("mean pairwise cosine distance", True, lambda m: m.mean_pairwise_distance),
    ("mean distance to centroid", True, lambda m: m.centroid_distance),
    ("nearest-neighbour similarity, mean", False, lambda m: m.nn_similarity.get("mean")),
    ("nearest-neighbour similarity, p90", False, lambda m: m.nn_similarity.get("p90")),
    ("rows with a near-copy", False, lambda m: m.near_copies),
    ("similarity to the row's persona", True, lambda m: m.persona_similarity),
]


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens, each CJK character one token.

        >>> tokens("Two trains, 3 km apart; 火车")
        ['two', 'trains', '3', 'km', 'apart', '火', '车']
    """
    return TOKEN.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of `texts` (0 when there are none).

        >>> distinct_n(["a b a b", "a b"], 1), distinct_n(["a b a b", "a b"], 2)
        (0.3333333333333333, 0.5)
    """
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        toks = tokens(text)
        grams = list(zip(*(toks[i:] for i in range(n))))
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def spread(vectors: np.ndarray) -> tuple[float, float]:
    """(mean pairwise cosine distance, mean cosine distance to the centroid) of unit vectors, in O(n d):
    the sum of all pairwise dot products is |sum v|^2, less the n self-products."""
    n = len(vectors)
    if n < 2:
        return 0.0, 0.0
    total = vectors.sum(axis=0, dtype=np.float64)
    pairwise = (float(total @ total) - n) / (n * (n - 1))
    centroid = total / np.linalg.norm(total) if np.linalg.norm(total) > 0 else total
    return 1.0 - pairwise, float(1.0 - (vectors @ centroid.astype(np.float32)).mean())


def nearest_neighbour_similarity(vectors: np.ndarray) -> np.ndarray:
    """Each row's highest cosine to another row (blocked exact product; -1 for a lone row)."""
    n = len(vectors)
    out = np.full(n, -1.0, dtype=np.float32)
    for start in range(0, n, BLOCK):
        sims = vectors[start : start + BLOCK] @ vectors.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf  # not its own neighbour
        if n > 1:
            out[start : start + len(sims)] = sims.max(axis=1)
    return np.clip(out, -1.0, 1.0)  # float32 rounding puts exact repeats a hair above 1


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a `synthesize` output (a row needs `text`); a bad line raises, naming it."""
    rows = []
    for record in iter_records(path):
        if record.error:
            raise InputError(f"{record.where}: {record.error}")
        if "text" not in record.data:
            raise InputError(f"{record.where}: a row needs a `text` field (is this a `personagraph synthesize` output?)")
        rows.append(record.data)
    if not rows:
        raise InputError(f"{path}: no rows to measure")
    return rows


def measure(path: str | Path, batch_size: int = 64, sample: int = 1000, seed: int = 0) -> CorpusMeasures:
    """The diversity measures of one file (see the module docstring); embedding measures on `sample` rows (0 = all)."""
    from personagraph.dedup.embedding import embed

    path = Path(path)
    rows = read_rows(path)
    all_texts = [str(r.get("text") or "") for r in rows]
    picked = sorted(random.Random(seed).sample(range(len(rows)), sample)) if 0 < sample < len(rows) else range(len(rows))
    texts = [all_texts[i] for i in picked]
    personas = [str(rows[i].get("persona") or "") for i in picked]
    # Embed each distinct text once: baselines repeat outputs, and personas repeat across rows.
    unique = list(dict.fromkeys(texts + [p for p in personas if p]))
    vectors = embed(unique, batch_size=batch_size)
    index = {t: i for i, t in enumerate(unique)}
    outputs = vectors[[index[t] for t in texts]]
    nn = nearest_neighbour_similarity(outputs)
    pairwise, centroid = spread(outputs)
    with_persona = [i for i, p in enumerate(personas) if p]
    persona_sim = None
    if with_persona:
        persona_vectors = vectors[[index[personas[i]] for i in with_persona]]
        persona_sim = float(np.einsum("ij,ij->i", outputs[with_persona], persona_vectors).mean())
    valid = nn[nn > -1]
    return CorpusMeasures(
        file=str(path), rows=len(rows), embedded_rows=len(texts),
        tasks=sorted({str(r.get("task")) for r in rows if r.get("task")}),
        modes=sorted({str(r.get("mode")) for r in rows if r.get("mode")}),
        distinct={n: distinct_n(all_texts, n) for n in (1, 2, 3)},
        mean_pairwise_distance=pairwise, centroid_distance=centroid,
        nn_similarity={"mean": float(valid.mean()) if len(valid) else 0.0,
                       **{f"p{q}": float(np.percentile(valid, q)) if len(valid) else 0.0 for q in (50, 90, 99)}},
        near_copies=float((valid >= NEAR_COPY).mean()) if len(valid) else 0.0,
        persona_similarity=persona_sim, nn_values=[float(v) for v in valid],
    )


def diversity_report(run: str | Path, baseline: str | Path | None = None, batch_size: int = 64,
                     sample: int = 1000, seed: int = 0) -> DiversityReport:
    """Measure a `synthesize` output and, if given, its baseline (the same task with `--mode no_persona`)."""
    return DiversityReport(run=measure(run, batch_size, sample, seed),
                           baseline=measure(baseline, batch_size, sample, seed) if baseline else None)


def draw_chart(report: DiversityReport, path: str | Path) -> Path:
    """A PNG with the measures side by side (left) and the nearest-neighbour similarity histograms (right)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    corpora = [("with personas", report.run, "#1f77b4")]
    if report.baseline is not None:
        corpora.append(("no persona (baseline)", report.baseline, "#ff7f0e"))
    labels = [label for label, _, _ in MEASURES]
    fig, (bars, hist) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(corpora)
    for k, (name, corpus, colour) in enumerate(corpora):
        values = [get(corpus) or 0.0 for _, _, get in MEASURES]
        ys = np.arange(len(labels)) + k * width
        bars.barh(ys, values, height=width, label=f"{name} ({corpus.rows:,} rows)", color=colour)
        for y, v in zip(ys, values):
            bars.text(v + 0.01, y, f"{v:.2f}", va="center", fontsize=8)
        hist.hist(corpus.nn_values, bins=40, range=(min(0.0, min(corpus.nn_values, default=0.0)), 1.0), alpha=0.6,
                  label=name, color=colour)
    bars.set_yticks(np.arange(len(labels)) + width * (len(corpora) - 1) / 2,
                    [f"{label} {'↑' if up else '↓'}" for label, up, _ in MEASURES])
    bars.invert_yaxis()
    bars.set_xlim(0, 1.15)
    bars.set_title("diversity (↑ / ↓: the direction that means more diverse)")
    bars.legend(loc="lower right", fontsize=8)
    hist.set_title("each output's highest cosine to another output")
    hist.set_xlabel("nearest-neighbour cosine similarity (right = near-copies)")
    hist.set_ylabel("rows")
    hist.legend(fontsize=8)
    task = ", ".join(report.run.tasks) or Path(report.run.file).name
    fig.suptitle(f"Does persona-driven data differ? {task}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
