"""A learned check of the filter: does a description read as a person, or as a thing, an event or a text?

Weak models often answer "who would read this?" with the text retold ("A rye starter that doubled on
day 4 ...", "Late rains delayed the wheat harvest ...") or with an activity ("Soaking toor dal for an
hour ..."). The rules catch the shapes they were written from, and held-out answers showed they miss
half of the rest. This is a logistic regression on the all-MiniLM-L6-v2 embedding the dedup already
computes: trained on released personas (Persona Hub) against weak-model non-personas, its threshold
set so that at most `TARGET_FALSE_REJECTION` of real personas are rejected (cross-validated). The
encoder reads English, so only Latin-script descriptions are scored.

The weights ship with the package (`person_probe.json`); `bench/train_person_probe.py` rebuilds them
from the labelled fixtures in `tests/fixtures/filter/` and reports the cross-validated figures.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

PROBE_FILE = Path(__file__).resolve().parent / "person_probe.json"
TARGET_FALSE_REJECTION = 0.002  # share of real personas the threshold may reject, cross-validated


class PersonProbe(BaseModel):
    """Weights of the probe and the threshold on its probability that a text is not a person."""

    encoder: str = "all-MiniLM-L6-v2"
    weights: list[float] = Field(description="One per embedding dimension")
    bias: float
    threshold: float = Field(description="Probability of 'not a person' above which a description is rejected")
    ridge: float = Field(description="L2 penalty it was fitted with")
    trained_on: dict[str, int] = Field(default_factory=dict, description="Examples per labelled set")
    cv_false_rejection: float = Field(description="Cross-validated share of real personas rejected")

    def not_person(self, vectors: np.ndarray) -> np.ndarray:
        """Probability that each unit vector's text is not a person."""
        return sigmoid(np.asarray(vectors, dtype=np.float64) @ np.asarray(self.weights) + self.bias)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function: a logit as a probability."""
    return 1.0 / (1.0 + np.exp(-logits))


@lru_cache(maxsize=1)
def load_probe(path: Path = PROBE_FILE) -> PersonProbe:
    """The shipped probe (read once per process)."""
    return PersonProbe.model_validate_json(path.read_text(encoding="utf-8"))


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, ridge: float, rounds: int = 30) -> tuple[np.ndarray, float]:
    """(weights, bias) of an L2-penalised logistic regression of `y` (0/1) on `x`, each row weighted, by
    Newton's method (a few hundred features and a few thousand rows: exact and quick)."""
    xb = np.hstack([np.asarray(x, dtype=np.float64), np.ones((len(x), 1))])
    penalty = np.full(xb.shape[1], ridge)
    penalty[-1] = 0.0  # the bias is not shrunk
    theta = np.zeros(xb.shape[1])
    for _ in range(rounds):
        p = sigmoid(xb @ theta)
        grad = xb.T @ (weight * (p - y)) + penalty * theta
        hess = (xb * (weight * p * (1 - p))[:, None]).T @ xb + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return theta[:-1], float(theta[-1])


def balanced_weights(y: np.ndarray, upweight: np.ndarray | None = None) -> np.ndarray:
    """Row weights that give both classes the same total, times `upweight` (e.g. for weak-model personas,
    which are few and in the style of the negatives: the probe must not learn style for person-ness)."""
    y = np.asarray(y)
    w = np.where(y == 1, len(y) / (2 * max(int(y.sum()), 1)), len(y) / (2 * max(int((1 - y).sum()), 1)))
    return w * (upweight if upweight is not None else 1.0)
