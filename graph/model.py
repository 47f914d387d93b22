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
from collections.abc import Iterator, Mapping, Sequence
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
# Properties owned by the store: attributes may not overwrite them.
RESERVED_PROPERTIES = frozenset(
    {"id", "description", "status", "hop", "origin", "run_id", "created_at", "aliases",
     "merged_ids", "merged_into", "expanded", "pending"}
)
# A language attribute is an ISO 639-1 code, or one of the few ISO 639-3 codes of languages without one.
ISO_LANGUAGE_CODES = frozenset("""
    aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee
    el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io
    is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn
    mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se
    sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo
    wa wo xh yi yo za zh zu
    yue wuu nan hak fil ceb haw hmn
""".split())
# Language names (English and native) and three-letter codes a model writes instead of the code asked for.
LANGUAGE_CODES = {
    "english": "en", "chinese": "zh", "mandarin": "zh", "mandarin chinese": "zh", "cantonese": "yue",
    "spanish": "es", "french": "fr", "german": "de", "hindi": "hi", "arabic": "ar", "portuguese": "pt",
    "russian": "ru", "japanese": "ja", "korean": "ko", "swahili": "sw", "turkish": "tr", "italian": "it",
    "thai": "th", "vietnamese": "vi", "indonesian": "id", "malay": "ms", "dutch": "nl", "polish": "pl",
    "ukrainian": "uk", "greek": "el", "hebrew": "he", "persian": "fa", "farsi": "fa", "urdu": "ur",
    "bengali": "bn", "bangla": "bn", "punjabi": "pa", "tamil": "ta", "telugu": "te", "marathi": "mr",
    "gujarati": "gu", "kannada": "kn", "malayalam": "ml", "nepali": "ne", "sinhala": "si", "burmese": "my",
    "khmer": "km", "lao": "lo", "tagalog": "tl", "filipino": "fil", "swedish": "sv", "norwegian": "no",
    "danish": "da", "finnish": "fi", "icelandic": "is", "czech": "cs", "slovak": "sk", "hungarian": "hu",
    "romanian": "ro", "bulgarian": "bg", "serbian": "sr", "croatian": "hr", "bosnian": "bs", "slovenian": "sl",
    "lithuanian": "lt", "latvian": "lv", "estonian": "et", "irish": "ga", "welsh": "cy", "catalan": "ca",
    "basque": "eu", "galician": "gl", "afrikaans": "af", "amharic": "am", "hausa": "ha", "yoruba": "yo",
    "igbo": "ig", "zulu": "zu", "xhosa": "xh", "somali": "so", "armenian": "hy", "georgian": "ka",
    "kazakh": "kk", "uzbek": "uz", "mongolian": "mn", "tibetan": "bo", "hawaiian": "haw", "latin": "la",
    "中文": "zh", "汉语": "zh", "漢語": "zh", "普通话": "zh", "普通話": "zh", "华语": "zh", "國語": "zh",
    "粤语": "yue", "粵語": "yue", "廣東話": "yue", "广东话": "yue", "英语": "en", "英文": "en",
    "español": "es", "français": "fr", "deutsch": "de", "português": "pt", "italiano": "it", "русский": "ru",
    "日本語": "ja", "한국어": "ko", "ไทย": "th", "tiếng việt": "vi", "bahasa indonesia": "id", "türkçe": "tr",
    "nederlands": "nl", "polski": "pl", "українська": "uk", "ελληνικά": "el", "עברית": "he", "العربية": "ar",
    "हिन्दी": "hi", "svenska": "sv",
    "eng": "en", "zho": "zh", "chi": "zh", "cmn": "zh", "spa": "es", "fra": "fr", "fre": "fr", "deu": "de",
    "ger": "de", "rus": "ru", "jpn": "ja", "kor": "ko", "ara": "ar", "hin": "hi", "por": "pt", "ita": "it",
    "tha": "th", "vie": "vi", "tur": "tr", "nld": "nl", "dut": "nl", "pol": "pl", "ukr": "uk", "ind": "id",
}
_AGE_SYNONYMS = {"kid": "child", "kids": "child", "children": "child", "teen": "teenager", "teens": "teenager",
                 "adolescent": "teenager", "youngadult": "young_adult", "youngadults": "young_adult",
                 "middleaged": "adult", "senior": "older_adult", "seniors": "older_adult", "elderly": "older_adult",
                 "olderadult": "older_adult", "olderadults": "older_adult", "retiree": "older_adult"}
