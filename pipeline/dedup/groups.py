"""Grouping verified duplicate pairs (union-find, optionally complete-linkage), and the survivor rule."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

import numpy as np
from pydantic import BaseModel, Field

from personagraph.config import DedupConfig, DedupMethod
from personagraph.dedup.embedding import VECTOR_DTYPE, as_float32, embed
from personagraph.dedup.pairs import (
    METHODS,
    MinhashPairs,
    Pairs,
    differs_on_one_side,
    minhash_pairs,
    minhasher,
    pairs_from_arrays,
)

K = TypeVar("K", bound=Hashable)


class UnionFind(Generic[K]):
    """Disjoint sets with path halving and union by size; each root knows its members."""

    def __init__(self) -> None:
        self._parent: dict[K, K] = {}
        self._members: dict[K, list[K]] = {}

    def find(self, x: K) -> K:
        """Representative of x's set (x joins as a singleton if unseen)."""
        parent = self._parent
        if x not in parent:
            parent[x] = x
            self._members[x] = [x]
            return x
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def members(self, x: K) -> list[K]:
        """Members of x's set."""
        return self._members[self.find(x)]

    def union(self, a: K, b: K) -> K:
        """Join the sets of a and b; returns the new representative."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if len(self._members[ra]) < len(self._members[rb]):
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._members[ra].extend(self._members.pop(rb))
        return ra

    def groups(self) -> list[list[K]]:
        """Sets with more than one member."""
        return [m for m in self._members.values() if len(m) > 1]


class LinkedGroup(BaseModel):
    """Items (positions) found to be one persona, with the weakest similarity that joined them."""

    members: list[int]
    similarity: float
    methods: list[str]
    representative: int = Field(description="The member that stands for the group (the survivor, when merged)")


Cohesion = Callable[[list[int], list[int]], bool]
Representatives = Callable[[list[list[int]]], list[int]]


def first_members(groups: list[list[int]]) -> list[int]:
    """The default representative of each group: its first position."""
    return [min(g) for g in groups]


def link_pairs(
    pairs: Pairs, cohesive: Cohesion | None = None, representatives: Representatives = first_members
) -> list[LinkedGroup]:
    """Union-find over pairs, strongest first; with `cohesive`, two sets join only if it agrees.

    A plain union-find chains: A~B and B~C put A with C however far apart they are, and one
    borderline pair can glue two unrelated groups. `cohesive` (e.g. every cross pair above a
    similarity floor: complete linkage) stops a join that would put dissimilar members together.
    `representatives` picks the member that stands for each group, for all groups in one call (the
    pass asks the graph for their degrees in one query); by default the first position.
    """
    uf: UnionFind[int] = UnionFind()
    weakest: dict[int, float] = {}
    methods: dict[int, set[int]] = {}
    order = np.lexsort((pairs.b, pairs.a, -pairs.similarity))
    for a, b, sim, method in zip(
        pairs.a[order].tolist(), pairs.b[order].tolist(), pairs.similarity[order].tolist(), pairs.method[order].tolist()
    ):
        if a == b:
            continue
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            methods[ra].add(method)
            continue
        if cohesive is not None and not cohesive(uf.members(ra), uf.members(rb)):
            continue
        root = uf.union(ra, rb)
        weak = min(weakest.pop(ra, 1.0), weakest.pop(rb, 1.0), sim)
        found = methods.pop(ra, set()) | methods.pop(rb, set()) | {method}
        weakest[root], methods[root] = weak, found
    groups = uf.groups()
    return [
        LinkedGroup(members=m, similarity=weakest[uf.find(m[0])], representative=rep,
                    methods=sorted(METHODS[k] for k in methods[uf.find(m[0])]))
        for m, rep in zip(groups, representatives(groups))
    ]


def cohesion(
    signatures: np.ndarray | None, vectors: np.ndarray | None, config: DedupConfig, texts: Sequence[str] | None = None
) -> Cohesion:
    """Complete linkage: every cross pair reaches `link_cosine` (with vectors) or `link_jaccard` (MinHash only).

    With both arrays and `texts`, a cross pair also holds as the word-shape route confirms a pair: a
    cosine reaching `shape_cosine` with the differing words on one side. A copy with typos can be far
    from a paraphrase of the same persona in cosine, and must not be kept out of its group for that.
    """
    def jaccard(a: list[int], b: list[int]) -> np.ndarray:
        assert signatures is not None
        return (signatures[a][:, None, :] == signatures[b][None, :, :]).mean(-1)

    if vectors is None:
        return lambda a, b: float(jaccard(a, b).min()) >= config.link_jaccard

    def cross(a: list[int], b: list[int]) -> np.ndarray:
        assert vectors is not None
        return as_float32(vectors[a]) @ as_float32(vectors[b]).T  # float16 has no BLAS product

    if signatures is None or texts is None:
        return lambda a, b: float(cross(a, b).min()) >= config.link_cosine

    def cohesive(a: list[int], b: list[int]) -> bool:
        cos = cross(a, b)
        ok = cos >= config.link_cosine
        if ok.all():
            return True
        if texts is None:
            return False
        return all(cos[i, j] >= config.shape_cosine and differs_on_one_side(texts[a[i]], texts[b[j]])
                   for i, j in zip(*np.nonzero(~ok)))

    return cohesive


def duplicate_groups(
    signatures: np.ndarray | None, vectors: np.ndarray | None, config: DedupConfig, method: DedupMethod,
    representatives: Representatives = first_members, texts: Sequence[str] | None = None,
    minhash: MinhashPairs = minhash_pairs, note: Callable[[str], None] | None = None,
) -> tuple[Pairs, list[LinkedGroup]]:
    """Verified pairs and the cohesive groups they form (rows of the arrays and `texts` are the items).

    The groups are closed under their own linkage: with each group reduced to its representative,
    linking what is left finds nothing more. A pass that merges the groups can then be rerun without
    merging more. Without the closure it could: A~B and B~C with A and C too far apart make the group
    {A, B}; if B survives, B~C is a cohesive pair on the next run. So the pairs among the
    representatives and the ungrouped items are linked again, groups it links are joined (their
    representative chosen among the joined representatives), until nothing joins. The rounds reuse
    the verified pairs of the one search (a pair among survivors is a pair among everyone) instead
    of searching again: at a million personas a second search would cost as much as the first and
    copy the arrays of everything left. `minhash` proposes the MinHash pairs (`pairs.minhash_pairs`,
    or the Ray Data pass).
    """
    use_vectors = vectors if method in ("embedding", "both") else None
    use_sigs = signatures if method in ("minhash", "both") else None
    say = note or (lambda _msg: None)
    pairs = pairs_from_arrays(signatures, vectors, config, method, texts, minhash, note)
    say(f"linking {len(pairs):,} verified pairs into groups")
    cohesive = cohesion(use_sigs, use_vectors, config, texts)
    linked = link_pairs(pairs, cohesive, representatives)
    by_rep = {g.representative: g for g in linked}
    n = len(signatures) if signatures is not None else len(vectors)  # type: ignore[arg-type]
    while by_rep:
        left = np.ones(n, dtype=bool)
        left[[m for g in by_rep.values() for m in g.members if m != g.representative]] = False
        reps = np.zeros(n, dtype=bool)
        reps[list(by_rep)] = True
        # Only a pair with a representative at one end can link anything new: two ungrouped items
        # that pair would have been linked already.
        say(f"closing {len(by_rep):,} groups under their linkage")
        again = link_pairs(pairs.select(left[pairs.a] & left[pairs.b] & (reps[pairs.a] | reps[pairs.b])),
                           cohesive, representatives)
        if not again:
            break
        for g in again:
            joined = [by_rep.pop(r, None) for r in g.members]
            by_rep[g.representative] = LinkedGroup(
                members=[m for j, r in zip(joined, g.members) for m in (j.members if j else [r])],
                representative=g.representative, similarity=min([g.similarity] + [j.similarity for j in joined if j]),
                methods=sorted(set(g.methods).union(*(j.methods for j in joined if j))),
            )
    return pairs, list(by_rep.values())


def find_duplicates(texts: Sequence[str], config: DedupConfig, method: DedupMethod | None = None) -> list[LinkedGroup]:
    """Groups of near-duplicates among plain texts (positions into `texts`), as the dedup pass finds them.

    >>> find_duplicates(["A nurse in Lyon who runs.", "a nurse in Lyon, who runs!", "A baker in Oslo."],
    ...                 DedupConfig())[0].members
    [0, 1]
    """
    method = method or config.method
    sigs = minhasher(config).signatures(texts) if method in ("minhash", "both") else None
    vecs = embed(texts, config.embed_batch_size, config.embedding_precision).astype(VECTOR_DTYPE) \
        if method in ("embedding", "both") else None
    return duplicate_groups(sigs, vecs, config, method, texts=texts)[1]


class DuplicateGroup(BaseModel):
    """Personas judged to be one: the survivor keeps its id, the duplicates merge into it."""

    survivor: str
    duplicates: list[str]
    similarity: float = Field(description="Lowest verified similarity on a pair that joined the group")
    methods: list[str] = Field(default_factory=list, description="Which methods produced its pairs")


class Candidate(BaseModel):
    """What the survivor rule looks at for one persona."""

    id: str
    degree: int = 0
    created_at: float = 0.0


def survivor_order(c: Candidate) -> tuple[int, float, str]:
    """Sort key of the survivor rule: most connected, then earliest created, then smallest id."""
    return survivor_key(c.id, c.degree, c.created_at)


def survivor_key(persona: str, degree: int, created_at: float) -> tuple[int, float, str]:
    """`survivor_order` of a persona from its fields: a pass keeps one per group member, and 780k
    `Candidate` models took 0.4 GB at a million personas, these tuples 0.13 GB."""
    return (-degree, created_at, persona)


def choose_survivor(members: Iterable[Candidate]) -> tuple[str, list[str]]:
    """(survivor id, duplicate ids) of a group under `survivor_order`."""
    ranked = sorted(members, key=survivor_order)
    return ranked[0].id, [c.id for c in ranked[1:]]
