"""Candidate duplicate pairs from MinHash LSH and from embedding neighbours, each verified."""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache
from dataclasses import dataclass

import numpy as np
from datasketch import MinHashLSH

from personagraph.config import DedupConfig, DedupMethod
from personagraph.dedup.embedding import similar_pairs
from personagraph.dedup.minhash import MinHasher, estimated_jaccard, words


_FOLD = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: folds a band's rows into one key


METHODS = (DedupMethod.minhash.value, DedupMethod.embedding.value)  # the detectors; "both" is the two together


@dataclass(frozen=True)
class Pairs:
    """Verified pairs as parallel arrays (a million personas give millions of pairs): positions
    `a[i] < b[i]` in the input, the similarity that decided each, and its method (index in METHODS)."""

    a: np.ndarray
    b: np.ndarray
    similarity: np.ndarray
    method: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray, similarity: np.ndarray, method: str) -> Pairs:
        """Pairs found by one method."""
        return cls(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
                   np.asarray(similarity, dtype=np.float32), np.full(len(a), METHODS.index(method), dtype=np.uint8))

    @classmethod
    def concat(cls, parts: Sequence[Pairs]) -> Pairs:
        """All pairs of `parts`, in order."""
        if not parts:
            return cls.of(np.empty(0), np.empty(0), np.empty(0), "minhash")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("a", "b", "similarity", "method")))

    def __len__(self) -> int:
        return len(self.a)

    def select(self, mask: np.ndarray) -> Pairs:
        """The pairs where `mask` is true."""
        return Pairs(self.a[mask], self.b[mask], self.similarity[mask], self.method[mask])

    def counts(self) -> dict[str, int]:
        """Pairs per method name."""
        found = np.bincount(self.method, minlength=len(METHODS))
        return {m: int(n) for m, n in zip(METHODS, found) if n}


# Where MinHash candidate pairs come from: (signatures, config, method) -> verified pairs. `minhash_pairs`
# in this process, or `ray_minhash.ray_minhash_pairs` on Ray Data; everything after the pairs is shared.
MinhashPairs = Callable[[np.ndarray, DedupConfig, DedupMethod | None], Pairs]


def minhasher(config: DedupConfig) -> MinHasher:
    """The MinHasher that `config` describes."""
    return MinHasher(num_perm=config.num_perm, shingle_size=config.shingle_size, seed=config.seed, unit=config.shingles)


def jaccard_floor(config: DedupConfig, method: DedupMethod | None = None) -> float:
    """The estimated Jaccard at which MinHash proposes a pair: `minhash_threshold` when embeddings
    verify it ("both"), `trust_jaccard` when nothing does (MinHash alone)."""
    return config.minhash_threshold if (method or config.method) == "both" else config.trust_jaccard


def new_lsh(config: DedupConfig, method: DedupMethod | None = None) -> MinHashLSH:
    """An empty datasketch LSH index tuned (bands x rows) for the Jaccard floor of `method`."""
    return MinHashLSH(threshold=jaccard_floor(config, method), num_perm=config.num_perm)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys: each band's `rows` signature values folded into one 64-bit hash."""
    sig = signatures[:, : bands * rows].reshape(len(signatures), bands, rows).astype(np.uint64)
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    for j in range(rows):
        keys = (keys * _FOLD) ^ sig[:, :, j]
    return keys