# An age in years ("34", "40s", "25 years old", "18-30", "fourteen-year-old") placed into the age groups.
_AGE_YEARS = re.compile(r"(\d{1,3})(?:\s*(?:-|–|to)\s*(\d{1,3}))?\s*(?:s|\+|yo|y/o|(?:-| )?years?(?:(?:-| )old)?)?")
_NUMBER_WORDS = {w: n for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {w: 10 * n for n, w in enumerate(
    "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if n >= 2}
_SPELLED_AGE = re.compile(r"(%s)(?:[- ](%s))?\b" % ("|".join(_NUMBER_WORDS), "|".join(list(_NUMBER_WORDS)[1:10])))
_AGE_BOUNDS = ((13, "child"), (18, "teenager"), (30, "young_adult"), (65, "adult"), (130, "older_adult"))
# "Not given" spelled out: absent, not a value outside the vocabulary.
NOT_GIVEN = frozenset({"unknown", "n/a", "na", "none", "null", "nil", "not specified", "unspecified",
                       "not applicable", "not given", "not known", "-", "?", "未知", "无"})
# Open attributes (occupation, domain) that are not a value: the prompt or schema echoed back, a template
# slot, a category word, or text cut off mid-phrase (a trailing comma or "and").
_ECHO = ("field of life", "life or work", "job name", "job title", "iso code", "iso 639", "the person's",
         "the persons", "this person", "persona", "public-facing or", "or behind-the-scenes", "age group", "age_group",
         "e.g.", "[", "]", "{", "}", "<", ">", "___", "...", "…")
_ECHO_WORDS = frozenset({"occupation", "domain", "job", "profession", "field", "work", "person", "people",
                         "description", "language", "visibility", "various", "other", "others", "any", "general",
                         "string", "text", "value", "example", "tbd", "todo", "xxx"})
_CUT_OFF_WORDS = frozenset({"and", "or", "of", "the", "a", "an", "for", "in", "with", "to", "at", "from", "who",
                            "that", "which"})
_LETTER = re.compile(r"[^\W\d_]")
MAX_OPEN_WORDS = 8
MAX_OPEN_CHARS = 80


def _squash(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalnum())


def canonical_language(value: object) -> str | None:
    """An ISO code for a language attribute ('English' -> 'en', 'en-US' -> 'en', 'English, French' -> 'en');
    None for anything else ('iso 3489', 'business; bakers; baking')."""
    text = re.sub(r"\s*\([^)]*\)", "", " ".join(str(value).split()).lower()).strip(" .'\"`*")
    first = re.split(r"\s*(?:[,;/|&]|\band\b|\bor\b)\s*", text, maxsplit=1)[0]
    first = first.removesuffix(" language").strip()
    if first in LANGUAGE_CODES:
        return LANGUAGE_CODES[first]
    if first in ISO_LANGUAGE_CODES:
        return first
    tagged = re.fullmatch(r"([a-z]{2,3})[-_][a-z0-9]{2,8}(?:[-_][a-z0-9]{1,8})*", first)  # BCP 47: en-US, zh-Hans-CN
    if tagged:
        primary = LANGUAGE_CODES.get(tagged[1], tagged[1])
        return primary if primary in ISO_LANGUAGE_CODES else None
    return None


def _canonical_age_group(value: str) -> str | None:
    squashed = _squash(value)
    for spelling in (squashed, squashed.removesuffix("s")):  # "Teenagers", "adults"
        if spelling in _AGE_SYNONYMS:
            return _AGE_SYNONYMS[spelling]
        if (group := next((a for a in AGE_GROUPS if _squash(a) == spelling), None)) is not None:
            return group
    text = value.strip(" .,;:").lower()
    words = _SPELLED_AGE.match(text)
    if words:  # "fourteen-year-old", "seventy-five years old"
        text = str(_NUMBER_WORDS[words[1]] + _NUMBER_WORDS.get(words[2] or "", 0)) + text[words.end():]
    years = _AGE_YEARS.fullmatch(text)
    if years:
        age = (int(years[1]) + int(years[2] or years[1])) / 2
        return next((group for bound, group in _AGE_BOUNDS if age < bound), None)
    return None


def canonical_open_value(value: object) -> str | None:
    """An open attribute (occupation, domain) trimmed and lower-cased; None when it is no value: the
    prompt echoed back ('the field of life or work job name'), a slot ('[industry/field]'), several values
    ('business; bakers; baking'), a cut-off phrase (a trailing comma), or a sentence rather than a name."""
    text = " ".join(str(value).split()).lower().strip(" '\"`*").removesuffix(".").strip()
    if not _LETTER.search(text) or text in _ECHO_WORDS or text in NOT_GIVEN or any(echo in text for echo in _ECHO):
        return None
    if text[-1] in ",;:/&(-–—" or text.rsplit(" ", 1)[-1] in _CUT_OFF_WORDS:
        return None
    if any(sep in text for sep in (";", "|", "\n")) or len(text) > MAX_OPEN_CHARS or text.count(" ") >= MAX_OPEN_WORDS:
        return None
    return text


def pending_key(hop: int) -> str:
    """The indexed frontier key of a persona at `hop` not yet expanded (`cypher/expand_frontier.cypher`)."""
    return f"h{hop}"


def canonical_region_value(key: str, value: object) -> str | None:
    """A region attribute's value in the form it is stored and counted in, or None when it is none.

    Closed vocabularies (age_group, visibility) map spellings onto their values ('Young adult' ->
    'young_adult', '34' -> 'adult'); a language becomes an ISO code (`canonical_language`); other
    attributes are open (`canonical_open_value`). Anything that fits none is None: never stored as free text.
    """
    if type(value) is str and value in _CANONICAL.get(key, ()):  # already canonical: the usual case
        return value
    if value is None or isinstance(value, bool) or not str(value).strip():
        return None
    if key == "language":
        return canonical_language(value)
    if key == "age_group":
        return _canonical_age_group(str(value))
    allowed = REGION_VOCABULARY.get(key)
    if allowed is None:
        return canonical_open_value(value)
    squashed = _squash(str(value))
    return next((a for a in allowed if _squash(a) == squashed), None)


_CANONICAL: dict[str, frozenset[str]] = {"language": ISO_LANGUAGE_CODES, **{k: frozenset(v) for k, v in REGION_VOCABULARY.items()}}


def canonical_attributes(values: Mapping[str, object], keys: Sequence[str] = REGION_ATTRIBUTES) -> tuple[dict[str, str], dict[str, str]]:
    """The region attributes among `values`, canonical (`canonical_region_value`), and those dropped
    because they fit no value (key -> the value given, for the stage's count and report). A value that
    says "not given" ('unknown', 'n/a', '') is neither."""
    kept: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for key in keys:
        value = values.get(key)
        if value is None or isinstance(value, bool):
            continue
        canonical = canonical_region_value(key, value)
        if canonical is not None:
            kept[key] = canonical
            continue
        given = " ".join(str(value).split())
        if given and given.lower().strip(" .") not in NOT_GIVEN:
            dropped[key] = given[:200]
    return kept, dropped


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
