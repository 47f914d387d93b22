"""The relation vocabulary of Persona-to-Persona expansion: which relations there are, and what edge each becomes.

A relation is what the expansion prompt asks for ("propose the *patients* of this persona"); its edge
type is the relationship written into the graph, and its direction says which end is the seed:

- `to_seed`:   (proposed)-[:TYPE]->(seed)   "the proposed persona is the seed's <relation>"
                e.g. relation `patient`: (patient)-[:PATIENT_OF]->(nurse)
- `from_seed`: (seed)-[:TYPE]->(proposed)   e.g. relation `child`: (parent)-[:PARENT_OF]->(child)

Symmetric relations (colleague, neighbour, ...) are stored `from_seed`. `leads_to` names the regions
(attribute values, see `graph.model.REGION_ATTRIBUTES`) a relation tends to reach, which is how a
focused run (`--focus age_group=child`) picks relations: `child` and `pupil` lead to children,
`supplier` and `service_worker` to behind-the-scenes people.

The LLM may also name a free-form relation for a proposal ("night-shift colleague"). It becomes an
edge type only after `normalise_relation` accepts it; otherwise the proposal keeps the relation it
was asked for and the rejection reason is counted.

    >>> vocab = RelationVocabulary.default()
    >>> vocab["patient"].edge_type
    'PATIENT_OF'
    >>> normalise_relation("Night-shift colleague", vocab).edge_type
    'NIGHT_SHIFT_COLLEAGUE_OF'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from personagraph.graph.model import check_property, check_rel_type

Direction = Literal["to_seed", "from_seed"]

# Edge types other stages own: a proposed relation may not become one of them.
RESERVED_EDGE_TYPES = frozenset({"EXTRACTED_FROM", "MERGED_INTO", "SAMPLED_FROM", "DERIVED_FROM", "USED"})
# Names too vague to say how two people are related.
VAGUE_RELATIONS = frozenset(
    {"related", "relation", "relationship", "knows", "know", "acquaintance_of", "person",
     "people", "other", "unknown", "none", "n_a", "na", "someone", "somebody", "associate", "associated",
     "connection", "contact", "link", "linked"}
)
MAX_RELATION_WORDS = 5
MAX_RELATION_CHARS = 48
_WORD_RE = re.compile(r"[a-z0-9]+")
_ALLOWED_RE = re.compile(r"[a-z0-9 _\-/'&]+")
_ARTICLES = ("a ", "an ", "the ", "his ", "her ", "their ", "its ")


class RelationError(ValueError):
    """A relation name that cannot become an edge type; the message says why and what to use."""


def relation_key(name: str) -> str:
    """Lookup form of a relation name: NFKC, lower case, words joined by '_' ('Co-Worker' -> 'co_worker')."""
    text = unicodedata.normalize("NFKC", name).strip().lower()
    return "_".join(_WORD_RE.findall(text)) if text.isascii() else text


def edge_type_for(name: str) -> str:
    """The edge type a new relation name becomes: UPPER_SNAKE with `_OF` ('fishing buddy' -> 'FISHING_BUDDY_OF')."""
    base = relation_key(name).upper()
    return base if base.endswith("_OF") or base.endswith("_WITH") else f"{base}_OF"


def relation_words(edge_type: str) -> str:
    """How an edge type reads inside a sentence, from its source to its target: 'PATIENT_OF' -> 'patient of'."""
    return edge_type.lower().replace("_", " ")


class Relation(BaseModel):
    """One relation of the vocabulary: how the prompt names it and the edge it becomes."""

    name: str = Field(description="Lower-case name used in prompts and config, e.g. 'patient'")
    edge_type: str = Field(description="Relationship type written to the graph, e.g. 'PATIENT_OF'")
    direction: Direction = Field(default="to_seed", description="Which end of the edge is the seed")
    description: str = Field(default="", description="What the relation means, shown to the LLM")
    leads_to: dict[str, list[str]] = Field(default_factory=dict, description="Regions it tends to reach")
    aliases: list[str] = Field(default_factory=list, description="Other names (also Chinese) that map here")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        key = relation_key(v)
        if not key:
            raise ValueError(f"relation name {v!r} has no letters or digits")
        return key

    @field_validator("edge_type")
    @classmethod
    def _edge_type(cls, v: str) -> str:
        check_rel_type(v)
        if v in RESERVED_EDGE_TYPES:
            raise ValueError(f"edge type {v} is reserved by another stage")
        return v

    @field_validator("leads_to")
    @classmethod
    def _regions(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key in v:
            check_property(key)
        return v

    def endpoints(self, seed: str, proposed: str) -> tuple[str, str]:
        """(source id, target id) of the edge between `seed` and `proposed`."""
        return (proposed, seed) if self.direction == "to_seed" else (seed, proposed)

    def reaches(self, focus: Mapping[str, Sequence[str]]) -> int:
        """How many of the focus conditions this relation tends to lead to."""
        return sum(1 for key, values in focus.items() if set(self.leads_to.get(key, ())) & set(values))


def _rel(name: str, edge_type: str, direction: Direction, description: str,
         leads_to: dict[str, list[str]] | None = None, aliases: Iterable[str] = ()) -> Relation:
    return Relation(name=name, edge_type=edge_type, direction=direction, description=description,
                    leads_to=leads_to or {}, aliases=list(aliases))


BEHIND = {"visibility": ["behind-the-scenes"]}

DEFAULT_RELATIONS: tuple[Relation, ...] = (
    _rel("patient", "PATIENT_OF", "to_seed", "someone the persona treats or cares for professionally",
         {"age_group": ["child", "older_adult"]}, ["患者", "病人"]),
    _rel("caregiver", "CAREGIVER_OF", "to_seed", "someone who looks after the persona day to day",
         BEHIND, ["carer", "照顾者", "护工"]),
    _rel("colleague", "COLLEAGUE_OF", "from_seed", "someone who works alongside the persona",
         {}, ["coworker", "co-worker", "同事"]),
    _rel("supplier", "SUPPLIER_OF", "to_seed", "someone who supplies goods or materials the persona relies on",
         BEHIND, ["vendor", "供应商"]),
    _rel("client", "CLIENT_OF", "to_seed", "someone who buys the persona's services or products",
         {}, ["customer", "客户", "顾客"]),
    _rel("service_worker", "SERVES", "to_seed",
         "someone who does unseen work the persona depends on (cleaning, delivery, maintenance, night shifts)",
         BEHIND, ["support staff", "服务人员"]),
    _rel("parent", "PARENT_OF", "to_seed", "the persona's mother or father",
         {"age_group": ["adult", "older_adult"]}, ["mother", "father", "父母", "母亲", "父亲"]),
    _rel("child", "PARENT_OF", "from_seed", "the persona's son or daughter",
         {"age_group": ["child", "teenager"]}, ["son", "daughter", "kid", "孩子", "子女", "儿子", "女儿"]),
    _rel("sibling", "SIBLING_OF", "from_seed", "the persona's brother or sister",
         {}, ["brother", "sister", "兄弟姐妹"]),
    _rel("spouse", "SPOUSE_OF", "from_seed", "the persona's husband, wife or partner",
         {}, ["partner", "husband", "wife", "配偶"]),
    _rel("grandparent", "GRANDPARENT_OF", "to_seed", "the persona's grandmother or grandfather",
         {"age_group": ["older_adult"]}, ["grandmother", "grandfather", "祖父母"]),
    _rel("mentor", "MENTOR_OF", "to_seed", "someone who teaches, coaches or advises the persona",
         {}, ["teacher", "coach", "导师", "老师"]),
    _rel("student", "MENTOR_OF", "from_seed", "someone the persona teaches, coaches or advises",
         {"age_group": ["child", "teenager", "young_adult"]}, ["mentee", "apprentice", "学生", "徒弟"]),
    _rel("pupil", "TEACHER_OF", "from_seed", "a school child the persona teaches",
         {"age_group": ["child", "teenager"]}, ["schoolchild", "小学生"]),
    _rel("neighbour", "NEIGHBOUR_OF", "from_seed", "someone who lives next to or near the persona",
         {}, ["neighbor", "邻居"]),
    _rel("friend", "FRIEND_OF", "from_seed", "a friend of the persona", {}, ["朋友"]),
    _rel("employer", "EMPLOYS", "to_seed", "the person or owner the persona works for",
         {}, ["boss", "manager", "雇主", "老板"]),
    _rel("employee", "EMPLOYS", "from_seed", "someone who works for the persona",
         BEHIND, ["staff member", "worker", "员工", "雇员"]),
    _rel("competitor", "COMPETES_WITH", "from_seed", "someone competing with the persona for the same customers or goals",
         {}, ["rival", "竞争对手"]),
)


class RelationVocabulary:
    """The relations expansion may ask for: the defaults plus the user's, looked up by name or alias."""

    def __init__(self, relations: Iterable[Relation]) -> None:
        self._by_name: dict[str, Relation] = {}
        self._by_alias: dict[str, Relation] = {}
        for rel in relations:
            self._by_name[rel.name] = rel  # a user relation of the same name replaces the default
        for rel in self._by_name.values():
            for alias in (rel.name, rel.edge_type.lower(), *rel.aliases):
                self._by_alias.setdefault(relation_key(alias) or alias.strip(), rel)

    @classmethod
    def default(cls, extra: Iterable[Relation] = ()) -> RelationVocabulary:
        """The default vocabulary, with `extra` (user) relations added or replacing defaults by name."""
        return cls([*DEFAULT_RELATIONS, *extra])

    def __getitem__(self, name: str) -> Relation:
        found = self.find(name)
        if found is None:
            known = ", ".join(self.names())
            raise RelationError(f"unknown relation {name!r}; known relations: {known} (add one under [expand] relations)")
        return found

    def __iter__(self) -> Iterator[Relation]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> list[str]:
        """Relation names in vocabulary order."""
        return list(self._by_name)

    def find(self, name: str) -> Relation | None:
        """The relation called `name` (or one of its aliases, in any case/spacing), or None."""
        key = relation_key(name)
        return self._by_alias.get(key) or self._by_alias.get(name.strip())

    def leading_to(self, focus: Mapping[str, Sequence[str]]) -> list[Relation]:
        """Relations that reach the most focus conditions (all relations when none reaches any)."""
        scored = [(rel.reaches(focus), rel) for rel in self]
        best = max((score for score, _ in scored), default=0)
        return [rel for score, rel in scored if score == best] if best else list(self)