def minhash_pairs(signatures: np.ndarray, config: DedupConfig, method: DedupMethod | None = None) -> Pairs:
    """Pairs that share an LSH band and whose estimated Jaccard reaches the floor of `method` (`jaccard_floor`).

    The banding (b bands of r rows) is the one datasketch's MinHashLSH picks for the threshold; the
    bucketing is vectorised (sort each band's keys, pair members of equal runs) instead of a Python
    dict insert per band per item, which dominates at a million personas. In a bucket larger than
    `config.minhash_neighbours` each member is paired with that many next members only (union-find
    still links the rest through them), and each item keeps its `minhash_neighbours` most similar
    pairs (`nearest`). `ray_minhash.ray_minhash_pairs` finds the same pairs on Ray Data.
    """
    lsh = new_lsh(config, method)
    n, r = len(signatures), lsh.r
    floor = jaccard_floor(config, method)
    codes, sims = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    # One band at a time, each band's candidates verified before the next: all bands' candidates at
    # once (up to minhash_neighbours x n per band, 37 bands at J 0.3) were 4 GB at 200k templated
    # personas. A candidate already verified in an earlier band is not verified again; a rejected one
    # rarely comes back (a pair below the floor collides in a band with probability J^rows).
    for band in range(lsh.b):
        keys = band_keys(signatures[:, band * r : (band + 1) * r], 1, r)[:, 0]
        found = unique_codes(bucket_candidates(np.full(n, band), keys, np.arange(n), n, config.minhash_neighbours))
        if len(codes):  # drop candidates verified in an earlier band (sorted queries: cache-friendly)
            at = np.minimum(np.searchsorted(codes, found), len(codes) - 1)
            found = found[codes[at] != found]
        new_codes, new_sims = jaccard_verified(found, signatures, floor)
        del found
        codes, sims = merge_sorted(codes, sims, new_codes, new_sims)
        if len(codes) > CUT_AT * config.minhash_neighbours * n:
            # Cut to each persona's nearest as we go (exact: a pair outside an item's k best of the
            # pairs seen so far stays outside them as more are seen); bounds memory by ~k n pairs.
            keep = nearest_codes(codes, sims, n, config.minhash_neighbours)
            codes, sims = codes[keep], sims[keep]
    keep = nearest_codes(codes, sims, n, config.minhash_neighbours)
    return coded_pairs(codes[keep], sims[keep], n)


# Verified MinHash pairs are cut to each persona's nearest once they pass CUT_AT x k x n: at a million
# personas (k 16) that is 24M pairs, whose cut needs about 0.7 GB for a few seconds (measured step peak).
CUT_AT = 1.5


