"""Train the filter's person probe (`personagraph.probe`) from the labelled fixtures and write its weights.

    python -m bench.train_person_probe            # writes pipeline/person_probe.json, prints the figures
    python -m bench.train_person_probe --dry-run  # figures only

Positives (a person): the 3,000 released Persona Hub personas and the weak-model answers labelled
`person`; negatives: the weak-model answers labelled copy, template, statement, generic or garbage,
from `weak_model_outputs.jsonl` and the first two held-out sets (both read while writing rules, so
no longer held out). Left out: `language` rows (a person in another language) and a proposal labelled
`copy` of its seed (a person in form; the seed-restated rule's job). `weak_model_heldout3.jsonl` is
never trained on: it is the held-out set for the probe. The threshold is the cross-validated
(5 folds) score that rejects `TARGET_FALSE_REJECTION` of the real personas.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.bench_filter import FIXTURES, read_jsonl, real_personas
from personagraph.probe import (
    PROBE_FILE, TARGET_FALSE_REJECTION, PersonProbe, balanced_weights, fit_logistic, sigmoid,
)

TRAIN_SETS = ("weak_model_outputs.jsonl", "weak_model_heldout.jsonl", "weak_model_heldout2.jsonl")
RIDGE = 1.0  # L2 penalty: 0.1-10 were tried, with the two held-out sets above (since read) looked at
PERSON_UPWEIGHT = 5.0  # weak-model personas are few and share the negatives' style
FOLDS = 5


def labelled_rows() -> tuple[list[str], np.ndarray, np.ndarray, dict[str, int]]:
    """(texts, y = 1 for a non-person, weak-model person flag, count per set) of the training examples."""
    texts = real_personas(FIXTURES / "real_personas.jsonl")
    y, weak_person = [0] * len(texts), [False] * len(texts)
    counts = {"real_personas.jsonl": len(texts)}
    for name in TRAIN_SETS:
        rows = [r for r in read_jsonl(FIXTURES / name)
                if r["label"] != "language" and not (r["stage"] == "expand" and r["label"] == "copy")]
        counts[name] = len(rows)
        texts += [r["description"] for r in rows]
        y += [int(r["label"] != "person") for r in rows]
        weak_person += [r["label"] == "person" for r in rows]
    return texts, np.array(y), np.array(weak_person), counts


def train(vectors: np.ndarray, y: np.ndarray, weak_person: np.ndarray, real: int, seed: int = 0) -> tuple[PersonProbe, dict[str, float]]:
    """The probe fitted on all rows, its threshold from out-of-fold scores of the first `real` rows
    (the real personas), and the cross-validated figures."""
    weight = balanced_weights(y, np.where(weak_person, PERSON_UPWEIGHT, 1.0))
    fold = np.random.default_rng(seed).integers(0, FOLDS, len(y))
    out_of_fold = np.zeros(len(y))
    for f in range(FOLDS):
        train_rows = fold != f
        w, b = fit_logistic(vectors[train_rows], y[train_rows], weight[train_rows], RIDGE)
        out_of_fold[~train_rows] = sigmoid(vectors[~train_rows] @ w + b)
    threshold = float(np.quantile(out_of_fold[:real], 1 - TARGET_FALSE_REJECTION))
    rejected = out_of_fold > threshold
    figures = {
        "real personas rejected": float(rejected[:real].mean()),
        "weak-model personas rejected": float(rejected[weak_person].mean()),
        "non-personas rejected": float(rejected[y == 1].mean()),
    }
    w, b = fit_logistic(vectors, y, weight, RIDGE)
    probe = PersonProbe(weights=[round(float(x), 6) for x in w], bias=round(b, 6), threshold=round(threshold, 6),
                        ridge=RIDGE, cv_false_rejection=round(figures["real personas rejected"], 6))
    return probe, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=PROBE_FILE)
    parser.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    args = parser.parse_args()
    from personagraph.dedup.embedding import embed

    texts, y, weak_person, counts = labelled_rows()
    vectors = embed(texts).astype(np.float64)
    probe, figures = train(vectors, y, weak_person, counts["real_personas.jsonl"])
    probe.trained_on = counts
    print(f"trained on {len(texts):,} texts ({int(y.sum())} non-personas): {counts}")
    print(f"threshold {probe.threshold:.4f} (probability of 'not a person'); cross-validated, {FOLDS} folds:")
    for name, share in figures.items():
        print(f"  {name}: {share:.2%}")
    if not args.dry_run:
        args.out.write_text(probe.model_dump_json(indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
