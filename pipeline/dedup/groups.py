"""Union-find over verified duplicate pairs, and the rule that picks each group's survivor."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

K = TypeVar("K", bound=Hashable)


class UnionFind(Generic[K]):
    """Disjoint sets with path halving and union by size."""

    def __init__(self) -> None:
        self._parent: dict[K, K] = {}
        self._size: dict[K, int] = {}

    def find(self, x: K) -> K:
        """Representative of x's set (x joins as a singleton if unseen)."""
        parent = self._parent
        if x not in parent:
            parent[x] = x
            self._size[x] = 1
            return x
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: K, b: K) -> None:
        """Join the sets of a and b."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]

    def groups(self) -> list[list[K]]:
        """Sets with more than one member, members in first-seen order."""
        out: dict[K, list[K]] = {}
        for x in self._parent:
            out.setdefault(self.find(x), []).append(x)
        return [g for g in out.values() if len(g) > 1]


def group_pairs(pairs: Iterable[tuple[K, K]]) -> list[list[K]]:
    """Connected components (size >= 2) of the graph whose edges are `pairs`."""
    uf: UnionFind[K] = UnionFind()
    for a, b in pairs:
        uf.union(a, b)
    return uf.groups()


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
    return (-c.degree, c.created_at, c.id)


def choose_survivor(members: Iterable[Candidate]) -> tuple[str, list[str]]:
    """(survivor id, duplicate ids) of a group under `survivor_order`."""
    ranked = sorted(members, key=survivor_order)
    return ranked[0].id, [c.id for c in ranked[1:]]