class RelationSpec(BaseModel):
    """A user relation in config (`[[expand.relations]]`); `edge_type` defaults to NAME_OF."""

    name: str
    edge_type: str | None = None
    direction: Direction = "to_seed"
    description: str = ""
    leads_to: dict[str, list[str]] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> RelationSpec:
        self.to_relation()  # fail at config load, with the reason, not mid-run
        return self

    def to_relation(self) -> Relation:
        """The vocabulary entry this spec defines."""
        edge_type = self.edge_type or edge_type_for(self.name)
        return Relation(name=self.name, edge_type=edge_type, direction=self.direction,
                        description=self.description, leads_to=self.leads_to, aliases=self.aliases)


def normalise_relation(name: str, vocabulary: RelationVocabulary) -> Relation:
    """A free-form relation name as a vocabulary relation, or a new `to_seed` relation; RelationError says why not.

    Known names and aliases map onto their relation. A new name must be a short English phrase of
    letters and digits (articles and a trailing "of" are dropped), not a vague word like "related",
    and its edge type must be valid and not reserved by another stage.
    """
    raw = unicodedata.normalize("NFKC", name or "").strip()
    if not raw:
        raise RelationError("empty relation name")
    known = vocabulary.find(raw)
    if known is not None:
        return known
    text = raw.lower()
    if not text.isascii():
        raise RelationError(
            f"relation {name!r} is not a known relation and new relation names must be English "
            f"(letters, digits, spaces); known: {', '.join(vocabulary.names())}"
        )
    if not _ALLOWED_RE.fullmatch(text):
        bad = sorted({c for c in text if not _ALLOWED_RE.fullmatch(c)})
        raise RelationError(f"relation {name!r} contains characters not allowed in a relation name: {''.join(bad)!r}")
    for article in _ARTICLES:
        if text.startswith(article):
            text = text[len(article):]
    words = _WORD_RE.findall(text)
    if words and words[-1] == "of":
        words = words[:-1]
    if not words:
        raise RelationError(f"relation {name!r} has no words")
    if len(words) > MAX_RELATION_WORDS or len(text) > MAX_RELATION_CHARS:
        raise RelationError(
            f"relation {name!r} is too long ({len(words)} words, {len(text)} characters): name it in at most "
            f"{MAX_RELATION_WORDS} words and {MAX_RELATION_CHARS} characters, e.g. 'night-shift colleague'"
        )
    if words[0][0].isdigit():
        raise RelationError(f"relation {name!r} starts with a digit")
    key = "_".join(words)
    if key in VAGUE_RELATIONS or key.removesuffix("_of") in VAGUE_RELATIONS:
        raise RelationError(f"relation {name!r} is too vague to be an edge type; say how they are related (e.g. 'landlord')")
    known = vocabulary.find(key)
    if known is not None:
        return known
    edge_type = edge_type_for(key)
    if edge_type in RESERVED_EDGE_TYPES or key.upper() in RESERVED_EDGE_TYPES:
        raise RelationError(f"relation {name!r} would become {edge_type}, an edge type reserved by another stage")
    try:
        return Relation(name=key, edge_type=edge_type, direction="to_seed")
    except ValueError as exc:
        raise RelationError(f"relation {name!r} cannot become an edge type: {exc}") from None


def parse_focus(pairs: Iterable[str]) -> dict[str, list[str]]:
    """`key=value` focus options as {attribute: [values]} (repeat a key for several values)."""
    focus: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ValueError(f"--focus {pair!r}: expected ATTRIBUTE=VALUE, e.g. age_group=child")
        check_property(key)
        focus.setdefault(key, [])
        if value not in focus[key]:
            focus[key].append(value)
    return focus
