"""What a low Jaccard threshold costs on templated text: MinHash candidate pairs and time, no embeddings.

Templated personas (`bench.planted_duplicates`) share most of their character trigrams, so LSH tuned
for J >= 0.3 puts many different people in one bucket. This measures, at the default settings, the
signatures, the LSH candidate pairs (buckets capped as the pass caps them), the pairs at or above
`minhash_threshold`, and the cost of the word-shape check (`differs_on_one_side`) were it asked of
every one of them (the pass asks it only of pairs with a moderate cosine):

    python -m bench.dedup_pair_counts --n 20000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.planted_duplicates import make_corpus
from personagraph.config import DedupConfig
from personagraph.dedup.pairs import differs_on_one_side, minhash_pairs, minhasher


def main() -> None:
    """Print pair counts and timings for a templated corpus of `--n` personas."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="distinct base personas")
    parser.add_argument("--shape-sample", type=int, default=20000, help="pairs to time the word-shape check on")
    args = parser.parse_args()
    config = DedupConfig()
    corpus = make_corpus(args.n, seed=0)
    texts = corpus.texts
    print(f"{len(texts)} texts ({args.n} personas), shingles={config.shingles}/{config.shingle_size}, "
          f"J >= {config.minhash_threshold} (both), J >= {config.trust_jaccard} (minhash alone)")
    t0 = time.perf_counter()
    sigs = minhasher(config).signatures(texts)
    t1 = time.perf_counter()
    print(f"signatures: {t1 - t0:.1f}s ({len(texts) / (t1 - t0):,.0f}/s)")
    cluster = np.asarray(corpus.cluster)
    for method in ("both", "minhash"):
        t1 = time.perf_counter()
        pairs = minhash_pairs(sigs, config, method)  # type: ignore[arg-type]
        t2 = time.perf_counter()
        same = int((cluster[pairs.a] == cluster[pairs.b]).sum())
        print(f"{method:>7}: {len(pairs):,} MinHash pairs ({same:,} within a planted group) in {t2 - t1:.1f}s")
        if method == "both" and len(pairs):
            pick = np.random.default_rng(0).choice(len(pairs), min(args.shape_sample, len(pairs)), replace=False)
            t2 = time.perf_counter()
            sided = sum(differs_on_one_side(texts[pairs.a[i]], texts[pairs.b[i]]) for i in pick.tolist())
            per = (time.perf_counter() - t2) / len(pick)
            print(f"         word-shape check: {per * 1e6:.0f} us/pair ({per * len(pairs):.1f}s if asked of all), "
                  f"one-sided: {sided / len(pick):.1%} of the sample")


if __name__ == "__main__":
    main()