def merge_sorted(codes: np.ndarray, sims: np.ndarray, more: np.ndarray, more_sims: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Two ascending, disjoint code arrays merged, with their similarities: slots computed by a binary
    search instead of an argsort of both (whose index array alone is as large as the codes)."""
    if not len(more):
        return codes, sims
    at = np.searchsorted(codes, more) + np.arange(len(more))
    total = len(codes) + len(more)
    out, out_sims = np.empty(total, dtype=codes.dtype), np.empty(total, dtype=sims.dtype)
    old = np.ones(len(out), dtype=bool)
    old[at] = False
    out[at], out_sims[at] = more, more_sims
    out[old], out_sims[old] = codes, sims
    return out, out_sims


def bucket_candidates(band: np.ndarray, key: np.ndarray, position: np.ndarray, n: int, max_bucket: int) -> np.ndarray:
    """Candidate pairs as codes `a * n + b` (a < b): items with the same (band, key), each with its
    `max_bucket` next members in position order."""
    order = np.lexsort((position, key, band))
    band, key, position = band[order], key[order], position[order]
    found: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
    for d in range(1, max_bucket + 1):
        same = np.flatnonzero((key[d:] == key[:-d]) & (band[d:] == band[:-d]))
        if not len(same):
            break
        found.append(position[same].astype(np.int64) * n + position[same + d])
    return np.concatenate(found)


def verified_pairs(candidates: np.ndarray, signatures: np.ndarray, config: DedupConfig,
                   method: DedupMethod | None = None) -> Pairs:
    """The candidate codes (`a * n + b`, repeats allowed) whose estimated Jaccard reaches the floor, cut to `nearest`."""
    codes, sims = jaccard_verified(candidates, signatures, jaccard_floor(config, method))
    return nearest(coded_pairs(codes, sims, len(signatures)), config.minhash_neighbours)


def jaccard_verified(candidates: np.ndarray, signatures: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Of the candidate codes (`a * n + b`, repeats allowed), the distinct ones (ascending) whose
    estimated Jaccard reaches `floor`, and that Jaccard (float32, as `Pairs` keeps it)."""
    n = max(len(signatures), 1)
    codes = unique_codes(candidates)
    a, b = codes // n, codes % n
    sims = pairwise(estimated_jaccard, signatures, a, b)
    keep = sims >= floor
    return codes[keep], sims[keep].astype(np.float32)


def unique_codes(codes: np.ndarray) -> np.ndarray:
    """The distinct values of `codes` (any sortable dtype), ascending. `np.unique` on int64 hashes since numpy 2.3, which is
    about 80x slower than a sort on millions of wide-range codes (1.3 s against 16 ms for 1.5M)."""
    ordered = np.sort(codes)
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(ordered) else ordered


def coded_pairs(codes: np.ndarray, similarity: np.ndarray, n: int) -> Pairs:
    """MinHash pairs from their codes `a * n + b` (positions among `n` items) and similarities."""
    return Pairs.of(codes // max(n, 1), codes % max(n, 1), similarity, "minhash")


def pairwise(similarity: Callable[[np.ndarray, np.ndarray], np.ndarray], rows: np.ndarray, a: np.ndarray,
             b: np.ndarray, chunk: int = 8_192) -> np.ndarray:
    """`similarity(rows[a], rows[b])` computed `chunk` pairs at a time: millions of pairs gathered at
    once would copy gigabytes of vectors (3M pairs x 384 floats x 2 sides = 9 GB); chunks that fit in
    the cache are about 1.7x faster than 65k-pair ones."""
    return np.concatenate([np.empty(0, dtype=np.float64), *(
        similarity(rows[a[i : i + chunk]], rows[b[i : i + chunk]]) for i in range(0, len(a), chunk))])


def cosines(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise dot products of unit vectors, in float32 (the stored vectors are float16)."""
    return np.einsum("ij,ij->i", u, v, dtype=np.float32)


def nearest(pairs: Pairs, k: int) -> Pairs:
    """The pairs that are among the `k` most similar of at least one of their two items (ties: the
    pairs where the item is the first end, then input order).

    On templated text a low Jaccard threshold pairs each persona with hundreds of others that share
    its frame (3.3M pairs among 32k templated personas at J >= 0.3); a persona has a few copies, so
    its nearest `k` hold them, as the embedding side keeps each persona's `embedding_neighbours`.
    """
    if not len(pairs):
        return pairs
    return pairs.select(_nearest_mask(np.concatenate([pairs.a, pairs.b]), pairs.similarity, k))


def nearest_codes(codes: np.ndarray, sims: np.ndarray, n: int, k: int) -> np.ndarray:
    """`nearest` of the pairs coded `a * n + b`, as a mask over `codes`, without building their `Pairs`."""
    if not len(codes):
        return np.zeros(0, dtype=bool)
    ends = np.empty(2 * len(codes), dtype=np.int64)
    np.floor_divide(codes, max(n, 1), out=ends[: len(codes)])
    np.remainder(codes, max(n, 1), out=ends[len(codes) :])
    return _nearest_mask(ends, sims, k)


def _nearest_mask(ends: np.ndarray, sims: np.ndarray, k: int) -> np.ndarray:
    """Which of m pairs are among the `k` most similar of one of their ends; `ends` (2m: every pair's
    first end, then every second end; int64, overwritten) names the ends' items."""
    m = len(sims)
    key, low, slot_of = _slots_by_item(ends, sims)
    starts = _run_starts(key, low)
    keep = np.zeros(2 * m, dtype=bool)
    for i in range(0, 2 * m, _CHUNK):  # each sorted position's rank within its item, a chunk at a time
        at = np.arange(i, min(i + _CHUNK, 2 * m))
        rank = at - starts[np.searchsorted(starts, at, side="right") - 1]
        keep[slot_of(at[rank < k])] = True
    return keep[:m] | keep[m:]


def _slots_by_item(ends: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, int, Callable[[np.ndarray], np.ndarray]]:
    """The 2m slots (pair i's first end is slot i, its second m + i) sorted by item, most similar first,
    ties in slot order: a sorted int64 key whose bits from `low` up are the slot's item, and a map from
    sorted positions to slots.

    MinHash similarities take at most num_perm + 1 values, so item, similarity rank and slot usually fit
    one int64 that sorts in place (a million personas' 24M pairs: 0.4 GB, against three times that for
    an argsort); otherwise one stable argsort of item and the similarity's descending float bits.
    """
    m = len(sims)
    levels = _distinct(sims)
    slot_bits = (2 * m).bit_length()
    low = len(levels).bit_length() + slot_bits
    if int(ends.max()).bit_length() + low <= 63:
        key = ends  # filled in place, a chunk at a time: whole-array temporaries were 1 GB at 24M pairs
        for i in range(0, m, _CHUNK):
            rank = (len(levels) - 1 - np.searchsorted(levels, sims[i : i + _CHUNK])).astype(np.int64) << slot_bits
            for side in (0, m):
                part = key[side + i : side + i + len(rank)]
                part <<= low
                part |= rank
                part |= np.arange(side + i, side + i + len(rank))
        key.sort()
        return key, low, lambda at: key[at] & ((1 << slot_bits) - 1)
    ends <<= 32
    ends |= descending_bits(np.concatenate([sims, sims]))
    order = np.argsort(ends, kind="stable")
    return ends[order], 32, lambda at: order[at]


_CHUNK = 1 << 22  # elements per step of the chunked array passes below (32 MB of int64)


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending (-0.0 and 0.0 as one), a chunk's sort at a time."""
    return unique_codes(np.concatenate([unique_codes(values[i : i + _CHUNK]) for i in range(0, len(values), _CHUNK)]))


def _run_starts(key: np.ndarray, low: int, chunk: int = _CHUNK) -> np.ndarray:
    """Positions in sorted `key` where the value above bit `low` changes (0 included), chunk by chunk."""
    found = [np.zeros(1, dtype=np.int64)]
    for i in range(0, len(key) - 1, chunk):
        high = key[i : i + chunk + 1] >> low
        found.append(np.flatnonzero(high[1:] != high[:-1]) + (i + 1))
    return np.concatenate(found)


def descending_bits(x: np.ndarray) -> np.ndarray:
    """uint32 keys of float32 `x` (as int64) that sort in descending order of `x`; -0.0 and 0.0 tie."""
    bits = (np.asarray(x, dtype=np.float32) + np.float32(0)).view(np.uint32).astype(np.int64)
    ascending = np.where(bits & 0x8000_0000, 0xFFFF_FFFF - bits, bits | 0x8000_0000)  # IEEE order as unsigned
    return 0xFFFF_FFFF - ascending


# Words whose presence says nothing about who someone is: "I am a nurse" and "A nurse who ..." differ only in these.
_FUNCTION_WORDS = frozenset(
    "a an the i am m is are was be been who that which whose and or but of in on at to for with from by as "
    "their his her its my our this".split()
)
_LONG_WORD = 8  # letters from which a word may carry two typos
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def _content_words(text: str) -> set[str]:
    """Words of `text` that are not function words; text without word spaces (Chinese) counts by character."""
    out: set[str] = set()
    for w in words(text):
        if _CJK.search(w):
            out.update(w)
        elif w not in _FUNCTION_WORDS:
            out.add(w)
    return out


@lru_cache(maxsize=1 << 16)
def _content_tokens(text: str) -> frozenset[str]:
    """`_content_words`, cached for the checks that ask about a few texts many times."""
    return frozenset(_content_words(text))


class ContentWords:
    """Every text's content words (`_content_words`) as ids into one vocabulary, found once for a pass.

    A pass's word-shape checks ask about most of its texts in random order (a million personas: ~11M
    asks); a cache of their word sets would not fit (~0.8 GB), so each text was tokenised again per
    ask. Here the ids are ~40 MB at a million texts and an ask only builds two small sets.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        vocab: dict[str, int] = {}
        self.ids = array("i")
        self.ends = array("q", [0])
        for text in texts:
            self.ids.extend(vocab.setdefault(w, len(vocab)) for w in _content_words(text))
            self.ends.append(len(self.ids))
        self.words = list(vocab)

    def differs_on_one_side(self, a: int, b: int) -> bool:
        """`differs_on_one_side` of texts `a` and `b` (positions)."""
        ids, ends = self.ids, self.ends
        ta, tb = set(ids[ends[a] : ends[a + 1]]), set(ids[ends[b] : ends[b + 1]])
        return _one_sided([self.words[i] for i in ta - tb], [self.words[i] for i in tb - ta])


@lru_cache(maxsize=1 << 18)
def _misspelt(a: str, b: str) -> bool:
    """`a` and `b` are one typo apart (two for words of 8+ letters): a swap, a drop, a doubling or a wrong key.

    Cached: a corpus's word pairs repeat (a million personas ask about 30M pairs of far fewer words)."""
    if min(len(a), len(b)) < 3:
        return False
    limit = 1 if max(len(a), len(b)) < _LONG_WORD else 2
    if abs(len(a) - len(b)) > limit or len(set(a) ^ set(b)) > 2 * limit:
        return False  # each typo changes the letters used by at most two
    # Optimal-string-alignment distance (Levenshtein with adjacent swaps), on two short words.
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1] <= limit


def differs_on_one_side(a: str, b: str) -> bool:
    """Whether the content words that one text has and the other lacks are all on one side, misspellings aside.

    What an edited copy looks like: a typo changes a word into a near-identical one, an added or dropped
    detail puts new words on one side only, "I am a ..." for "A ..." adds function words. Two different
    people described in one template differ by words replaced on both sides ("a seventy-year-old nurse in
    Lima" / "a forty-year-old night cleaner in Lima"), which a small embedding model can place at
    cosine 0.8 while a copy with two typos can fall to 0.4.

    >>> differs_on_one_side("A nurse in Lima who likes jazz", "I am a nurse in Lmia who likes jazz and tango")
    True
    >>> differs_on_one_side("A nurse in Lima who likes jazz", "A cleaner in Lima who likes jazz")
    False
    """
    ta, tb = _content_tokens(a), _content_tokens(b)
    return _one_sided(ta - tb, tb - ta)


def _one_sided(only_a: Collection[str], only_b: Collection[str]) -> bool:
    """The words only one text has are all on one side, or each is a misspelling of one on the other."""
    if not only_a or not only_b:
        return True
    return _misspellings_of(only_a, only_b) or _misspellings_of(only_b, only_a)


def _misspellings_of(words_: Collection[str], others: Collection[str]) -> bool:
    """Every word of `words_` is a misspelling of one of `others` (loops, not generators: this runs
    millions of times in a large pass, mostly failing at the first word)."""
    for w in words_:
        if len(w) < 3:
            return False
        for v in others:
            if _misspelt(w, v):
                break
        else:
            return False
    return True


def embedding_pairs(vectors: np.ndarray, config: DedupConfig) -> Pairs:
    """Pairs among each item's nearest neighbours whose cosine reaches the threshold."""
    a, b, sims = similar_pairs(vectors, config.embedding_threshold, k=config.embedding_neighbours,
                               ann_min_size=config.ann_min_size, nprobe=config.ann_nprobe)
    return Pairs.of(a, b, sims, "embedding")


def confirmed(cosine: np.ndarray, one_sided: Callable[[int], bool], config: DedupConfig) -> np.ndarray:
    """Which MinHash candidates (method "both") are duplicates: a cosine reaching `verify_cosine`, or one
    reaching `shape_cosine` with the differing words on one side (`differs_on_one_side`, asked through
    `one_sided(i)` only where it decides)."""
    sure = cosine >= config.verify_cosine
    ask = np.flatnonzero(~sure & (cosine >= config.shape_cosine))
    sure[ask] = [one_sided(int(i)) for i in ask]
    return sure


def pairs_from_arrays(
    signatures: np.ndarray | None, vectors: np.ndarray | None, config: DedupConfig, method: DedupMethod,
    texts: Sequence[str] | None = None, minhash: MinhashPairs = minhash_pairs,
    note: Callable[[str], None] | None = None,
) -> Pairs:
    """Verified pairs from precomputed signatures and/or unit vectors (rows = items) and the texts.

    With "both", shingle overlap proposes and `confirmed` decides: meaning (cosine) confirms, and
    where the cosine is low the shape of the difference does (an edited copy changes words on one
    side or misspells them; a different person in the same template replaces words on both). Without
    `texts` that last route is closed. An embedding pair must also share `min_jaccard` of its
    shingles: all-MiniLM-L6-v2 reads English, and places unrelated Chinese personas at cosine 0.9.
    `minhash` finds the MinHash candidates (in this process unless told otherwise); `note` hears
    each step as it starts (a million personas take minutes per step).
    """
    say = note or (lambda _msg: None)
    parts: list[Pairs] = []
    if method in ("minhash", "both") and signatures is not None:
        say(f"MinHash candidate pairs among {len(signatures):,} personas")
        found = minhash(signatures, config, method)
        if method == "both" and vectors is not None and len(found):
            say(f"confirming {len(found):,} MinHash pairs by cosine and the shape of their difference")
            cos = pairwise(cosines, vectors, found.a, found.b)
            shapes = ContentWords(texts) if texts is not None else None
            one_sided = (lambda i: shapes.differs_on_one_side(int(found.a[i]), int(found.b[i]))) if shapes is not None \
                else (lambda i: False)
            found = found.select(confirmed(cos, one_sided, config))
        parts.append(found)
    if method in ("embedding", "both") and vectors is not None:
        say(f"nearest embedding neighbours of {len(vectors):,} personas")
        found = embedding_pairs(vectors, config)
        if method == "both" and signatures is not None and len(found):
            found = found.select(pairwise(estimated_jaccard, signatures, found.a, found.b) >= config.min_jaccard)
        parts.append(found)
    return Pairs.concat(parts)
