"""Planted near-duplicates of REAL personas, each copy labelled with the edit that made it.

`tests/fixtures/filter/real_personas.jsonl` holds 3,000 real Persona Hub personas (mostly English, 53
Chinese). `split(seed)` shuffles them into a tuning half and a held-out half; `plant(bases, seed)`
gives a share of one half 1-3 edited copies, each made by one kind of edit (or two, "mixed"):

- `paraphrase`: a framing template ("This persona is a ...", "Someone who is a ...") and a connective
  changed ("who" -> "that");
- `reorder`: the two sides of an "and" (or of a comma) swapped;
- `synonyms`: 1-3 words replaced by a synonym ("enthusiast" -> "fan");
- `typos`: 1-2 character swaps, drops, doublings or neighbouring-key slips;
- `add_detail` / `drop_detail`: a short clause appended, or the last short clause removed;
- `person`: "A nurse ..." <-> "I am a nurse ...";
- Chinese: character typos and synonyms, clause reordering at "，", "一位..." <-> "我是一位...".

The other personas of the half stay in as they are: its real nearest neighbours (e.g. two different
"die-hard fans of" a show) are the hard negatives, and `hard_negatives` lists the closest of them.

    python -m bench.planted_edits                    # defaults, tuning and held-out, per edit kind
    python -m bench.planted_edits --sweep            # threshold grid on the tuning half
    python -m bench.planted_edits --fixture tests/fixtures/dedup/planted_real.jsonl   # the test's small set

Embeddings are cached in `$TMPDIR/personagraph-planted-edits/` (all-MiniLM-L6-v2 embeds ~100 texts/s here).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.planted_duplicates import pair_scores
from personagraph.config import DedupConfig
from personagraph.dedup.groups import duplicate_groups
from personagraph.dedup.pairs import minhasher

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "fixtures" / "filter" / "real_personas.jsonl"
CACHE = Path(tempfile.gettempdir()) / "personagraph-planted-edits"
_CJK = re.compile(r"[\u3400-\u9fff]")

FRAMES = [
    "This persona is {a}", "Someone who is {a}", "The person described here is {a}", "Meet {a}",
    "Picture {a}", "{A}",  # the last: no article at all ("Sports journalist who ...")
]
CONNECTIVES = [(" who is ", " that is "), (" who ", " that "), (" with ", " having "), (" and ", " as well as "),
               (" interested in ", " keen on "), (" working ", " employed "), (" seeking ", " looking for ")]
SYNONYMS = {
    "enthusiast": "fan", "fan": "enthusiast", "passionate": "keen", "student": "learner", "young": "youthful",
    "expert": "specialist", "specialist": "expert", "loves": "adores", "love": "passion", "small": "little",
    "company": "firm", "business": "enterprise", "teacher": "educator", "doctor": "physician", "seeking": "looking for",
    "looking": "searching", "works": "is employed", "working": "employed", "local": "neighbourhood", "retired": "former",
    "former": "ex-", "interested": "curious", "professor": "lecturer", "researcher": "scholar", "owner": "proprietor",
    "parent": "mother", "child": "kid", "children": "kids", "knowledge": "understanding", "experienced": "seasoned",
    "aspiring": "budding", "old": "aged", "major": "student", "provides": "offers", "shares": "posts",
    "believes": "thinks", "always": "constantly", "known": "recognised", "proud": "glad", "values": "cherishes",
    "seeks": "wants", "big": "huge", "helps": "assists", "help": "assist", "job": "position", "career": "profession",
    "focused": "centred", "dedicated": "committed", "skilled": "adept", "community": "neighbourhood",
    "field": "area", "impact": "effect", "insights": "perspectives", "advice": "tips", "guidance": "advice",
    "support": "backing", "develop": "build", "developer": "programmer", "engineer": "technologist",
    "about": "regarding", "wants": "hopes", "understand": "grasp", "create": "make", "often": "frequently",
}
DETAILS = [
    ", who lives in a small town", " and enjoys hiking on weekends", ", a parent of two", " based in Chicago",
    ", with over ten years of experience", " who also volunteers locally", ", recently relocated to Berlin",
    " and drinks far too much coffee",
]
KEYS = "qwertyuiopasdfghjklzxcvbnm"
ZH_SYNONYMS = {
    "一位": "一名", "一个": "一位", "喜欢": "热爱", "热爱": "喜爱", "关心": "关注", "关注": "留意", "感兴趣": "有兴趣",
    "非常": "十分", "粉丝": "迷", "爱好者": "发烧友", "教授": "老师", "专家": "行家", "了解": "认识", "研究": "钻研",
    "年轻": "青年", "学生": "学子", "深感": "很感", "充满": "满怀", "影响": "作用", "发展": "进展",
}
ZH_TYPOS = {"的": "地", "在": "再", "对": "队", "是": "事", "和": "合", "有": "友", "于": "与", "者": "着", "人": "入"}


def load_real() -> list[str]:
    """The real personas, each once (by normalised text)."""
    seen, out = set(), []
    for line in REAL.read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["persona"].strip()
        key = " ".join(text.casefold().split())
        if text and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def split(seed: int = 0) -> tuple[list[str], list[str]]:
    """(tuning, held-out): the real personas shuffled and cut in half."""
    texts = load_real()
    random.Random(seed).shuffle(texts)
    half = len(texts) // 2
    return texts[:half], texts[half:]


def is_chinese(text: str) -> bool:
    """Mostly CJK characters."""
    return len(_CJK.findall(text)) * 2 > len(text.replace(" ", ""))


# -- edits: each returns the edited text, or None when it does not apply --------------------------------

def _paraphrase(text: str, rng: random.Random) -> str | None:
    m = re.match(r"(?:I am|I'm) (an? .*)$|^(An? .*)$", text)
    if not m:
        return None
    body = m.group(1) or m.group(2)
    frame = rng.choice(FRAMES)
    body = body[0].lower() + body[1:]
    head = body if frame != "{A}" else re.sub(r"^an? ", "", body)
    out = frame.format(a=head, A=head[0].upper() + head[1:])
    changes = [(a, b) for a, b in CONNECTIVES if a in out]
    if changes:
        a, b = rng.choice(changes)
        out = out.replace(a, b, 1)
    return out


def _reorder(text: str, rng: random.Random) -> str | None:
    end = text[-1] if text[-1] in ".!" else ""
    body = text[: len(text) - len(end)]
    if " and " in body:
        left, right = body.rsplit(" and ", 1)
        cut = max(left.rfind(d) + len(d) if left.rfind(d) >= 0 else -1 for d in (", ", " who ", " with ", " of ", " in ", " for ", " about ", " is ", " has "))
        if cut > 0 and len(right.split()) <= 12 and "," not in right:
            return f"{left[:cut]}{right} and {left[cut:]}{end}"
    if ", " in body:
        first, rest = body.split(", ", 1)
        if len(rest.split()) >= 2:
            rest = rest[0].upper() + rest[1:]
            first = first[0].lower() + first[1:] if not first.startswith("I ") else first
            return f"{rest}, {first}{end}"
    return None


def _synonyms(text: str, rng: random.Random) -> str | None:
    tokens = text.split(" ")
    hits = [i for i, t in enumerate(tokens) if t.strip(",.;").lower() in SYNONYMS]
    if not hits:
        return None
    for i in rng.sample(hits, min(len(hits), rng.randint(1, 3))):
        core = tokens[i].strip(",.;")
        tokens[i] = tokens[i].replace(core, SYNONYMS[core.lower()])
    return " ".join(tokens)


def _typos(text: str, rng: random.Random) -> str | None:
    if len(text) < 8:
        return None
    chars = list(text)
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(1, len(chars) - 2)
        op = rng.random()
        if op < 0.3:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif op < 0.55:
            del chars[i]
        elif op < 0.8:
            chars.insert(i, chars[i])
        elif chars[i].lower() in KEYS:
            k = KEYS.index(chars[i].lower())
            chars[i] = KEYS[max(0, min(len(KEYS) - 1, k + rng.choice([-1, 1])))]
    return "".join(chars)


def _clauses(text: str) -> list[int]:
    """Start positions of the trailing clauses a detail can be dropped at."""
    return [m.start() for m in re.finditer(r", | and | who | with ", text)]


def _add_detail(text: str, rng: random.Random) -> str | None:
    end = text[-1] if text[-1] in ".!" else ""
    return text[: len(text) - len(end)] + rng.choice(DETAILS) + end


def _drop_detail(text: str, rng: random.Random) -> str | None:
    n = len(text.split())
    for cut in reversed(_clauses(text)):
        dropped = len(text[cut:].split())
        if 2 <= dropped <= max(3, n // 3) and n - dropped >= 5:
            return text[:cut] + ("." if text.endswith(".") else "")
    return None


def _person(text: str, rng: random.Random) -> str | None:
    m = re.match(r"(?:I am|I'm) (an? )(.*)$", text)
    if m:
        return m.group(1).capitalize() + m.group(2)
    if re.match(r"An? ", text):
        return "I am " + text[0].lower() + text[1:]
    return None


def _zh_typos(text: str, rng: random.Random) -> str | None:
    chars = list(text)
    if len(chars) < 6:
        return None
    for _ in range(rng.randint(1, 2)):
        subs = [i for i, c in enumerate(chars) if c in ZH_TYPOS]
        if subs and rng.random() < 0.5:
            i = rng.choice(subs)
            chars[i] = ZH_TYPOS[chars[i]]
        else:
            i = rng.randrange(1, len(chars) - 1)
            if rng.random() < 0.5:
                chars[i - 1], chars[i] = chars[i], chars[i - 1]
            else:
                del chars[i]
    return "".join(chars)


def _zh_synonyms(text: str, rng: random.Random) -> str | None:
    hits = [w for w in ZH_SYNONYMS if w in text]
    if not hits:
        return None
    for w in rng.sample(hits, min(len(hits), rng.randint(1, 2))):
        text = text.replace(w, ZH_SYNONYMS[w], 1)
    return text


def _zh_reorder(text: str, rng: random.Random) -> str | None:
    end = text[-1] if text[-1] in "。！" else ""
    parts = text[: len(text) - len(end)].split("，")
    if len(parts) < 3:
        return None  # the first clause says who it is; only the ones after it can move
    i = rng.randrange(1, len(parts) - 1)
    parts[i], parts[i + 1] = parts[i + 1], parts[i]
    return "，".join(parts) + end


def _zh_person(text: str, rng: random.Random) -> str | None:
    if text.startswith("我是"):
        return text[2:]
    return "我是" + text if re.match(r"一[位个名]", text) else None


EDITS = {
    "paraphrase": _paraphrase, "reorder": _reorder, "synonyms": _synonyms, "typos": _typos,
    "add_detail": _add_detail, "drop_detail": _drop_detail, "person": _person,
}
ZH_EDITS = {"zh_typos": _zh_typos, "zh_synonyms": _zh_synonyms, "zh_reorder": _zh_reorder, "zh_person": _zh_person}


def edit(text: str, rng: random.Random) -> tuple[str, str] | None:
    """(copy, kind): one applicable edit of `text` picked at random, or two of them ("mixed") one time in five."""
    edits = ZH_EDITS if is_chinese(text) else EDITS
    applicable = [(k, out) for k, f in edits.items() if (out := f(text, rng)) is not None and out != text]
    if not applicable:
        return None
    kind, out = rng.choice(applicable)
    if rng.random() < 0.2 and len(applicable) > 1:
        second = rng.choice([k for k, _ in applicable if k != kind])
        again = edits[second](out, rng)
        if again is not None and again != out:
            return again, ("zh_" if kind.startswith("zh_") else "") + "mixed"
    return out, kind


@dataclass
class Planted:
    """Texts, the ground-truth cluster of each, and the edit kind that made each copy (None: an original)."""

    texts: list[str] = field(default_factory=list)
    cluster: list[int] = field(default_factory=list)
    kind: list[str | None] = field(default_factory=list)


def plant(bases: Sequence[str], seed: int = 0, dup_share: float = 0.35, max_copies: int = 3) -> Planted:
    """Every base once, and for `dup_share` of them (all the Chinese ones) 1..max_copies edited copies, shuffled."""
    rng = random.Random(seed)
    rows: list[tuple[str, int, str | None]] = []
    for cid, base in enumerate(bases):
        rows.append((base, cid, None))
        if rng.random() < dup_share or is_chinese(base):
            seen = {base}
            for _ in range(rng.randint(1, max_copies)):
                made = edit(base, rng)
                if made is not None and made[0] not in seen:
                    seen.add(made[0])
                    rows.append((made[0], cid, made[1]))
    rng.shuffle(rows)
    return Planted([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


_JOINS = re.compile(r" (?:who|that|with|from|and|interested in|known for|working|living|passionate about) |, ")


def recombined(n: int, seed: int = 0, dup_share: float = 0.35) -> Planted:
    """About `n` persona texts as long as real ones, for a pass at scale: each distinct persona joins the
    opening of one real English persona ("A sports journalist") to the rest of another (" who has
    interviewed Michael Jordan ..."), and `plant` gives `dup_share` of them edited copies.

    The 3,000 real personas hold too few people for a million, and the templated corpus of
    `planted_duplicates` is twice as long (34.6 tokens against 18.5), which doubles the encoder's
    work. Recombined personas share openings and endings with hundreds of others, so, like templated
    ones, they are denser in near neighbours than real text.
    """
    rng = random.Random(seed)
    heads: list[str] = []
    tails: list[str] = []
    for text in load_real():
        if not text.isascii():
            continue
        cut = _JOINS.search(text)
        if cut is not None and 0 < cut.start() < 60:
            heads.append(text[: cut.start()])
            tails.append(text[cut.start():])
    bases: set[str] = set()
    want = int(n / (1 + dup_share * 2))  # `plant` adds ~2 copies to dup_share of the bases
    while len(bases) < want:
        bases.add(rng.choice(heads) + rng.choice(tails))
    return plant(sorted(bases), seed=seed, dup_share=dup_share)


def embed_cached(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit vectors of `texts` as the dedup keeps them (`VECTOR_DTYPE`), from a cache file keyed by the
    texts' digest when there is one."""
    from personagraph.dedup.embedding import VECTOR_DTYPE, embed

    key = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = CACHE / f"{key}.npy"
    if path.is_file():
        return np.load(path).astype(VECTOR_DTYPE)
    vecs = embed(texts, batch_size)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs.astype(VECTOR_DTYPE)


def hard_negatives(planted: Planted, vectors: np.ndarray, k: int = 200) -> list[tuple[int, int, float]]:
    """The `k` most similar pairs of different personas (originals only): the nearest real neighbours."""
    orig = np.flatnonzero([k_ is None for k_ in planted.kind])
    sims = vectors[orig] @ vectors[orig].T
    np.fill_diagonal(sims, -1)
    iu = np.triu_indices(len(orig), 1)
    top = np.argsort(-sims[iu])[:k]
    return [(int(orig[iu[0][t]]), int(orig[iu[1][t]]), float(sims[iu][t])) for t in top]


@dataclass
class Score:
    """Pairwise precision/recall overall, recall per edit kind, and false merges among hard negatives."""

    precision: float
    recall: float
    per_kind: dict[str, tuple[float, int]]
    hard_negatives_merged: int
    groups: int


def score(planted: Planted, groups: Sequence[Sequence[int]], negatives: Sequence[tuple[int, int, float]] = ()) -> Score:
    """Score `groups` (positions) against the planted clusters."""
    p, r = pair_scores(groups, planted.cluster)
    group_of = {m: g for g, members in enumerate(groups) for m in members}
    original = {c: i for i, (c, k) in enumerate(zip(planted.cluster, planted.kind)) if k is None}
    found: dict[str, list[int]] = {}
    for i, kind in enumerate(planted.kind):
        if kind is not None:
            o = original[planted.cluster[i]]
            found.setdefault(kind, []).append(int(i in group_of and group_of.get(o) == group_of[i]))
    per_kind = {k: (sum(v) / len(v), len(v)) for k, v in sorted(found.items())}
    merged = sum(1 for a, b, _ in negatives if a in group_of and group_of.get(b) == group_of[a])
    return Score(p, r, per_kind, merged, len(groups))


def evaluate(planted: Planted, sigs: np.ndarray, vecs: np.ndarray, config: DedupConfig, method: str,
             negatives: Sequence[tuple[int, int, float]] = ()) -> Score:
    """Group `planted` with `config` and `method` from precomputed arrays, and score the groups."""
    _, groups = duplicate_groups(sigs if method != "embedding" else None, vecs if method != "minhash" else None,
                                 config, method, texts=planted.texts)  # type: ignore[arg-type]
    return score(planted, [g.members for g in groups], negatives)


def _subset(planted: Planted, keep: Sequence[int]) -> Planted:
    return Planted([planted.texts[i] for i in keep], [planted.cluster[i] for i in keep], [planted.kind[i] for i in keep])


def report(name: str, planted: Planted, config: DedupConfig) -> None:
    """Print P/R per method, recall per edit kind, and the Chinese subset, for one half."""
    t0 = time.perf_counter()
    vecs = embed_cached(planted.texts, config.embed_batch_size)
    sigs = minhasher(config).signatures(planted.texts)
    negatives = hard_negatives(planted, vecs)
    copies = sum(k is not None for k in planted.kind)
    print(f"\n## {name}: {len(planted.texts)} texts, {len(set(planted.cluster))} personas, {copies} planted copies "
          f"(arrays in {time.perf_counter() - t0:.1f}s); hard negatives: the {len(negatives)} closest distinct pairs, "
          f"cosine {negatives[-1][2]:.2f}-{negatives[0][2]:.2f}")
    scores = {m: evaluate(planted, sigs, vecs, config, m, negatives) for m in ("minhash", "embedding", "both")}
    print("| method | precision | recall | groups | hard negatives merged |\n|---|---|---|---|---|")
    for m, s in scores.items():
        print(f"| {m} | {s.precision:.3f} | {s.recall:.3f} | {s.groups} | {s.hard_negatives_merged} |")
    print("\n| edit kind | copies | " + " | ".join(f"{m} recall" for m in scores) + " |\n|---|---|---|---|---|")
    for kind, (_, count) in scores["both"].per_kind.items():
        print(f"| {kind} | {count} | " + " | ".join(f"{s.per_kind.get(kind, (0, 0))[0]:.3f}" for s in scores.values()) + " |")
    zh = [i for i, t in enumerate(planted.texts) if is_chinese(t)]
    sub = _subset(planted, zh)
    s = evaluate(sub, sigs[zh], vecs[zh], config, "both")
    print(f"\nChinese only ({len(zh)} texts, both): P={s.precision:.3f} R={s.recall:.3f}")


def sweep(planted: Planted, base: DedupConfig, templated: int = 1000) -> None:
    """Grid over shingling and thresholds on one half, P/R of `both`; a setting that reaches P >= 0.98 and
    R >= 0.97 there is also scored on a templated corpus (`bench.planted_duplicates`, `templated` personas:
    different people in shared frames, the hard case for character overlap). Then MinHash alone."""
    from bench.planted_duplicates import make_corpus

    vecs = embed_cached(planted.texts, base.embed_batch_size)
    corpus = make_corpus(templated, seed=0)
    tvecs = embed_cached(corpus.texts, base.embed_batch_size)
    for unit, k in [("chars", 3), ("chars", 4), ("chars", 5)]:
        ck = base.model_copy(update={"shingles": unit, "shingle_size": k})
        sigs, tsigs = minhasher(ck).signatures(planted.texts), minhasher(ck).signatures(corpus.texts)
        grid = itertools.product((0.3, 0.4), (0.65, 0.7, 0.75, 0.8), (0.65, 0.7, 0.75, 0.8), (0.6, 0.7), (0.86, 0.9))
        for j, trust, verify, link, emb in grid:
            c = ck.model_copy(update={"minhash_threshold": j, "trust_jaccard": trust, "verify_cosine": verify,
                                      "link_cosine": link, "embedding_threshold": emb})
            s = evaluate(planted, sigs, vecs, c, "both")
            line = (f"{unit}{k} J>={j:.2f} trust>={trust:.2f} verify>={verify:.2f} link>={link:.2f} emb>={emb:.2f}  "
                    f"both P={s.precision:.3f} R={s.recall:.3f}")
            if s.precision >= 0.98 and s.recall >= 0.97:
                _, groups = duplicate_groups(tsigs, tvecs, c, "both", texts=corpus.texts)  # type: ignore[arg-type]
                tp, tr = pair_scores([g.members for g in groups], corpus.cluster)
                line += f"  templated P={tp:.3f} R={tr:.3f}"
            print(line, flush=True)
        for trust, link in itertools.product((0.5, 0.6, 0.7, 0.75, 0.8), (0.5, 0.6, 0.7)):
            c = ck.model_copy(update={"trust_jaccard": trust, "link_jaccard": link})
            s = evaluate(planted, sigs, vecs, c, "minhash")
            _, groups = duplicate_groups(tsigs, None, c, "minhash")  # type: ignore[arg-type]
            tp, tr = pair_scores([g.members for g in groups], corpus.cluster)
            print(f"{unit}{k} J>={trust:.2f} link>={link:.2f} minhash alone P={s.precision:.3f} R={s.recall:.3f}  "
                  f"templated P={tp:.3f} R={tr:.3f}", flush=True)


def write_fixture(path: Path, n: int = 220, seed: int = 2) -> Planted:
    """A small planted set for tests: `n` held-out personas and every Chinese one of that half, as JSON lines
    `{"text", "cluster", "kind"}` (a file, so a change to the generator does not change what tests hold)."""
    _, held_out = split(0)
    english = [t for t in held_out if not is_chinese(t)][:n]
    planted = plant(english + [t for t in held_out if is_chinese(t)], seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for text, cluster, kind in zip(planted.texts, planted.cluster, planted.kind):
            f.write(json.dumps({"text": text, "cluster": cluster, "kind": kind}, ensure_ascii=False) + "\n")
    return planted


def main() -> None:
    """Report the defaults on the tuning and held-out halves, or sweep thresholds on the tuning half."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="threshold grid on the tuning half")
    parser.add_argument("--fixture", type=Path, help="write the small planted test set here and stop")
    args = parser.parse_args()
    if args.fixture:
        planted = write_fixture(args.fixture)
        print(f"{args.fixture}: {len(planted.texts)} texts, {sum(k is not None for k in planted.kind)} planted copies")
        return
    tuning, held_out = split(args.seed)
    config = DedupConfig()
    if args.sweep:
        sweep(plant(tuning, args.seed), config)
        return
    print(f"defaults: {config.model_dump(exclude={'embed_batch_size', 'seed', 'method'})}")
    report("tuning", plant(tuning, args.seed), config)
    report("held-out", plant(held_out, args.seed + 1), config)


if __name__ == "__main__":
    main()
