"""MinHash signatures over normalised shingles (word or character n-grams), for many texts at once.

A shingle is `k` consecutive tokens of the normalised text: words, or characters of the words
joined by single spaces. Character n-grams survive a typo or an inflection (only the few n-grams
around it change) and need no word boundaries, so Chinese or Japanese text shingles as well as
English does.

Hashing is vectorised: each distinct token is hashed once (crc32, cached), shingle hashes are
combined from token hashes with numpy, and all permutations are applied to all shingles of a batch
in one array operation per chunk, reduced per text with `np.minimum.reduceat`. The permutations are
datasketch's own "affine32" scheme (same seed -> same `a`, `b`), so a signature here equals the one
`datasketch.MinHash(hashfunc=identity)` builds by calling `update` on each shingle hash, and it
plugs straight into `datasketch.MinHashLSH` as a `LeanMinHash`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
from datasketch import LeanMinHash, MinHash

from personagraph.graph.model import normalise_text

_WORD = re.compile(r"\w+")
_SCHEME = "affine32"
# Shingles per array operation: bounds the (num_perm x shingles) uint32 block to ~32 MB at 128 perms.
_CHUNK_SHINGLES = 1 << 16
_MIX_1 = np.uint64(0x9E3779B97F4A7C15)
_MIX_2 = np.uint64(0xBF58476D1CE4E5B9)


def words(text: str) -> list[str]:
    """The word tokens MinHash sees: NFKC + casefold, punctuation dropped."""
    return _WORD.findall(normalise_text(text))


ShingleUnit = Literal["words", "chars"]


def tokens(text: str, unit: ShingleUnit = "words") -> list[str]:
    """The tokens MinHash shingles: words, or the characters of the words joined by single spaces.

    >>> tokens("A Nurse,  in LYON!", "chars")[:9]
    ['a', ' ', 'n', 'u', 'r', 's', 'e', ' ', 'i']
    """
    found = words(text)
    return found if unit == "words" else list(" ".join(found))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before its affine permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class ShingleHasher:
    """Turns texts into 32-bit hashes of their k-shingles of `unit` tokens; caches token hashes across calls."""

    def __init__(self, shingle_size: int, unit: ShingleUnit = "words") -> None:
        if shingle_size < 1:
            raise ValueError("shingle_size must be >= 1")
        self.k = shingle_size
        self.unit = unit
        self._token_hash: dict[str, int] = {}

    def _token_ids(self, found: list[str]) -> list[int]:
        cache = self._token_hash
        out = []
        for w in found:
            h = cache.get(w)
            if h is None:
                h = cache[w] = zlib.crc32(w.encode("utf-8"))
            out.append(h)
        return out

    def hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Flat uint32 shingle hashes of all texts and the start offset of each text's run.

        A text shorter than k tokens is one shingle of all its tokens, so every text has >= 1 shingle.
        """
        k = self.k
        flat: list[int] = []
        lengths = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            ids = self._token_ids(tokens(text, self.unit)) or [0]
            flat.extend(ids)
            lengths[i] = len(ids)
        w = np.asarray(flat, dtype=np.uint64)
        starts = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        # Rolling combination of k consecutive word hashes: h = (...((w0*M1)^w1)*M1 ^ w2 ...)
        n_sh = np.maximum(lengths - k + 1, 1)
        combined = w.copy()
        for j in range(1, k):
            shifted = np.zeros_like(w)
            shifted[:-j] = w[j:]
            combined = (combined * _MIX_1) ^ shifted
        # For text i, shingle positions are starts[i] .. starts[i] + n_sh[i] - 1. For texts shorter
        # than k, the one shingle still reads past their end; rebuild those from their own words.
        sh_starts = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(n_sh, out=sh_starts[1:])
        pos = np.arange(sh_starts[-1], dtype=np.int64) - np.repeat(sh_starts[:-1] - starts[:-1], n_sh)
        out = combined[pos]
        for i in np.flatnonzero(lengths < k):
            h = np.zeros(1, dtype=np.uint64)  # an array, so the multiply wraps silently
            for x in w[starts[i] : starts[i + 1]]:
                h = (h * _MIX_1) ^ x
            out[sh_starts[i]] = h[0]
        out = (out ^ (out >> np.uint64(31))) * _MIX_2
        return (out >> np.uint64(32)).astype(np.uint32), sh_starts[:-1]


class MinHasher:
    """Batch MinHash: `signatures(texts)` -> (n, num_perm) uint32, datasketch-compatible."""

    def __init__(self, num_perm: int = 128, shingle_size: int = 3, seed: int = 1, unit: ShingleUnit = "words") -> None:
        self.num_perm = num_perm
        self.seed = seed
        self.shingles = ShingleHasher(shingle_size, unit)
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme=_SCHEME).permutations
        self._a = a.astype(np.uint32)
        self._b = b.astype(np.uint32)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """One row of `num_perm` minimum permuted hashes per text."""
        if not texts:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        hashes, starts = self.shingles.hashes(texts)
        mixed = _fmix32(hashes)
        out = np.empty((len(texts), self.num_perm), dtype=np.uint32)
        ends = np.append(starts[1:], len(mixed))
        # Process whole texts per chunk so reduceat segments never straddle a chunk boundary.
        t0 = 0
        while t0 < len(texts):
            t1 = int(np.searchsorted(starts, starts[t0] + _CHUNK_SHINGLES, side="right"))
            t1 = max(t1, t0 + 1)
            s0, s1 = starts[t0], ends[t1 - 1]
            # Permutations along rows, shingles along columns: reduceat over contiguous rows is
            # several times faster than over the first axis.
            block = self._a[:, None] * mixed[None, s0:s1] + self._b[:, None]
            out[t0:t1] = np.minimum.reduceat(block, starts[t0:t1] - s0, axis=1).T
            t0 = t1
        return out

    def lean(self, signature: np.ndarray) -> LeanMinHash:
        """A datasketch LeanMinHash view of one signature row (for MinHashLSH insert/query)."""
        return LeanMinHash(seed=self.seed, hashvalues=signature, scheme=_SCHEME)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of signature rows `a[i]` and `b[i]` (fraction of equal slots)."""
    return np.count_nonzero(a == b, axis=-1) / a.shape[-1]  # as .mean(), without a float pass
