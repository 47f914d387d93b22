"""Planted-duplicate benchmark: realistic persona descriptions plus perturbed copies of some.

`make_corpus(n, seed)` builds `n` distinct personas from occupation, place, age, activity and trait
vocabularies (so distinct personas often share most of their words: the hard negatives), and gives a
share of them 1-3 copies, each perturbed by 1-3 of: clause reordering, synonyms, typos, punctuation
and casing, paraphrase templates. `pair_scores(pred, truth)` scores predicted groups by pairs.

Run as a benchmark (bigger corpus, all methods, a threshold sweep):

    python -m bench.planted_duplicates --n 5000 --sweep
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from personagraph.config import DedupConfig
from personagraph.dedup.embedding import VECTOR_DTYPE, embed
from personagraph.dedup.groups import duplicate_groups
from personagraph.dedup.pairs import minhasher

OCCUPATIONS = [
    "pediatric nurse", "high school chemistry teacher", "long-haul truck driver", "software engineer",
    "dairy farmer", "retired firefighter", "public defender", "street food vendor", "hospice chaplain",
    "marine biologist", "wedding photographer", "night-shift security guard", "primary school librarian",
    "plumber", "freelance translator", "dental hygienist", "construction site foreman", "bakery owner",
    "graduate student in linguistics", "emergency room physician", "bus driver", "yoga instructor",
    "real estate agent", "museum curator", "social worker", "tax accountant", "airline pilot",
    "hotel housekeeper", "tattoo artist", "beekeeper", "fishing boat captain", "stay-at-home father",
    "data analyst at a bank", "pharmacist", "zookeeper", "sign language interpreter", "car mechanic",
    "community organizer", "wine sommelier", "video game designer", "midwife", "court stenographer",
    "landscape architect", "orchestra violinist", "warehouse picker", "school bus monitor",
    "veterinary technician", "startup founder", "police dispatcher", "hairdresser", "sheep shearer",
    "kindergarten teacher", "crossing guard", "radio host", "furniture restorer", "tour guide",
    "diabetes educator", "lighthouse keeper", "seamstress", "locksmith", "organic chemist",
    "physical therapist", "taxi driver", "carpenter", "parole officer", "cartographer",
]
PLACES = [
    "rural Ohio", "Lagos", "a fishing village in Norway", "downtown Chicago", "the outskirts of Mumbai",
    "a small town in Kansas", "Osaka", "Buenos Aires", "the Scottish Highlands", "suburban Melbourne",
    "Nairobi", "a mountain village in Peru", "Marseille", "the Texas panhandle", "Hanoi", "Montreal",
    "a coastal town in Maine", "Berlin", "rural Kenya", "Seoul", "the Mississippi Delta", "Cape Town",
    "Lisbon", "an island in the Philippines", "Detroit", "Krakow", "Alaska", "Manchester", "Jakarta",
    "a Navajo reservation in Arizona", "Reykjavik", "Chengdu", "rural Punjab", "Toronto", "Athens",
    "a mining town in Chile", "New Orleans", "Tbilisi", "the Australian outback", "Dublin",
]
AGES = [
    "young", "middle-aged", "elderly", "retired", "twenty-something", "newly qualified", "veteran",
    "semi-retired", "teenage", "forty-year-old", "sixty-year-old", "thirty-five-year-old",
]
ACTIVITIES = [
    "volunteers at the local food bank on weekends", "is training for a first marathon",
    "collects vintage vinyl records", "writes a blog about budget travel", "coaches a youth soccer team",
    "is learning to play the cello", "restores old motorcycles in the garage",
    "keeps a vegetable garden and cans tomatoes every summer", "runs a podcast about local history",
    "cares for an aging parent with dementia", "is studying for an evening law degree",
    "builds birdhouses for the neighbours", "organises a monthly book club",
    "teaches English to refugees twice a week", "plays chess in the park every morning",
    "is saving up to open a small cafe", "hikes a different trail every month",
    "knits blankets for the children's hospital", "brews beer at home", "sings in a church choir",
    "follows every Formula One race", "maintains a popular recipe channel online",
    "mentors first-generation college students", "is raising three kids alone",
    "paints watercolour landscapes", "tracks migratory birds with a local club",
    "repairs bicycles for free for students", "is writing a memoir about growing up poor",
    "competes in amateur powerlifting", "fosters rescue dogs", "studies astronomy with a backyard telescope",
    "sews costumes for the community theatre", "is learning Mandarin through night classes",
    "volunteers as a firefighter in the village", "campaigns against a new highway",
    "translates poetry as a hobby", "runs the neighbourhood watch group", "plays bass in a punk band",
    "grows bonsai trees", "takes care of stray cats in the neighbourhood",
]
TRAITS = [
    "worries about rising rent", "distrusts new technology", "loves spicy food",
    "is deeply religious", "reads science fiction before bed", "cannot swim",
    "speaks four languages", "is recovering from a knee injury", "dreams of retiring by the sea",
    "is an early riser", "has never left the country", "is obsessed with crossword puzzles",
    "votes in every local election", "is allergic to cats", "keeps a detailed budget spreadsheet",
    "has a stutter", "recently became a grandparent", "is colour blind", "is a vegetarian",
    "lives with type 1 diabetes", "prefers handwritten letters to email", "suffers from insomnia",
    "is a lifelong football fan", "is afraid of flying", "was the first in the family to attend college",
]
SYNONYMS = {
    "who": ["that"], "volunteers": ["helps out"], "local": ["nearby", "neighbourhood"],
    "weekends": ["the weekend"], "loves": ["adores", "really likes"],
    "small": ["little"], "old": ["aging"], "teacher": ["educator"], "physician": ["doctor"],
    "elderly": ["older"], "young": ["youthful"], "collects": ["hoards"], "writes": ["authors"],
    "runs": ["hosts"], "studies": ["learns"], "keeps": ["maintains"], "first": ["very first"],
    "cares": ["looks after" ], "owner": ["proprietor"], "children's": ["kids'"],
    "worries": ["frets"], "dreams": ["hopes"], "obsessed": ["hooked"], "afraid": ["scared"],
    "monthly": ["once-a-month"], "every": ["each"], "free": ["no charge"],
    "rural": ["countryside"], "downtown": ["central"], "driver": ["operator"],
}
FRAMES = [
    "A {age} {occ} from {place} who {act} and {trait}.",
    "A {age} {occ} living in {place}; {she} {act} and {trait}.",
    "{Age} {occ} based in {place} who {act}, and who {trait}.",
]
PARAPHRASES = [
    "Based in {place}, this {age} {occ} {act} and {trait}.",
    "Someone who works as a {age} {occ} in {place}, {act}, and {trait}.",
    "This persona is a {age} {occ} in {place}. {She} {act} and {trait}.",
    "{Age} {occ}, {place}. {She} {trait} and {act}.",
    "In {place} lives a {age} {occ} who {trait} and {act}.",
]


@dataclass(frozen=True)
class Slots:
    """The parts of one base persona."""

    age: str
    occ: str
    place: str
    act: str
    trait: str
    she: str

    def fill(self, frame: str) -> str:
        """Render the slots into a frame and capitalise the first letter."""
        text = frame.format(
            age=self.age, Age=self.age.capitalize(), occ=self.occ, place=self.place, act=self.act,
            trait=self.trait, she=self.she.lower(), She=self.she,
        )
        return text[0].upper() + text[1:]


def _synonyms(text: str, rng: random.Random) -> str:
    tokens = text.split(" ")
    hits = [i for i, t in enumerate(tokens) if t.strip(",.;") in SYNONYMS]
    for i in rng.sample(hits, min(len(hits), rng.randint(1, 3))):
        core = tokens[i].strip(",.;")
        tokens[i] = tokens[i].replace(core, rng.choice(SYNONYMS[core]))
    return " ".join(tokens)


def _typos(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(1, len(chars) - 2)
        op = rng.random()
        if op < 0.4:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif op < 0.7:
            del chars[i]
        else:
            chars.insert(i, chars[i])
    return "".join(chars)


def _punctuation(text: str, rng: random.Random) -> str:
    op = rng.random()
    if op < 0.3:
        return text.rstrip(".") + rng.choice(["", "!", " .", "..."])
    if op < 0.6:
        return text.replace(" and ", rng.choice([", and ", " & ", "; and "]), 1)
    if op < 0.8:
        return text.lower()
    return "  " + text.replace(" ", "  ", 2) + " "


def _reorder(slots: Slots, rng: random.Random) -> str:
    swapped = Slots(slots.age, slots.occ, slots.place, slots.trait, slots.act, slots.she)
    frame = rng.choice(FRAMES).replace("who {act} and {trait}", "who {trait} and {act}")
    return swapped.fill(frame) if "{act}" in frame and rng.random() < 0.5 else slots.fill(
        "{Age} {occ} who {act} and {trait}, from {place}."
    )


def perturb(slots: Slots, base: str, rng: random.Random) -> str:
    """A planted copy of `base`: 1-3 perturbations, at most one of them a rewrite of the structure."""
    structural = rng.random()
    if structural < 0.35:
        text = slots.fill(rng.choice(PARAPHRASES))
    elif structural < 0.6:
        text = _reorder(slots, rng)
    else:
        text = base
    surface = [_synonyms, _typos, _punctuation]
    for op in rng.sample(surface, rng.randint(0 if text != base else 1, 2)):
        text = op(text, rng)
    return text if text.strip() != base else _typos(text, rng)


@dataclass
class Corpus:
    """Texts and the ground-truth cluster of each (same cluster = planted duplicates)."""

    texts: list[str]
    cluster: list[int]


def make_corpus(
    n_base: int, seed: int = 0, dup_share: float = 0.3, max_copies: int = 3, min_differing: int = 2,
    activities: int = 1,
) -> Corpus:
    """`n_base` distinct personas; `dup_share` of them get 1..max_copies perturbed copies, shuffled.

    Two distinct personas differ in at least `min_differing` of their five parts (age, occupation,
    place, activity, trait): with 1, "a middle-aged X" and "a semi-retired X" with all else equal
    count as two people, which no reader (or detector) would tell apart. The rule caps the corpus
    near 400k personas; for bigger ones pass `activities=2` (two activities each, a thousand times
    more combinations) and `min_differing=1`.
    """
    rng = random.Random(seed)
    shared = 5 - min_differing + 1  # personas may not share any `shared` parts
    taken: set[tuple[tuple[int, str], ...]] = set()
    texts: list[str] = []
    cluster: list[int] = []
    cid = 0
    while cid < n_base:
        act = " and ".join(rng.sample(ACTIVITIES, activities))
        slots = Slots(rng.choice(AGES), rng.choice(OCCUPATIONS), rng.choice(PLACES), act,
                      rng.choice(TRAITS), rng.choice(["She", "He"]))
        parts = tuple(enumerate((slots.age, slots.occ, slots.place, slots.act, slots.trait)))
        keys = list(itertools.combinations(parts, shared))
        if any(k in taken for k in keys):
            continue
        taken.update(keys)
        base = slots.fill(rng.choice(FRAMES))
        texts.append(base)
        cluster.append(cid)
        if rng.random() < dup_share:
            for _ in range(rng.randint(1, max_copies)):
                texts.append(perturb(slots, base, rng))
                cluster.append(cid)
        cid += 1
    order = list(range(len(texts)))
    rng.shuffle(order)
    return Corpus([texts[i] for i in order], [cluster[i] for i in order])


def _pairs(groups: Sequence[Sequence[int]]) -> set[tuple[int, int]]:
    return {(a, b) if a < b else (b, a) for g in groups for a, b in itertools.combinations(g, 2)}


def pair_scores(predicted: Sequence[Sequence[int]], cluster: Sequence[int]) -> tuple[float, float]:
    """(precision, recall) over item pairs: a pair counts when both items are in one group."""
    truth: dict[int, list[int]] = {}
    for i, c in enumerate(cluster):
        truth.setdefault(c, []).append(i)
    true_pairs = _pairs([g for g in truth.values() if len(g) > 1])
    pred_pairs = _pairs(predicted)
    hit = len(true_pairs & pred_pairs)
    precision = hit / len(pred_pairs) if pred_pairs else 1.0
    recall = hit / len(true_pairs) if true_pairs else 1.0
    return precision, recall


def score_methods(corpus: Corpus, config: DedupConfig, methods: Sequence[str] = ("minhash", "embedding", "both")) -> dict[str, tuple[float, float]]:
    """(precision, recall) of the merged groups per method on `corpus` at `config`."""
    sigs = minhasher(config).signatures(corpus.texts)
    vecs = embed(corpus.texts, config.embed_batch_size).astype(VECTOR_DTYPE)  # as the dedup keeps them
    out = {}
    for method in methods:
        _, groups = duplicate_groups(sigs, vecs, config, method, texts=corpus.texts)  # type: ignore[arg-type]
        out[method] = pair_scores([g.members for g in groups], corpus.cluster)
    return out


def main() -> None:
    """Score MinHash, embeddings and both on a planted corpus at the defaults, optionally sweeping settings."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="distinct base personas")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="also sweep shingle size and thresholds")
    args = parser.parse_args()

    corpus = make_corpus(args.n, args.seed)
    n_dup = len(corpus.texts) - len(set(corpus.cluster))
    print(f"corpus: {len(corpus.texts)} texts, {args.n} distinct personas, {n_dup} planted copies")
    cfg = DedupConfig()
    t0 = time.perf_counter()
    vecs = embed(corpus.texts, cfg.embed_batch_size).astype(VECTOR_DTYPE)
    print(f"embedded in {time.perf_counter() - t0:.1f}s")

    def line(config: DedupConfig, method: str, sigs: np.ndarray) -> str:
        _, groups = duplicate_groups(sigs, vecs, config, method, texts=corpus.texts)  # type: ignore[arg-type]
        p, r = pair_scores([g.members for g in groups], corpus.cluster)
        return f"P={p:.3f} R={r:.3f} groups={len(groups)}"

    sigs = minhasher(cfg).signatures(corpus.texts)
    for method in ("minhash", "embedding", "both"):
        print(f"defaults  {method:<9} {line(cfg, method, sigs)}")
    if args.sweep:
        for k in (1, 2, 3):
            ck = cfg.model_copy(update={"shingle_size": k})
            sk = minhasher(ck).signatures(corpus.texts)
            for thr in (0.5, 0.6, 0.7):
                c = ck.model_copy(update={"minhash_threshold": thr})
                print(f"shingle={k} J>={thr:.2f}        minhash {line(c, 'minhash', sk)} | both {line(c, 'both', sk)}")
        for link in (0.3, 0.4, 0.5, 0.6):
            c = cfg.model_copy(update={"link_jaccard": link})
            print(f"link_jaccard={link:.2f}       minhash {line(c, 'minhash', sigs)}")
        for thr in (0.82, 0.85, 0.88, 0.90):
            c = cfg.model_copy(update={"embedding_threshold": thr})
            print(f"embedding cos>={thr:.2f}  embedding {line(c, 'embedding', sigs)} | both {line(c, 'both', sigs)}")
        for thr in (0.65, 0.7, 0.75, 0.8):
            c = cfg.model_copy(update={"verify_cosine": thr})
            print(f"verify_cosine={thr:.2f}         both {line(c, 'both', sigs)}")
        for thr in (-1.0, 0.7, 0.75, 0.8):
            c = cfg.model_copy(update={"link_cosine": thr})
            print(f"link_cosine={thr:.2f}  embedding {line(c, 'embedding', sigs)} | both {line(c, 'both', sigs)}")

if __name__ == "__main__":
    main()
