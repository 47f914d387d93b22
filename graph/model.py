"""The persona graph's data model: what a node and an edge are, and how their ids are made.

Ids are content hashes of the normalised text, so every write is an idempotent MERGE: a rerun after a
crash neither loses nor duplicates nodes.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import re
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

# \Z, not $: `$` also matches before a trailing newline, and "hobby\n" would pass as a name.
REL_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9_]*\Z")
LABEL_RE = re.compile(r"^[A-Z][A-Za-z0-9_]*\Z")
PROPERTY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")

# Attribute keys that stages count "regions" by; other attribute keys are allowed too.
REGION_ATTRIBUTES = ("age_group", "occupation", "domain", "visibility", "language")
AGE_GROUPS = ("child", "teenager", "young_adult", "adult", "older_adult")
VISIBILITIES = ("public-facing", "behind-the-scenes")
# Region attributes with a closed vocabulary: any spelling of another value is dropped, not stored.
REGION_VOCABULARY: dict[str, tuple[str, ...]] = {"age_group": AGE_GROUPS, "visibility": VISIBILITIES}
# Language names a model writes instead of the ISO code asked for.
LANGUAGE_CODES = {"english": "en", "chinese": "zh", "mandarin": "zh", "cantonese": "yue", "spanish": "es",
                  "french": "fr", "german": "de", "hindi": "hi", "arabic": "ar", "portuguese": "pt", "russian": "ru",
                  "japanese": "ja", "korean": "ko", "swahili": "sw", "turkish": "tr", "italian": "it",
                  "中文": "zh", "汉语": "zh", "普通话": "zh", "英语": "en"}
_AGE_SYNONYMS = {"kid": "child", "teen": "teenager", "youngadult": "young_adult", "senior": "older_adult",
                 "elderly": "older_adult", "olderadult": "older_adult", "retiree": "older_adult"}

# Properties owned by the store: attributes may not overwrite them.
RESERVED_PROPERTIES = frozenset(
    {"id", "description", "status", "hop", "origin", "run_id", "created_at", "aliases",
     "merged_ids", "merged_into", "expanded", "pending"}
)


def pending_key(hop: int) -> str:
    """The indexed frontier key of a persona at `hop` not yet expanded (`cypher/expand_frontier.cypher`)."""
    return f"h{hop}"


def canonical_region_value(key: str, value: object) -> str | None:
    """Map a spelling of a region value onto the vocabulary ('Young adult' -> 'young_adult'); None if it fits none.

    Languages become ISO codes where the name is known ('English' -> 'en'); other open attributes
    (occupation, domain) are trimmed and lower-cased.
    """
    if value is None or isinstance(value, bool) or not str(value).strip():
        return None
    allowed = REGION_VOCABULARY.get(key)
    if allowed is None:
        text = " ".join(str(value).split()).lower()
        return LANGUAGE_CODES.get(text, text) if key == "language" else text
    squashed = "".join(ch for ch in str(value).lower() if ch.isalnum())
    if key == "age_group" and squashed in _AGE_SYNONYMS:
        return _AGE_SYNONYMS[squashed]
    return next((a for a in allowed if "".join(ch for ch in a if ch.isalnum()) == squashed), None)


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk build or write, then restore it.

    Building tens of thousands of long-lived objects (pydantic models, their dicts, parameter rows)
    makes the collector rescan the whole heap again and again: in the 100k-persona / 300k-edge
    bench, 22 full collections took ~4.5 s of the client's ~6.3 s of CPU. Nothing built inside
    is cyclic garbage. Nests, also across threads: the collector is restored (if it was enabled)
    when the last block open anywhere ends.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


_freeze_depth = 0
_saved_threshold: tuple[int, int, int] = (700, 10, 10)
STREAM_GC_THRESHOLD = 10_000


@contextlib.contextmanager
def gc_frozen(young_threshold: int = STREAM_GC_THRESHOLD) -> Iterator[None]:
    """For a long stream of small allocations (LLM calls and what handles their answers): hide the
    heap alive now (modules, models, caches) from the collector and collect the young generation
    less often; both undone when the last such block open anywhere ends.

    Unlike `gc_paused`, cyclic garbage made inside is still collected. Without it, full collections
    walk the whole long-lived heap again and again: in the expansion bench (6,000 calls, 23 s) they
    took 0.8 s, and young collections 0.4 s; with it, 0.09 s in all.
    """
    global _freeze_depth, _saved_threshold
    with _gc_lock:
        if _freeze_depth == 0:
            _saved_threshold = gc.get_threshold()
            gc.freeze()
            if _saved_threshold[0]:  # 0: automatic collection is off, and stays off
                gc.set_threshold(max(young_threshold, _saved_threshold[0]), *_saved_threshold[1:])
        _freeze_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _freeze_depth -= 1
            if _freeze_depth == 0:
                gc.set_threshold(*_saved_threshold)
                gc.unfreeze()


class InvalidName(ValueError):
    """A relationship type, label or property name that may not be placed into a query."""


class PersonaStatus(str, Enum):
    """Life cycle of a persona node."""

    candidate = "candidate"
    accepted = "accepted"
    rejected = "rejected"
    merged = "merged"


def normalise_text(text: str) -> str:
    """Case-fold, NFKC-normalise and collapse whitespace: the form that ids are hashed from."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def content_id(text: str, prefix: str = "p") -> str:
    """A stable id for a text: `prefix` + 20 hex chars of SHA-256 over its normalised form."""
    digest = hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()
    return f"{prefix}_{digest[:20]}"


