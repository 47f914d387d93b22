"""Time of `personagraph report` on a synthesized file of `--n` rows, alone and beside a baseline of as many.

    python -m bench.bench_report --n 10000

Rows are synthetic but shaped like `synthesize` output: a persona of ~15 words per row (all
distinct) and a math problem of ~50-70 words built from that persona's words and a shared problem
template vocabulary; the baseline's rows repeat a few dozen problem texts (what a model without a
persona tends to do). The report runs as a user runs it: distinct-n over every row, the embedding
measures on its default seeded sample of `--sample` (1,000) rows per file. Reported: seconds for
the run alone, for the run and its baseline, and the split between embedding and the rest
(distinct-n, the nearest-neighbour product). Target: 10,000 rows in < 60 s.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from personagraph.dedup import embedding
from personagraph.report import diversity_report

JOBS = ["baker", "nurse", "ferry captain", "beekeeper", "tax lawyer", "bus driver", "violin maker", "miner",
        "florist", "pharmacist", "glacier guide", "sushi chef", "archivist", "crane operator", "midwife"]
PLACES = ["Lyon", "Piraeus", "Osaka", "Lagos", "Porto", "Quito", "Tromsø", "Hanoi", "Leeds", "Tbilisi"]
CARES = ["rising rent", "night shifts", "a sick parent", "tourist seasons", "exam results", "winter storms",
         "supplier delays", "a new union contract", "their first marathon", "a leaking roof"]
NOUNS = ["orders", "shifts", "crates", "tickets", "litres", "hives", "invoices", "patients", "routes", "batches"]
ASKS = ["Find the smallest number of", "Prove that the number of", "Determine the expected number of",
        "How many ways are there to schedule the", "Show that the ratio of"]


def persona(rng: random.Random, i: int) -> str:
    return (f"A {rng.randint(22, 78)}-year-old {rng.choice(JOBS)} in {rng.choice(PLACES)} worried about "
            f"{rng.choice(CARES)}, persona number {i}")


def problem(rng: random.Random, who: str) -> str:
    words = who.split()
    parts = [f"{rng.choice(ASKS)} {rng.choice(NOUNS)} that {' '.join(rng.sample(words, 6))} must handle"]
    for _ in range(rng.randint(3, 5)):
        parts.append(f"if {rng.randint(2, 400)} {rng.choice(NOUNS)} arrive every {rng.randint(2, 30)} days "
                     f"and {rng.randint(1, 9)} of them are lost near {rng.choice(PLACES)}")
    return ", ".join(parts) + "."


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=1000, help="rows embedded per file (the report's default)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    personas = [persona(rng, i) for i in range(args.n)]
    templates = [problem(rng, persona(rng, -k)) for k in range(40)]
    with tempfile.TemporaryDirectory() as tmp:
        run = write(Path(tmp) / "run.jsonl", [{"text": problem(rng, p), "persona": p, "mode": "zero_shot"} for p in personas])
        base = write(Path(tmp) / "base.jsonl", [{"text": rng.choice(templates), "persona": p, "mode": "no_persona"}
                                                 for p in personas])
        embedding.embed(["warm up the encoder"])  # the ONNX file is built once per machine: not the report's time
        timed_embed = embedding.embed
        spent = [0.0]

        def counting_embed(texts, batch_size=64):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return timed_embed(texts, batch_size)
            finally:
                spent[0] += time.perf_counter() - start

        embedding.embed = counting_embed  # type: ignore[assignment]
        for label, baseline in (("run alone", None), ("run + baseline", base)):
            spent[0] = 0.0
            start = time.perf_counter()
            report = diversity_report(run, baseline, sample=args.sample)
            took = time.perf_counter() - start
            print(f"{label:<15} {args.n:,} rows each: {took:6.1f} s  (embedding {spent[0]:5.1f} s, "
                  f"the rest {took - spent[0]:4.1f} s)  distinct-2 {report.run.distinct[2]:.3f}, "
                  f"nn mean {report.run.nn_similarity['mean']:.3f}"
                  + (f"; baseline distinct-2 {report.baseline.distinct[2]:.3f}, nn mean "
                     f"{report.baseline.nn_similarity['mean']:.3f}" if report.baseline else ""))


if __name__ == "__main__":
    main()