def persona_id(description: str) -> str:
    """Id of the persona with this description (same text up to case/spacing -> same id)."""
    return content_id(description, "p")


def text_hash(text: str) -> str:
    """Hash of a source text as given (not normalised), used to skip already-processed sources."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def clean_text(value: str) -> str:
    """`value` as the database can store it: NUL characters removed (FalkorDB ends a string at one)
    and unpaired UTF-16 surrogates (a JSON escape such as "\\ud800" decodes to one; UTF-8 cannot
    encode it) replaced by U+FFFD. The same object comes back when nothing had to change, so
    `clean_text(v) is not v` tells a caller to report it; clean text costs two fast scans.
    """
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def text_problems(value: str) -> str:
    """What `clean_text` changes in `value`, in words for a report ('' when nothing)."""
    found = []
    if "\x00" in value:
        found.append("NUL characters removed")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        found.append("unpaired surrogates replaced by U+FFFD")
    return " and ".join(found)


def clean_value(value: Any) -> Any:
    """`clean_text` applied to a property value: a string, or each string of a list; other values as they are."""
    if type(value) is str:
        return clean_text(value)
    if isinstance(value, list):
        cleaned = [clean_text(v) if isinstance(v, str) else v for v in value]
        return value if all(a is b for a, b in zip(cleaned, value)) else cleaned
    return value


def clean_props(props: dict[str, Any]) -> dict[str, Any]:
    """Property values cleaned by `clean_value`; the same dict when nothing had to change (the usual
    case: ASCII strings without NUL and numbers take one inline check each)."""
    for value in props.values():
        if type(value) is str:
            if "\x00" in value or not value.isascii():
                break
        elif isinstance(value, list):
            break
    else:
        return props
    changed = {k: c for k, v in props.items() if (c := clean_value(v)) is not v}
    return props | changed if changed else props


def _storable(data: Any, text: str, props: str) -> Any:
    """A model's input with its text field and its properties cleaned, before pydantic validates them
    (it rejects unpaired surrogates). One call per model, a few fast checks when the input is clean
    (as good as always), which then comes back as it is."""
    if type(data) is not dict:
        return data
    dirty: dict[str, Any] = {}
    value = data.get(text)
    if type(value) is str and ("\x00" in value or not value.isascii()) and (cleaned := clean_text(value)) is not value:
        dirty[text] = cleaned
    values = data.get(props)
    if values and type(values) is dict and (cleaned_props := clean_props(values)) is not values:
        dirty[props] = cleaned_props
    return data | dirty if dirty else data


def check_rel_type(name: str) -> str:
    """Return `name` if it is a valid relationship type (`^[A-Z][A-Z0-9_]*$`), else raise InvalidName."""
    if not isinstance(name, str) or not REL_TYPE_RE.fullmatch(name) or len(name) > 64:
        raise InvalidName(
            f"invalid relationship type {name!r}: use UPPER_SNAKE_CASE letters, digits and "
            "underscores, starting with a letter, at most 64 characters (e.g. PATIENT_OF)"
        )
    return name


def check_label(name: str) -> str:
    """Return `name` if it is a valid node label, else raise InvalidName."""
    if not isinstance(name, str) or not LABEL_RE.fullmatch(name) or len(name) > 64:
        raise InvalidName(f"invalid node label {name!r}: use letters, digits and underscores")
    return name


def check_property(name: str) -> str:
    """Return `name` if it is a valid property key, else raise InvalidName."""
    if not isinstance(name, str) or not PROPERTY_RE.fullmatch(name) or len(name) > 64:
        raise InvalidName(f"invalid property name {name!r}: use letters, digits and underscores")
    return name


Scalar = str | int | float | bool

# Attribute keys that passed check_property and are not reserved (a cache for Persona validation).
_ATTRIBUTE_KEYS_OK: set[str] = set()
# Relationship types that passed check_rel_type (a cache for Edge validation).
_REL_TYPES_OK: set[str] = set()


class Persona(BaseModel):
    """A persona node. `attributes` become flat node properties so regions can be counted in Cypher."""

    description: str = Field(min_length=1)
    id: str = ""
    status: PersonaStatus = PersonaStatus.accepted
    hop: int = Field(default=0, ge=0)
    origin: str = "import"
    run_id: str = ""
    attributes: dict[str, Scalar | list[str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        return _storable(data, "description", "attributes")

    @field_validator("description")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("description is empty")
        return v

    @field_validator("attributes")
    @classmethod
    def _attr_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key not in _ATTRIBUTE_KEYS_OK:  # the same few keys recur: check each once
                check_property(key)
                if key in RESERVED_PROPERTIES:
                    raise ValueError(f"attribute {key!r} is reserved by the store")
                if len(_ATTRIBUTE_KEYS_OK) < 10_000:
                    _ATTRIBUTE_KEYS_OK.add(key)
        # An empty attribute is no attribute: '' is never stored (no index can find it, graph/indexes.py).
        return {k: val for k, val in v.items() if val is not None and not (isinstance(val, str) and not val.strip())}

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            # What `self.id = ...` does, without pydantic's per-assignment checks (hot in bulk imports).
            self.__dict__["id"] = persona_id(self.description)
            self.__pydantic_fields_set__.add("id")

    def row(self) -> dict[str, Any]:
        """The parameter row used by the batched upsert query."""
        return {
            "id": self.id,
            "description": self.description,
            "status": self.status.value,
            "hop": self.hop,
            "origin": self.origin,
            "run_id": self.run_id,
            "created_at": time.time(),
            "attrs": dict(self.attributes),
        }

    def row_values(self, keys: Sequence[str]) -> list[Any]:
        """The row `cypher/upsert_personas.cypher` reads as `r[0]`, `r[1]`, ...: `PERSONA_ROW`, then
        the values of attributes `keys` (no key per value to send and for the server to parse)."""
        return [self.id, self.description, self.status.value, self.hop, self.origin, self.run_id,
                time.time(), *[self.attributes[k] for k in keys]]


# The first positions of `Persona.row_values()`, as `cypher/upsert_personas.cypher` reads them;
# attribute values follow.
PERSONA_ROW = ("id", "description", "status", "hop", "origin", "run_id", "created_at")


class Source(BaseModel):
    """A source text that personas were extracted from."""

    text_hash: str
    uri: str = ""
    id: str = ""
    props: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        return _storable(data, "uri", "props")

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            self.id = f"s_{self.text_hash[:20]}"

    def row(self) -> dict[str, Any]:
        """The parameter row used by the batched upsert query."""
        return {"id": self.id, "uri": self.uri, "text_hash": self.text_hash, "props": dict(self.props)}


class Edge(BaseModel):
    """A typed relationship between two nodes, addressed by their `id` properties."""

    source: str
    target: str
    type: str
    props: dict[str, Scalar | list[str]] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v in _REL_TYPES_OK:  # the same few types recur: check each once
            return v
        check_rel_type(v)
        if len(_REL_TYPES_OK) < 10_000:
            _REL_TYPES_OK.add(v)
        return v

    def row(self) -> dict[str, Any]:
        """The parameter row used by the batched edge query."""
        return {"src": self.source, "dst": self.target, "props": dict(self.props)}
